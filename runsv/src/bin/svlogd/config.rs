//! A log directory's `config` file, read as runit's svlogd reads it, and its patterns
//! matched as runit matches them.

use crate::options::scan_ulong;

/// What a log directory's `config` says; the defaults are runit's.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Config {
    /// `s`: rotate `current` at about this many bytes; 0 never.
    pub sizemax: u64,
    /// `n`: keep at most this many old files; 0 keeps all.
    pub nmax: u64,
    /// `N`: on a full disk, delete old files while more than this many remain.
    pub nmin: u64,
    /// `t`: rotate a non-empty `current` after this many seconds; 0 never.
    pub tmax: u64,
    /// `!`: run on each rotated file with `sh -c`.
    pub processor: Option<Vec<u8>>,
    /// `+`, `-`, `e`, `E` lines, each with its letter, in order.
    pub patterns: Vec<Vec<u8>>,
    /// `p`: written before every line.
    pub prefix: Vec<u8>,
    /// Lines this program does not act on, each with the reason, for a warning.
    pub refused: Vec<(Vec<u8>, &'static str)>,
}

impl Default for Config {
    fn default() -> Config {
        Config {
            sizemax: 1_000_000,
            nmax: 10,
            nmin: 10,
            tmax: 0,
            processor: None,
            patterns: Vec::new(),
            prefix: Vec::new(),
            refused: Vec::new(),
        }
    }
}

impl Config {
    pub fn parse(text: &[u8]) -> Config {
        let mut config = Config::default();
        let mut start = 0;
        // runit's loop stops before a last byte that would start a line of its own.
        while start + 1 < text.len() {
            let end = text[start..]
                .iter()
                .position(|&b| b == b'\n')
                .map_or(text.len(), |p| start + p);
            config.apply(&text[start..end]);
            start = end + 1;
        }
        config
    }

    fn apply(&mut self, line: &[u8]) {
        let Some((&letter, rest)) = line.split_first() else {
            return;
        };
        match letter {
            b'+' | b'-' | b'e' | b'E' => self.patterns.push(line.to_vec()),
            b's' => {
                let (value, used) = scan_ulong(rest);
                self.sizemax = match rest.get(used) {
                    Some(b'm') => value.saturating_mul(1024 * 1024),
                    Some(b'k') => value.saturating_mul(1024),
                    _ => value,
                };
            }
            b'n' => self.nmax = scan_ulong(rest).0,
            b'N' => self.nmin = scan_ulong(rest).0,
            b't' => {
                let (value, used) = scan_ulong(rest);
                self.tmax = match rest.get(used) {
                    Some(b'h') => value.saturating_mul(3600),
                    Some(b'm') => value.saturating_mul(60),
                    _ => value,
                };
            }
            b'!' if !rest.is_empty() => self.processor = Some(rest.to_vec()),
            b'p' if !rest.is_empty() => self.prefix = rest.to_vec(),
            b'u' | b'U' => self
                .refused
                .push((line.to_vec(), "sending log lines over UDP is not supported")),
            _ => {}
        }
    }

    /// Whether a line (its first `linemax` bytes) goes to the directory (`+`/`-`), and
    /// whether it goes to standard error (`e`/`E`): the last matching pattern of each
    /// kind decides; by default a line is logged and not copied to stderr.
    pub fn select(&self, line: &[u8]) -> (bool, bool) {
        let mut logged = true;
        let mut to_stderr = false;
        for pattern in &self.patterns {
            let (letter, glob) = (pattern[0], &pattern[1..]);
            if pmatch(glob, line) {
                match letter {
                    b'+' => logged = true,
                    b'-' => logged = false,
                    b'e' => to_stderr = true,
                    _ => to_stderr = false,
                }
            }
        }
        (logged, to_stderr)
    }
}

/// runit's pattern match: `*c` skips up to the next `c` (a trailing `*` matches the
/// rest), `+c` matches one or more `c`, every other byte itself; the whole line must
/// match. There is no backtracking (`*err*` does not match `keep this err`: `*e`
/// stops at the `e` of `keep`); configs are written against runit's results, so none
/// is added.
pub fn pmatch(pattern: &[u8], line: &[u8]) -> bool {
    let (mut p, mut s) = (0, 0);
    loop {
        let Some(&c) = pattern.get(p) else {
            return s == line.len();
        };
        p += 1;
        match c {
            b'*' => {
                let Some(&next) = pattern.get(p) else {
                    return true;
                };
                loop {
                    match line.get(s) {
                        None => return false,
                        Some(&b) if b == next => break,
                        Some(_) => s += 1,
                    }
                }
            }
            b'+' => {
                let next = pattern.get(p).copied();
                p += 1;
                if next.is_none() || line.get(s).copied() != next {
                    // runit compares the pattern's NUL with the line's byte: a
                    // trailing `+` never matches a non-empty rest, and an empty one
                    // only by reading past it, which we do not.
                    return false;
                }
                while line.get(s).copied() == next {
                    s += 1;
                }
                if s == line.len() {
                    return true;
                }
            }
            _ => {
                if line.get(s) != Some(&c) {
                    return false;
                }
                s += 1;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_runits_settings() {
        let config = Config::parse(
            b"s4k\nn5\nN2\nt2m\n!gzip\npPFX: \n-*debug*\n+*\nefoo*\n# x\n\nu1.2.3.4\n",
        );
        assert_eq!(config.sizemax, 4096);
        assert_eq!((config.nmax, config.nmin, config.tmax), (5, 2, 120));
        assert_eq!(config.processor.as_deref(), Some(&b"gzip"[..]));
        assert_eq!(config.prefix, b"PFX: ");
        assert_eq!(config.patterns.len(), 3);
        assert_eq!(config.refused.len(), 1);
        assert_eq!(Config::parse(b"s2m").sizemax, 2 * 1024 * 1024);
    }

    #[test]
    fn patterns_match_as_runits() {
        assert!(pmatch(b"*", b"anything"));
        assert!(pmatch(b"*debug*", b"a debug line"));
        assert!(!pmatch(b"*debug*", b"a line"));
        assert!(pmatch(b"foo*", b"foobar"));
        assert!(!pmatch(b"foo", b"foobar"));
        assert!(pmatch(b"a+bc", b"abbbc"));
        assert!(!pmatch(b"a+bc", b"ac"));
        assert!(pmatch(b"", b""));
        let config = Config::parse(b"-*\n+*keep*\ne*err*\n");
        assert_eq!(config.select(b"drop me"), (false, false));
        assert_eq!(config.select(b"err: keep"), (true, true));
        // No backtracking: `*e` stops at the first `e` ("keep"), as runit's.
        assert_eq!(config.select(b"keep this err"), (true, false));
    }
}
