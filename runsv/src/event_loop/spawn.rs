//! Starting and signalling the services' processes, as the machines ask: `run` and
//! `finish` behind the launcher's gate (their pid published before they may exec), the
//! readiness test at once, each with its command, stdio and readiness pipe; signals to
//! a process or its group. Every call to the system goes through `Sys`.

use super::{Supervisor, Which};
use crate::adoption;
use crate::machine::{Action, Event, Process, Target};
use nix::sys::signal::Signal;
use nix::unistd::Pid;
use runsv::definition::Readiness;
use runsv::env_files;
use runsv::launch::{start_time, Launch, Stdio};
use runsv::supervise::ExitStatus;
use std::os::fd::{AsRawFd, OwnedFd};
use std::time::Duration;

/// The read and write ends of a readiness pipe.
type Notification = Option<(OwnedFd, OwnedFd)>;

impl Supervisor {
    pub(super) fn send(&mut self, which: Which, target: Target, signal: Signal) {
        let Some(service) = self.service(which) else {
            return;
        };
        let (process, group) = match target {
            Target::Process(p) => (p, false),
            Target::Group(p) => (p, true),
        };
        // kill_mode: process: run and finish are reached alone, never what they started.
        let group = group && (process == Process::Test || !service.kills_main_only());
        let Some(pid) = service.machine.pid_of(process) else {
            return;
        };
        // With a group, a stop or kill of run or finish reaches all the service's
        // processes; run itself may already be reaped, its exit held (tracking.rs).
        if let Some(tracked) = self.group(which) {
            if group && process != Process::Test {
                tracked.group.signal(signal);
                return;
            }
            if tracked.pending.is_some_and(|(held, _)| held == pid) {
                return;
            }
        }
        let Some(service) = self.service(which) else {
            return;
        };
        // An adopted process is no child of runsv's: once ended, whoever reaped it
        // freed its pid. It is signalled only while its pidfd proves it alive.
        if let Some((_, pidfd)) = service.adopted.as_ref().filter(|(p, _)| *p == pid) {
            if adoption::wait_ended(pidfd, Duration::ZERO) {
                return;
            }
        }
        let pid = Pid::from_raw(pid as i32);
        // The group the process is in now (its session's, or the one it made with
        // setsid): it is runsv's unreaped child, or proven alive above, so the group
        // holds it. A process found in runsv's own group is reached alone.
        if !group || self.sys.killpg(pid, signal).is_err() {
            let _ = self.sys.kill(pid, signal);
        }
    }

    /// Starts a process that needs no gate (the readiness test).
    pub(super) fn spawn(&mut self, which: Which, process: Process) -> Event {
        let launched = self
            .prepare(which, process)
            .and_then(|(launch, notification)| {
                let pid = self.sys.spawn(&launch)?;
                self.keep_notification(which, notification);
                Ok(pid.as_raw() as u32)
            });
        match launched {
            Ok(pid) => Event::Spawned {
                process,
                pid,
                starttime: start_time(pid).unwrap_or(0),
            },
            Err(reason) => Event::SpawnFailed { process, reason },
        }
    }

    /// Starts `run` (or `finish`) and publishes its pid (runit's files, and `state`:
    /// `starting` for a run) before its exec (the child waits for that), then waits
    /// for the exec: a restart is seen as soon as runit's runsv would show it, the
    /// full state says `running` only once exec succeeded, and a runsv killed at any
    /// point leaves a record of every process it started (a `finish` unrecorded would
    /// run on beside the next runsv's `run`). Returns the machine's actions.
    pub(super) fn start_gated(&mut self, which: Which, process: Process) -> Vec<Action> {
        // Every state change is written: the exit that led to this restart is
        // published (in `state`, which holds it all) before the new process replaces
        // it; runit's files go from the old pid to the new one, as in runit.
        if let Some(service) = self.service(which) {
            if process == Process::Run && service.published_a_process() {
                service.write_state_file();
            }
        }
        let prepared = self.prepare(which, process);
        let started = prepared.and_then(|(launch, notification)| {
            let started = self.sys.start(&launch)?;
            self.keep_notification(which, notification);
            Ok(started)
        });
        let now = self.sys.now();
        let Some(service) = self.service(which) else {
            return Vec::new();
        };
        let mut started = match started {
            Ok(started) => started,
            Err(reason) => {
                let event = Event::SpawnFailed { process, reason };
                return service.machine.on(now, event);
            }
        };
        let pid = started.pid().as_raw() as u32;
        // Fixed at the fork: the child's exec does not change it.
        let starttime = start_time(pid).unwrap_or(0);
        let spawned = Event::Spawned {
            process,
            pid,
            starttime,
        };
        let actions = service.machine.on(now, spawned);
        service.publish_unconfirmed();
        // The child waited for this (see Launch::start); it may exec now.
        started.release();
        match started.confirm() {
            Ok(()) => {
                if process == Process::Run {
                    service.exec_confirmed();
                }
                actions
            }
            Err(reason) => {
                // What followed from the spawn (a readiness test) is void.
                if process == Process::Run {
                    service.notification = None;
                }
                let failed = Event::ExecFailed {
                    process,
                    pid,
                    reason,
                };
                service.machine.on(now, failed)
            }
        }
    }

