fn main() {
    goexec::run(|| {
        let _h = goexec::go!();
    });
}
