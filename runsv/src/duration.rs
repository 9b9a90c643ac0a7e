//! Durations as every runtree program words and reads them: `seconds` for reasons and
//! messages, `parse` for the settings (environment, definitions) that take seconds.

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

/// Seconds, possibly fractional, with an optional `s` or `ms` suffix, blanks around
/// allowed; 0 and more. A number too large for a `Duration` saturates to
/// `Duration::MAX`: each setting applies its own bounds (init's, init/src/config.rs).
pub fn parse(text: &str) -> Option<Duration> {
    let text = text.trim();
    let (number, scale) = if let Some(n) = text.strip_suffix("ms") {
        (n, 0.001)
    } else if let Some(n) = text.strip_suffix('s') {
        (n, 1.0)
    } else {
        (text, 1.0)
    };
    let value: f64 = number.trim().parse().ok()?;
    if !value.is_finite() || value < 0.0 {
        return None;
    }
    Some(Duration::try_from_secs_f64(value * scale).unwrap_or(Duration::MAX))
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

    #[test]
    fn parses_seconds_with_a_unit_or_none() {
        let millis = Duration::from_millis;
        for (text, expected) in [
            ("90", Some(Duration::from_secs(90))),
            (" 0.25 ", Some(millis(250))),
            ("2.5s", Some(millis(2500))),
            ("500ms", Some(millis(500))),
            ("0", Some(Duration::ZERO)),
            ("1e300", Some(Duration::MAX)),
            ("-1", None),
            ("", None),
            ("soon", None),
            ("NaN", None),
            ("inf", None),
        ] {
            assert_eq!(parse(text), expected, "{text:?}");
        }
    }
}
