//! svdir: runs one runsv per entry of a scan directory — `svdir [DIR]`, runtree's
//! runsvdir. Event-driven: a signalfd, an inotify instance and the sync FIFO in one
//! poll(2); no timer runs while nothing is pending. See docs/svdir.md.
//!
//! Exit status: 0 when a stop (SIGTERM, SIGINT, SIGHUP) ended with every service
//! stopped cleanly, 1 when one ended in error or had to be killed, 100 for a usage
//! error, 111 for a fatal error at start-up (DIR unusable, runsv not found, another
//! svdir on the same directory).

/// One line on stderr, `svdir: …`, written at once; a broken stderr is no reason to die.
macro_rules! say {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let line = format!("svdir: {}\n", format_args!($($arg)*));
        let _ = std::io::stderr().write_all(line.as_bytes());
    }};
}

mod backoff;
mod chain;
mod deps;
mod locks;
mod offspring;
mod order;
mod place;
mod priority;
mod publish;
mod scan;
mod scanner;
mod spawn;
mod sync;

use std::path::PathBuf;
use std::process::exit;
use std::time::Duration;

const DEFAULT_DIR: &str = "/service";
pub(crate) const DEFAULT_STOP_DEADLINE: Duration = Duration::from_secs(90);
const USAGE: &str = "usage: svdir [-P] [DIR [LOG]]";

/// runit's wording for an OS error, the error's own text otherwise.
pub fn describe(error: &std::io::Error) -> String {
    match error.raw_os_error() {
        Some(errno) => runsv::errno_text::runit_text(errno).to_string(),
        None => error.to_string(),
    }
}

fn main() {
    let mut dir = None;
    let mut positional = 0;
    for argument in std::env::args_os().skip(1) {
        match argument.to_str() {
            Some("-h") | Some("--help") => {
                use std::io::Write as _;
                let _ = writeln!(
                    std::io::stdout(),
                    "{USAGE}\nRuns one runsv per service directory in DIR (default {DEFAULT_DIR}); \
                     SIGTERM stops every service in dependency order, then exits."
                );
                exit(0);
            }
            // runsvdir's -P (a session per runsv) is accepted: runsv already gives each
            // service a session of its own.
            Some("-P") => {}
            Some(option) if option.starts_with('-') && option.len() > 1 => {
                eprintln_usage(&format!("unknown option {option}"));
            }
            _ => {
                // runsvdir's second argument (the readproctitle log) is accepted and
                // ignored: messages go to stderr.
                if positional == 0 {
                    dir = Some(PathBuf::from(argument));
                }
                positional += 1;
                if positional > 2 {
                    eprintln_usage("too many arguments");
                }
            }
        }
    }
    let dir = dir.unwrap_or_else(|| PathBuf::from(DEFAULT_DIR));
    let dir = match std::path::absolute(&dir) {
        Ok(dir) => dir,
        Err(error) => {
            say!(
                "fatal: unable to use {}: {}",
                dir.display(),
                describe(&error)
            );
            exit(111);
        }
    };
    // Every runsv, and so every service, finds its siblings through SVDIR as through
    // runit's compiled-in default (Debian's scripts call `sv d NAME` without SVDIR).
    // (Set while svdir has one thread, before anything reads the environment.)
    std::env::set_var("SVDIR", &dir);
    // A runsv whose service fails with `on_failure: stop` and no runtree init above
    // stops the tree through its parent, svdir, which it recognises by this.
    std::env::set_var(
        runsv::failure::SVDIR_VARIABLE,
        std::process::id().to_string(),
    );
    if let Some(problem) = runsv::failure::tree_default_problem() {
        say!("warning: {problem}");
    }
    // Every runsv and service inherits this output: see runsv::shared_output.
    runsv::shared_output::append_to_files();
    priority::raise_tree_weight();
    priority::join_cgroup();
    let options = scanner::Options {
        dir,
        stop_deadline: stop_deadline(),
    };
    let code = scanner::run(options);
    publish::withdraw();
    exit(code);
}

fn eprintln_usage(problem: &str) -> ! {
    say!("{problem}");
    say!("{USAGE}");
    exit(100);
}

/// `RUNTREE_STOP_DEADLINE`: seconds as every setting of the tree takes them
/// (`runsv::duration::parse`); 90 s otherwise.
fn stop_deadline() -> Duration {
    let Some(value) = std::env::var_os("RUNTREE_STOP_DEADLINE") else {
        return DEFAULT_STOP_DEADLINE;
    };
    // Clamped rather than refused: a deadline of 30 years is as good as none.
    match runsv::duration::parse(&value.to_string_lossy()) {
        Some(deadline) => deadline.min(Duration::from_secs(1_000_000_000)),
        None => {
            say!(
                "warning: RUNTREE_STOP_DEADLINE={}: not a number of seconds; using {}s",
                value.to_string_lossy(),
                DEFAULT_STOP_DEADLINE.as_secs()
            );
            DEFAULT_STOP_DEADLINE
        }
    }
}
