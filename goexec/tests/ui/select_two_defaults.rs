fn main() {
    let (tx, rx) = goexec::chan::bounded::<i32>(1);
    let _ = (&tx, &rx);
    let _ = goexec::select! {
        recv(rx) -> v => v.unwrap(),
        default => 0,
        default => 1,
    };
}
