//! The machine the bench runs on: runtree's binaries built for it, the work directory,
//! the limits raised, and the header that describes it all.

use crate::options::{log_plan, Options, TreePlan};
use nix::libc;
use std::path::{Path, PathBuf};
use std::process::Command;

/// When started by `cargo run`, makes sure runtree's runsv, sv and svdir are built from
/// the current sources (`cargo run --bin` builds only the bench itself). A release run
/// measures the static build runtree is installed as (scripts/build-static: static,
/// non-PIE, so no dynamic loader and no relocated pages per process), in
/// target/TRIPLE/release; a debug run, the debug binaries beside the bench. Returns the
/// directory, why runtree cannot be measured at all, and why its scanner cannot, if a
/// build failed: svdir is built on its own, so that a scanner that does not compile
/// leaves the supervisor metrics measurable.
pub fn build_runtree(bin_dir: &Path) -> (PathBuf, Option<String>, Option<String>) {
    let unchanged = (bin_dir.to_path_buf(), None, None);
    let Some(cargo) = std::env::var_os("CARGO") else {
        return unchanged;
    };
    if std::env::var_os("RUNTREE_BIN_DIR").is_some() {
        return unchanged;
    }
    let Some(profile) = bin_dir.file_name().and_then(|p| p.to_str()) else {
        return unchanged;
    };
    if profile != "release" && profile != "debug" {
        return unchanged;
    }
    let triple = runtree::static_target();
    let (target_dir, built_dir) = match (profile, bin_dir.parent()) {
        ("release", Some(target_dir)) => (
            target_dir.to_path_buf(),
            target_dir.join(&triple).join("release"),
        ),
        _ => (PathBuf::new(), bin_dir.to_path_buf()),
    };
    let static_build = profile == "release" && !target_dir.as_os_str().is_empty();
    let build = |packages: &[&str]| -> Option<String> {
        let mut command = Command::new(&cargo);
        command.args(["build", "--quiet"]);
        for package in packages {
            command.args(["-p", package]);
        }
        command
            .arg("--bins")
            .arg("--manifest-path")
            .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("../Cargo.toml"));
        if profile == "release" {
            command.arg("--release");
        }
        if static_build {
            // With an explicit --target, RUSTFLAGS reach only the target's crates, not
            // build scripts and proc-macros (which cannot be static).
            command
                .args(["--target", &triple])
                .arg("--target-dir")
                .arg(&target_dir)
                .env("RUSTFLAGS", STATIC_RUSTFLAGS)
                .env_remove("CARGO_ENCODED_RUSTFLAGS");
        }
        eprintln!(
            "runtree-bench: building runtree's {} ({profile}{})…",
            packages.join(", "),
            if static_build { ", static" } else { "" }
        );
        match command.status() {
            Ok(status) if status.success() => None,
            Ok(status) => Some(format!(
                "cargo build of {} failed ({status})",
                packages.join(" and ")
            )),
            Err(e) => Some(format!("cannot run cargo: {e}")),
        }
    };
    let supervisors = build(&["runsv", "sv"]);
    let scanner = build(&["svdir"]);
    (built_dir, supervisors, scanner)
}

/// The flags of scripts/build-static.
const STATIC_RUSTFLAGS: &str = "-C target-feature=+crt-static -C relocation-model=static";

pub fn make_work_dir() -> Result<PathBuf, String> {
    let base = std::env::temp_dir();
    for attempt in 0..100 {
        let dir = base.join(format!("runtree-bench.{}.{attempt}", std::process::id()));
        match std::fs::create_dir(&dir) {
            Ok(()) => return Ok(dir),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(format!("{}: {e}", dir.display())),
        }
    }
    Err(format!("no free work directory in {}", base.display()))
}

