//! The runtree service-directory library: the service definition, the files of
//! `supervise/`, sending control and probing a supervisor (`control`), runit's errno
//! wording, /proc readers (`proc`) and signal names, shared by every runtree program
//! and owned here alone; and the state machine of the `runsv` supervisor.

pub mod control;
pub mod definition;
pub mod dependencies;
pub mod errno_text;
pub mod launch;
pub mod machine;
pub mod proc;
pub mod reader;
pub mod replace;
pub mod signals;
pub mod supervise;
pub mod tai64n;
pub mod tail;

#[cfg(test)]
mod props_support;
