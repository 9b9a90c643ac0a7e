//! One module per metric. The supervisor metrics (restart, control, memory, status;
//! flood, runtree's alone) start each suite's supervisor directly (suite.rs); the
//! scanner metrics (bringup and stop, sync, chain, idle, respawn, storm) start whole
//! trees (tree/); logging and svlogd measure log throughput; container runs runtree
//! and tini as a podman container's PID 1. Each returns its rows of the table, except
//! boot, which boots whole machines and prints a table of its own.

pub mod boot;
pub mod bringup;
pub mod cgroups;
pub mod chain;
pub mod container;
pub mod control;
pub mod fleet;
pub mod flood;
pub mod idle;
pub mod logging;
pub mod memory;
pub mod respawn;
pub mod restart;
pub mod status;
pub mod stop;
pub mod storm;
pub mod svlogd;
pub mod sync;
