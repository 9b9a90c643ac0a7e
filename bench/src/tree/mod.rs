//! The suites as whole trees (a scanner, one supervisor per service, the services), for
//! the scanner metrics (metrics/): runit (`runsvdir`), s6 (`s6-svscan`), runtree
//! (`svdir`) and, where its peers are compared on the same thing, daemontools (`svscan`).
//! scanner.rs knows each suite's programs and files, running.rs a started tree,
//! setup.rs how a tree of plain services is laid out and brought up.
//!
//! Every tree is started the same way: the scanner on a fresh directory under the
//! bench's work directory, stdin and stdout on /dev/null, stderr to a log kept to
//! explain failures, in a process group of its own, with a `PATH` that finds that suite's
//! own supervisor first. The bench may poll (the supervisors may not); where an event
//! exists (a rewrite in `supervise/`) it is waited for with inotify, and a short poll
//! covers what inotify cannot see (an `exec`, a process exiting).
//!
//! Each tree is ended through the cleanup module: the scanner is asked to stop, then
//! SIGTERM/SIGKILL by its pid and the SIGKILL of whatever it left behind, which, the
//! bench being a child subreaper, can only be the bench's own descendants.

mod running;
mod scanner;
mod setup;

pub use running::Tree;
pub use scanner::{Definition, ScanSuite, Scanner};
pub use setup::{age, populate, probe, start_tree, wait_all_running};

use crate::interleave::{self, Cell, Turn};

/// runsvdir and svscan supervise at most 1000 entries.
pub const MAX_FLEET: usize = 1000;

/// Per output of a measurement, a cell per suite.
pub type Cells = Vec<Vec<(Scanner, Cell)>>;

/// The results of a measurement: per output, a cell per suite; and notes to print under
/// the table, attached to a suite's cell.
pub struct Measured {
    pub cells: Cells,
    pub notes: Vec<(Scanner, String)>,
}

/// The interleaving of the scanner metrics: a lane per suite (an unavailable suite gets
/// its reason), rotating. Returns the cells per output and the lanes' states.
pub fn interleave<'a, S>(
    suites: &[&'a ScanSuite],
    rounds: usize,
    outputs: usize,
    prepare: impl FnMut(&'a ScanSuite) -> Result<S, String>,
    turn: impl FnMut(&'a ScanSuite, &mut S) -> Vec<Result<Turn, String>>,
) -> (Cells, Vec<(Scanner, Option<S>)>) {
    let (cells, states) = interleave::interleave_suites(suites, rounds, outputs, prepare, turn);
    let cells = cells
        .into_iter()
        .map(|output| {
            output
                .into_iter()
                .map(|(suite, cell)| (suite.scanner, cell))
                .collect()
        })
        .collect();
    let states = states
        .into_iter()
        .map(|(suite, state)| (suite.scanner, state))
        .collect();
    (cells, states)
}
