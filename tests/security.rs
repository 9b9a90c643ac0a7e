//! Security of a supervised tree, end to end with the real binaries (docs/supervise.md,
//! "Permissions and safety"):
//! - supervise/ and its FIFOs and lock have runit's modes whatever runsv's umask, and an
//!   owner's wider permissions on an existing supervise/ are kept (runit's FAQ);
//! - another user is refused control of root's service, with runit's sv's words;
//! - a service with `user`/`group` runs with exactly those ids, no capability and no fd
//!   of runsv's (`run`, `finish` and the readiness `test` alike), and a switch that
//!   fails means the program is never run;
//! - nothing planted in supervise/ (a symlink, a file owned by another user) redirects
//!   a write of runsv's or makes it stop a process that is not its service's.
//!
//! Tests that switch users need root and util-linux's setpriv; without root they print
//! SKIPPED and pass.

use runtree::service::script_service;
use runtree::yaml_service;
use runtree::{alive, binary, full_state, run, wait_for, wait_state, write_script, Guard};
use runtree::{control, runsv, supervised, FullState, ServiceState, WAIT};
use std::collections::BTreeSet;
use std::fs;
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

const NOBODY: u32 = 65534;
const RUNIT_SV: &str = "/usr/bin/sv";

/// Whether the test can switch users; says why not when it cannot (in CI, which runs
/// as root with util-linux installed, a missing setpriv fails the test instead).
fn can_switch_users() -> bool {
    if !nix::unistd::geteuid().is_root() {
        eprintln!("SKIPPED: needs root to run programs as other users");
        return false;
    }
    let setpriv = Command::new("setpriv").arg("--version").output().is_ok();
    runtree::prerequisite(setpriv, "setpriv (util-linux) is not installed", ".ci/run")
}

/// `program args…` as nobody, without root's groups.
fn as_nobody(program: &Path) -> Command {
    let mut command = Command::new("setpriv");
    command
        .args(["--reuid=65534", "--regid=65534", "--clear-groups"])
        .arg(program);
    command
}

/// A temporary directory other users may enter (tempfile makes it 0700).
fn shared_tempdir() -> tempfile::TempDir {
    let root = tempfile::tempdir().unwrap();
    fs::set_permissions(root.path(), fs::Permissions::from_mode(0o755)).unwrap();
    root
}

fn runit_service(root: &Path, name: &str) -> PathBuf {
    let dir = root.join(name);
    write_script(&dir.join("run"), "#!/bin/sh\nexec sleep 1000\n");
    dir
}

fn wait_in(service: &Path, state: ServiceState) -> FullState {
    wait_state(service, WAIT, |s| s.state == state).unwrap_or_else(|| {
        panic!(
            "{} never {state}: {:?}",
            service.display(),
            full_state(service)
        )
    })
}

fn mode(path: &Path) -> u32 {
    fs::symlink_metadata(path).unwrap().mode() & 0o7777
}

/// The `Key:\tvalue` lines of /proc/PID/status.
fn proc_status(pid: u32, key: &str) -> String {
    let status = fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|line| line.strip_prefix(key)?.strip_prefix(":"))
        .unwrap_or_else(|| panic!("no {key} in /proc/{pid}/status"))
        .trim()
        .to_string()
}

/// The fd numbers a process has open.
fn open_fds(pid: u32) -> Vec<i32> {
    let mut fds: Vec<i32> = fs::read_dir(format!("/proc/{pid}/fd"))
        .unwrap()
        .map(|entry| {
            entry
                .unwrap()
                .file_name()
                .to_str()
                .unwrap()
                .parse()
                .unwrap()
        })
        .collect();
    fds.sort();
    fds
}

fn cmdline(pid: u32) -> String {
    fs::read(format!("/proc/{pid}/cmdline"))
        .map(|bytes| String::from_utf8_lossy(&bytes).replace('\0', " "))
        .unwrap_or_default()
}