/// How many more processes this user may start: the smallest of the kernel's pid and
/// thread limits and RLIMIT_NPROC, less what runs now.
pub fn process_headroom() -> usize {
    let read =
        |path: &str| -> Option<usize> { std::fs::read_to_string(path).ok()?.trim().parse().ok() };
    let running = std::fs::read_dir("/proc")
        .map(|entries| {
            entries
                .filter_map(Result::ok)
                .filter(|e| {
                    e.file_name()
                        .to_str()
                        .is_some_and(|n| n.parse::<u32>().is_ok())
                })
                .count()
        })
        .unwrap_or(0);
    let mut rlimit = nix::libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes one rlimit through the pointer, which lives across the
    // call.
    let nproc = if unsafe { nix::libc::getrlimit(nix::libc::RLIMIT_NPROC, &mut rlimit) } == 0 {
        usize::try_from(rlimit.rlim_cur).unwrap_or(usize::MAX)
    } else {
        usize::MAX
    };
    let limit = [
        read("/proc/sys/kernel/pid_max"),
        read("/proc/sys/kernel/threads-max"),
        Some(nproc),
    ]
    .into_iter()
    .flatten()
    .min()
    .unwrap_or(usize::MAX);
    limit.saturating_sub(running)
}

pub fn print_header(options: &Options, runtree_bin: &Path, plan: &TreePlan, raised: &[String]) {
    let command_line: Vec<String> = std::env::args().collect();
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|text| {
            text.lines()
                .find_map(|l| l.strip_prefix("model name"))
                .map(|rest| rest.trim_start_matches([' ', '\t', ':']).to_string())
        })
        .unwrap_or_else(|| "unknown CPU".into());
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    println!("runtree-bench: {}", command_line.join(" "));
    println!("machine: nproc {cores}, kernel {}, {cpu}", kernel.trim());
    println!(
        "suites: runit {}, s6 {}, daemontools {}, runtree {}",
        package_version("runit"),
        package_version("s6"),
        package_version("daemontools"),
        runtree_bin.display()
    );
    if !raised.is_empty() {
        println!(
            "soft limits raised to the hard limits: {}",
            raised.join(", ")
        );
    }
    if options.quick {
        println!(
            "--quick: 3 iterations (4 memory samples) per suite; scanners: 1 round, \
             {} services for bring-up and stop, {} s idle window, {} s sync timeout; \
             log throughput: {} lines, {} rounds: a smoke test, not a result",
            plan.fleet_size,
            plan.idle_window.as_secs(),
            plan.sync_timeout.as_secs(),
            log_plan(true).0,
            log_plan(true).1
        );
    }
    println!();
}

fn package_version(package: &str) -> String {
    Command::new("dpkg-query")
        .args(["-W", "-f", "${Version}", package])
        .output()
        .ok()
        .filter(|out| out.status.success())
        .map(|out| String::from_utf8_lossy(&out.stdout).into_owned())
        .unwrap_or_else(|| "(version unknown)".into())
}

/// Raises the soft limits on open files and processes to the hard limits: a tree of
/// 1000 services is 2000 processes, and a scanner may hold a descriptor per supervisor.
/// Returns what was raised, for the header.
pub fn raise_limits() -> Vec<String> {
    let mut raised = Vec::new();
    for (resource, name) in [
        (libc::RLIMIT_NOFILE, "open files"),
        (libc::RLIMIT_NPROC, "processes"),
    ] {
        let mut limit = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        // SAFETY: getrlimit writes one rlimit through the pointer, which lives across
        // the call.
        if unsafe { libc::getrlimit(resource, &mut limit) } != 0 || limit.rlim_cur >= limit.rlim_max
        {
            continue;
        }
        let old = limit.rlim_cur;
        limit.rlim_cur = limit.rlim_max;
        // SAFETY: setrlimit reads one rlimit through the pointer, which lives across
        // the call.
        if unsafe { libc::setrlimit(resource, &limit) } == 0 {
            let max = if limit.rlim_max == libc::RLIM_INFINITY {
                "unlimited".to_string()
            } else {
                limit.rlim_max.to_string()
            };
            raised.push(format!("{name} {old} → {max}"));
        }
    }
    raised
}
