#[goexec::main(procs = 1, procs = 2)]
fn main() {}
