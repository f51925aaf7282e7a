#[goexec::main(procs)]
fn main() {}
