//! Runtimes start threads and must take them all down: alone in its own test binary so that
//! no other test's threads disturb the count.

fn threads() -> usize {
    std::fs::read_dir("/proc/self/task").unwrap().count()
}

#[test]
fn many_runtimes_leave_no_threads_behind() {
    let before = threads();
    for i in 0..50 {
        let procs = 1 + i % 4;
        let rt = goexec::Runtime::builder().procs(procs).build().unwrap();
        let n = rt.run(|| {
            let hs: Vec<_> = (0..100).map(|j| goexec::spawn(move || j)).collect();
            hs.into_iter().map(|h| h.join().unwrap()).sum::<i32>()
        });
        assert_eq!(n, 4950);
    }
    // A joined thread can stay listed in /proc/self/task for a moment (the kernel wakes the
    // joiner before it finishes tearing the task down): poll, bounded, for the count to settle.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let mut now = threads();
    while now != before && std::time::Instant::now() < deadline {
        std::thread::yield_now();
        now = threads();
    }
    assert_eq!(now, before, "runtime threads outlived their runtime");
}
