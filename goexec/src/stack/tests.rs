//! Stack allocation, guards, pooling and the overflow handler.
//!
//! Tests that must crash or exhaust a process-wide limit run in a child process: the test
//! binary re-executes itself with `GOEXEC_TEST_CHILD` naming the scenario (see [`child`]).
// Tests poke raw memory in short runs of operations on one buffer, each run under one
// SAFETY comment; the one-operation rule is for the runtime's own code.
#![allow(clippy::multiple_unsafe_ops_per_block)]

use super::pool::KEEP_RESIDENT;
use super::*;
use crate::runtime::{Coroutine, CoroutineResult};
use std::process::{Command, Output};

/// Runs this test binary again as a child executing only `test` with `GOEXEC_TEST_CHILD=role`.
/// Under a cross runner (qemu-aarch64 in CI) the child goes through the same runner.
fn run_child(test: &str, role: &str, envs: &[(&str, &str)]) -> Output {
    let exe = std::env::current_exe().expect("current_exe");
    let runner = std::env::var("CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_RUNNER")
        .ok()
        .filter(|_| cfg!(target_arch = "aarch64"));
    let mut cmd = match runner {
        Some(r) => {
            let mut parts = r.split_whitespace();
            let mut c = Command::new(parts.next().expect("empty runner"));
            c.args(parts).arg(exe);
            c
        }
        None => Command::new(exe),
    };
    cmd.args([test, "--exact", "--nocapture", "--test-threads=1"])
        .env("GOEXEC_TEST_CHILD", role);
    for (k, v) in envs {
        cmd.env(k, v);
    }
    cmd.output().expect("spawn child test process")
}

/// The scenario this process should play, if it is a child.
fn child() -> Option<String> {
    std::env::var("GOEXEC_TEST_CHILD").ok()
}

#[test]
fn sizes_are_checked_and_rounded() {
    let err = Stack::new(0).unwrap_err();
    assert!(matches!(err, StackError::TooSmall { requested: 0 }));
    assert!(
        err.to_string().contains("below the minimum of 16384 bytes"),
        "{err}"
    );
    let err = Stack::new(MIN_STACK_SIZE - 1).unwrap_err();
    assert!(matches!(err, StackError::TooSmall { .. }));
    let err = Stack::new(MAX_STACK_SIZE + 1).unwrap_err();
    assert!(matches!(err, StackError::TooLarge { .. }));
    assert!(err.to_string().contains("above the maximum"), "{err}");
    let s = Stack::new(MIN_STACK_SIZE + 1).unwrap();
    assert_eq!(s.size() % page_size(), 0);
    assert!(s.size() > MIN_STACK_SIZE);
    assert!(StackPool::new(1).is_err());
}

#[test]
fn whole_stack_is_writable() {
    let s = Stack::new(64 * 1024).unwrap();
    // SAFETY: [bottom, top) is the usable range of a stack nobody runs on.
    unsafe {
        s.bottom().write_volatile(1);
        s.top().sub(1).write_volatile(2);
        assert_eq!(s.bottom().read_volatile(), 1);
        assert_eq!(s.top().sub(1).read_volatile(), 2);
    }
    let (lo, hi) = s.guard_range();
    assert_eq!(hi, s.bottom() as usize);
    assert_eq!(hi - lo, page_size());
}

/// A stack given back by a finished context is whole again once renewed for the next one.
/// Under valgrind, memcheck marks what the old context's calls used and returned from as
/// inaccessible, and a goroutine's first frame may start down there (its colour offset): without
/// the renewal these writes are invalid. Natively they only check the range; CI runs this test
/// under valgrind too.
#[test]
fn a_reused_stack_is_whole_again_once_renewed() {
    /// Uses 16 KiB of stack below its caller, then returns.
    #[inline(never)]
    fn deep() -> u8 {
        let buf = std::hint::black_box([7u8; 16 * 1024]);
        buf[100]
    }
    let stack = Stack::new(64 * 1024).unwrap();
    let mut co = Coroutine::<(), (), u8>::with_stack(stack, |_, ()| deep());
    assert!(matches!(co.resume(()), CoroutineResult::Return(7)));
    let stack = co.into_stack().expect("finished");
    stack.renew_for_valgrind();
    let words = stack.size() / std::mem::size_of::<usize>();
    let p = stack.bottom().cast::<usize>();
    // SAFETY: [bottom, top) is the usable range of a stack nobody runs on, and word-aligned.
    unsafe {
        for i in 0..words {
            p.add(i).write_volatile(i);
        }
        assert!((0..words).all(|i| p.add(i).read_volatile() == i));
    }
}

