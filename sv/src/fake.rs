//! A hand-written `supervise/` for unit tests: status and state files written like a
//! runsv would, and the `ok` FIFO held open for reading, which is all sv asks of a
//! live supervisor.

use runsv::supervise::{
    write_atomically, FullState, RunState, ServiceState, Status, SuperviseDir, Want,
};
use runsv::tai64n::Timestamp;
use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};

pub struct FakeSupervisor {
    pub dir: PathBuf,
    /// The reading end of `ok`: dropping it makes the supervisor look dead.
    ok: Option<File>,
    /// The reading end of `control`, to see what sv wrote.
    control: File,
}

impl FakeSupervisor {
    /// A live supervisor of `dir` (created), with a status and no state file.
    pub fn new(dir: &Path, status: Status) -> FakeSupervisor {
        let supervise = SuperviseDir::of_service(dir);
        std::fs::create_dir_all(&supervise.path).unwrap();
        let read = |path: PathBuf| runsv::control::open_fifo(&path, false).unwrap();
        let fake = FakeSupervisor {
            dir: dir.to_path_buf(),
            ok: Some(read(supervise.ok())),
            control: read(supervise.control()),
        };
        fake.set_status(status);
        fake
    }

    pub fn supervise(&self) -> SuperviseDir {
        SuperviseDir::of_service(&self.dir)
    }

    pub fn set_status(&self, status: Status) {
        write_atomically(&self.supervise().status(), &status.encode(), 0o644).unwrap();
    }

    pub fn set_state(&self, state: &FullState) {
        write_atomically(&self.supervise().state(), state.encode().as_bytes(), 0o644).unwrap();
    }

    pub fn stop(&mut self) {
        self.ok = None;
    }

    /// What sv wrote to `control` since the last call.
    pub fn received(&mut self) -> String {
        let mut bytes = Vec::new();
        let _ = self.control.read_to_end(&mut bytes);
        String::from_utf8(bytes).unwrap()
    }
}

pub fn stamp(seconds: u64) -> Timestamp {
    Timestamp {
        seconds,
        nanoseconds: 0,
    }
}

pub fn running(pid: u32, since: Timestamp) -> Status {
    Status {
        since,
        pid,
        paused: false,
        want: b'u',
        term_sent: false,
        run_state: RunState::Run,
    }
}

pub fn down(want: u8, since: Timestamp) -> Status {
    Status {
        since,
        pid: 0,
        paused: false,
        want,
        term_sent: false,
        run_state: RunState::Down,
    }
}

pub fn full(state: ServiceState, pid: u32, since: Timestamp, reason: &str) -> FullState {
    FullState {
        state,
        want: Want::Up,
        pid,
        starttime: 0,
        since,
        ready_since: None,
        last_exit: None,
        restarts: 0,
        oneshot: false,
        reason: reason.into(),
        status: None,
    }
}

/// Held by every test that writes and runs a script: a script still open for writing in
/// one thread is inherited by a child forked in another, and its exec then fails with
/// ETXTBSY (which `./check` counts as success).
pub static SCRIPTS: std::sync::Mutex<()> = std::sync::Mutex::new(());

pub fn write_script(path: &Path, body: &str) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::write(path, body).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).unwrap();
}
