//! Output held until the cgroup usage it shows has been read: runsv's `UsageReads`
//! reads the services' groups on a second thread while sv reads the next services, so
//! `sv status` (and `--json`) keeps each line in pieces and writes it at the end.

use runsv::cgroup::{Slot, Usage, UsageReads, Usages};

/// Text in pieces: what is known, and where a group's usage goes once it is read.
#[derive(Default)]
pub struct Pending(Vec<Piece>);

enum Piece {
    Text(String),
    /// A group's usage, and how it is written (the status line's ` (cgroup: …)` or
    /// the JSON fields).
    Usage(Slot, fn(Usage) -> String),
}

impl Pending {
    pub fn text(text: String) -> Pending {
        Pending(vec![Piece::Text(text)])
    }

    pub fn push_str(&mut self, text: &str) {
        match self.0.last_mut() {
            Some(Piece::Text(last)) => last.push_str(text),
            _ => self.0.push(Piece::Text(text.to_string())),
        }
    }

    /// Asks `reads` for `group`'s usage, to be written here by `write`.
    pub fn push_usage(
        &mut self,
        reads: &mut UsageReads,
        group: &std::path::Path,
        write: fn(Usage) -> String,
    ) {
        self.0.push(Piece::Usage(reads.ask(group), write));
    }

    pub fn append(&mut self, other: Pending) {
        for piece in other.0 {
            match piece {
                Piece::Text(text) => self.push_str(&text),
                usage => self.0.push(usage),
            }
        }
    }

    pub fn render(&self, usages: &Usages) -> String {
        let mut text = String::new();
        for piece in &self.0 {
            match piece {
                Piece::Text(known) => text.push_str(known),
                Piece::Usage(slot, write) => text.push_str(&write(usages.get(*slot))),
            }
        }
        text
    }
}
