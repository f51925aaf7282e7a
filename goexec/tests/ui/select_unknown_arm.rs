fn main() {
    let (tx, rx) = goexec::chan::bounded::<i32>(1);
    let _ = (&tx, &rx);
    let _ = goexec::select! {
        recieve(rx) -> v => v.unwrap(),
    };
}
