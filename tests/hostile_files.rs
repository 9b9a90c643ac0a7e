//! Hostile files in a service directory and in supervise/: a FIFO, a character device,
//! a socket or a huge sparse file where a program expects a small regular file. Every
//! program (runsv, sv, svdir's stop) must finish within a bound and name the file.

use runsv::supervise::SuperviseDir;
use runtree::{binary, run, wait_for, wait_state, write_script, Guard, ServiceState};
use runtree::{control, runsv, supervisor_up, WAIT};
use std::fs;
use std::os::unix::net::UnixListener;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

#[derive(Clone, Copy, Debug)]
enum Hostile {
    Fifo,
    Device,
    Socket,
    Sparse,
}

const ALL: [Hostile; 4] = [
    Hostile::Fifo,
    Hostile::Device,
    Hostile::Socket,
    Hostile::Sparse,
];

impl Hostile {
    /// Puts one at `path`; the returned listener keeps a socket bound.
    fn plant(self, path: &Path) -> Option<UnixListener> {
        let _ = fs::remove_file(path);
        match self {
            Hostile::Fifo => {
                nix::unistd::mkfifo(path, nix::sys::stat::Mode::from_bits_truncate(0o644)).unwrap();
            }
            // /dev/null's numbers: reads end at once, but it is no file to read.
            Hostile::Device => nix::sys::stat::mknod(
                path,
                nix::sys::stat::SFlag::S_IFCHR,
                nix::sys::stat::Mode::from_bits_truncate(0o644),
                nix::sys::stat::makedev(1, 3),
            )
            .unwrap(),
            Hostile::Socket => return Some(UnixListener::bind(path).unwrap()),
            Hostile::Sparse => fs::File::create(path).unwrap().set_len(1 << 40).unwrap(),
        }
        None
    }

    /// What the error message says about it.
    fn said(self) -> &'static str {
        match self {
            Hostile::Fifo => "is a FIFO, not a regular file",
            Hostile::Device => "is a character device, not a regular file",
            Hostile::Socket => "is a socket, not a regular file",
            Hostile::Sparse => "is larger than",
        }
    }
}

/// A service in `root` defined by `form` ("yaml" or "runit"), running `sleep`.
fn service(root: &Path, name: &str, form: &str) -> PathBuf {
    let dir = root.join(name);
    fs::create_dir_all(&dir).unwrap();
    if form == "yaml" {
        fs::write(dir.join("service.yaml"), "exec: sleep 1000\nlog: null\n").unwrap();
    } else {
        write_script(&dir.join("run"), "#!/bin/sh\nexec sleep 1000\n");
    }
    dir
}

/// Where a hostile file makes the definition invalid, for the form that reads it.
const DEFINITION_FILES: [(&str, &str); 3] = [
    ("service.yaml", "yaml"),
    ("finish", "runit"),
    ("notification-fd", "runit"),
];

#[test]
fn runsv_refuses_a_hostile_definition_file_naming_it_and_stays_in_control() {
    let root = tempfile::tempdir().unwrap();
    for (file, form) in DEFINITION_FILES {
        for hostile in ALL {
            if let ("finish", Hostile::Sparse) = (file, hostile) {
                continue; // a regular file, run rather than read: a fine `finish`
            }
            let name = format!("{file}-{hostile:?}");
            let dir = service(root.path(), &name, form);
            let _socket = hostile.plant(&dir.join(file));
            let mut runsv = runsv(&dir);
            let state = runtree::wait_error(&dir, WAIT);
            let named = format!("{}: ", dir.join(file).display());
            assert!(
                state.reason.contains(&named) && state.reason.contains(hostile.said()),
                "{name}: {}",
                state.reason
            );
            // sv shows it and finishes.
            let (_, stdout, _) = run(Command::new(binary("sv")).arg("status").arg(&dir), WAIT);
            assert!(stdout.contains(hostile.said()), "{name}: {stdout}");
            control(&dir, "x");
            assert!(
                runsv.wait_exit(WAIT).is_some(),
                "{name}: runsv did not exit"
            );
        }
    }
}

