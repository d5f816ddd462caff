//! Every misuse of `#[cached]` and `#[cache_evict]` is a compile error
//! that says what is wrong where it is written; the compiler's messages
//! are checked in next to each case (`tests/ui/*.stderr`; regenerate with
//! `TRYBUILD=overwrite` after reading the diff).

#[test]
fn misuses_are_compile_errors_at_the_mistake() {
    trybuild::TestCases::new().compile_fail("tests/ui/*.rs");
}
