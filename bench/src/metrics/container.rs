//! runtree as a container's PID 1 beside tini (`container`): the same three services in
//! the same image under podman (src/podman.rs builds it), runtree's init with its tree,
//! or tini running a shell that starts them.
//!
//! The services are those of tests/podman.rs: `setup` (once), then `db`, then `web`,
//! each `sh -c 'trap … TERM; echo start NAME; while :; do sleep 1; done'`. runtree runs
//! them from /service (`/sbin/init`, so podman stops it with SIGRTMIN+3); tini runs
//! `/tini-tree`, a shell that runs setup, starts db and web in the background and, on
//! the TERM tini passes on, stops web then db (`/sbin/tini -- /bin/sh /tini-tree`).
//!
//! Per round and side: the time from `podman run -d` to web's start line in `podman
//! logs -f`; then the tree's memory, read from the host's /proc (PSS and RSS of
//! smaps_rollup) over the supervising processes — init, svdir, the runsvs and their
//! keepers for runtree; tini and its shell for tini — the services themselves left out;
//! then how long `podman stop` takes. Needs root, podman, busybox-static and tini's
//! static build (`apt-get install podman runc busybox-static tini`); otherwise every
//! cell is n/a with the reason.

use crate::interleave::{interleave, millis, Cells, Order, Turn};
use crate::options::Metric;
use crate::table::{Column, Goal, Row};
use runtree::podman::{self, BuildError, Container, Engine};
use std::path::Path;
use std::time::{Duration, Instant};

const TINI: &str = "/usr/bin/tini-static";

/// The launcher tini runs: the same services, in the same order.
const TINI_TREE: &str = r#"#!/bin/sh
# What /service holds, started by hand: setup once, then db and web.
sh -c 'echo start setup'
sh -c 'trap "echo stop db; exit 0" TERM; echo start db; while :; do sleep 1; done' &
db=$!
sh -c 'trap "echo stop web; exit 0" TERM; echo start web; while :; do sleep 1; done' &
web=$!
trap 'kill $web; wait $web; kill $db; wait $db; exit 0' TERM INT
while :; do wait; done
"#;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Side {
    Runtree,
    Tini,
}

impl Side {
    fn column(self) -> Column {
        match self {
            Side::Runtree => Column::Runtree,
            Side::Tini => Column::Tini,
        }
    }

    fn command(self) -> &'static [&'static str] {
        match self {
            Side::Runtree => &["/sbin/init"],
            Side::Tini => &["/sbin/tini", "--", "/bin/sh", "/tini-tree"],
        }
    }

    /// Whether a process of the container is part of the supervision.
    fn supervises(self, comm: &str, cmdline: &str) -> bool {
        match self {
            Side::Runtree => comm == "init" || comm == "svdir" || comm.starts_with("runsv"),
            Side::Tini => comm == "tini" || cmdline.contains("/tini-tree"),
        }
    }
}

fn populate(root: &Path) -> Result<(), String> {
    let longrun = |name: &str, after: &str| {
        podman::service(
            root,
            name,
            &format!(
                "exec: sh -c 'trap \"echo stop {name}; exit 0\" TERM; echo start {name}; while :; do sleep 1; done'\nlog: console\n{after}"
            ),
        )
    };
    podman::service(
        root,
        "setup",
        "exec: sh -c 'echo start setup'\noneshot: true\nlog: console\n",
    )?;
    longrun("db", "after: [setup]\n")?;
    longrun("web", "after: [db]\n")?;
    std::fs::copy(TINI, root.join("sbin/tini")).map_err(|e| format!("{TINI}: {e}"))?;
    std::fs::write(root.join("tini-tree"), TINI_TREE).map_err(|e| e.to_string())
}

/// The image, or why there is none.
fn engine() -> Result<Engine, String> {
    if !Path::new(TINI).exists() {
        return Err(format!("no {TINI} (apt-get install tini)"));
    }
    match podman::build("bench", populate) {
        Ok(engine) => Ok(engine),
        Err(BuildError::Unavailable(reason)) => Err(reason),
        Err(BuildError::Failed(reason)) => Err(format!("cannot build the image: {reason}")),
    }
}

