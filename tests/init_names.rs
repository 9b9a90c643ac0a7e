//! init called as `poweroff`, `reboot`, `halt` and `shutdown` (symlinks to it, made
//! inside the namespace): each asks PID 1, which is init in a fresh PID namespace
//! (src/ns.rs), to stop everything in order; `-f` has the kernel end the
//! namespace at once. Needs root (unshare); says so and passes nothing otherwise.

use nix::sys::signal::Signal;
use runtree::ns::{root, Ns, Setup};
use std::os::unix::process::ExitStatusExt;
use std::time::Duration;

const STOP: Duration = Duration::from_secs(20);

/// A shell line that makes `$MARKERS/NAME` a symlink to init and runs it with `args`.
fn call(name: &str, args: &str) -> String {
    format!("ln -sf \"$INIT\" \"$MARKERS/{name}\"; \"$MARKERS/{name}\" {args}")
}

#[test]
fn each_name_asks_pid1_for_its_shutdown() {
    runtree::skip_unless!(root());
    for (name, args, signal, action) in [
        ("poweroff", "", "SIGUSR2", "poweroff"),
        ("reboot", "", "SIGINT", "reboot"),
        ("halt", "", "SIGUSR1", "halt"),
        ("halt", "-p", "SIGUSR2", "poweroff"),
        ("shutdown", "-r now", "SIGINT", "reboot"),
        ("shutdown", "-h now going down", "SIGUSR2", "poweroff"),
        ("shutdown", "-H +0", "SIGUSR1", "halt"),
    ] {
        let mut ns = Ns::simple(&[("STANDIN_ONSTART", &call(name, args))]);
        assert_eq!(ns.wait_exit(STOP), 0, "{name} {args}\n{}", ns.report());
        // The stand-in svdir was asked to stop, and stopped its services in order.
        assert_eq!(
            ns.marker("events").lines().collect::<Vec<_>>(),
            ["stop-begin", "stopped b", "stopped a"],
            "{name} {args}\n{}",
            ns.report()
        );
        assert!(
            ns.log().contains(&format!("{signal}: {action} requested")),
            "{name} {args}\n{}",
            ns.report()
        );
    }
}

#[test]
fn usage_errors_ask_nothing() {
    runtree::skip_unless!(root());
    let onstart = [
        call(
            "shutdown",
            "-r +5 > $MARKERS/later.out 2>&1; echo $? > $MARKERS/later.rc",
        ),
        call(
            "shutdown",
            "-r > /dev/null 2>&1; echo $? > $MARKERS/notime.rc",
        ),
        call(
            "poweroff",
            "-z > $MARKERS/bad.out 2>&1; echo $? > $MARKERS/bad.rc",
        ),
        call("reboot", "now > /dev/null 2>&1; echo $? > $MARKERS/word.rc"),
        "echo done >> $MARKERS/clients".to_string(),
    ]
    .join("\n");
    let mut ns = Ns::simple(&[("STANDIN_ONSTART", &onstart)]);
    ns.wait_lines("clients", 1, Duration::from_secs(10));
    for rc in ["later.rc", "notime.rc", "bad.rc", "word.rc"] {
        assert_eq!(ns.marker(rc).trim(), "100", "{rc}\n{}", ns.report());
    }
    assert!(
        ns.marker("later.out")
            .contains("only `now` (or +0) is supported"),
        "{}",
        ns.marker("later.out")
    );
    assert!(ns.marker("bad.out").contains("usage: poweroff"));
    assert!(!ns.log().contains("requested"), "{}", ns.report());
    ns.signal_init(Signal::SIGTERM);
    assert_eq!(ns.wait_exit(STOP), 0, "{}", ns.report());
}

/// `-f` calls reboot(2) itself. Inside a PID namespace that ends the namespace: the
/// kernel kills its init with SIGINT (power off, halt) or SIGHUP (reboot), without
/// init's ordered stop. The script checks it is not in this test's own PID namespace
/// before it calls anything: a reboot(2) there would be the machine's.
#[test]
fn minus_f_skips_init_and_has_the_kernel_end_the_namespace() {
    runtree::skip_unless!(root());
    let host = std::fs::read_link("/proc/self/ns/pid").expect("own pid namespace");
    let host = host.to_string_lossy().into_owned();
    for (name, signal) in [
        ("poweroff", Signal::SIGINT),
        ("reboot", Signal::SIGHUP),
        ("halt", Signal::SIGINT),
    ] {
        let onstart = format!(
            "[ \"$(readlink /proc/self/ns/pid)\" != \"$HOST_PIDNS\" ] || exit 1\n{}",
            call(name, "-f")
        );
        let mut ns = Ns::start(Setup {
            svdir: None,
            scandir: None,
            env: &[("STANDIN_ONSTART", &onstart), ("HOST_PIDNS", &host)],
        });
        // unshare, then timeout, pass the signal on by dying of it themselves.
        let status = ns.guard.wait_exit(STOP);
        let status = status.unwrap_or_else(|| panic!("{name} -f: no exit\n{}", ns.report()));
        assert_eq!(
            status.signal(),
            Some(signal as i32),
            "{name} -f: {status:?}\n{}",
            ns.report()
        );
        assert!(!ns.log().contains("requested"), "{}", ns.report());
        assert!(
            !ns.marker("events").contains("stop-begin"),
            "{}",
            ns.report()
        );
    }
}
