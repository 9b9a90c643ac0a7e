//! The one loop every interleaved measurement runs in: each round gives each lane (a
//! suite, or a case of one) a turn, the order changing from round to round, so that
//! whatever else the machine does during the run falls on all of them alike. Also the
//! samples it collects and their summary.

use std::time::{Duration, Instant};

/// One suite's result for one output of a metric: the samples, or why there are none.
pub type Cell = Result<Samples, String>;

#[derive(Default)]
pub struct Samples {
    pub values: Vec<f64>,
    /// Something wrong seen in some rounds that did not prevent the measurement (a
    /// command that reported success before the status file agreed, say), with the
    /// number of rounds it was seen in.
    pub warnings: Vec<(String, usize)>,
}

impl Samples {
    pub fn push(&mut self, Turn { value, warning }: Turn) {
        self.values.push(value);
        if let Some(warning) = warning {
            self.warn(warning);
        }
    }

    /// Counts one more round in which `warning` was seen.
    pub fn warn(&mut self, warning: String) {
        match self.warnings.iter_mut().find(|(w, _)| *w == warning) {
            Some((_, n)) => *n += 1,
            None => self.warnings.push((warning, 1)),
        }
    }
}

/// The result of one turn for one output.
pub struct Turn {
    pub value: f64,
    pub warning: Option<String>,
}

impl From<f64> for Turn {
    fn from(value: f64) -> Turn {
        Turn {
            value,
            warning: None,
        }
    }
}

/// How the order of the lanes changes from round to round.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Order {
    /// Each round starts one lane later, so that over the run every lane comes after
    /// every other equally often: a turn right after s6's one-second restart wait, say,
    /// finds the CPU idle and a little slower to wake.
    Rotate,
    /// Rounds go in pairs, the first forwards and the second backwards from the same
    /// starting lane, which moves by one every pair. Over `2 × lanes` rounds each lane
    /// holds each place equally often, and each follows two different lanes, not always
    /// the same one: a turn inherits its predecessor's aftermath (tens of megabytes just
    /// deleted, a stopping supervisor's exit), which a plain rotation would give to the
    /// same lane every time.
    Pendulum,
}

impl Order {
    /// The lanes of round `round`, in turn order.
    pub fn round(self, round: usize, count: usize) -> Vec<usize> {
        match self {
            Order::Rotate => (0..count).map(|i| (round + i) % count).collect(),
            Order::Pendulum => {
                let start = round / 2;
                let backwards = round % 2 == 1;
                (0..count)
                    .map(|i| {
                        if backwards {
                            (start + count - i % count) % count
                        } else {
                            (start + i) % count
                        }
                    })
                    .collect()
            }
        }
    }
}

/// One lane's part in an interleaved measurement.
struct Lane<L, S> {
    lane: L,
    state: Option<S>,
    outcomes: Vec<Cell>,
}

/// Per output, a cell per lane, in the order of the lanes.
pub type Cells<L> = Vec<Vec<(L, Cell)>>;

/// Prepares each lane (one whose preparation fails gets the reason in every output),
/// then runs `rounds` rounds in `order`, each turn giving a result per output (of
/// `outputs`). An output whose turn fails drops out with the reason; a lane takes turns
/// as long as one of its outputs does. Returns the cells and the lanes' states, for
/// what the caller still needs from them (dropping them ends what they hold).
pub fn interleave<L: Copy, S>(
    lanes: &[L],
    rounds: usize,
    outputs: usize,
    order: Order,
    mut prepare: impl FnMut(L) -> Result<S, String>,
    mut turn: impl FnMut(L, &mut S) -> Vec<Result<Turn, String>>,
) -> (Cells<L>, Vec<(L, Option<S>)>) {
    let mut lanes: Vec<Lane<L, S>> = lanes
        .iter()
        .map(|&lane| match prepare(lane) {
            Ok(state) => Lane {
                lane,
                state: Some(state),
                outcomes: (0..outputs).map(|_| Ok(Samples::default())).collect(),
            },
            Err(reason) => Lane {
                lane,
                state: None,
                outcomes: (0..outputs).map(|_| Err(reason.clone())).collect(),
            },
        })
        .collect();
    let count = lanes.len();
    for round in 0..rounds {
        for i in order.round(round, count) {
            let Some(lane) = lanes.get_mut(i) else {
                continue;
            };
            let Some(state) = &mut lane.state else {
                continue;
            };
            if lane.outcomes.iter().all(Result::is_err) {
                continue;
            }
            let results = turn(lane.lane, state);
            for (outcome, result) in lane.outcomes.iter_mut().zip(results) {
                let Ok(samples) = outcome else { continue };
                match result {
                    Ok(turn) => samples.push(turn),
                    Err(reason) => *outcome = Err(reason),
                }
            }
        }
    }
    let mut cells: Cells<L> = (0..outputs).map(|_| Vec::new()).collect();
    let mut states = Vec::new();
    for lane in lanes {
        for (k, outcome) in lane.outcomes.into_iter().enumerate() {
            cells[k].push((lane.lane, outcome));
        }
        states.push((lane.lane, lane.state));
    }
    (cells, states)
}

