//! djb's getopt (runit's sgetopt/subgetopt), because its corners are what scripts rely
//! on: options stop at the first word not starting with `-` (so `chpst -u x prog -l`
//! leaves `-l` to prog), `--` ends them, `-` alone is an operand, an option's argument
//! may be glued (`-ufoo`) or the next word, and an empty next word is a valid argument.

use std::ffi::OsString;
use std::io::Write;
use std::os::unix::ffi::OsStrExt;

pub enum Next<'a> {
    /// An option letter, with its argument when the letter takes one.
    Option(u8, Option<&'a [u8]>),
    /// A letter not in the option string, or one missing its argument; the message is
    /// already on stderr.
    Problem,
    Done,
}

pub struct Getopt<'a> {
    args: &'a [OsString],
    /// The index of the first word that is not an option once `Done` was returned.
    pub index: usize,
    position: usize,
    program: &'a [u8],
}

impl<'a> Getopt<'a> {
    /// `args` includes argv[0], whose last component names the program in messages.
    pub fn new(args: &'a [OsString]) -> Getopt<'a> {
        let argv0 = args.first().map(|a| a.as_bytes()).unwrap_or(b"");
        let program = match argv0.iter().rposition(|&b| b == b'/') {
            Some(slash) => argv0.get(slash + 1..).unwrap_or(b""),
            None => argv0,
        };
        Getopt {
            args,
            index: 1,
            position: 0,
            program,
        }
    }

    fn word(&self, index: usize) -> Option<&'a [u8]> {
        self.args.get(index).map(|a| a.as_bytes())
    }

    /// `spec` as getopt(3)'s: letters, each followed by `:` when it takes an argument.
    pub fn next(&mut self, spec: &[u8]) -> Next<'a> {
        let Some(mut word) = self.word(self.index) else {
            return Next::Done;
        };
        if self.position > 0 && self.position >= word.len() {
            self.index += 1;
            self.position = 0;
            match self.word(self.index) {
                Some(next) => word = next,
                None => return Next::Done,
            }
        }
        if self.position == 0 {
            match word {
                [b'-', b'-', ..] => {
                    self.index += 1;
                    return Next::Done;
                }
                [b'-', _, ..] => self.position = 1,
                _ => return Next::Done,
            }
        }
        let letter = word.get(self.position).copied().unwrap_or(0);
        self.position += 1;
        let Some(takes_argument) = lookup(spec, letter) else {
            return self.problem("illegal option", letter);
        };
        if !takes_argument {
            return Next::Option(letter, None);
        }
        let glued = word.get(self.position..).unwrap_or(b"");
        self.index += 1;
        self.position = 0;
        if !glued.is_empty() {
            return Next::Option(letter, Some(glued));
        }
        match self.word(self.index) {
            Some(argument) => {
                self.index += 1;
                Next::Option(letter, Some(argument))
            }
            None => self.problem("option requires an argument", letter),
        }
    }

    fn problem(&self, what: &str, letter: u8) -> Next<'a> {
        let mut line = self.program.to_vec();
        line.extend_from_slice(format!(": {what} -- ").as_bytes());
        line.push(letter);
        line.push(b'\n');
        let _ = std::io::stderr().write_all(&line);
        Next::Problem
    }
}

/// Whether `letter` is an option of `spec`, and if so whether it takes an argument.
fn lookup(spec: &[u8], letter: u8) -> Option<bool> {
    let mut rest = spec;
    while let Some((&c, after)) = rest.split_first() {
        let takes_argument = after.first() == Some(&b':');
        if c == letter {
            return Some(takes_argument);
        }
        rest = if takes_argument { &after[1..] } else { after };
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(list: &[&str]) -> Vec<OsString> {
        list.iter().map(OsString::from).collect()
    }

    fn all(list: &[&str], spec: &str) -> (Vec<(char, Option<String>)>, Option<usize>) {
        let args = words(list);
        let mut getopt = Getopt::new(&args);
        let mut seen = Vec::new();
        loop {
            match getopt.next(spec.as_bytes()) {
                Next::Option(c, a) => seen.push((
                    c as char,
                    a.map(|a| String::from_utf8_lossy(a).into_owned()),
                )),
                Next::Problem => return (seen, None),
                Next::Done => return (seen, Some(getopt.index)),
            }
        }
    }

    #[test]
    fn clustered_glued_and_separate_arguments() {
        let (seen, rest) = all(&["chpst", "-vPu", "nobody", "-e/x", "prog", "-v"], "u:e:vP");
        assert_eq!(
            seen,
            vec![
                ('v', None),
                ('P', None),
                ('u', Some("nobody".into())),
                ('e', Some("/x".into()))
            ]
        );
        assert_eq!(rest, Some(4));
    }

    #[test]
    fn double_dash_ends_and_lone_dash_is_an_operand() {
        assert_eq!(
            all(&["c", "-v", "--", "-P"], "vP"),
            (vec![('v', None)], Some(3))
        );
        assert_eq!(all(&["c", "-", "x"], "vP"), (vec![], Some(1)));
        assert_eq!(all(&["c"], "vP"), (vec![], Some(1)));
    }

    #[test]
    fn an_empty_next_word_is_an_argument_and_a_missing_one_a_problem() {
        assert_eq!(
            all(&["c", "-n", "", "p"], "n:"),
            (vec![('n', Some(String::new()))], Some(3))
        );
        assert_eq!(all(&["c", "-n"], "n:"), (vec![], None));
        assert_eq!(all(&["c", "-x"], "n:"), (vec![], None));
        // ':' is never an option letter.
        assert_eq!(all(&["c", "-:"], "n:"), (vec![], None));
    }
}
