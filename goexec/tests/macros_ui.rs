//! Compile errors of `select!` for malformed arms: each says what was expected.

#[test]
fn select_malformed_arms_are_clear_compile_errors() {
    let t = trybuild::TestCases::new();
    t.compile_fail("tests/ui/select_*.rs");
}
