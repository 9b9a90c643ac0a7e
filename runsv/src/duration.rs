//! How a duration is worded in the reasons and messages of every runtree program.

use std::time::Duration;

/// `2s`, `1.5s`, `0.2s`: a duration in the reasons and messages of every program.
pub fn seconds(duration: Duration) -> String {
    let millis = duration.as_millis();
    if millis.is_multiple_of(1000) {
        format!("{}s", millis / 1000)
    } else {
        format!("{}s", duration.as_secs_f64())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn whole_seconds_without_a_fraction_and_others_with_one() {
        assert_eq!(seconds(Duration::from_secs(2)), "2s");
        assert_eq!(seconds(Duration::from_millis(1500)), "1.5s");
        assert_eq!(seconds(Duration::from_millis(200)), "0.2s");
    }
}
