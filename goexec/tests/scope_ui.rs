//! Compile errors that keep scoped goroutines sound: a scoped goroutine cannot borrow data
//! that dies before its scope ends, its handle cannot leave the scope, and the borrow rules
//! hold between the scope's goroutines and its caller.

#[test]
fn scoped_goroutines_cannot_outlive_their_borrows() {
    let t = trybuild::TestCases::new();
    t.compile_fail("tests/ui/scope_*.rs");
}
