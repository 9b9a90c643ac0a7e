//! Reading `/proc/PID/stat`, the one parser every runtree program, the bench and the
//! tests share. With the pid, the start time names a process for good (a pid alone can
//! be reused), which is how runsv and svdir find the processes they owned.

use std::io::Read;

/// The fields of `/proc/PID/stat` runtree uses.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Stat {
    /// Field 3: `R`, `S`, `Z`, …
    pub state: char,
    pub ppid: u32,
    pub pgrp: u32,
    pub session: u32,
    /// Fields 14 and 15, in clock ticks.
    pub utime: u64,
    pub stime: u64,
    /// Field 22: when the process started, in clock ticks after boot.
    pub starttime: u64,
}

impl Stat {
    pub fn zombie(&self) -> bool {
        self.state == 'Z'
    }

    /// utime + stime, in clock ticks.
    pub fn cpu_ticks(&self) -> u64 {
        self.utime + self.stime
    }
}

/// Parses the text of a `/proc/PID/stat`.
pub fn parse_stat(text: &str) -> Option<Stat> {
    // The command name (field 2) may contain spaces and parentheses: the fields follow
    // the last ')'. `fields[0]` is field 3.
    let (_, rest) = text.rsplit_once(')')?;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    fn number<T: std::str::FromStr>(fields: &[&str], i: usize) -> Option<T> {
        fields.get(i)?.parse().ok()
    }
    Some(Stat {
        state: fields.first()?.chars().next()?,
        ppid: number(&fields, 1)?,
        pgrp: number(&fields, 2)?,
        session: number(&fields, 3)?,
        utime: number(&fields, 11)?,
        stime: number(&fields, 12)?,
        starttime: number(&fields, 19)?,
    })
}

/// The stat of a process, `None` when it is gone (or /proc is not mounted).
pub fn stat(pid: u32) -> Option<Stat> {
    // One read: the whole line is well under a page, and procfs returns it at once.
    let mut file = std::fs::File::open(format!("/proc/{pid}/stat")).ok()?;
    let mut buffer = [0u8; 1024];
    let length = file.read(&mut buffer).ok()?;
    parse_stat(std::str::from_utf8(&buffer[..length]).ok()?)
}

/// Field 22 of /proc/PID/stat: when the process started, in clock ticks after boot.
pub fn start_time(pid: u32) -> Option<u64> {
    stat(pid).map(|stat| stat.starttime)
}

/// Every pid /proc lists now (empty when /proc cannot be read).
pub fn pids() -> Vec<u32> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .filter_map(|entry| entry.ok()?.file_name().to_str()?.parse().ok())
        .collect()
}

/// Whether the process exists and is not a zombie.
pub fn alive(pid: u32) -> bool {
    stat(pid).is_some_and(|stat| !stat.zombie())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_command_name_with_spaces_and_parentheses() {
        let text = "42 (a) b (c)) S 1 42 42 0 -1 4194560 100 0 0 0 7 3 0 0 20 0 1 0 12345 \
                    1000 10 18446744073709551615 0 0 0 0 0 0 0 0 0 0 0 0 17 0 0 0 0 0 0\n";
        let stat = parse_stat(text).unwrap();
        assert_eq!(
            stat,
            Stat {
                state: 'S',
                ppid: 1,
                pgrp: 42,
                session: 42,
                utime: 7,
                stime: 3,
                starttime: 12345,
            }
        );
        assert_eq!(stat.cpu_ticks(), 10);
        assert_eq!(parse_stat("42 (cut"), None);
    }

    #[test]
    fn start_time_of_this_process() {
        let me = std::process::id();
        let first = start_time(me).expect("own start time");
        assert_eq!(start_time(me), Some(first));
        assert_eq!(start_time(u32::MAX), None);
        assert!(alive(me));
        assert!(pids().contains(&me));
        assert_eq!(stat(me).unwrap().ppid, std::os::unix::process::parent_id());
    }
}
