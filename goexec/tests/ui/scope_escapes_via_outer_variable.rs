// Neither by a variable declared outside the scope.
fn main() {
    goexec::run(|| {
        let mut escaped = None;
        goexec::scope(|s| {
            escaped = Some(s.spawn(|| 1));
        });
        escaped.unwrap().join().unwrap();
    });
}
