//! The runtree service-directory library: the service definition, the files of
//! `supervise/`, control bytes and signal names, shared by every runtree program; and
//! the state machine of the `runsv` supervisor.

pub mod definition;
pub mod dependencies;
pub mod errno_text;
pub mod launch;
pub mod machine;
pub mod reader;
pub mod replace;
pub mod shared_output;
pub mod signals;
pub mod supervise;
pub mod tai64n;
pub mod tail;
pub mod tree_env;

#[cfg(test)]
mod props_support;
