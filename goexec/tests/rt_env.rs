//! GOMAXPROCS sets the default number of Ps: alone in its own test binary because it sets an
//! environment variable.

#[test]
fn gomaxprocs_env_sets_the_default_and_bad_values_are_ignored() {
    // SAFETY (of the test): this binary has no other test, so nothing reads the environment
    // concurrently.
    std::env::set_var("GOMAXPROCS", "3");
    assert_eq!(goexec::run(goexec::runtime::gomaxprocs), 3);
    let rt = goexec::Runtime::new().unwrap();
    assert_eq!(rt.procs(), 3);
    // An explicit procs wins over the environment.
    assert_eq!(
        goexec::Runtime::builder().procs(1).build().unwrap().procs(),
        1
    );
    std::env::set_var("GOMAXPROCS", "zero");
    let default = std::thread::available_parallelism().map_or(1, |n| n.get());
    assert_eq!(goexec::Runtime::new().unwrap().procs(), default);
}