#[test]
fn down_log_and_check_are_never_read_and_a_state_file_left_there_never_blocks() {
    let root = tempfile::tempdir().unwrap();
    for hostile in ALL {
        // `down`: present, so normally down, whatever it is.
        let dir = service(root.path(), &format!("down-{hostile:?}"), "runit");
        let _socket = hostile.plant(&dir.join("down"));
        let _runsv = runsv(&dir);
        assert!(wait_state(&dir, WAIT, |s| s.state == ServiceState::Down).is_some());

        // `log` that is no directory: no log service (runit's rule), the service runs.
        // `check` that is no program: sv's wait is not held by it.
        // A state file a predecessor "left" that is not a file: runsv reads none.
        let dir = service(root.path(), &format!("log-{hostile:?}"), "runit");
        let _log = hostile.plant(&dir.join("log"));
        let _check = hostile.plant(&dir.join("check"));
        fs::create_dir(dir.join("supervise")).unwrap();
        let _state = hostile.plant(&dir.join("supervise/state"));
        let _runsv = runsv(&dir);
        runtree::wait_running(&dir, WAIT);
        let (code, stdout, stderr) = run(
            Command::new(binary("sv")).args(["-w", "5", "up"]).arg(&dir),
            WAIT,
        );
        assert_eq!(code, 0, "{hostile:?}: {stdout}{stderr}");
        assert!(stdout.starts_with("ok: run: "), "{hostile:?}: {stdout}");
    }
}

/// A stand-in for a live runsv: `supervise/ok` held open for reading, and the files
/// `sv` reads planted as `hostile`.
fn fake_supervisor(dir: &Path, hostile: Hostile) -> (fs::File, Vec<UnixListener>) {
    let supervise = dir.join("supervise");
    fs::create_dir_all(&supervise).unwrap();
    let reader = runsv::control::open_fifo(&supervise.join("ok"), false).unwrap();
    let sockets = ["status", "state", "tail", "pid", "stat"]
        .into_iter()
        .filter_map(|file| hostile.plant(&supervise.join(file)))
        .collect();
    (reader, sockets)
}

#[test]
fn sv_finishes_and_names_a_hostile_supervise_file() {
    let root = tempfile::tempdir().unwrap();
    for hostile in ALL {
        let dir = root.path().join(format!("{hostile:?}"));
        let _fake = fake_supervisor(&dir, hostile);
        let started = Instant::now();
        let (code, stdout, stderr) = run(Command::new(binary("sv")).arg("status").arg(&dir), WAIT);
        let output = format!("{stdout}{stderr}");
        assert_ne!(code, 0, "{hostile:?}: {output}");
        let expected = match hostile {
            Hostile::Sparse => "unable to read supervise/status: is larger than".to_string(),
            _ => format!("unable to open supervise/status: {}", hostile.said()),
        };
        assert!(output.contains(&expected), "{hostile:?}: {output}");
        for command in [&["-w", "1", "up"][..], &["log"][..]] {
            let (_, stdout, stderr) = run(Command::new(binary("sv")).args(command).arg(&dir), WAIT);
            let output = format!("{stdout}{stderr}");
            assert!(output.contains("supervise/"), "{command:?}: {output}");
        }
        assert!(started.elapsed() < WAIT);
    }
}

#[test]
fn sv_log_reads_a_bounded_amount_of_a_huge_sparse_tail() {
    let root = tempfile::tempdir().unwrap();
    let dir = service(root.path(), "a", "runit");
    let _runsv = runsv(&dir);
    runtree::wait_running(&dir, WAIT);
    // A tail header claiming a terabyte of output, over a terabyte of holes.
    let tail = dir.join("supervise/tail");
    let mut header = [0u8; 32];
    header[..16].copy_from_slice(b"runtree tail 1\n\0");
    header[24..32].copy_from_slice(&(1u64 << 40).to_le_bytes());
    fs::write(&tail, header).unwrap();
    fs::OpenOptions::new()
        .write(true)
        .open(&tail)
        .unwrap()
        .set_len(32 + (1 << 40))
        .unwrap();
    let (code, stdout, stderr) = run(Command::new(binary("sv")).arg("log").arg(&dir), WAIT);
    assert_eq!(code, 1, "{stdout}{stderr}");
    assert!(
        stderr.contains("supervise/tail is not a runtree tail"),
        "{stderr}"
    );
    let (code, stdout, _) = run(Command::new(binary("sv")).arg("status").arg(&dir), WAIT);
    assert_eq!(code, 0);
    assert!(stdout.starts_with("run: "), "{stdout}");
}

#[test]
fn svdir_starts_a_service_whose_ok_is_a_regular_file() {
    let root = tempfile::tempdir().unwrap();
    let scan = root.path().join("scan");
    let dir = service(&scan, "a", "runit");
    fs::create_dir(dir.join("supervise")).unwrap();
    fs::write(dir.join("supervise/ok"), b"").unwrap();
    let _svdir = Guard::spawn(Command::new(binary("svdir")).arg(&scan));
    runtree::wait_running(&dir, WAIT);
}

