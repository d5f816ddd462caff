//! Every misuse of `#[cached]` and `#[cache_evict]` is a compile error
//! that says what is wrong where it is written; the compiler's messages
//! are checked in next to each case (`tests/ui/*.stderr`; regenerate with
//! `TRYBUILD=overwrite` after reading the diff).

// The external-tests run repeats the plain suite with more features; this
// one compiles a crate per case and has already run there.
#[cfg_attr(feature = "external-tests", ignore = "runs in the plain suite")]
#[test]
fn misuses_are_compile_errors_at_the_mistake() {
    trybuild::TestCases::new().compile_fail("tests/ui/*.rs");
}
