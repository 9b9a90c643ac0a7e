//! chpst's controls as `service.yaml` keys (`limit_*`, `nice`, `umask`, `env_dir`,
//! `env_file`), so a YAML service needs no `chpst` wrapper: their types and what a value
//! may be. yaml/values.rs reads them, the launcher applies them to every process of the
//! service (run, finish, the readiness test) and env_files.rs reads the environment
//! files at each start.

use nix::libc;
use std::path::PathBuf;

/// The resource limits a service may set, one key each.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Resource {
    Nofile,
    Nproc,
    Core,
    Data,
    Stack,
    Fsize,
    Rss,
    As,
    Memlock,
    Cpu,
}

/// What a limit counts, which decides how its value is written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Unit {
    Count,
    Bytes,
    Seconds,
}

impl Resource {
    /// In the order the documentation lists them.
    pub const ALL: [Resource; 10] = [
        Resource::Nofile,
        Resource::Nproc,
        Resource::Core,
        Resource::Data,
        Resource::Stack,
        Resource::Fsize,
        Resource::Rss,
        Resource::As,
        Resource::Memlock,
        Resource::Cpu,
    ];

    pub fn key(self) -> &'static str {
        match self {
            Resource::Nofile => "limit_nofile",
            Resource::Nproc => "limit_nproc",
            Resource::Core => "limit_core",
            Resource::Data => "limit_data",
            Resource::Stack => "limit_stack",
            Resource::Fsize => "limit_fsize",
            Resource::Rss => "limit_rss",
            Resource::As => "limit_as",
            Resource::Memlock => "limit_memlock",
            Resource::Cpu => "limit_cpu",
        }
    }

    pub fn unit(self) -> Unit {
        match self {
            Resource::Nofile | Resource::Nproc => Unit::Count,
            Resource::Cpu => Unit::Seconds,
            _ => Unit::Bytes,
        }
    }

    /// The RLIMIT_ number setrlimit(2) takes.
    pub fn number(self) -> libc::c_int {
        (match self {
            Resource::Nofile => libc::RLIMIT_NOFILE,
            Resource::Nproc => libc::RLIMIT_NPROC,
            Resource::Core => libc::RLIMIT_CORE,
            Resource::Data => libc::RLIMIT_DATA,
            Resource::Stack => libc::RLIMIT_STACK,
            Resource::Fsize => libc::RLIMIT_FSIZE,
            Resource::Rss => libc::RLIMIT_RSS,
            Resource::As => libc::RLIMIT_AS,
            Resource::Memlock => libc::RLIMIT_MEMLOCK,
            Resource::Cpu => libc::RLIMIT_CPU,
        }) as libc::c_int
    }

    /// The resource whose RLIMIT_ number is `number`, for messages.
    pub fn of_number(number: libc::c_int) -> Option<Resource> {
        Resource::ALL.into_iter().find(|r| r.number() == number)
    }
}

/// A limit's value: soft and hard limit alike.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Limit {
    Unlimited,
    At(u64),
}

impl Limit {
    /// As setrlimit(2) takes it (RLIM_INFINITY for unlimited).
    pub fn raw(self) -> u64 {
        match self {
            Limit::Unlimited => u64::MAX,
            Limit::At(value) => value,
        }
    }
}

/// The controls a service sets; none by default (runsv's own limits, nice and umask, the
/// environment of `environ` alone).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ProcessControls {
    /// Each resource at most once, in file order.
    pub limits: Vec<(Resource, Limit)>,
    /// The nice value (setpriority), -20 to 19.
    pub nice: Option<i32>,
    pub umask: Option<u32>,
    /// KEY=VALUE lines, read at each start (relative paths: to the service directory).
    pub env_file: Option<PathBuf>,
    /// runit's env dir, read at each start after `env_file`.
    pub env_dir: Option<PathBuf>,
}

