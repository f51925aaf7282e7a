fn f(x: i32) -> i32 {
    x
}

fn main() {
    goexec::run(|| {
        let _ = f(0);
        let _h = goexec::go!(1 + 2);
    });
}
