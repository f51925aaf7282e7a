// The caller cannot touch data a scoped goroutine borrows mutably while the scope runs.
fn main() {
    goexec::run(|| {
        let mut n = 0;
        goexec::scope(|s| {
            s.spawn(|| n += 1);
            n += 1;
        });
    });
}
