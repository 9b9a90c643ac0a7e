//! What the property tests (`props` modules, issue #6) share.

use proptest::test_runner::Config as ProptestConfig;

/// `default` cases per property, so that `cargo test --workspace` stays quick; the
/// standard `PROPTEST_CASES` variable, when set, decides instead (long runs: see
/// docs/fuzzing.md).
pub fn config(default: u32) -> ProptestConfig {
    let mut config = ProptestConfig::default();
    if std::env::var_os("PROPTEST_CASES").is_none() {
        config.cases = default;
    }
    config
}
