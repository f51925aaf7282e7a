// A scoped goroutine's handle cannot leave its scope.
fn main() {
    goexec::run(|| {
        let h = goexec::scope(|s| s.spawn(|| 1));
        h.join().unwrap();
    });
}
