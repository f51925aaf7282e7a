fn main() {
    let (tx, rx) = goexec::chan::bounded::<i32>(1);
    let _ = (&tx, &rx);
    let _ = goexec::select! {
        recv(rx, rx) -> v => v.unwrap(),
    };
}
