//! A service's resource limits (service.yaml's `memory_max`, `memory_high`,
//! `cpu_weight`, `cpu_max`, `pids_max`, `io_weight`): their values, the text each key
//! takes, and writing them into the service's group before its `run` execs.
//!
//! A bound (`memory_*`, `cpu_max`, `pids_max`) that cannot be applied is an error,
//! never a silent no-op: the service does not start, and its state says which key and
//! why (no writable cgroup v2 hierarchy, or the controller is not enabled for the
//! tree). A weight (`cpu_weight`, `io_weight`) only says who goes first when the
//! machine is busy: one that cannot be applied is a warning, and the service starts (a
//! boot's device manager given a low weight must not stay down on a kernel without the
//! controller). A limit left out of the definition is reset to the kernel's default,
//! so a reconfigured service loses a removed limit.

use std::fs;
use std::path::Path;

/// The period `cpu_max` is expressed in, in microseconds (the kernel's default).
pub const CPU_PERIOD: u64 = 100_000;

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Limits {
    /// Bytes: memory.max (the OOM killer acts above it).
    pub memory_max: Option<u64>,
    /// Bytes: memory.high (reclaim and throttling above it).
    pub memory_high: Option<u64>,
    /// 1–10000: cpu.weight.
    pub cpu_weight: Option<u32>,
    /// Microseconds of CPU per CPU_PERIOD: cpu.max.
    pub cpu_max: Option<u64>,
    /// pids.max: forks beyond it fail (EAGAIN).
    pub pids_max: Option<u64>,
    /// 1–10000: io.weight.
    pub io_weight: Option<u32>,
}

/// One limit as written to its file: (key, controller, file, value, default).
type Entry = (
    &'static str,
    &'static str,
    &'static str,
    Option<String>,
    &'static str,
);

impl Limits {
    pub fn is_empty(&self) -> bool {
        *self == Limits::default()
    }