/// Waits until a child of `parent` runs `command` (`sleep 61 `, as in cmdline);
/// its pid.
fn wait_child_running(parent: u32, command: &str) -> u32 {
    let parent_of = |pid: u32| runsv::proc::stat(pid).map(|stat| stat.ppid);
    let mut found = None;
    // /proc has no inotify events: wait_for's periodic check is what sees it.
    wait_for(&[], WAIT, || {
        found = runsv::proc::pids()
            .into_iter()
            .find(|&pid| parent_of(pid) == Some(parent) && cmdline(pid) == command);
        found.is_some()
    });
    found.unwrap_or_else(|| panic!("no child of {parent} runs `{command}`"))
}

#[test]
fn supervise_has_runits_modes_whatever_runsvs_umask_and_the_service_gets_the_umask_back() {
    let root = tempfile::tempdir().unwrap();
    let service = runit_service(root.path(), "a");
    write_script(&service.join("log/run"), "#!/bin/sh\nexec cat >/dev/null\n");
    // A umask that would leave the owner unable to enter a 0700 directory it made.
    let mut command = Command::new("sh");
    command
        .args(["-c", "umask 0277; exec \"$0\" \"$1\""])
        .arg(binary("runsv"))
        .arg(&service);
    let _runsv = supervised(&mut command, &service);
    let pid = runtree::wait_running(&service, WAIT);
    runtree::wait_running(&service.join("log"), WAIT);
    for supervise in [service.join("supervise"), service.join("log/supervise")] {
        assert_eq!(mode(&supervise), 0o700, "{}", supervise.display());
        for (name, expected) in [
            ("control", 0o600),
            ("ok", 0o600),
            ("lock", 0o600),
            ("pid", 0o644),
            ("stat", 0o644),
            ("status", 0o644),
            ("state", 0o644),
            ("times", 0o644),
        ] {
            let path = supervise.join(name);
            assert_eq!(mode(&path), expected, "{}", path.display());
            let fifo = fs::symlink_metadata(&path).unwrap().file_type().is_fifo();
            assert_eq!(
                fifo,
                name == "control" || name == "ok",
                "{}",
                path.display()
            );
        }
    }
    assert_eq!(proc_status(pid, "Umask"), "0277");
}

