//! Splitting a command line into words the way a POSIX shell does, without running one.

/// Splits `text` into words as `sh` would before running a simple command: single quotes
/// keep everything literally, double quotes honour the backslash escapes of `"`, `\`, `$`,
/// `` ` `` and newline, a backslash outside quotes keeps the next character literally, and
/// blanks and newlines separate words. Nothing is expanded: `$HOME`, `*` and `~` stay as
/// written, and `|`, `;`, `>` are ordinary characters.
///
/// No words at all, an unterminated quote and a trailing lone backslash are errors.
pub fn split_words(text: &str) -> Result<Vec<String>, String> {
    let mut words = Vec::new();
    let mut word = String::new();
    // `''` is a word even though it adds no character, so "a word has begun" is tracked
    // apart from the word's text.
    let mut word_begun = false;
    let mut chars = text.char_indices().peekable();

    while let Some((position, character)) = chars.next() {
        match character {
            ' ' | '\t' | '\n' | '\r' => {
                if word_begun {
                    words.push(std::mem::take(&mut word));
                    word_begun = false;
                }
            }
            '\\' => match chars.next() {
                // A line continuation joins lines; it neither ends nor begins a word.
                Some((_, '\n')) => {}
                Some((_, escaped)) => {
                    word.push(escaped);
                    word_begun = true;
                }
                // A shell would wait for another line here; there is none, and guessing
                // whether a literal backslash was meant would hide a cut-off command.
                None => return Err("a lone backslash at the end".to_string()),
            },
            '\'' => {
                word_begun = true;
                loop {
                    match chars.next() {
                        Some((_, '\'')) => break,
                        Some((_, quoted)) => word.push(quoted),
                        None => {
                            return Err(format!(
                                "unterminated single quote (opened at character {})",
                                character_number(text, position)
                            ))
                        }
                    }
                }
            }
            '"' => {
                word_begun = true;
                loop {
                    match chars.next() {
                        Some((_, '"')) => break,
                        Some((_, '\\')) => match chars.peek() {
                            Some((_, '\n')) => {
                                chars.next();
                            }
                            Some(&(_, escaped @ ('"' | '\\' | '$' | '`'))) => {
                                word.push(escaped);
                                chars.next();
                            }
                            // Inside double quotes any other backslash is literal.
                            _ => word.push('\\'),
                        },
                        Some((_, quoted)) => word.push(quoted),
                        None => {
                            return Err(format!(
                                "unterminated double quote (opened at character {})",
                                character_number(text, position)
                            ))
                        }
                    }
                }
            }
            other => {
                word.push(other);
                word_begun = true;
            }
        }
    }
    if word_begun {
        words.push(word);
    }
    if words.is_empty() {
        return Err("empty command".to_string());
    }
    Ok(words)
}

/// The 1-based character (not byte) position, as a person counts it in the file.
fn character_number(text: &str, byte_position: usize) -> usize {
    text[..byte_position].chars().count() + 1
}

#[cfg(test)]
mod tests {
    use super::split_words;

    fn words(text: &str) -> Vec<String> {
        match split_words(text) {
            Ok(words) => words,
            Err(message) => panic!("{text:?} should split, got error {message:?}"),
        }
    }

    fn error(text: &str) -> String {
        match split_words(text) {
            Ok(words) => panic!("{text:?} should be an error, got {words:?}"),
            Err(message) => message,
        }
    }

    #[test]
    fn blanks_separate_words_and_runs_of_blanks_count_once() {
        assert_eq!(
            words("  /usr/sbin/sshd\t-D   -e\n"),
            ["/usr/sbin/sshd", "-D", "-e"]
        );
        assert_eq!(words("a\r\nb"), ["a", "b"]);
    }

    #[test]
    fn single_quotes_keep_everything_literally() {
        assert_eq!(
            words(r#"sh -c 'echo "$HOME" \n; exit 1'"#),
            ["sh", "-c", r#"echo "$HOME" \n; exit 1"#]
        );
        assert_eq!(words("'a  b'c'd'"), ["a  bcd"]);
    }

    #[test]
    fn double_quotes_honour_only_the_posix_escapes() {
        assert_eq!(words(r#""a \" \\ \$ \` b""#), [r#"a " \ $ ` b"#]);
        assert_eq!(words(r#""\n\t\x""#), [r"\n\t\x"]);
        assert_eq!(words("\"one\\\ntwo\""), ["onetwo"]);
        assert_eq!(words(r#""it's""#), ["it's"]);
    }

    #[test]
    fn backslash_outside_quotes_escapes_the_next_character() {
        assert_eq!(words(r"a\ b c\'d \\"), ["a b", "c'd", r"\"]);
        assert_eq!(words("one \\\ntwo"), ["one", "two"]);
        assert_eq!(words("on\\\ne"), ["one"]);
    }

    #[test]
    fn empty_quotes_make_an_empty_word() {
        assert_eq!(words("prog '' \"\" x"), ["prog", "", "", "x"]);
    }

    #[test]
    fn nothing_is_expanded() {
        assert_eq!(
            words("echo $HOME ~ * a|b;c >out `x`"),
            ["echo", "$HOME", "~", "*", "a|b;c", ">out", "`x`"]
        );
    }

    #[test]
    fn non_ascii_text_is_kept() {
        assert_eq!(words("échø 'ünï cødé'"), ["échø", "ünï cødé"]);
    }

    #[test]
    fn empty_and_blank_text_are_errors() {
        assert_eq!(error(""), "empty command");
        assert_eq!(error(" \t\n "), "empty command");
        assert_eq!(error("\\\n"), "empty command");
    }

    #[test]
    fn unterminated_quotes_are_errors_naming_where_they_open() {
        assert_eq!(
            error("echo 'abc"),
            "unterminated single quote (opened at character 6)"
        );
        assert_eq!(
            error("é \"abc\\\""),
            "unterminated double quote (opened at character 3)"
        );
    }

    #[test]
    fn a_trailing_lone_backslash_is_an_error() {
        assert_eq!(error("echo \\"), "a lone backslash at the end");
    }
}
