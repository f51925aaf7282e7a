// A scoped goroutine may not borrow data that dies before the scope ends.
fn main() {
    goexec::run(|| {
        goexec::scope(|s| {
            let local = vec![1, 2, 3];
            s.spawn(|| println!("{local:?}"));
        });
    });
}
