//! The supervision tree's share of the CPU when services compete for it.
//!
//! With autogroup scheduling (CONFIG_SCHED_AUTOGROUP, on by default in Debian's and
//! most distributions' kernels) every session outside a cpu cgroup is one scheduling
//! entity of equal weight. runsv gives each service a session of its own, so svdir and
//! all its runsvs, one session, would get one share against every busy service's:
//! with a thousand services starting, the supervisors that are to start the rest, write
//! their status and answer `sv` wait behind a thousand shells. (systemd's services are
//! in cgroups, where autogroups do not apply: with the cpu controller on, all of
//! system.slice together weighs as much as PID 1's init.scope.)
//!
//! Here svdir, when it leads its session (as init starts it), gives that session's
//! autogroup the weight of nice -20: about 87 sessions of nice 0, so the tree has at
//! least half the CPU while fewer than 87 services are busy at once. The supervisors
//! use it in bursts of microseconds and none while idle; services, in sessions of their
//! own, keep their normal weight, and so do `sv` and anything else outside the tree.
//!
//! svdir never touches a session it does not lead: started from a shell or another
//! program, that session is its caller's. Without autogroup (no
//! /proc/self/autogroup), inside a cpu cgroup (the autogroup's weight is then unused)
//! or without the privilege to raise a weight (CAP_SYS_NICE), nothing changes and
//! nothing is said: the tree runs as before.

/// The autogroup nice svdir gives its own session.
const TREE_AUTOGROUP_NICE: i32 = -20;

/// Gives svdir's session the tree's weight if svdir leads it; best effort, silent (see
/// above for when it cannot apply).
pub fn raise_tree_weight() {
    let leads_session = nix::unistd::getsid(None).is_ok_and(|sid| sid == nix::unistd::getpid());
    if leads_session {
        let _ = std::fs::write("/proc/self/autogroup", TREE_AUTOGROUP_NICE.to_string());
    }
}

/// The supervisors' cgroup weight where the tree has cgroups (see runsv's cgroup.rs):
/// the counterpart of the autogroup nice above, about 87 services' default weight.
const SUPERVISORS_CPU_WEIGHT: u32 = 8700;

/// Where a cgroup v2 hierarchy is writable, svdir (and so every runsv it starts) moves
/// into the tree's supervisors' group, which gets the tree's CPU weight where the cpu
/// controller is on. Returns the tree's group, or None in process-group mode; a
/// failure to join is said, and the tree runs on.
pub fn join_cgroup() -> Option<std::path::PathBuf> {
    let tree = runsv::cgroup::Tree::find()?;
    if let Err(error) = tree.join() {
        eprintln!("svdir: warning: {error}");
    }
    tree.set_supervisors_weight(SUPERVISORS_CPU_WEIGHT);
    Some(tree.path().to_path_buf())
}