/// Median, minimum and maximum.
pub fn summary(values: &[f64]) -> Option<(f64, f64, f64)> {
    if values.is_empty() {
        return None;
    }
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let n = sorted.len();
    let median = if n % 2 == 1 {
        sorted[n / 2]
    } else {
        (sorted[n / 2 - 1] + sorted[n / 2]) / 2.0
    };
    Some((median, sorted[0], sorted[n - 1]))
}

pub fn millis(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1000.0
}

/// Sleeps until `uptime` has passed since `since`.
pub fn settle(since: Instant, uptime: Duration) {
    if let Some(rest) = uptime.checked_sub(since.elapsed()) {
        std::thread::sleep(rest);
    }
}

/// A lane that may not be measurable, and why (its programs are missing, its build
/// failed).
pub trait Available {
    fn unavailable(&self) -> Option<&str>;
}

/// [`interleave`] over suites, rotating: an unavailable suite gets its reason in every
/// output, and is never prepared.
pub fn interleave_suites<'a, T: Available, S>(
    suites: &[&'a T],
    rounds: usize,
    outputs: usize,
    mut prepare: impl FnMut(&'a T) -> Result<S, String>,
    turn: impl FnMut(&'a T, &mut S) -> Vec<Result<Turn, String>>,
) -> (Cells<&'a T>, Vec<(&'a T, Option<S>)>) {
    let prepare = |suite: &'a T| match suite.unavailable() {
        Some(reason) => Err(reason.to_string()),
        None => prepare(suite),
    };
    interleave(suites, rounds, outputs, Order::Rotate, prepare, turn)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rotation_starts_one_lane_later_each_round() {
        assert_eq!(Order::Rotate.round(0, 3), [0, 1, 2]);
        assert_eq!(Order::Rotate.round(1, 3), [1, 2, 0]);
        assert_eq!(Order::Rotate.round(2, 3), [2, 0, 1]);
    }

    #[test]
    fn each_case_holds_each_place_and_follows_two_others() {
        let rounds: Vec<Vec<usize>> = (0..8).map(|r| Order::Pendulum.round(r, 4)).collect();
        assert_eq!(rounds[0], [0, 1, 2, 3]);
        assert_eq!(rounds[1], [0, 3, 2, 1]);
        assert_eq!(rounds[2], [1, 2, 3, 0]);
        for case in 0..4 {
            for place in 0..4 {
                let times = rounds.iter().filter(|order| order[place] == case).count();
                assert_eq!(times, 2, "case {case} at place {place}");
            }
            let mut before: Vec<usize> = rounds
                .iter()
                .filter_map(|order| {
                    let at = order.iter().position(|&c| c == case)?;
                    at.checked_sub(1).map(|p| order[p])
                })
                .collect();
            before.sort_unstable();
            before.dedup();
            assert!(before.len() >= 2, "case {case} follows only {before:?}");
        }
    }

    #[test]
    fn a_failed_output_drops_out_and_the_lane_runs_on() {
        let mut turns = 0;
        let (cells, _) = interleave(
            &['a', 'b'],
            3,
            2,
            Order::Rotate,
            |lane| {
                if lane == 'b' {
                    Err("no b".into())
                } else {
                    Ok(())
                }
            },
            |_, ()| {
                turns += 1;
                vec![Ok(1.0.into()), Err(format!("turn {turns}"))]
            },
        );
        assert_eq!(turns, 3);
        let (_, first) = &cells[0][0];
        assert!(first.as_ref().is_ok_and(|s| s.values == [1.0; 3]));
        assert!(matches!(&cells[1][0], ('a', Err(reason)) if reason == "turn 1"));
        assert!(matches!(&cells[0][1], ('b', Err(reason)) if reason == "no b"));
    }
}