/// Kernel release as (major, minor), from uname.
fn kernel_version() -> (u32, u32) {
    let rel = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    let mut it = rel.trim().split(|c: char| !c.is_ascii_digit());
    let major = it.next().and_then(|s| s.parse().ok()).unwrap_or(0);
    let minor = it.next().and_then(|s| s.parse().ok()).unwrap_or(0);
    (major, minor)
}

#[test]
fn arena_mode_is_used_where_the_kernel_has_guard_install() {
    // Natively on x86_64 the probe must find MADV_GUARD_INSTALL on >= 6.13. (aarch64 runs
    // under qemu-user in CI, whose madvise ignores the advice: there the probe must say no,
    // which the overflow test then exercises through the mapped fallback.)
    if std::env::var_os("GOEXEC_STACK_GUARD").is_some() {
        return;
    }
    if cfg!(target_arch = "x86_64") && kernel_version() >= (6, 13) {
        assert_eq!(guard_mode(), GuardMode::Arena);
    }
}

#[test]
fn pool_reuses_most_recent_stack() {
    let mut pool = StackPool::with_capacity(64 * 1024, 4).unwrap();
    let a = pool.get().unwrap();
    let b = pool.get().unwrap();
    let (a_bottom, b_bottom) = (a.bottom(), b.bottom());
    pool.put(a);
    pool.put(b);
    assert_eq!(pool.len(), 2);
    assert_eq!(
        pool.get().unwrap().bottom(),
        b_bottom,
        "LIFO: b was freed last"
    );
    assert_eq!(pool.get().unwrap().bottom(), a_bottom);
    assert!(pool.is_empty());
    // A stack of another size is not kept.
    pool.put(Stack::new(128 * 1024).unwrap());
    assert!(pool.is_empty());
    // Full: the older half spills, the newest stays.
    for _ in 0..4 {
        pool.put(Stack::new(64 * 1024).unwrap());
    }
    let newest = Stack::new(64 * 1024).unwrap();
    let newest_bottom = newest.bottom();
    pool.put(newest);
    assert_eq!(pool.len(), 3);
    assert_eq!(pool.get().unwrap().bottom(), newest_bottom);
}

/// How many of the pages in `[lo, lo + len)` are resident, per mincore(2).
fn resident_pages(lo: *mut u8, len: usize) -> usize {
    let pages = len / page_size();
    let mut vec = vec![0u8; pages];
    // SAFETY: [lo, lo + len) is mapped (a live stack) and vec has one byte per page.
    let rc = unsafe { libc::mincore(lo.cast(), len, vec.as_mut_ptr()) };
    assert_eq!(rc, 0, "mincore: {}", std::io::Error::last_os_error());
    vec.iter().filter(|b| *b & 1 != 0).count()
}

#[test]
fn scrub_keeps_the_top_and_releases_the_rest() {
    let size = 1024 * 1024;
    let mut pool = StackPool::new(size).unwrap();
    let s = pool.get().unwrap();
    let page = page_size();
    for off in (0..size).step_by(page) {
        // SAFETY: every page of the usable range of an idle stack.
        unsafe { s.bottom().add(off).write_volatile(0xAB) };
    }
    assert_eq!(resident_pages(s.bottom(), size), size / page);
    let bottom = s.bottom();
    pool.put(s);
    assert_eq!(pool.scrub(), 1);
    assert_eq!(pool.scrub(), 0, "already scrubbed");
    let s = pool.get().unwrap();
    assert_eq!(s.bottom(), bottom);
    let kept = resident_pages(s.bottom(), size);
    assert_eq!(kept, KEEP_RESIDENT / page, "only the resident top stays");
    // SAFETY: the top page was kept and the bottom one released, which reads as zero.
    unsafe {
        assert_eq!(s.top().sub(page).read_volatile(), 0xAB);
        assert_eq!(s.bottom().read_volatile(), 0);
    }
}

#[test]
fn freed_arena_slot_is_reused_with_its_guard() {
    if guard_mode() != GuardMode::Arena {
        return;
    }
    let size = 96 * 1024; // a size no other test uses, so the slot is ours to watch
    let s = Stack::new(size).unwrap();
    let bottom = s.bottom();
    drop(s);
    let s = Stack::new(size).unwrap();
    assert_eq!(s.bottom(), bottom, "the freed slot comes back");
    // SAFETY: the slot was released on free; untouched pages read as zero.
    assert_eq!(unsafe { s.top().sub(1).read_volatile() }, 0);
    assert!(arena::guard_refuses_reads(s.guard_range().0 as *const u8));
}

fn map_count() -> usize {
    std::fs::read_to_string("/proc/self/maps")
        .unwrap()
        .lines()
        .count()
}

