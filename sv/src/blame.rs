//! `sv blame [--json] [SERVICE...]`: where the boot time went. For each service (all
//! of SVDIR by default), when its current `run` was spawned, exec'd and became ready
//! (`running`, or `ok` for a oneshot), in seconds since boot, from its
//! `supervise/times` (runsv::boot_times, CLOCK_BOOTTIME: 0 is the kernel's start);
//! then the critical path: from the service that became ready last, back through its
//! `after:` list, each time to the dependency that became ready last, which is the one
//! it waited for. What `systemd-analyze blame` and `critical-chain` give.
//!
//! Exit status 0, or 1 when no service has times (none started by a runsv that
//! records them). The service list is sorted by ready time, those not ready last. The
//! first line says when svdir (started by init first thing) started.

use crate::json;
use runsv::boot_times::Times;
use runsv::supervise::SuperviseDir;
use std::ffi::{OsStr, OsString};
use std::io::Write;
use std::path::Path;
use std::time::Duration;

#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    pub name: String,
    pub times: Option<Times>,
    pub after: Vec<String>,
}

fn ready(row: &Row) -> Option<Duration> {
    row.times.and_then(|t| t.ready)
}

/// The chain that ended last, first link first: the last service to become ready, and
/// before it, each time, the dependency of its `after:` that became ready last.
/// A cycle in `after:` cannot loop: a service already in the chain ends it.
pub fn critical_path(rows: &[Row]) -> Vec<String> {
    let find = |name: &str| rows.iter().find(|r| r.name == name);
    let Some(mut current) = rows
        .iter()
        .filter(|r| ready(r).is_some())
        .max_by_key(|r| ready(r))
    else {
        return Vec::new();
    };
    let mut chain = vec![current.name.clone()];
    loop {
        let previous = current
            .after
            .iter()
            .filter_map(|name| find(name))
            .filter(|r| ready(r).is_some() && !chain.contains(&r.name))
            .max_by_key(|r| ready(r));
        match previous {
            Some(row) => {
                chain.push(row.name.clone());
                current = row;
            }
            None => break,
        }
    }
    chain.reverse();
    chain
}

/// Seconds with millisecond precision, or `-`.
fn text(time: Option<Duration>) -> String {
    time.map(|t| format!("{:.3}s", t.as_secs_f64()))
        .unwrap_or_else(|| "-".into())
}

fn number(time: Option<Duration>) -> String {
    time.map(|t| format!("{:.6}", t.as_secs_f64()))
        .unwrap_or_else(|| "null".into())
}

fn sorted(rows: &[Row]) -> Vec<&Row> {
    let mut rows: Vec<&Row> = rows.iter().collect();
    rows.sort_by_key(|r| (ready(r).is_none(), ready(r), r.name.clone()));
    rows
}

pub fn render_text(rows: &[Row], tree_start: Option<Duration>) -> String {
    let mut out = String::new();
    if let Some(start) = tree_start {
        out.push_str(&format!(
            "svdir started {} after the kernel\n",
            text(Some(start))
        ));
    }
    let width = rows.iter().map(|r| r.name.len()).max().unwrap_or(0).max(7);
    out.push_str(&format!(
        "{:<width$} {:>10} {:>10} {:>10} {:>12}\n",
        "service", "spawn", "exec", "ready", "spawn→ready"
    ));
    for row in sorted(rows) {
        let t = row.times.unwrap_or_default();
        let took = match (t.spawn, t.ready) {
            (Some(s), Some(r)) => Some(r.saturating_sub(s)),
            _ => None,
        };
        out.push_str(&format!(
            "{:<width$} {:>10} {:>10} {:>10} {:>12}\n",
            row.name,
            text(t.spawn),
            text(t.exec),
            text(t.ready),
            text(took)
        ));
    }
    let chain = critical_path(rows);
    if !chain.is_empty() {
        out.push_str("critical path (ready at, +time since spawn):\n");
        for name in &chain {
            if let Some(row) = rows.iter().find(|r| &r.name == name) {
                let t = row.times.unwrap_or_default();
                let took = t.ready.zip(t.spawn).map(|(r, s)| r.saturating_sub(s));
                out.push_str(&format!(
                    "  {:>10} {name} (+{})\n",
                    text(t.ready),
                    text(took)
                ));
            }
        }
    }
    out
}

pub fn render_json(rows: &[Row], tree_start: Option<Duration>) -> String {
    let services: Vec<String> = sorted(rows)
        .into_iter()
        .map(|row| {
            let t = row.times.unwrap_or_default();
            let after: Vec<String> = row.after.iter().map(|a| json::string(a)).collect();
            format!(
                "{{\"name\":{},\"pid\":{},\"spawn\":{},\"exec\":{},\"ready\":{},\"after\":[{}]}}",
                json::string(&row.name),
                t.pid,
                number(t.spawn),
                number(t.exec),
                number(t.ready),
                after.join(",")
            )
        })
        .collect();
    let chain: Vec<String> = critical_path(rows)
        .iter()
        .map(|n| json::string(n))
        .collect();
    format!(
        "{{\"clock\":\"CLOCK_BOOTTIME\",\"svdir_start\":{},\"services\":[{}],\"critical_path\":[{}]}}\n",
        number(tree_start),
        services.join(","),
        chain.join(",")
    )
}