/// `4096`, `unlimited`, and for bytes a K, M, G or T suffix (powers of 1024).
pub fn parse_limit(unit: Unit, text: &str) -> Result<Limit, String> {
    if text == "unlimited" || text == "infinity" {
        return Ok(Limit::Unlimited);
    }
    let (digits, multiplier) = match (unit, text.char_indices().last()) {
        (Unit::Bytes, Some((at, suffix))) if suffix.is_ascii_alphabetic() => {
            let power = match suffix.to_ascii_uppercase() {
                'K' => 1,
                'M' => 2,
                'G' => 3,
                'T' => 4,
                _ => {
                    return Err(format!(
                    "`{text}`: unknown size suffix `{suffix}`; use K, M, G or T (powers of 1024)"
                ))
                }
            };
            (&text[..at], 1u64 << (10 * power))
        }
        _ => (text, 1),
    };
    let what = match unit {
        Unit::Count => "a number",
        Unit::Bytes => "a number of bytes (with K, M, G or T)",
        Unit::Seconds => "a number of seconds",
    };
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!("`{text}` is not {what} or `unlimited`"));
    }
    digits
        .parse::<u64>()
        .ok()
        .and_then(|n| n.checked_mul(multiplier))
        .filter(|&n| n < u64::MAX)
        .map(Limit::At)
        .ok_or_else(|| format!("`{text}` is too large; use `unlimited`"))
}

/// An octal umask of up to four digits, such as `022` or `0027`.
pub fn parse_umask(text: &str) -> Result<u32, String> {
    let valid =
        !text.is_empty() && text.len() <= 4 && text.bytes().all(|b| (b'0'..=b'7').contains(&b));
    match u32::from_str_radix(text, 8) {
        Ok(mask) if valid && mask <= 0o777 => Ok(mask),
        _ => Err(format!(
            "`{text}` is not an octal umask such as 022 or 0027 (quote it if YAML would read a number)"
        )),
    }
}

/// A nice value, as setpriority(2) takes it.
pub fn check_nice(value: i64) -> Result<i32, String> {
    if (-20..=19).contains(&value) {
        Ok(value as i32)
    } else {
        Err(format!("must be from -20 to 19, not {value}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_are_numbers_sizes_or_unlimited() {
        for (unit, text, expected) in [
            (Unit::Count, "4096", Ok(Limit::At(4096))),
            (Unit::Count, "unlimited", Ok(Limit::Unlimited)),
            (Unit::Bytes, "64M", Ok(Limit::At(64 << 20))),
            (Unit::Bytes, "2g", Ok(Limit::At(2 << 30))),
            (Unit::Bytes, "0", Ok(Limit::At(0))),
            (Unit::Seconds, "30", Ok(Limit::At(30))),
            (
                Unit::Count,
                "4k",
                Err("`4k` is not a number or `unlimited`"),
            ),
            (
                Unit::Bytes,
                "3X",
                Err("`3X`: unknown size suffix `X`; use K, M, G or T (powers of 1024)"),
            ),
            (
                Unit::Bytes,
                "-1",
                Err("`-1` is not a number of bytes (with K, M, G or T) or `unlimited`"),
            ),
            (
                Unit::Bytes,
                "99999999T",
                Err("`99999999T` is too large; use `unlimited`"),
            ),
        ] {
            assert_eq!(
                parse_limit(unit, text),
                expected.map_err(str::to_string),
                "{text}"
            );
        }
    }

    #[test]
    fn umasks_are_octal() {
        assert_eq!(parse_umask("022"), Ok(0o22));
        assert_eq!(parse_umask("0027"), Ok(0o27));
        assert_eq!(parse_umask("7"), Ok(0o7));
        for bad in ["", "089", "0o22", "1777", "00000", "abc"] {
            assert!(parse_umask(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn nice_is_from_minus_20_to_19() {
        assert_eq!(check_nice(-20), Ok(-20));
        assert_eq!(check_nice(19), Ok(19));
        assert_eq!(
            check_nice(20),
            Err("must be from -20 to 19, not 20".to_string())
        );
    }
}
