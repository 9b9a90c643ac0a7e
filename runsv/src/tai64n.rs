//! Wall-clock timestamps as TAI64N, the encoding daemontools, runit and s6 store in
//! `supervise/status`.
//!
//! A TAI64 label is `2^62 + 10 + unix seconds` (libtai adds a constant 10 and keeps no
//! leap-second table, so neither do we), big-endian, followed by the nanoseconds as a
//! big-endian u32. runit writes `usec * 1000 + 500`; we keep full nanoseconds so that
//! waits can compare timestamps exactly.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

const TAI_OFFSET: u64 = (1 << 62) + 10;

/// A point in wall-clock time with nanosecond precision.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Timestamp {
    /// Seconds since the Unix epoch (a clock before 1970 is clamped to 0).
    pub seconds: u64,
    pub nanoseconds: u32,
}

impl Timestamp {
    pub fn now() -> Timestamp {
        Timestamp::from_system_time(SystemTime::now())
    }

    pub fn from_system_time(time: SystemTime) -> Timestamp {
        let since_epoch = time.duration_since(UNIX_EPOCH).unwrap_or(Duration::ZERO);
        Timestamp {
            seconds: since_epoch.as_secs(),
            nanoseconds: since_epoch.subsec_nanos(),
        }
    }

    pub fn to_tai64n(self) -> [u8; 12] {
        let mut bytes = [0u8; 12];
        bytes[..8].copy_from_slice(&(self.seconds + TAI_OFFSET).to_be_bytes());
        bytes[8..].copy_from_slice(&self.nanoseconds.to_be_bytes());
        bytes
    }

    pub fn from_tai64n(bytes: &[u8; 12]) -> Timestamp {
        let mut label = [0u8; 8];
        label.copy_from_slice(&bytes[..8]);
        let mut nanos = [0u8; 4];
        nanos.copy_from_slice(&bytes[8..]);
        Timestamp {
            seconds: u64::from_be_bytes(label).saturating_sub(TAI_OFFSET),
            nanoseconds: u32::from_be_bytes(nanos).min(999_999_999),
        }
    }

    /// Seconds from `self` to `now` as `sv status` prints them: runit subtracts the
    /// whole-second parts of the two stamps (clamped at 0); it does not round the real
    /// difference, so 10.9 → 11.1 is 1 second, and 10.9 → 12.1 is 2.
    pub fn whole_seconds_until(self, now: Timestamp) -> u64 {
        now.seconds.saturating_sub(self.seconds)
    }

    /// `seconds.nanoseconds`, the form the `supervise/state` file uses.
    pub fn to_decimal(self) -> String {
        format!("{}.{:09}", self.seconds, self.nanoseconds)
    }

    pub fn parse_decimal(text: &str) -> Option<Timestamp> {
        let (seconds, fraction) = text.split_once('.').unwrap_or((text, "0"));
        if fraction.is_empty()
            || fraction.len() > 9
            || !fraction.bytes().all(|b| b.is_ascii_digit())
        {
            return None;
        }
        let seconds = seconds.parse().ok()?;
        // The digits as nanoseconds: "5" is 500000000 (no allocation: sv reads a
        // thousand of these for one `sv status`).
        let mut nanoseconds: u32 = 0;
        for digit in fraction.bytes() {
            nanoseconds = nanoseconds * 10 + u32::from(digit - b'0');
        }
        nanoseconds *= 10u32.pow(9 - fraction.len() as u32);
        Some(Timestamp {
            seconds,
            nanoseconds,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tai64n_matches_runits_dump() {
        // From a real runit status file: 4000 0000 6b02 5ee5 0931 1894.
        let bytes = [
            0x40, 0, 0, 0, 0x6b, 0x02, 0x5e, 0xe5, 0x09, 0x31, 0x18, 0x94,
        ];
        let ts = Timestamp::from_tai64n(&bytes);
        assert_eq!(ts.seconds, 0x6b02_5ee5 - 10);
        assert_eq!(ts.nanoseconds, 0x0931_1894);
        assert_eq!(ts.to_tai64n(), bytes);
    }

    #[test]
    fn decimal_round_trip_keeps_nanoseconds() {
        let ts = Timestamp {
            seconds: 1_763_790_000,
            nanoseconds: 5,
        };
        assert_eq!(ts.to_decimal(), "1763790000.000000005");
        assert_eq!(Timestamp::parse_decimal(&ts.to_decimal()), Some(ts));
        assert_eq!(
            Timestamp::parse_decimal("12.5"),
            Some(Timestamp {
                seconds: 12,
                nanoseconds: 500_000_000
            })
        );
        assert_eq!(Timestamp::parse_decimal("x"), None);
        assert_eq!(Timestamp::parse_decimal("1.1234567890"), None);
    }

    #[test]
    fn whole_seconds_are_differences_of_whole_seconds_clamped_at_0() {
        let at = |seconds, nanoseconds| Timestamp {
            seconds,
            nanoseconds,
        };
        let since = at(10, 900_000_000);
        assert_eq!(since.whole_seconds_until(at(11, 100_000_000)), 1);
        assert_eq!(since.whole_seconds_until(at(12, 100_000_000)), 2);
        assert_eq!(at(11, 100_000_000).whole_seconds_until(since), 0);
    }
}