    /// The keys set, for messages: `memory_max, pids_max`.
    pub fn keys(&self) -> String {
        self.entries()
            .iter()
            .filter(|entry| entry.3.is_some())
            .map(|entry| entry.0)
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// Whether a bound is set (not only weights): what a start cannot do without.
    pub fn binds(&self) -> bool {
        self.entries()
            .iter()
            .any(|entry| entry.3.is_some() && !is_weight(entry.0))
    }

    fn entries(&self) -> [Entry; 6] {
        [
            (
                "memory_max",
                "memory",
                "memory.max",
                self.memory_max.map(|v| v.to_string()),
                "max",
            ),
            (
                "memory_high",
                "memory",
                "memory.high",
                self.memory_high.map(|v| v.to_string()),
                "max",
            ),
            (
                "cpu_weight",
                "cpu",
                "cpu.weight",
                self.cpu_weight.map(|v| v.to_string()),
                "100",
            ),
            (
                "cpu_max",
                "cpu",
                "cpu.max",
                self.cpu_max.map(|v| format!("{v} {CPU_PERIOD}")),
                "max 100000",
            ),
            (
                "pids_max",
                "pids",
                "pids.max",
                self.pids_max.map(|v| v.to_string()),
                "max",
            ),
            (
                "io_weight",
                "io",
                "io.weight",
                self.io_weight.map(|v| format!("default {v}")),
                "default 100",
            ),
        ]
    }

    /// Writes every limit into the group at `group`; those not set get the kernel's
    /// default back (where the controller is on). The first bound that fails is the
    /// error; weights that fail are returned as warnings.
    pub fn apply(&self, group: &Path) -> Result<Vec<String>, String> {
        let mut warnings = Vec::new();
        for (key, controller, file, value, default) in self.entries() {
            let path = group.join(file);
            match value {
                // Never created: a missing file is a controller that is not enabled.
                Some(value) => match write_existing(&path, &value).map_err(|error| {
                    let enabled = group
                        .parent()
                        .and_then(|tree| {
                            fs::read_to_string(tree.join("cgroup.subtree_control")).ok()
                        })
                        .unwrap_or_default();
                    if !path.exists() {
                        format!(
                            "{key}: the {controller} controller is not enabled for {} \
                             (enabled: {})",
                            group.parent().unwrap_or(group).display(),
                            match enabled.trim() {
                                "" => "none",
                                list => list,
                            }
                        )
                    } else {
                        format!(
                            "{key}: unable to write {value} to {}: {error}",
                            path.display()
                        )
                    }
                }) {
                    Err(error) if is_weight(key) => warnings.push(error),
                    result => result?,
                },
                None => {
                    let _ = write_existing(&path, default);
                }
            }
        }
        Ok(warnings)
    }
}

/// A weight orders who runs first under contention; it bounds nothing.
fn is_weight(key: &str) -> bool {
    key.ends_with("_weight")
}

fn write_existing(path: &Path, value: &str) -> std::io::Result<()> {
    use std::io::Write;
    fs::OpenOptions::new()
        .write(true)
        .open(path)?
        .write_all(value.as_bytes())
}

/// `64M`, `1.5G`, `512K`, `1048576`: bytes (K, M, G, T are powers of 1024; a trailing
/// `B` or `iB` is allowed).
pub fn parse_bytes(text: &str) -> Result<u64, String> {
    let trimmed = text.trim();
    let lower = trimmed.to_ascii_lowercase();
    let number = lower
        .strip_suffix("ib")
        .or_else(|| lower.strip_suffix('b'))
        .unwrap_or(&lower);
    let (digits, multiplier) = match number.chars().last() {
        Some('k') => (&number[..number.len() - 1], 1u64 << 10),
        Some('m') => (&number[..number.len() - 1], 1 << 20),
        Some('g') => (&number[..number.len() - 1], 1 << 30),
        Some('t') => (&number[..number.len() - 1], 1 << 40),
        _ => (number, 1),
    };
    let value: f64 = digits
        .trim()
        .parse()
        .map_err(|_| format!("`{trimmed}` is not a size (such as 64M, 1G or 1048576)"))?;
    let bytes = value * multiplier as f64;
    if !bytes.is_finite() || bytes < 4096.0 || bytes > u64::MAX as f64 {
        return Err(format!("`{trimmed}`: must be at least 4K"));
    }
    Ok(bytes as u64)
}

/// `50%` (of one CPU) or `1.5` (CPUs): microseconds per CPU_PERIOD.
pub fn parse_cpu_max(text: &str) -> Result<u64, String> {
    let trimmed = text.trim();
    let cpus = match trimmed.strip_suffix('%') {
        Some(percent) => percent.trim().parse::<f64>().map(|p| p / 100.0),
        None => trimmed.parse::<f64>(),
    }
    .map_err(|_| format!("`{trimmed}` is not a CPU share (such as 50% or 1.5 CPUs)"))?;
    let quota = cpus * CPU_PERIOD as f64;
    // The kernel's minimum quota is 1 ms.
    if !quota.is_finite() || !(1000.0..=1e12).contains(&quota) {
        return Err(format!("`{trimmed}`: must be at least 1% of a CPU"));
    }
    Ok(quota.round() as u64)
}

/// A weight from 1 to 10000 (100 is everyone's default).
pub fn parse_weight(text: &str) -> Result<u32, String> {
    match text.trim().parse::<u32>() {
        Ok(weight @ 1..=10000) => Ok(weight),
        _ => Err(format!("`{}` is not a weight from 1 to 10000", text.trim())),
    }
}

/// A number of processes (threads count too), 1 or more.
pub fn parse_count(text: &str) -> Result<u64, String> {
    match text.trim().parse::<u64>() {
        Ok(count) if count >= 1 => Ok(count),
        _ => Err(format!(
            "`{}` is not a number of processes, 1 or more",
            text.trim()
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        assert_eq!(parse_bytes("64M"), Ok(64 << 20));
        assert_eq!(parse_bytes("1.5G"), Ok(3 << 29));
        assert_eq!(parse_bytes("512KiB"), Ok(512 << 10));
        assert_eq!(parse_bytes("1048576"), Ok(1 << 20));
        assert!(parse_bytes("lots").is_err());
        assert!(parse_bytes("1").is_err());
        assert!(parse_bytes("-5M").is_err());
    }

    #[test]
    fn cpu_shares() {
        assert_eq!(parse_cpu_max("50%"), Ok(50_000));
        assert_eq!(parse_cpu_max("1.5"), Ok(150_000));
        assert!(parse_cpu_max("0.1%").is_err());
        assert!(parse_cpu_max("fast").is_err());
    }

    #[test]
    fn weights_and_counts() {
        assert_eq!(parse_weight("100"), Ok(100));
        assert!(parse_weight("0").is_err());
        assert!(parse_weight("10001").is_err());
        assert_eq!(parse_count("32"), Ok(32));
        assert!(parse_count("0").is_err());
    }

    #[test]
    fn an_unappliable_limit_names_its_key_and_controller() {
        let dir = tempfile::tempdir().unwrap();
        let group = dir.path().join("a.service");
        fs::create_dir(&group).unwrap();
        let limits = Limits {
            pids_max: Some(8),
            ..Limits::default()
        };
        let error = limits.apply(&group).unwrap_err();
        assert!(
            error.starts_with("pids_max: the pids controller is not enabled for"),
            "{error}"
        );
        assert_eq!(limits.keys(), "pids_max");
        assert!(limits.binds());
        assert_eq!(Limits::default().apply(&group), Ok(Vec::new()));
    }

    #[test]
    fn an_unappliable_weight_is_a_warning() {
        let dir = tempfile::tempdir().unwrap();
        let group = dir.path().join("a.service");
        fs::create_dir(&group).unwrap();
        let limits = Limits {
            cpu_weight: Some(10),
            io_weight: Some(50),
            ..Limits::default()
        };
        assert!(!limits.binds());
        let warnings = limits.apply(&group).unwrap();
        assert_eq!(warnings.len(), 2, "{warnings:?}");
        assert!(
            warnings[0].starts_with("cpu_weight: the cpu controller is not enabled for"),
            "{warnings:?}"
        );
    }
}
