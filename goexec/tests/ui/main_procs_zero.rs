#[goexec::main(procs = 0)]
fn main() {}