/// How long svdir takes to stop (SIGTERM, docs/svdir.md) with one runsv facing a
/// hostile file at `file`.
fn svdir_stop_time(root: &Path, file: &str, form: &str, hostile: Hostile) -> Duration {
    let scan = root.join(format!("{file}-{hostile:?}").replace('/', "-"));
    let dir = service(&scan, "a", form);
    if let Some(parent) = dir.join(file).parent() {
        fs::create_dir_all(parent).unwrap();
    }
    let _socket = hostile.plant(&dir.join(file));
    let mut command = Command::new(binary("svdir"));
    command.arg(&scan).env("RUNTREE_STOP_DEADLINE", "8");
    let mut svdir = Guard::spawn(&mut command);
    // runsv is up (or blocked before it ever comes up: bounded either way).
    let supervise = SuperviseDir::of_service(&dir);
    wait_for(&[&dir, &supervise.path], Duration::from_secs(3), || {
        supervisor_up(&dir)
    });
    let started = Instant::now();
    nix::sys::signal::kill(svdir.pid(), nix::sys::signal::Signal::SIGTERM).unwrap();
    let exited = svdir.wait_exit(Duration::from_secs(20));
    let took = started.elapsed();
    assert!(exited.is_some(), "{file} {hostile:?}: svdir never stopped");
    took
}

#[test]
fn svdir_stops_promptly_whatever_file_its_runsv_faces() {
    let root = tempfile::tempdir().unwrap();
    for (file, form) in DEFINITION_FILES
        .into_iter()
        .chain([("supervise/state", "runit")])
    {
        for hostile in ALL {
            let took = svdir_stop_time(root.path(), file, form, hostile);
            eprintln!("svdir stop, {file} {hostile:?}: {took:?}");
            assert!(
                took < Duration::from_secs(3),
                "{file} {hostile:?}: {took:?}"
            );
        }
    }
}

#[test]
fn a_supervise_link_into_another_services_supervise_is_refused_and_noticed() {
    let root = tempfile::tempdir().unwrap();
    let a = service(root.path(), "a", "runit");
    let b = service(root.path(), "b", "runit");
    let _runsv_a = runsv(&a);
    let pid_a = runtree::wait_running(&a, WAIT);
    std::os::unix::fs::symlink(a.join("supervise"), b.join("supervise")).unwrap();
    // b's runsv cannot take the lock a's holds: it says why, and runs nothing.
    let (code, _, stderr) = run(Command::new(binary("runsv")).arg(&b), WAIT);
    assert_eq!(code, 111);
    assert_eq!(
        stderr,
        format!(
            "runsv {}: fatal: unable to lock supervise/lock: temporary failure (supervise is a link to {}, which another runsv supervises)\n",
            b.display(),
            a.join("supervise").display()
        )
    );
    // sv never shows a's process as b's.
    let (code, stdout, stderr) = run(Command::new(binary("sv")).arg("status").arg(&b), WAIT);
    assert_eq!(code, 1, "{stdout}{stderr}");
    assert_eq!(
        stdout,
        format!(
            "warning: {}: supervise/ belongs to another service directory (is supervise a link?)\n",
            b.display()
        )
    );
    let (code, stdout, _) = run(Command::new(binary("sv")).arg("status").arg(&a), WAIT);
    assert_eq!(code, 0);
    assert!(stdout.contains(&format!("(pid {pid_a})")), "{stdout}");
}

#[test]
fn sv_never_opens_a_device_or_writes_a_file_at_supervise_control() {
    let root = tempfile::tempdir().unwrap();
    for hostile in [Hostile::Device, Hostile::Sparse] {
        let dir = service(root.path(), &format!("{hostile:?}"), "runit");
        let _runsv = runsv(&dir);
        runtree::wait_running(&dir, WAIT);
        let control = dir.join("supervise/control");
        hostile.plant(&control);
        let (code, stdout, _) = run(Command::new(binary("sv")).arg("down").arg(&dir), WAIT);
        assert_eq!(code, 1, "{hostile:?}: {stdout}");
        let kind = match hostile {
            Hostile::Device => "a character device",
            _ => "a regular file",
        };
        assert_eq!(
            stdout,
            format!(
                "warning: {}: unable to open supervise/control: is {kind}, not a FIFO\n",
                dir.display()
            )
        );
        if let Hostile::Sparse = hostile {
            use std::io::Read;
            let mut first = [0xffu8; 1];
            fs::File::open(&control)
                .unwrap()
                .read_exact(&mut first)
                .unwrap();
            assert_eq!(first, [0], "nothing written into the file");
        }
    }
}
