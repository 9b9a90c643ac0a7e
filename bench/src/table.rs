//! The table the bench prints: a row per output of a metric, a column per suite, the
//! goal and whether runtree's median meets it; the reasons for `n/a` and the warnings as
//! numbered notes under it.

use crate::interleave::{summary, Cell};
use crate::suite::Kind;
use crate::tree::Scanner;
use std::time::Duration;

/// What a row's `met?` compares runtree's median with.
pub enum Goal {
    NoMoreThanRunit,
    /// No goal: the row is for information.
    Information,
    AtMost(f64),
    /// None at all (a count).
    Zero,
    /// At most this fraction of the best (smallest) median among the other columns.
    FractionOfBestPeer(f64),
}

/// A table column: the three suites, daemontools where its scanner is compared, and
/// tini where a container's PID 1 is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Column {
    Runit,
    S6,
    Runtree,
    Daemontools,
    Tini,
}

impl Column {
    const ALL: [Column; 5] = [
        Column::Runit,
        Column::S6,
        Column::Runtree,
        Column::Daemontools,
        Column::Tini,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Column::Runit => "runit",
            Column::S6 => "s6",
            Column::Runtree => "runtree",
            Column::Daemontools => "daemontools",
            Column::Tini => "tini",
        }
    }
}

impl From<Kind> for Column {
    fn from(kind: Kind) -> Column {
        match kind {
            Kind::Runit => Column::Runit,
            Kind::S6 => Column::S6,
            Kind::Runtree => Column::Runtree,
        }
    }
}

impl From<Scanner> for Column {
    fn from(scanner: Scanner) -> Column {
        match scanner {
            Scanner::Runit => Column::Runit,
            Scanner::S6 => Column::S6,
            Scanner::Runtree => Column::Runtree,
            Scanner::Daemontools => Column::Daemontools,
        }
    }
}

/// One line of the table.
pub struct Row {
    pub title: String,
    /// "ms", "KiB", or "" for counts.
    pub unit: &'static str,
    pub goal: Goal,
    pub cells: Vec<(Column, Cell)>,
    /// What an infinite sample stands for: a wait that timed out after this long.
    pub timeout: Option<Duration>,
    /// Notes attached to a column's cell.
    pub notes: Vec<(Column, String)>,
}

impl Row {
    pub fn new(title: String, unit: &'static str, goal: Goal) -> Row {
        Row {
            title,
            unit,
            goal,
            cells: Vec::new(),
            timeout: None,
            notes: Vec::new(),
        }
    }

    /// A time in milliseconds for each scanner, with the notes of the measurement: the
    /// row of most tree metrics.
    pub fn scanner_ms(
        title: impl Into<String>,
        goal: Goal,
        cells: Vec<(Scanner, Cell)>,
        notes: &[(Scanner, String)],
    ) -> Row {
        Row::new(title.into(), "ms", goal).scanners(cells, notes)
    }

    pub fn suites(mut self, cells: Vec<(Kind, Cell)>) -> Row {
        self.cells = cells.into_iter().map(|(k, c)| (k.into(), c)).collect();
        self
    }

    pub fn scanners(mut self, cells: Vec<(Scanner, Cell)>, notes: &[(Scanner, String)]) -> Row {
        self.cells = cells.into_iter().map(|(s, c)| (s.into(), c)).collect();
        self.notes = notes
            .iter()
            .map(|(s, text)| ((*s).into(), text.clone()))
            .collect();
        self
    }
}

/// A value of a row: a count without decimals, an infinite sample as `>TIMEOUT`.
fn value_text(value: f64, row: &Row) -> String {
    if value.is_infinite() {
        return match row.timeout {
            Some(timeout) => format!(">{} s", timeout.as_secs()),
            None => "∞".into(),
        };
    }
    if row.unit.is_empty() && value.fract() == 0.0 {
        format!("{value:.0}")
    } else {
        number(value)
    }
}

fn median_of(row: &Row, column: Column) -> Option<f64> {
    row.cells
        .iter()
        .find(|(c, _)| *c == column)
        .and_then(|(_, cell)| cell.as_ref().ok())
        .and_then(|samples| summary(&samples.values))
        .map(|(median, _, _)| median)
}