    fn keep_notification(&mut self, which: Which, notification: Notification) {
        if let (Some((read, _write)), Some(service)) = (notification, self.service(which)) {
            // Our copy of the write end closes here, so EOF means the service closed it.
            service.notification = Some(read);
        }
    }

    /// Builds run, finish or the readiness test of a service, and the readiness pipe
    /// (read, write) it needs.
    fn prepare(
        &mut self,
        which: Which,
        process: Process,
    ) -> Result<(Launch, Notification), String> {
        let null = self.null.as_raw_fd();
        let (stdin, stdout, stderr) = self.stdio(which);
        let (service, mut tracked) = match which {
            Which::Main => (&mut self.main, self.main_group.as_mut()),
            Which::Log => (
                self.log.as_mut().ok_or("no log service")?,
                self.log_group.as_mut(),
            ),
        };
        let definition = service.definition.as_ref().ok_or("invalid definition")?;
        if process == Process::Run {
            let limits = &definition.limits;
            match tracked.as_deref_mut() {
                Some(tracked) => tracked.prepare_run(limits, &service.label)?,
                None if limits.binds() => {
                    return Err(format!(
                        "{}: limits need a writable cgroup v2 hierarchy, and this tree \
                         tracks its services by process group",
                        limits.keys()
                    ))
                }
                // Weights only order who runs first: the service starts without them.
                None if !limits.is_empty() && !service.weights_warned => {
                    service.weights_warned = true;
                    eprintln!(
                        "runsv {}: warning: {}: no cgroup to apply them to (process-group \
                         mode); starting without them",
                        service.label,
                        limits.keys()
                    );
                }
                None => {}
            }
        }
        let procs = tracked.map(|t| t.placement());
        // `env_file` and `env_dir` are read at each start; a file that cannot be read
        // fails the start, with the file and the cause.
        let from_files = match service.environment() {
            Some(variables) => env_files::environment(variables, &definition.controls)?,
            None => None,
        };
        let environment = from_files.as_deref().or(service.environment());
        let controls = &definition.controls;
        let directory = &definition.working_directory;
        let mut notification = None;
        let launch = match process {
            Process::Run => {
                let launch = Launch::new(&definition.command, environment, directory)?
                    .credentials(definition.credentials.clone())
                    .controls(controls)
                    .stdio(stdin, stdout, stderr)
                    .cgroup(procs);
                if let Readiness::NotificationFd(number) = definition.readiness {
                    let (read, write) = nix::unistd::pipe2(
                        nix::fcntl::OFlag::O_CLOEXEC | nix::fcntl::OFlag::O_NONBLOCK,
                    )
                    .map_err(|e| format!("unable to create the readiness pipe: {e}"))?;
                    let launch = launch.extra_fd(write.as_raw_fd(), number);
                    notification = Some((read, write));
                    launch
                } else {
                    launch
                }
            }
            Process::Finish => {
                let finish = definition.finish.as_ref().ok_or("no finish")?;
                let (code, signal) = service
                    .machine
                    .full_state()
                    .last_exit
                    .map(ExitStatus::finish_arguments)
                    .unwrap_or((-1, 0));
                let command = [
                    finish.display().to_string(),
                    code.to_string(),
                    signal.to_string(),
                ];
                Launch::new(&command, environment, &definition.directory)?
                    .credentials(definition.credentials.clone())
                    .controls(controls)
                    .stdio(stdin, stdout, stderr)
                    .cgroup(procs)
            }
            Process::Test => {
                let Readiness::Test { command, .. } = &definition.readiness else {
                    return Err("no readiness test".into());
                };
                Launch::new(command, environment, directory)?
                    .credentials(definition.credentials.clone())
                    .controls(controls)
                    .stdio(Stdio::Fd(null), Stdio::Fd(null), Stdio::Fd(null))
                    .cgroup(procs)
            }
        };
        Ok((launch, notification))
    }
}