/// PSS and RSS (KiB) of `pid` from /proc/PID/smaps_rollup.
fn memory(pid: nix::unistd::Pid) -> Option<(f64, f64)> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/smaps_rollup")).ok()?;
    let field = |name: &str| {
        text.lines()
            .find_map(|line| line.strip_prefix(name))
            .and_then(|rest| {
                rest.trim()
                    .trim_end_matches("kB")
                    .trim()
                    .parse::<f64>()
                    .ok()
            })
    };
    Some((field("Pss:")?, field("Rss:")?))
}

/// The supervising processes under the container's PID 1 (`pid` on the host): their
/// PSS and RSS summed, and how many there are.
fn tree_memory(side: Side, pid: nix::unistd::Pid) -> Result<(f64, f64, usize), String> {
    let mut pending = vec![pid];
    let (mut pss, mut rss, mut count) = (0.0, 0.0, 0);
    while let Some(pid) = pending.pop() {
        let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default();
        let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
        let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
        if side.supervises(comm.trim(), &cmdline) {
            let (p, r) =
                memory(pid).ok_or_else(|| format!("cannot read /proc/{pid}/smaps_rollup"))?;
            pss += p;
            rss += r;
            count += 1;
        }
        pending.extend(runtree::ns::children(pid).into_iter().map(|p| p.pid));
    }
    if count == 0 {
        return Err("no supervising process found".into());
    }
    Ok((pss, rss, count))
}

/// One container's life: up, memory, stop.
fn turn(engine: &Engine, side: Side, round: usize) -> Vec<Result<Turn, String>> {
    let fail = |reason: String| (0..4).map(|_| Err(reason.clone())).collect();
    let label = format!("bench-{side:?}-{round}").to_lowercase();
    let started = Instant::now();
    let mut container = match Container::run(engine, &label, &[], side.command()) {
        Ok(container) => container,
        Err(reason) => return fail(reason),
    };
    if !container.wait_line("start web", Duration::from_secs(60)) {
        return fail(format!(
            "web never started within 60 s:\n{}",
            container.seen.join("\n")
        ));
    }
    let up = millis(started.elapsed());
    // Settled: whatever starting allocated and freed is back where it stays.
    std::thread::sleep(Duration::from_millis(500));
    let Some(pid) = container.host_pid() else {
        return fail("no pid for the container".into());
    };
    let memory = tree_memory(side, pid);
    let stop = container.stop();
    let code = container.exit_code();
    let stopped = match stop {
        Ok(took) if code == 0 => Ok(Turn::from(millis(took))),
        Ok(took) => Ok(Turn {
            value: millis(took),
            warning: Some(format!("exit status {code} after podman stop")),
        }),
        Err(reason) => Err(reason),
    };
    let (pss, rss) = match memory {
        Ok((pss, rss, _)) => (Ok(Turn::from(pss)), Ok(Turn::from(rss))),
        Err(reason) => (Err(reason.clone()), Err(reason)),
    };
    vec![Ok(Turn::from(up)), stopped, pss, rss]
}

pub fn rows(quick: bool) -> Vec<(Metric, Row)> {
    crate::progress("measuring runtree and tini as a container's PID 1 (podman)");
    let rounds = if quick { 2 } else { 6 };
    let outputs = 4;
    let sides = [Side::Runtree, Side::Tini];
    let cells: Cells<Side> = match engine() {
        Ok(engine) => {
            let mut round = 0;
            let (cells, _) = interleave(
                &sides,
                rounds,
                outputs,
                Order::Rotate,
                |_| Ok(()),
                |side, ()| {
                    round += 1;
                    turn(&engine, side, round)
                },
            );
            cells
        }
        Err(reason) => (0..outputs)
            .map(|_| sides.iter().map(|&s| (s, Err(reason.clone()))).collect())
            .collect(),
    };
    let titles: [(&str, &str, Goal); 4] = [
        (
            "container: podman run → all 3 services up",
            "ms",
            Goal::Information,
        ),
        ("container: podman stop", "ms", Goal::AtMost(5000.0)),
        (
            "container: tree memory, PSS (init+svdir+runsvs+keepers | tini+sh)",
            "KiB",
            Goal::Information,
        ),
        ("container: tree memory, RSS", "KiB", Goal::Information),
    ];
    cells
        .into_iter()
        .zip(titles)
        .map(|(cells, (title, unit, goal))| {
            let mut row = Row::new(title.into(), unit, goal);
            row.cells = cells.into_iter().map(|(s, c)| (s.column(), c)).collect();
            (Metric::Container, row)
        })
        .collect()
}
