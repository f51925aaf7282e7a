#[goexec::main]
async fn main() {}