#[test]
fn an_existing_supervise_keeps_the_permissions_its_owner_gave_it() {
    runtree::skip_unless!(can_switch_users());
    // runit's FAQ lets a user control a service this way: `chmod 755 supervise` and
    // `chown USER supervise/ok supervise/control`. runsv leaves both as they are.
    let root = shared_tempdir();
    let service = runit_service(root.path(), "a");
    let supervise = service.join("supervise");
    fs::create_dir(&supervise).unwrap();
    fs::set_permissions(&supervise, fs::Permissions::from_mode(0o755)).unwrap();
    for fifo in ["ok", "control"] {
        let path = supervise.join(fifo);
        nix::unistd::mkfifo(&path, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
        std::os::unix::fs::chown(&path, Some(NOBODY), None).unwrap();
    }
    let _runsv = runsv(&service);
    runtree::wait_running(&service, WAIT);
    assert_eq!(mode(&supervise), 0o755);
    for fifo in ["ok", "control"] {
        let meta = fs::symlink_metadata(supervise.join(fifo)).unwrap();
        assert_eq!(
            (meta.uid(), meta.mode() & 0o7777),
            (NOBODY, 0o600),
            "{fifo}"
        );
    }
    let (code, stdout, stderr) = run(
        as_nobody(&binary("sv")).arg("down").arg(&service),
        Duration::from_secs(30),
    );
    assert_eq!((code, stdout.as_str(), stderr.as_str()), (0, "", ""));
    wait_in(&service, ServiceState::Down);
}

#[test]
fn another_user_is_refused_control_of_roots_service_with_runits_words() {
    runtree::skip_unless!(can_switch_users());
    let root = shared_tempdir();
    let service = runit_service(root.path(), "a");
    let _runsv = runsv(&service);
    let pid = runtree::wait_running(&service, WAIT);
    let refused = format!(
        "warning: {}: unable to open supervise/ok: access denied\n",
        service.display()
    );
    let runit = Path::new(RUNIT_SV).exists();
    if !runit {
        eprintln!("not compared with runit's sv: {RUNIT_SV} is not installed");
    }
    let attempt = |command: &str| {
        let ours = run(
            as_nobody(&binary("sv")).arg(command).arg(&service),
            Duration::from_secs(30),
        );
        assert_eq!(ours, (1, refused.clone(), String::new()), "sv {command}");
        if runit {
            let theirs = run(
                as_nobody(Path::new(RUNIT_SV)).arg(command).arg(&service),
                Duration::from_secs(30),
            );
            assert_eq!(ours, theirs, "runit's sv {command}");
        }
    };
    attempt("status");
    attempt("down");
    let state = full_state(&service).unwrap();
    assert_eq!((state.state, state.pid), (ServiceState::Running, pid));
    assert!(alive(pid));

    control(&service, "d");
    let down = wait_in(&service, ServiceState::Down);
    attempt("up");
    attempt("once");
    assert_eq!(full_state(&service), Some(down), "still down, untouched");
}

/// What a process started for a service with `user`/`group` must look like.
struct Expected {
    uid: u32,
    gid: u32,
    groups: BTreeSet<u32>,
    /// runsv's bounding set and NoNewPrivs, which the service keeps (see below).
    bounding: String,
    no_new_privs: String,
    fds: Vec<i32>,
}

impl Expected {
    fn check(&self, pid: u32, what: &str) {
        let ids = |id: u32| format!("{id}\t{id}\t{id}\t{id}");
        // Real, effective, saved and filesystem ids.
        assert_eq!(proc_status(pid, "Uid"), ids(self.uid), "{what}");
        assert_eq!(proc_status(pid, "Gid"), ids(self.gid), "{what}");
        let groups: BTreeSet<u32> = proc_status(pid, "Groups")
            .split_whitespace()
            .map(|g| g.parse().unwrap())
            .collect();
        assert_eq!(groups, self.groups, "{what}: supplementary groups");
        // No capability at all: not permitted or effective (setuid cleared those),
        // nor ambient, nor inheritable (which runsv clears: through a program with
        // file capabilities, it would grant them again).
        for set in ["CapInh", "CapPrm", "CapEff", "CapAmb"] {
            assert_eq!(proc_status(pid, set), "0000000000000000", "{what}: {set}");
        }
        // The bounding set only limits what an exec could grant (a setuid-root or
        // file-capability program); runsv leaves it as it is, as su and runit's chpst
        // do, and NoNewPrivs unset: such programs work in a service as they do in a
        // login session.
        assert_eq!(proc_status(pid, "CapBnd"), self.bounding, "{what}: CapBnd");
        assert_eq!(proc_status(pid, "NoNewPrivs"), self.no_new_privs, "{what}");
        assert_eq!(open_fds(pid), self.fds, "{what}: open fds");
    }
}

/// A user listed as a member of some group in /etc/group, so that its supplementary
/// groups are more than its primary one; else `daemon`. (name, uid)
fn user_with_groups() -> (String, u32) {
    let passwd = fs::read_to_string("/etc/passwd").unwrap();
    let group = fs::read_to_string("/etc/group").unwrap_or_default();
    let members: BTreeSet<&str> = group
        .lines()
        .filter_map(|line| line.split(':').nth(3))
        .flat_map(|members| members.split(','))
        .map(str::trim)
        .collect();
    let accounts: Vec<(String, u32)> = passwd
        .lines()
        .filter_map(|line| {
            let fields: Vec<&str> = line.split(':').collect();
            Some((fields.first()?.to_string(), fields.get(2)?.parse().ok()?))
        })
        .collect();
    accounts
        .iter()
        .find(|(name, uid)| *uid != 0 && members.contains(name.as_str()))
        .or_else(|| accounts.iter().find(|(name, _)| name == "daemon"))
        .cloned()
        .expect("/etc/passwd has daemon")
}

/// What initgroups(3) gives `user` with `gid` as its group: `gid` and every group that
/// lists the user as a member.
fn groups_of(user: &str, gid: u32) -> BTreeSet<u32> {
    let group = fs::read_to_string("/etc/group").unwrap_or_default();
    let mut groups: BTreeSet<u32> = group
        .lines()
        .filter_map(|line| {
            let fields: Vec<&str> = line.split(':').collect();
            let listed = fields.get(3)?.split(',').any(|m| m.trim() == user);
            listed.then(|| fields.get(2)?.parse().ok())?
        })
        .collect();
    groups.insert(gid);
    groups
}

#[test]
fn run_finish_and_test_of_a_user_service_get_its_ids_and_nothing_of_runsvs() {
    runtree::skip_unless!(can_switch_users());
    let (user, uid) = user_with_groups();
    // A group given by number, with no entry: the number is all setgid needs.
    let gid = 4242;
    let root = shared_tempdir();
    let service = yaml_service(
        root.path(),
        "app",
        &format!("exec: sleep 1000\nuser: {user}\ngroup: {gid}\ntest: ./ready\nlog: none\n"),
    );
    // Both stay long enough to be looked at (the test never passes), and not much
    // longer: should the test fail before it knows their pids, they end by themselves.
    write_script(&service.join("ready"), "#!/bin/sh\nexec sleep 61\n");
    write_script(&service.join("finish"), "#!/bin/sh\nexec sleep 62\n");
    // runsv holds an fd it inherited (not close-on-exec), besides its own.
    let mut command = Command::new("sh");
    command
        .args(["-c", "exec 7</dev/null; exec \"$0\" \"$1\""])
        .arg(binary("runsv"))
        .arg(&service);
    let mut runsv = supervised(&mut command, &service);
    let runsv_pid = runsv.pid().as_raw() as u32;
    assert!(open_fds(runsv_pid).contains(&7), "runsv inherited fd 7");
    let expected = Expected {
        uid,
        gid,
        groups: groups_of(&user, gid),
        bounding: proc_status(runsv_pid, "CapBnd"),
        no_new_privs: proc_status(runsv_pid, "NoNewPrivs"),
        fds: vec![0, 1, 2],
    };

    let starting = wait_in(&service, ServiceState::Starting);
    let run_pid = starting.pid;
    runsv.also_kill(run_pid);
    assert_eq!(cmdline(run_pid), "sleep 1000 ");
    expected.check(run_pid, "run");

    let test_pid = wait_child_running(runsv_pid, "sleep 61 ");
    runsv.also_kill(test_pid);
    expected.check(test_pid, "test");

    control(&service, "d");
    let finishing = wait_in(&service, ServiceState::Finishing);
    let finish_pid = finishing.pid;
    runsv.also_kill(finish_pid);
    assert!(
        wait_for(&[], WAIT, || cmdline(finish_pid) == "sleep 62 "),
        "finish runs: {}",
        cmdline(finish_pid)
    );
    expected.check(finish_pid, "finish");
    // runsv lets finish run to its end: end it now, not at the guard's deadline.
    let finish_group = runsv::launch::group_of(nix::unistd::Pid::from_raw(finish_pid as i32))
        .expect("finish is in a group of its own session");
    nix::sys::signal::killpg(finish_group, nix::sys::signal::Signal::SIGKILL).unwrap();
    wait_in(&service, ServiceState::Down);
}

#[test]
fn a_user_service_with_a_readiness_fd_gets_that_fd_and_no_other() {
    runtree::skip_unless!(can_switch_users());
    let root = shared_tempdir();
    let service = yaml_service(
        root.path(),
        "notify",
        "exec: sh -c 'echo ready >&5; exec sleep 1000'\nready_fd: 5\nuser: nobody\nlog: none\n",
    );
    let mut runsv = runsv(&service);
    let pid = runtree::wait_running(&service, WAIT);
    runsv.also_kill(pid);
    let expected = Expected {
        uid: NOBODY,
        gid: NOBODY,
        groups: groups_of("nobody", NOBODY),
        bounding: proc_status(runsv.pid().as_raw() as u32, "CapBnd"),
        no_new_privs: proc_status(runsv.pid().as_raw() as u32, "NoNewPrivs"),
        fds: vec![0, 1, 2, 5],
    };
    expected.check(pid, "run with ready_fd");
    let link = fs::read_link(format!("/proc/{pid}/fd/5")).unwrap();
    assert!(link.to_string_lossy().starts_with("pipe:"), "{link:?}");
}

#[test]
fn a_service_whose_user_cannot_be_taken_on_is_never_run() {
    runtree::skip_unless!(can_switch_users());
    // runsv as nobody may not become daemon: setgroups fails, and the program is not
    // run as nobody instead.
    let root = shared_tempdir();
    let service = script_service(
        root.path(),
        "app",
        "user: daemon\nlog: none\n",
        "#!/bin/sh\ntouch ran\nexec sleep 1000\n",
    );
    std::os::unix::fs::chown(&service, Some(NOBODY), Some(NOBODY)).unwrap();
    let _runsv = supervised(as_nobody(&binary("runsv")).arg(&service), &service);
    let error = wait_in(&service, ServiceState::Error);
    assert_eq!(
        error.reason,
        "unable to start ./script: setgroups for user daemon: Operation not permitted (EPERM); retrying in 1s"
    );
    assert_eq!(error.pid, 0);
    assert!(!service.join("ran").exists(), "the payload never ran");
}

/// A file with known content and mode, the target of planted symlinks.
fn victim(root: &Path) -> PathBuf {
    let victim = root.join("victim");
    fs::write(&victim, "precious\n").unwrap();
    fs::set_permissions(&victim, fs::Permissions::from_mode(0o640)).unwrap();
    victim
}

fn assert_untouched(victim: &Path) {
    assert_eq!(fs::read_to_string(victim).unwrap(), "precious\n");
    assert_eq!(mode(victim), 0o640);
}

#[test]
fn symlinks_planted_in_supervise_redirect_no_write() {
    let root = tempfile::tempdir().unwrap();
    let victim = victim(root.path());
    let elsewhere = root.path().join("created-by-runsv");
    let service = runit_service(root.path(), "a");
    let supervise = service.join("supervise");
    fs::create_dir(&supervise).unwrap();
    let plant = |name: &str, target: &Path| {
        std::os::unix::fs::symlink(target, supervise.join(name)).unwrap();
    };
    // At the temporary names runsv writes, and at a final name (which the rename
    // replaces: the link itself, not what it points to).
    plant("status.new", &victim);
    plant("state.new", &victim);
    plant("stat.new", &victim);
    plant("pid.new", &elsewhere);
    plant("times.new", &victim);
    plant("stat", &victim);

    let _runsv = runsv(&service);
    let first = runtree::wait_running(&service, WAIT);
    control(&service, "d");
    wait_in(&service, ServiceState::Down);
    control(&service, "u");
    let pid = wait_state(&service, WAIT, |s| {
        s.state == ServiceState::Running && s.pid != first
    })
    .unwrap()
    .pid;

    assert_untouched(&victim);
    assert!(
        !elsewhere.exists(),
        "no file created through a dangling link"
    );
    for name in [
        "status.new",
        "state.new",
        "stat.new",
        "pid.new",
        "times.new",
    ] {
        assert!(
            !supervise.join(name).exists(),
            "{name} was renamed into place"
        );
    }
    assert!(fs::symlink_metadata(supervise.join("stat"))
        .unwrap()
        .is_file());
    assert_eq!(fs::read_to_string(supervise.join("stat")).unwrap(), "run\n");
    assert_eq!(
        fs::read_to_string(supervise.join("pid")).unwrap(),
        format!("{pid}\n")
    );
}

#[test]
fn a_symlink_at_the_lock_or_a_fifo_is_refused_and_followed_nowhere() {
    let root = tempfile::tempdir().unwrap();
    let victim = victim(root.path());
    let elsewhere = root.path().join("created-by-runsv");
    for (index, (name, target)) in [
        ("lock", &victim),
        ("lock", &elsewhere),
        ("control", &victim),
        ("ok", &victim),
    ]
    .into_iter()
    .enumerate()
    {
        let service = root.path().join(format!("{index}-{name}"));
        write_script(
            &service.join("run"),
            "#!/bin/sh\ntouch ran\nexec sleep 1000\n",
        );
        fs::create_dir(service.join("supervise")).unwrap();
        std::os::unix::fs::symlink(target, service.join("supervise").join(name)).unwrap();
        let (code, _, stderr) = run(Command::new(binary("runsv")).arg(&service), WAIT);
        assert_eq!(
            (code, stderr),
            (
                111,
                format!(
                    "runsv {}: fatal: unable to open supervise/{name}: a symbolic link: runsv follows none in supervise/\n",
                    service.display()
                )
            )
        );
        assert_untouched(&victim);
        assert!(
            !elsewhere.exists(),
            "no file created through a dangling link"
        );
        assert!(
            !service.join("ran").exists(),
            "{name}: the service never ran"
        );
    }
    // Not a link, but not a FIFO either: never read as commands.
    let service = root.path().join("file");
    write_script(&service.join("run"), "#!/bin/sh\nexec sleep 1000\n");
    fs::create_dir(service.join("supervise")).unwrap();
    fs::write(service.join("supervise/control"), "d").unwrap();
    let (code, _, stderr) = run(Command::new(binary("runsv")).arg(&service), WAIT);
    assert_eq!(
        (code, stderr),
        (
            111,
            format!(
                "runsv {}: fatal: unable to open supervise/control: not a FIFO\n",
                service.display()
            )
        )
    );
}

#[test]
fn supervise_may_still_be_a_symlink_to_a_directory_elsewhere() {
    // runit's way for read-only service directories: supervise -> a writable place,
    // made by runsv if it does not exist yet.
    let root = tempfile::tempdir().unwrap();
    let service = runit_service(root.path(), "a");
    let store = root.path().join("store");
    fs::create_dir(&store).unwrap();
    std::os::unix::fs::symlink(store.join("a"), service.join("supervise")).unwrap();
    let _runsv = runsv(&service);
    let pid = runtree::wait_running(&service, WAIT);
    assert_eq!(mode(&store.join("a")), 0o700);
    assert_eq!(
        fs::read_to_string(store.join("a/pid")).unwrap(),
        format!("{pid}\n")
    );
}

#[test]
fn a_state_file_planted_by_another_user_or_a_link_stops_nothing() {
    runtree::skip_unless!(can_switch_users());
    // runsv stops the process a killed predecessor left running, as its state file
    // says; a state file it did not write must not name a victim for it.
    let mut victim = Guard::spawn(Command::new("sleep").arg("1000"));
    let victim_pid = victim.pid().as_raw() as u32;
    let starttime = runsv::proc::start_time(victim_pid).unwrap();
    let planted = format!(
        "state=running\nwant=up\npid={victim_pid}\nstarttime={starttime}\nsince=1.000000000\nready_since=\nlast_exit=\nrestarts=0\noneshot=0\nreason=\nstatus=\n"
    );
    let root = tempfile::tempdir().unwrap();
    let owned = runit_service(root.path(), "owned");
    fs::create_dir(owned.join("supervise")).unwrap();
    fs::write(owned.join("supervise/state"), &planted).unwrap();
    std::os::unix::fs::chown(owned.join("supervise/state"), Some(NOBODY), None).unwrap();
    let linked = runit_service(root.path(), "linked");
    fs::create_dir(linked.join("supervise")).unwrap();
    let elsewhere = root.path().join("state-elsewhere");
    fs::write(&elsewhere, &planted).unwrap();
    std::os::unix::fs::symlink(&elsewhere, linked.join("supervise/state")).unwrap();

    for service in [&owned, &linked] {
        let _runsv = runsv(service);
        let pid = runtree::wait_running(service, WAIT);
        assert_ne!(pid, victim_pid);
        assert!(alive(victim_pid), "{}: the victim lives", service.display());
    }
    assert_eq!(fs::read_to_string(&elsewhere).unwrap(), planted);
    assert_eq!(victim.child.try_wait().unwrap(), None);
}