#[test]
fn a_million_stacks_fit_under_the_default_map_count() {
    if guard_mode() != GuardMode::Arena {
        eprintln!("skipped: this kernel has no MADV_GUARD_INSTALL (mapped stacks)");
        return;
    }
    let before = map_count();
    let rss_before = rss_kib();
    let mut stacks = Vec::with_capacity(1_000_000);
    for i in 0..1_000_000 {
        match Stack::new(DEFAULT_STACK_SIZE) {
            Ok(s) => stacks.push(s),
            Err(e) => panic!("stack {i} failed: {e}"),
        }
    }
    // Touch each stack's top word, as a goroutine's first frame would.
    for s in &stacks {
        // SAFETY: the top word of an idle stack's usable range.
        unsafe { s.top().cast::<usize>().sub(1).write_volatile(1) };
    }
    let during = map_count();
    let per_stack = (rss_kib() - rss_before) * 1024 / 1_000_000;
    eprintln!("1,000,000 stacks: mappings {before} -> {during}, RSS {per_stack} bytes per stack");
    assert!(
        during < before + 100,
        "a million stacks added {} mappings ({before} -> {during})",
        during - before
    );
    // One touched page each (4 KiB), plus the Vec of Stack values (40 bytes each); generous
    // headroom for other tests allocating meanwhile.
    assert!(per_stack < 8 * 1024, "{per_stack} bytes of RSS per stack");
    drop(stacks);
}

/// The process's resident set, from /proc/self/status.
fn rss_kib() -> usize {
    std::fs::read_to_string("/proc/self/status")
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmRSS in /proc/self/status")
}

#[test]
fn exhausting_mappings_names_the_limit() {
    if child().as_deref() == Some("exhaust") {
        // Mapped stacks cost two mappings each; allocate until the kernel says no.
        let mut held = Vec::with_capacity(100_000);
        loop {
            match Stack::new(MIN_STACK_SIZE) {
                Ok(s) => held.push(s),
                Err(e) => {
                    eprintln!("after {} stacks: {e}", held.len());
                    assert!(matches!(e, StackError::MapCountExhausted { .. }), "{e:?}");
                    return;
                }
            }
        }
    }
    let out = run_child(
        "stack::tests::exhausting_mappings_names_the_limit",
        "exhaust",
        &[("GOEXEC_STACK_GUARD", "mapped")],
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "child failed: {stderr}");
    assert!(stderr.contains("vm.max_map_count"), "{stderr}");
    assert!(stderr.contains("sysctl -w vm.max_map_count="), "{stderr}");
}

/// Recurses with a 1 KiB frame until the stack runs out.
#[inline(never)]
#[allow(unconditional_recursion)] // the point: it ends in the guard page
fn recurse(depth: u64) -> u64 {
    let buf = std::hint::black_box([depth as u8; 1024]);
    recurse(depth + 1) + buf[(depth % 1024) as usize] as u64
}

fn overflow_child() {
    let mut co = Coroutine::<(), (), u64>::with_stack_size(64 * 1024, |_, ()| recurse(0))
        .expect("coroutine");
    eprintln!("child coroutine id {}", co.id());
    if let CoroutineResult::Return(n) = co.resume(()) {
        eprintln!("recursion returned {n}?");
    }
}

fn assert_overflow_reported(guard: &str) {
    use std::os::unix::process::ExitStatusExt;
    let out = run_child(
        "stack::tests::overflow_in_a_coroutine_is_reported",
        "overflow",
        &[("GOEXEC_STACK_GUARD", guard)],
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        out.status.signal(),
        Some(libc::SIGABRT),
        "{guard}: {stderr}"
    );
    let id: u64 = stderr
        .lines()
        .find_map(|l| l.strip_prefix("child coroutine id "))
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or_else(|| panic!("{guard}: no id line in: {stderr}"));
    let expected = format!("goroutine {id} stack overflow (stack size 65536 bytes)");
    assert!(
        stderr.contains(&expected),
        "{guard}: want {expected:?} in: {stderr}"
    );
}

#[test]
fn overflow_in_a_coroutine_is_reported() {
    if child().as_deref() == Some("overflow") {
        overflow_child();
        return;
    }
    assert_overflow_reported("mapped");
    if guard_mode() == GuardMode::Arena {
        assert_overflow_reported("arena");
    }
}

#[test]
fn other_faults_go_to_the_previous_handler() {
    use std::os::unix::process::ExitStatusExt;
    if child().as_deref() == Some("wild") {
        // Install our handler (by making a coroutine), then fault outside any guard.
        let mut co = Coroutine::<(), (), ()>::new(|_, ()| {
            // SAFETY: deliberately not: a write to an unmapped low address, to fault.
            unsafe { (16 as *mut u8).write_volatile(1) };
        })
        .expect("coroutine");
        co.resume(());
        return;
    }
    let out = run_child(
        "stack::tests::other_faults_go_to_the_previous_handler",
        "wild",
        &[],
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.signal(), Some(libc::SIGSEGV), "{stderr}");
    assert!(!stderr.contains("stack overflow"), "{stderr}");
}
