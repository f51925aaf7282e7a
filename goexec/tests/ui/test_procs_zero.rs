#[goexec::test(procs = 0_usize)]
fn t() {}

fn main() {}