fn ticks_to_time(ticks: u64) -> Option<Duration> {
    let per_second = nix::unistd::sysconf(nix::unistd::SysconfVar::CLK_TCK)
        .ok()
        .flatten()
        .filter(|&t| t > 0)?;
    Some(Duration::from_secs_f64(ticks as f64 / per_second as f64))
}

/// When the tree began, since boot: the start of the oldest svdir that is PID 1's
/// child (init starts it first thing). Not PID 1's own start time: behind an initrd,
/// PID 1 started as the initrd's /init, and an exec keeps the start time.
fn tree_start() -> Option<Duration> {
    let ticks = runsv::proc::pids()
        .into_iter()
        .filter(|&pid| {
            std::fs::read_to_string(format!("/proc/{pid}/comm")).is_ok_and(|c| c.trim() == "svdir")
        })
        .filter_map(runsv::proc::stat)
        .filter(|stat| stat.ppid == 1)
        .map(|stat| stat.starttime)
        .min()?;
    ticks_to_time(ticks)
}

pub fn main(args: &[OsString], svdir: &OsStr) -> i32 {
    let json = args.iter().any(|a| a == "--json");
    let named: Vec<OsString> = args.iter().filter(|a| *a != "--json").cloned().collect();
    let Ok(names) = crate::service::named_or_all(&named, svdir) else {
        return 100;
    };
    let scan = Path::new(svdir);
    let rows: Vec<Row> = names
        .iter()
        .map(|name| {
            let path = crate::service::resolve(name, svdir);
            let text_name = name.to_string_lossy().into_owned();
            Row {
                times: Times::read(&SuperviseDir::of_service(&path)),
                after: runsv::dependencies::after_of(scan, &text_name).unwrap_or_default(),
                name: text_name,
            }
        })
        .collect();
    let rendered = if json {
        render_json(&rows, tree_start())
    } else {
        render_text(&rows, tree_start())
    };
    let mut stdout = std::io::stdout().lock();
    if stdout.write_all(rendered.as_bytes()).is_err() {
        return 1;
    }
    if rows.iter().all(|r| r.times.is_none()) {
        eprintln!("no service has supervise/times (not started by this runsv?)");
        return 1;
    }
    0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(name: &str, spawn: u64, ready: Option<u64>, after: &[&str]) -> Row {
        let ms = Duration::from_millis;
        Row {
            name: name.into(),
            times: Some(Times {
                pid: 10,
                spawn: Some(ms(spawn)),
                exec: Some(ms(spawn + 1)),
                ready: ready.map(ms),
            }),
            after: after.iter().map(|s| s.to_string()).collect(),
        }
    }

    fn boot() -> Vec<Row> {
        vec![
            row("root-rw", 100, Some(300), &[]),
            row("udevd", 110, Some(900), &["root-rw"]),
            row("hostname", 105, Some(200), &[]),
            row("trigger", 900, Some(2500), &["udevd", "hostname"]),
            row("sshd", 310, Some(1200), &["root-rw"]),
            row("getty", 2500, Some(2600), &["trigger", "hostname"]),
            row("broken", 100, None, &["getty"]),
            Row {
                name: "never".into(),
                times: None,
                after: vec![],
            },
        ]
    }

    #[test]
    fn the_critical_path_follows_the_dependency_ready_last() {
        assert_eq!(
            critical_path(&boot()),
            ["root-rw", "udevd", "trigger", "getty"]
        );
        assert!(critical_path(&[]).is_empty());
        // A cycle ends the chain instead of looping.
        let cycle = vec![row("a", 0, Some(10), &["b"]), row("b", 0, Some(5), &["a"])];
        assert_eq!(critical_path(&cycle), ["b", "a"]);
    }

    #[test]
    fn text_sorted_by_ready_time_with_the_path() {
        let text = render_text(&boot(), Some(Duration::from_millis(50)));
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[0], "svdir started 0.050s after the kernel");
        assert!(lines[1].starts_with("service "), "{text}");
        let order: Vec<&str> = lines[2..10]
            .iter()
            .map(|l| l.split_whitespace().next().unwrap())
            .collect();
        assert_eq!(
            order,
            ["hostname", "root-rw", "udevd", "sshd", "trigger", "getty", "broken", "never"]
        );
        assert_eq!(
            lines[3].split_whitespace().collect::<Vec<_>>(),
            ["root-rw", "0.100s", "0.101s", "0.300s", "0.200s"]
        );
        assert_eq!(
            lines[9].split_whitespace().collect::<Vec<_>>(),
            ["never", "-", "-", "-", "-"]
        );
        assert_eq!(lines[10], "critical path (ready at, +time since spawn):");
        assert_eq!(lines[11].trim(), "0.300s root-rw (+0.200s)");
        assert_eq!(lines[14].trim(), "2.600s getty (+0.100s)");
    }

    #[test]
    fn json_has_every_service_and_the_path() {
        let text = render_json(&boot()[..2], None);
        assert_eq!(
            text,
            "{\"clock\":\"CLOCK_BOOTTIME\",\"svdir_start\":null,\"services\":[\
             {\"name\":\"root-rw\",\"pid\":10,\"spawn\":0.100000,\"exec\":0.101000,\"ready\":0.300000,\"after\":[]},\
             {\"name\":\"udevd\",\"pid\":10,\"spawn\":0.110000,\"exec\":0.111000,\"ready\":0.900000,\"after\":[\"root-rw\"]}],\
             \"critical_path\":[\"root-rw\",\"udevd\"]}\n"
        );
    }
}
