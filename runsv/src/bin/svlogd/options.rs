//! The command line, parsed as runit's svlogd parses it (djb's getopt on
//! `R:r:l:b:tvV`): options may be grouped (`-ttv`), an option's argument may be
//! attached (`-r:`) or the next word, `--` ends the options and so does the first word
//! that is not one. The messages and exit code 111 of a bad command line are runit's.

use std::ffi::OsString;
use std::os::unix::ffi::OsStrExt;

pub const USAGE: &str = " [-ttv] [-r c] [-R abc] [-l len] [-b buflen] dir ...";

/// The timestamp each line gets.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stamp {
    None,
    /// `-t`: `@` and TAI64N in hex.
    Tai64n,
    /// `-tt`: `YYYY-MM-DD_HH:MM:SS.nnnnn`, UTC (runit keeps five digits).
    Human,
    /// `-ttt`: the same with `T` between date and time (ISO 8601).
    Iso8601,
}

#[derive(Clone, Debug)]
pub struct Options {
    pub verbose: bool,
    pub stamp: Stamp,
    /// The replacement character, if any: set by `-r c`, or `_` by `-R` alone.
    pub replacement: Option<u8>,
    /// Printable characters replaced as well (`-R abc`).
    pub replace: Vec<u8>,
    /// How much of a line is examined: matched, replaced, given to `e` patterns.
    pub linemax: usize,
    /// The read buffer (`-b`); must exceed `linemax`.
    pub buflen: usize,
    pub dirs: Vec<OsString>,
}

/// Why the program stops before it starts: the text for stderr (empty for none).
#[derive(Debug, PartialEq, Eq)]
pub struct Usage(pub String);

/// djb's scan_ulong: the leading decimal digits, 0 when there are none.
pub fn scan_ulong(text: &[u8]) -> (u64, usize) {
    let mut value: u64 = 0;
    let mut used = 0;
    for &byte in text {
        if !byte.is_ascii_digit() {
            break;
        }
        value = value
            .saturating_mul(10)
            .saturating_add(u64::from(byte - b'0'));
        used += 1;
    }
    (value, used)
}

pub fn parse(progname: &str, args: &[OsString]) -> Result<Options, Usage> {
    let usage = |prefix: String| Usage(format!("{prefix}usage: {progname}{USAGE}\n\n"));
    let mut options = Options {
        verbose: false,
        stamp: Stamp::None,
        replacement: None,
        replace: Vec::new(),
        linemax: 1000,
        buflen: 1024,
        dirs: Vec::new(),
    };
    let mut timestamps = 0;
    let mut index = 0;
    while index < args.len() {
        let word = args[index].as_bytes();
        if word == b"--" {
            index += 1;
            break;
        }
        if word.len() < 2 || word[0] != b'-' {
            break;
        }
        index += 1;
        let mut position = 1;
        while position < word.len() {
            let letter = word[position];
            position += 1;
            let takes_argument = matches!(letter, b'R' | b'r' | b'l' | b'b');
            let argument: Vec<u8> = if takes_argument {
                if position < word.len() {
                    let rest = word[position..].to_vec();
                    position = word.len();
                    rest
                } else if index < args.len() {
                    index += 1;
                    args[index - 1].as_bytes().to_vec()
                } else {
                    return Err(usage(format!(
                        "{progname}: option requires an argument -- {}\n",
                        char::from(letter)
                    )));
                }
            } else {
                Vec::new()
            };
            match letter {
                b'R' => {
                    options.replace = argument;
                    options.replacement.get_or_insert(b'_');
                }
                b'r' => {
                    if argument.len() != 1 || argument[0] == 0 {
                        return Err(usage(String::new()));
                    }
                    options.replacement = Some(argument[0]);
                }
                b'l' => {
                    let (value, _) = scan_ulong(&argument);
                    options.linemax = if value == 0 { 1000 } else { clamp(value) };
                }
                b'b' => {
                    let (value, _) = scan_ulong(&argument);
                    options.buflen = if value == 0 { 1024 } else { clamp(value) };
                }
                b't' => {
                    timestamps = (timestamps + 1).min(3);
                }
                b'v' => options.verbose = true,
                b'V' => {
                    return Err(usage(format!(
                        "runtree svlogd {}\n",
                        env!("CARGO_PKG_VERSION")
                    )))
                }
                other => {
                    return Err(usage(format!(
                        "{progname}: illegal option -- {}\n",
                        char::from(other)
                    )))
                }
            }
        }
    }
    options.stamp = match timestamps {
        0 => Stamp::None,
        1 => Stamp::Tai64n,
        2 => Stamp::Human,
        _ => Stamp::Iso8601,
    };
    options.dirs = args[index..].to_vec();
    if options.dirs.is_empty() || options.buflen <= options.linemax {
        return Err(usage(String::new()));
    }
    Ok(options)
}

/// Sizes beyond what memory could hold are refused later by the allocation; a bound
/// keeps arithmetic on them from overflowing.
fn clamp(value: u64) -> usize {
    usize::try_from(value.min(1 << 30)).unwrap_or(1 << 30)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(list: &[&str]) -> Vec<OsString> {
        list.iter().map(OsString::from).collect()
    }

    #[test]
    fn groups_attached_arguments_and_the_end_of_options() {
        let options = parse(
            "svlogd",
            &words(&["-ttv", "-r:", "-R", "ab", "-l", "5", "d"]),
        )
        .unwrap();
        assert_eq!(options.stamp, Stamp::Human);
        assert!(options.verbose);
        assert_eq!(options.replacement, Some(b':'));
        assert_eq!(options.replace, b"ab");
        assert_eq!(options.linemax, 5);
        assert_eq!(options.dirs, words(&["d"]));
        let options = parse("svlogd", &words(&["-tttt", "--", "-d"])).unwrap();
        assert_eq!(options.stamp, Stamp::Iso8601);
        assert_eq!(options.dirs, words(&["-d"]));
    }

    #[test]
    fn bad_command_lines_are_runits_usage() {
        let usage = format!("usage: svlogd{USAGE}\n\n");
        assert_eq!(parse("svlogd", &[]).unwrap_err().0, usage);
        assert_eq!(
            parse("svlogd", &words(&["-r", "ab", "d"])).unwrap_err().0,
            usage
        );
        assert_eq!(
            parse("svlogd", &words(&["-b", "10", "d"])).unwrap_err().0,
            usage
        );
        assert_eq!(
            parse("svlogd", &words(&["-x", "d"])).unwrap_err().0,
            format!("svlogd: illegal option -- x\n{usage}")
        );
        assert_eq!(
            parse("svlogd", &words(&["-r"])).unwrap_err().0,
            format!("svlogd: option requires an argument -- r\n{usage}")
        );
    }
}
