//! The runtree service-directory library: the service definition, the files of
//! `supervise/`, sending control and probing a supervisor (`control`), the entries of a
//! scan directory (`scan_dir`), runit's errno wording, /proc readers (`proc`) and
//! signal names, shared by every runtree program
//! and owned here alone. (The supervisor's state machine is the runsv program's own:
//! runsv/src/machine.rs.)

pub mod backoff;
pub mod boot_times;
pub mod cgroup;
pub mod container_env;
pub mod control;
pub mod definition;
pub mod dependencies;
pub mod duration;
pub mod env_files;
pub mod errno_text;
pub mod failure;
pub mod launch;
pub mod proc;
pub mod published;
pub mod reader;
pub mod replace;
pub mod scan_dir;
pub mod shared_output;
pub mod signals;
pub mod state_dir;
pub mod supervise;
pub mod tai64n;
pub mod tail;
pub mod tree_env;

#[cfg(test)]
mod props_support;
