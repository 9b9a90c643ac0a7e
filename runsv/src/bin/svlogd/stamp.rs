//! The timestamps svlogd writes: before lines (`-t`, `-tt`, `-ttt`) and in the names of
//! rotated files (`@` + TAI64N in hex, as runit's `fmt_taia`).

use crate::options::Stamp;
use runsv::tai64n::Timestamp;

const HEX: &[u8; 16] = b"0123456789abcdef";

/// `@` and the 24 hex digits of a TAI64N label: 25 bytes.
pub fn tai64n_hex(time: Timestamp, out: &mut Vec<u8>) {
    out.push(b'@');
    for byte in time.to_tai64n() {
        out.push(HEX[usize::from(byte >> 4)]);
        out.push(HEX[usize::from(byte & 15)]);
    }
}

/// Formats line stamps, remembering the date and time of the last second formatted:
/// a busy logger stamps many lines within one second.
pub struct Stamper {
    kind: Stamp,
    second: Option<u64>,
    /// `YYYY-MM-DD_HH:MM:SS.` of `second`.
    head: [u8; 20],
}

impl Stamper {
    pub fn new(kind: Stamp) -> Stamper {
        Stamper {
            kind,
            second: None,
            head: [0; 20],
        }
    }

    pub fn enabled(&self) -> bool {
        self.kind != Stamp::None
    }

    /// Appends the stamp of `time` and a space (26 bytes), or nothing without `-t`.
    pub fn put(&mut self, time: Timestamp, out: &mut Vec<u8>) {
        match self.kind {
            Stamp::None => return,
            Stamp::Tai64n => tai64n_hex(time, out),
            Stamp::Human | Stamp::Iso8601 => {
                if self.second != Some(time.seconds) {
                    let separator = if self.kind == Stamp::Human {
                        b'_'
                    } else {
                        b'T'
                    };
                    self.head = civil(time.seconds, separator);
                    self.second = Some(time.seconds);
                }
                out.extend_from_slice(&self.head);
                // runit formats nine digits into a 25-byte stamp: five survive.
                let mut digits = [b'0'; 5];
                let mut tens_of_micros = time.nanoseconds / 10_000;
                for digit in digits.iter_mut().rev() {
                    *digit = b'0' + (tens_of_micros % 10) as u8;
                    tens_of_micros /= 10;
                }
                out.extend_from_slice(&digits);
            }
        }
        out.push(b' ');
    }
}

/// `YYYY-MM-DD?HH:MM:SS.` in UTC for seconds since the epoch (Howard Hinnant's
/// days-to-civil algorithm: no time zone, no libc).
fn civil(seconds: u64, separator: u8) -> [u8; 20] {
    let days = (seconds / 86_400) as i64;
    let in_day = seconds % 86_400;
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    let mut out = [0u8; 20];
    let put = |out: &mut [u8], value: u64| {
        let mut value = value;
        for slot in out.iter_mut().rev() {
            *slot = b'0' + (value % 10) as u8;
            value /= 10;
        }
    };
    put(&mut out[0..4], year.clamp(0, 9999) as u64);
    out[4] = b'-';
    put(&mut out[5..7], month as u64);
    out[7] = b'-';
    put(&mut out[8..10], day as u64);
    out[10] = separator;
    put(&mut out[11..13], in_day / 3600);
    out[13] = b':';
    put(&mut out[14..16], in_day / 60 % 60);
    out[16] = b':';
    put(&mut out[17..19], in_day % 60);
    out[19] = b'.';
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_as_runit() {
        let time = Timestamp {
            seconds: 1_764_773_400,
            nanoseconds: 123_456_789,
        };
        let mut out = Vec::new();
        Stamper::new(Stamp::Human).put(time, &mut out);
        assert_eq!(out, b"2025-12-03_14:50:00.12345 ");
        out.clear();
        Stamper::new(Stamp::Iso8601).put(time, &mut out);
        assert_eq!(out, b"2025-12-03T14:50:00.12345 ");
        out.clear();
        Stamper::new(Stamp::Tai64n).put(time, &mut out);
        assert_eq!(out, b"@4000000069304e22075bcd15 ");
        assert_eq!(&civil(951_782_400, b'_')[..10], b"2000-02-29");
    }
}
