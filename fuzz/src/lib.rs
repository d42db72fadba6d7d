//! The property fuzzed, shared with the main package's tests/fuzz_parse.rs:
//! see tests/support/parse_property.rs.

#[path = "../../tests/support/parse_property.rs"]
mod parse_property;

/// Checks one input; panics (which libFuzzer reports as a crash) if the
/// property does not hold.
pub fn parse_one(data: &[u8]) {
    parse_property::parse_and_check(data);
}
