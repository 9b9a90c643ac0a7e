//! svlogd throughput (part of `logging`): runit's svlogd and runtree's, each alone on
//! the same input: N numbered lines written by the bench into a pipe as fast as the
//! logger takes them, `-tt` timestamps, a log directory whose `config` holds `s0` (no
//! rotation). The time runs from the logger's spawn to its exit at the end of input;
//! then `current` must hold the N lines, the last one numbered N. The two loggers take
//! turns, alternating which goes first.

use crate::cleanup;
use crate::interleave::{interleave, Cell, Order};
use crate::metrics::logging::LogRun;
use crate::suite::Kind;
use nix::unistd::Pid;
use std::fs;
use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Milliseconds per million lines, runit's and runtree's.
pub fn svlogd_throughput(run: &LogRun) -> Vec<(Kind, Cell)> {
    let runit = Path::new("/usr/bin/svlogd");
    let runtree = run.runtree_bin.join("svlogd");
    let mut input = Vec::with_capacity(run.lines * 8);
    for n in 1..=run.lines {
        input.extend_from_slice(n.to_string().as_bytes());
        input.push(b'\n');
    }
    let root = run.work.join("svlogd");
    let lanes: [(usize, Kind, &Path); 2] = [(0, Kind::Runit, runit), (1, Kind::Runtree, &runtree)];
    let (mut cells, _) = interleave(
        &lanes,
        run.rounds,
        1,
        Order::Rotate,
        |(_, kind, program)| {
            if !program.exists() {
                return Err(format!("{} missing", program.display()));
            }
            match &run.runtree_unavailable {
                Some(reason) if kind == Kind::Runtree => Err(reason.clone()),
                // The lane's turns so far: each turn gets a directory of its own.
                _ => Ok(0usize),
            }
        },
        |(lane, _, program), round| {
            let dir = root.join(format!("{round}-{lane}"));
            *round += 1;
            let outcome = turn(program, &dir, &input, run.lines, run.timeout);
            let _ = fs::remove_dir_all(&dir);
            vec![outcome.map(|elapsed| {
                (elapsed.as_secs_f64() * 1000.0 * 1_000_000.0 / run.lines as f64).into()
            })]
        },
    );
    cells
        .pop()
        .unwrap_or_default()
        .into_iter()
        .map(|((_, kind, _), cell)| (kind, cell))
        .collect()
}

fn turn(
    program: &Path,
    dir: &Path,
    input: &[u8],
    lines: usize,
    timeout: Duration,
) -> Result<Duration, String> {
    let main = dir.join("main");
    fs::create_dir_all(&main).map_err(|e| format!("{}: {e}", main.display()))?;
    fs::write(main.join("config"), "s0\n").map_err(|e| format!("{}: {e}", main.display()))?;
    let start = Instant::now();
    let mut child = Command::new(program)
        .arg("-tt")
        .arg(&main)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| format!("{}: {e}", program.display()))?;
    let pid = Pid::from_raw(child.id() as i32);
    cleanup::register_supervisor(pid);
    let mut stdin = child.stdin.take().ok_or("no pipe to the logger")?;
    let written = stdin.write_all(input);
    drop(stdin);
    let deadline = start + timeout;
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break Some(status),
            Ok(None) if Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(1));
            }
            _ => break None,
        }
    };
    let elapsed = start.elapsed();
    cleanup::stop_supervisors(&[pid], Duration::from_secs(5));
    written.map_err(|e| format!("writing to {}: {e}", program.display()))?;
    match status {
        Some(status) if status.success() => {}
        Some(status) => return Err(format!("{}: {status}", program.display())),
        None => return Err(format!("not done after {} s", timeout.as_secs())),
    }
    let current = fs::read(main.join("current")).map_err(|e| format!("current: {e}"))?;
    let count = current.iter().filter(|&&b| b == b'\n').count();
    let last = current[..current.len().saturating_sub(1)]
        .rsplit(|&b| b == b' ')
        .next()
        .unwrap_or_default();
    if count != lines || last != lines.to_string().as_bytes() {
        return Err(format!("current: {count} lines where {lines} were written"));
    }
    Ok(elapsed)
}
