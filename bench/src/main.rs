//! `runtree-bench`: measures runtree's supervisor, control tool and scanner side by side
//! with Debian's runit and s6 (and, for whole trees, daemontools), in one run on the same
//! machine, and prints a table. What each metric measures, and why the comparison is
//! fair: docs/bench.md. One module per metric in metrics/; the suites as supervisors in
//! suite.rs, as trees in tree/; the loop that alternates them in interleave.rs.
//!
//! ```text
//! cargo run --release --bin runtree-bench [-- --quick] [-- --only restart,control]
//! ```

mod cleanup;
mod command;
mod host;
mod interleave;
mod metrics;
mod options;
mod proc;
mod suite;
mod table;
mod tree;
mod wait;

use options::{parse_options, Metric, Options, Runs, TreePlan, USAGE};
use suite::{Kind, Suite};
use table::Row;
use tree::{ScanSuite, Scanner};

fn main() {
    let options = match parse_options() {
        Ok(options) => options,
        Err(message) => {
            eprintln!("runtree-bench: {message}\n{USAGE}");
            std::process::exit(100);
        }
    };
    if let Err(message) = cleanup::install() {
        eprintln!("runtree-bench: {message}");
        std::process::exit(111);
    }
    let code = match run(&options) {
        Ok(()) => 0,
        Err(message) => {
            eprintln!("runtree-bench: {message}");
            1
        }
    };
    cleanup::cleanup();
    std::process::exit(code);
}

fn run(options: &Options) -> Result<(), String> {
    if options.only.contains(&Metric::Boot) {
        metrics::boot::run(options.quick);
        if options.only.iter().all(|m| *m == Metric::Boot) {
            return Ok(());
        }
    }
    let (runtree_bin, runtree_build, svdir_build) = if options.build {
        host::build_runtree(&runtree::binary_dir())
    } else {
        (runtree::binary_dir(), None, None)
    };
    let raised = host::raise_limits();
    let work = host::make_work_dir()?;
    cleanup::set_work_dir(work.clone());

    let plan = TreePlan::new(options);
    host::print_header(options, &runtree_bin, &plan, &raised);

    let wanted = |metric| options.only.contains(&metric);
    let any_runs = |on: Runs| options.only.iter().any(|metric| metric.runs() == on);

    let mut suites: Vec<Suite> = Kind::ALL
        .into_iter()
        .map(|kind| Suite::new(kind, &runtree_bin, &work))
        .collect();
    for suite in &mut suites {
        if suite.kind == Kind::Runtree && suite.unavailable.is_none() {
            suite.unavailable = runtree_build.clone();
        }
        // A probe costs a second or so; only when a supervisor metric will run.
        if suite.unavailable.is_none() && any_runs(Runs::Supervisor) {
            if let Err(reason) = suite::probe(suite) {
                suite.unavailable = Some(format!(
                    "{} does not run a service: {reason}",
                    suite.supervisor_name()
                ));
            }
        }
        if let Some(reason) = &suite.unavailable {
            println!("{}: n/a: {reason}", suite.name());
        }
    }
    let mut scan_suites: Vec<ScanSuite> = Vec::new();
    if any_runs(Runs::Scanner) {
        for scanner in Scanner::ALL {
            let mut suite = ScanSuite::new(scanner, &runtree_bin, &work);
            if scanner == Scanner::Runtree && suite.unavailable.is_none() {
                suite.unavailable = runtree_build.clone().or(svdir_build.clone());
            }
            if suite.unavailable.is_none() {
                if let Err(reason) = tree::probe(&suite) {
                    suite.unavailable = Some(reason);
                }
            }
            if let Some(reason) = &suite.unavailable {
                println!(
                    "{} ({}): n/a: {reason}",
                    suite.name(),
                    scanner.scanner_name()
                );
            }
            scan_suites.push(suite);
        }
    }
    let all: Vec<&Suite> = suites.iter().collect();
    let (iterations, samples) = if options.quick { (3, 4) } else { (15, 16) };
    let mut rows: Vec<(Metric, Row)> = Vec::new();

    if wanted(Metric::Restart) {
        rows.extend(metrics::restart::rows(&all, iterations));
    }
    if wanted(Metric::Control) {
        rows.extend(metrics::control::rows(&all, iterations));
    }
    if wanted(Metric::Flood) {
        rows.extend(metrics::flood::rows(
            &runtree_bin,
            runtree_build.clone(),
            &work,
            iterations,
        ));
    }
    if wanted(Metric::Memory) || wanted(Metric::Status) {
        rows.extend(metrics::fleet::rows(
            &all,
            options.fleet_size,
            samples,
            iterations,
            wanted,
        ));
    }
    rows.extend(run_tree_metrics(options, &plan, &scan_suites));
    if wanted(Metric::Logging) {
        rows.extend(metrics::logging::rows(
            options.quick,
            &runtree_bin,
            runtree_build.clone(),
            &work,
        ));
    }
    if wanted(Metric::Container) {
        rows.extend(metrics::container::rows(options.quick));
    }
    if wanted(Metric::Cgroups) {
        rows.extend(metrics::cgroups::rows(
            &runtree_bin,
            runtree_build.clone().or(svdir_build.clone()),
            &work,
            &plan,
            iterations,
        ));
    }
    // Stop everything before printing: the table is the last thing the bench does.
    cleanup::cleanup();
    rows.sort_by_key(|(metric, _)| Metric::ALL.iter().position(|m| m == metric));
    let rows: Vec<Row> = rows.into_iter().map(|(_, row)| row).collect();
    table::print_table(&rows);
    Ok(())
}

/// The scanner metrics (tree/): whole trees of runit, s6, runtree and, where its peers
/// are compared on it, daemontools.
fn run_tree_metrics(
    options: &Options,
    plan: &TreePlan,
    suites: &[ScanSuite],
) -> Vec<(Metric, Row)> {
    let wanted = |metric| options.only.contains(&metric);
    let with_daemontools: Vec<&ScanSuite> = suites.iter().collect();
    let without_daemontools: Vec<&ScanSuite> = suites
        .iter()
        .filter(|s| s.scanner != Scanner::Daemontools)
        .collect();
    let mut rows = Vec::new();
    if wanted(Metric::Bringup) || wanted(Metric::Stop) {
        rows.extend(metrics::bringup::rows(&with_daemontools, plan, wanted));
    }
    if wanted(Metric::Sync) {
        rows.extend(metrics::sync::rows(&without_daemontools, plan));
    }
    if wanted(Metric::Chain) {
        rows.extend(metrics::chain::rows(&without_daemontools, plan));
    }
    if wanted(Metric::Idle) {
        rows.extend(metrics::idle::rows(&with_daemontools, plan));
    }
    if wanted(Metric::Storm) {
        rows.extend(metrics::storm::rows(&without_daemontools, plan));
    }
    if wanted(Metric::Respawn) {
        rows.extend(metrics::respawn::rows(&without_daemontools, plan));
    }
    rows
}

fn progress(what: &str) {
    eprintln!("runtree-bench: {what}…");
}