pub fn print_table(rows: &[Row]) {
    // Reasons for `n/a` go under the table as numbered notes, so that the table stays
    // readable; the same reason gets the same number.
    let mut notes: Vec<String> = Vec::new();
    let mut note = |reason: &str| {
        let index = match notes.iter().position(|n| n == reason) {
            Some(index) => index,
            None => {
                notes.push(reason.to_string());
                notes.len() - 1
            }
        };
        format!("[{}]", index + 1)
    };
    // A suite gets a column only when a row measured it (`--only container` has no
    // runit or s6 cell; daemontools and tini appear only with their metrics).
    let columns: Vec<Column> = Column::ALL
        .into_iter()
        .filter(|&column| {
            column == Column::Runtree
                || rows
                    .iter()
                    .any(|row| row.cells.iter().any(|(c, _)| *c == column))
        })
        .collect();
    let mut header = vec!["metric".to_string()];
    header.extend(columns.iter().map(|c| c.name().to_string()));
    header.extend(["goal".to_string(), "met?".to_string()]);
    let mut table: Vec<Vec<String>> = vec![header];
    for row in rows {
        let unit = if row.unit.is_empty() {
            String::new()
        } else {
            format!(" {}", row.unit)
        };
        let mut text_of = |column: Column| {
            let mut text = match row.cells.iter().find(|(c, _)| *c == column) {
                Some((_, Ok(samples))) => match summary(&samples.values) {
                    Some((median, min, max)) => {
                        let n = samples.values.len();
                        let mut text = if min.is_infinite() {
                            format!("{} (n={n}, all timed out)", value_text(median, row))
                        } else {
                            // A timed-out median carries no unit: `>10 s`.
                            let median_unit = if median.is_finite() {
                                unit.as_str()
                            } else {
                                ""
                            };
                            format!(
                                "{}{median_unit} ({}–{}, n={n})",
                                value_text(median, row),
                                value_text(min, row),
                                value_text(max, row),
                            )
                        };
                        for (warning, rounds) in &samples.warnings {
                            let marker = note(&format!(
                                "{}: {warning} (in {rounds} of {} rounds)",
                                column.name(),
                                samples.values.len()
                            ));
                            text.push(' ');
                            text.push_str(&marker);
                        }
                        text
                    }
                    None => format!("n/a {}", note("no samples")),
                },
                Some((_, Err(reason))) => format!("n/a {}", note(reason)),
                // Not part of this row (daemontools beside a supervisor metric, say).
                None => "—".to_string(),
            };
            for (c, extra) in &row.notes {
                if *c == column {
                    text.push(' ');
                    text.push_str(&note(&format!("{}: {extra}", column.name())));
                }
            }
            text
        };
        let mut line = vec![row.title.clone()];
        line.extend(columns.iter().map(|&c| text_of(c)));
        let ours = median_of(row, Column::Runtree);
        let (goal, met) = match row.goal {
            Goal::NoMoreThanRunit => (
                "≤ runit".to_string(),
                match (ours, median_of(row, Column::Runit)) {
                    (Some(ours), Some(theirs)) => verdict(ours <= theirs),
                    _ => "n/a".into(),
                },
            ),
            Goal::Information => ("—".to_string(), "—".to_string()),
            Goal::Zero => (
                "= 0".to_string(),
                ours.map_or("n/a".into(), |ours| verdict(ours == 0.0)),
            ),
            Goal::AtMost(limit) => (
                format!("≤ {}{unit}", number(limit)),
                ours.map_or("n/a".into(), |ours| verdict(ours <= limit)),
            ),
            Goal::FractionOfBestPeer(fraction) => {
                let best = columns
                    .iter()
                    .filter(|&&c| c != Column::Runtree)
                    .filter_map(|&c| median_of(row, c))
                    .min_by(f64::total_cmp);
                (
                    format!("≤ {fraction}× best peer"),
                    match (ours, best) {
                        (Some(ours), Some(best)) => verdict(ours <= fraction * best),
                        _ => "n/a".into(),
                    },
                )
            }
        };
        line.extend([goal, met]);
        table.push(line);
    }
    let widths: Vec<usize> = (0..table[0].len())
        .map(|c| {
            table
                .iter()
                .map(|row| row[c].chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    for (i, row) in table.iter().enumerate() {
        let cells: Vec<String> = row
            .iter()
            .zip(&widths)
            .map(|(cell, &width)| format!("{cell:<width$}"))
            .collect();
        println!("| {} |", cells.join(" | "));
        if i == 0 {
            let rule: Vec<String> = widths.iter().map(|&w| "-".repeat(w)).collect();
            println!("|-{}-|", rule.join("-|-"));
        }
    }
    println!("\nmedian (min–max, n = samples); medians are compared with the goal.");
    for (i, reason) in notes.iter().enumerate() {
        println!("[{}] {reason}", i + 1);
    }
}

fn verdict(met: bool) -> String {
    if met { "yes" } else { "NO" }.into()
}

// ---------------------------------------------------------------------------------
// formatting helpers shared with the table

/// `12.3` with as many decimals as the magnitude deserves.
pub fn number(value: f64) -> String {
    if value < 10.0 {
        format!("{value:.2}")
    } else if value < 100.0 {
        format!("{value:.1}")
    } else {
        format!("{value:.0}")
    }
}
