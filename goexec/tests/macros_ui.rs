//! Compile errors of the macros for malformed input: each says what was expected.

#[test]
fn malformed_macro_input_is_a_clear_compile_error() {
    let t = trybuild::TestCases::new();
    t.compile_fail("tests/ui/select_*.rs");
    t.compile_fail("tests/ui/go_*.rs");
    t.compile_fail("tests/ui/main_*.rs");
    t.compile_fail("tests/ui/test_*.rs");
}
