//! What the bench reads of other processes in /proc. `/proc/PID/stat` is parsed by the
//! runsv library's `proc::stat` alone.

use nix::libc;
use std::fs;

/// The library's reader of /proc/PID/stat (the one parser every program uses).
pub use runsv::proc::stat;

/// The start time of a process that is not a zombie (to tell it from a later process
/// given the same pid).
pub fn live_start_time(pid: u32) -> Option<u64> {
    stat(pid)
        .filter(|stat| stat.state != 'Z')
        .map(|stat| stat.starttime)
}

/// utime + stime of a process, in clock ticks.
pub fn cpu_ticks(pid: u32) -> Option<u64> {
    stat(pid).map(|stat| stat.utime + stat.stime)
}

/// Whether `pid` is a child of the bench.
pub fn is_my_child(pid: u32) -> bool {
    stat(pid).is_some_and(|stat| stat.ppid == std::process::id())
}

/// The child pids of `pid`, from /proc/PID/task/*/children.
pub fn children_of(pid: u32) -> Vec<u32> {
    let Ok(tasks) = fs::read_dir(format!("/proc/{pid}/task")) else {
        return Vec::new();
    };
    let mut children = Vec::new();
    for task in tasks.filter_map(Result::ok) {
        if let Ok(text) = fs::read_to_string(task.path().join("children")) {
            children.extend(
                text.split_whitespace()
                    .filter_map(|p| p.parse::<u32>().ok()),
            );
        }
    }
    children
}

pub fn last_argument(pid: u32) -> Option<String> {
    let bytes = fs::read(format!("/proc/{pid}/cmdline")).ok()?;
    bytes
        .split(|&b| b == 0)
        .rfind(|arg| !arg.is_empty())
        .map(|arg| String::from_utf8_lossy(arg).into_owned())
}

pub fn comm_is(pid: u32, name: &str) -> bool {
    fs::read_to_string(format!("/proc/{pid}/comm")).is_ok_and(|comm| comm.trim_end() == name)
}

/// Voluntary plus non-voluntary context switches of every thread of `pid`.
pub fn context_switches(pid: u32) -> Option<u64> {
    let tasks = fs::read_dir(format!("/proc/{pid}/task")).ok()?;
    let mut total = 0;
    for task in tasks.filter_map(Result::ok) {
        let Ok(text) = fs::read_to_string(task.path().join("status")) else {
            continue;
        };
        for line in text.lines() {
            if let Some(rest) = line
                .strip_prefix("voluntary_ctxt_switches:")
                .or_else(|| line.strip_prefix("nonvoluntary_ctxt_switches:"))
            {
                total += rest.trim().parse::<u64>().unwrap_or(0);
            }
        }
    }
    Some(total)
}

/// Busy clock ticks of all CPUs since boot: user, nice, system, irq and softirq of the
/// first line of /proc/stat.
pub fn machine_busy_ticks() -> Result<u64, String> {
    let stat = fs::read_to_string("/proc/stat").map_err(|e| format!("/proc/stat: {e}"))?;
    let line = stat.lines().next().unwrap_or_default();
    let fields: Vec<u64> = line
        .split_whitespace()
        .skip(1)
        .map(|f| f.parse().unwrap_or(0))
        .collect();
    // user nice system idle iowait irq softirq
    Ok([0, 1, 2, 5, 6]
        .iter()
        .map(|&i| fields.get(i).copied().unwrap_or(0))
        .sum())
}

/// Clock ticks per second (the unit of `Stat`'s times and of /proc/stat).
pub fn clock_ticks_per_second() -> f64 {
    // SAFETY: sysconf takes no pointer and has no preconditions.
    let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if ticks > 0 {
        ticks as f64
    } else {
        100.0
    }
}

#[cfg(test)]
mod tests {
    use runsv::proc::parse_stat;

    #[test]
    fn fields_are_counted_after_the_command_name() {
        let stat = "1234 (run sv) S 1 1234 1234 0 -1 4194560 100 0 0 0 7 5 0 0 20 0 1 0 \
                    99 1000 50 18446744073709551615";
        let stat = parse_stat(stat).expect("parsed");
        assert_eq!(stat.state, 'S');
        assert_eq!(stat.ppid, 1);
        assert_eq!((stat.utime, stat.stime), (7, 5));
        assert_eq!(stat.utime + stat.stime, 12);
        assert_eq!(stat.starttime, 99);
    }

    #[test]
    fn a_command_name_with_a_parenthesis() {
        let stat = "7 (a) b) Z 42 7 7 0 -1 0 0 0 0 0 1 2 0 0 20 0 1 0 5 0 0";
        let stat = parse_stat(stat).expect("parsed");
        assert_eq!((stat.state, stat.ppid, stat.starttime), ('Z', 42, 5));
    }
}
