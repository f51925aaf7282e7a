//! When the kernel's mapping table is full (`vm.max_map_count`), a thread the runtime cannot
//! start says so, and how to raise the limit: a thread's stack and std's alternate signal stack
//! are mappings too, and without the check std aborts the new thread with "failed to allocate
//! an alternative stack".

mod common;

const CHILD: &str = "GOEXEC_TEST_MAP_LIMIT_CHILD";

/// Maps single pages until the kernel refuses, alternating protections so that neighbours do
/// not merge into one mapping; returns how many it made.
fn fill_the_mapping_table() -> usize {
    let mut n = 0;
    loop {
        let prot = if n % 2 == 0 {
            libc::PROT_READ
        } else {
            libc::PROT_NONE
        };
        // SAFETY: an anonymous private mapping of one page at an address the kernel picks;
        // never touched, never unmapped (the child exits).
        let p = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                4096,
                prot,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                -1,
                0,
            )
        };
        if p == libc::MAP_FAILED {
            return n;
        }
        n += 1;
    }
}

fn work() {
    let hs: Vec<_> = (0..8).map(|_| goexec::spawn(goexec::yield_now)).collect();
    hs.into_iter().for_each(|h| h.join().unwrap());
}

#[test]
fn a_thread_that_cannot_start_for_the_mapping_limit_names_it() {
    if std::env::var_os(CHILD).is_some() {
        // A first run leaves its stacks cached, so that the second needs no new stack
        // mapping: only its threads need one.
        goexec::Runtime::builder()
            .procs(2)
            .build()
            .unwrap()
            .run(work);
        let n = fill_the_mapping_table();
        eprintln!("child: {n} mappings made");
        goexec::Runtime::builder()
            .procs(2)
            .build()
            .unwrap()
            .run(work);
        eprintln!("child: the second run finished");
        return;
    }
    if common::under_emulation() {
        // qemu-user keeps mappings of its own, out of the guest's sight.
        eprintln!("skipped under emulation");
        return;
    }
    let _w = common::watchdog(
        "a_thread_that_cannot_start_for_the_mapping_limit_names_it",
        120,
    );
    let out = common::run_test_child(
        "a_thread_that_cannot_start_for_the_mapping_limit_names_it",
        &[(CHILD, "1")],
        std::time::Duration::from_secs(60),
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    // A fatal error: the runtime cannot go on without the thread (Go too ends the program).
    assert!(!out.status.success(), "{stderr}");
    assert!(
        stderr.contains("goexec: fatal: newm: cannot start"),
        "{stderr}"
    );
    assert!(stderr.contains("vm.max_map_count is"), "{stderr}");
    assert!(stderr.contains("sysctl -w vm.max_map_count="), "{stderr}");
    assert!(!stderr.contains("alternative stack"), "{stderr}");
}

/// `signal::notify` on a plain thread starts a thread of its own: with the mapping table full
/// it fails with an error that names the limit, instead of std aborting the process.
#[test]
fn a_signal_thread_that_cannot_start_for_the_mapping_limit_names_it() {
    const NAME: &str = "a_signal_thread_that_cannot_start_for_the_mapping_limit_names_it";
    if std::env::var_os(CHILD).is_some() {
        let n = fill_the_mapping_table();
        let r = goexec::signal::notify(&[libc::SIGUSR1]);
        match r {
            Ok(_) => eprintln!("child: notify worked with {n} mappings made"),
            Err(e) => eprintln!("child: notify failed: {e}"),
        }
        return;
    }
    if common::under_emulation() {
        eprintln!("skipped under emulation");
        return;
    }
    let _w = common::watchdog(NAME, 120);
    let out = common::run_test_child(NAME, &[(CHILD, "1")], std::time::Duration::from_secs(60));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(stderr.contains("child: notify failed: "), "{stderr}");
    assert!(stderr.contains("vm.max_map_count is"), "{stderr}");
    assert!(stderr.contains("sysctl -w vm.max_map_count="), "{stderr}");
}
