//! A bound on how deep `[` and `{` nest in `service.yaml`, checked before the YAML
//! parser sees the text. libyaml keeps one entry per open flow collection and walks
//! them all for every token, so its time grows with the square of the nesting
//! (`after: [[[…]]]`: 6 s at 32k levels, endless at 100k), while nothing in a service
//! definition nests more than three deep.
//!
//! The scan follows libyaml's tokenizer (unsafe-libyaml's scanner.c) far enough to know
//! which brackets open collections and which are text: inside quotes, comments, block
//! scalars and plain scalars, with libyaml's indentation rules deciding where a block
//! or plain scalar ends. It takes linear time. Where libyaml would stop with an error,
//! the scan goes on: it may count more than libyaml, never less.

/// Flow collections inside one another, at most.
pub const MAX_DEPTH: usize = 64;

/// The 1-based line where flow collections first nest deeper than `MAX_DEPTH`.
pub fn too_deep(text: &str) -> Option<usize> {
    let mut scanner = Scanner {
        chars: text.chars().collect(),
        pos: 0,
        line: 1,
        column: 0,
        flow: 0,
        indents: Vec::new(),
        node_start: None,
    };
    if scanner.peek(0) == '\u{feff}' {
        scanner.pos = 1;
    }
    scanner.run().err()
}

struct Scanner {
    chars: Vec<char>,
    pos: usize,
    line: usize,
    /// In characters, as libyaml counts.
    column: i64,
    flow: usize,
    /// libyaml's stack of block indentations (the current one last; -1 when empty).
    indents: Vec<i64>,
    /// Where the node being scanned began (line, column): a key, if `:` follows.
    node_start: Option<(usize, i64)>,
}

/// libyaml would stop with an error here.
struct Stop;

fn is_break(c: char) -> bool {
    matches!(c, '\n' | '\r' | '\u{85}' | '\u{2028}' | '\u{2029}')
}

fn is_blank(c: char) -> bool {
    c == ' ' || c == '\t'
}

/// Blank, break or the end of the text (`'\0'`).
fn is_blankz(c: char) -> bool {
    is_blank(c) || is_break(c) || c == '\0'
}

impl Scanner {
    fn peek(&self, ahead: usize) -> char {
        self.chars.get(self.pos + ahead).copied().unwrap_or('\0')
    }

    fn advance(&mut self) {
        let c = self.peek(0);
        self.pos += 1;
        if is_break(c) {
            if c == '\r' && self.peek(0) == '\n' {
                self.pos += 1;
            }
            self.line += 1;
            self.column = 0;
        } else {
            self.column += 1;
        }
    }

    fn indent(&self) -> i64 {
        self.indents.last().copied().unwrap_or(-1)
    }

    fn roll(&mut self, column: i64) {
        if self.indent() < column {
            self.indents.push(column);
        }
    }

    fn document_marker(&self) -> bool {
        let c = self.peek(0);
        self.column == 0
            && (c == '-' || c == '.')
            && self.peek(1) == c
            && self.peek(2) == c
            && is_blankz(self.peek(3))
    }

    /// A node begins here: in a block, it is the key if `:` follows on this line.
    fn note_node(&mut self) {
        if self.flow == 0 && self.node_start.is_none() {
            self.node_start = Some((self.line, self.column));
        }
    }

    fn skip_to_break(&mut self) {
        while !is_break(self.peek(0)) && self.peek(0) != '\0' {
            self.advance();
        }
    }

    /// Ok at the end of the text; Err(line) where the nesting goes too deep.
    fn run(&mut self) -> Result<(), usize> {
        loop {
            // Blanks, comments and line breaks between tokens.
            loop {
                while is_blank(self.peek(0)) {
                    self.advance();
                }
                if self.peek(0) == '#' {
                    self.skip_to_break();
                }
                if !is_break(self.peek(0)) {
                    break;
                }
                self.advance();
            }
            if self.flow == 0 {
                while self.indent() > self.column {
                    self.indents.pop();
                }
            }
            let (c, next) = (self.peek(0), self.peek(1));
            if c == '\0' {
                return Ok(());
            }
            if self.document_marker() {
                self.indents.clear();
                self.node_start = None;
                (0..3).for_each(|_| self.advance());
                continue;
            }
            if self.column == 0 && c == '%' {
                self.skip_to_break();
                continue;
            }
            let step = match c {
                '[' | '{' => {
                    self.note_node();
                    self.flow += 1;
                    if self.flow > MAX_DEPTH {
                        return Err(self.line);
                    }
                    self.advance();
                    Ok(())
                }
                ']' | '}' => {
                    self.flow = self.flow.saturating_sub(1);
                    self.advance();
                    Ok(())
                }
                ',' => {
                    self.advance();
                    Ok(())
                }
                '-' if is_blankz(next) => self.indicator(true),
                '?' if self.flow > 0 || is_blankz(next) => self.indicator(true),
                ':' if self.flow > 0 || is_blankz(next) => self.indicator(false),
                '*' | '&' => {
                    self.note_node();
                    self.advance();
                    while self.peek(0).is_ascii_alphanumeric() || matches!(self.peek(0), '_' | '-')
                    {
                        self.advance();
                    }
                    Ok(())
                }
                '!' => {
                    self.note_node();
                    self.tag()
                }
                '|' | '>' if self.flow == 0 => {
                    self.note_node();
                    self.block_scalar()
                }
                '\'' => {
                    self.note_node();
                    self.single_quoted()
                }
                '"' => {
                    self.note_node();
                    self.double_quoted()
                }
                _ if self.starts_plain(c, next) => {
                    self.note_node();
                    self.plain()
                }
                // libyaml: "found character that cannot start any token".
                _ => Err(Stop),
            };
            if step.is_err() {
                // libyaml stops here with an error, and would parse nothing further;
                // but the scan may be wrong about where a scalar ended and see an
                // error in libyaml's text, so it goes on: counting more than libyaml
                // is safe, less is not.
                self.advance();
            }
        }
    }

    /// `-` and `?` (which open a block collection at their column), or `:` (which
    /// opens a mapping at its key's column, when the key is on this line).
    fn indicator(&mut self, entry: bool) -> Result<(), Stop> {
        if self.flow == 0 {
            let column = match self.node_start {
                Some((line, column)) if !entry && line == self.line => column,
                _ => self.column,
            };
            self.roll(column);
            self.node_start = None;
        }
        self.advance();
        Ok(())
    }

    fn starts_plain(&self, c: char, next: char) -> bool {
        let indicator = is_blankz(c) || "-?:,[]{}#&*!|>'\"%@`".contains(c);
        !indicator
            || (c == '-' && !is_blank(next))
            || (self.flow == 0 && (c == '?' || c == ':') && !is_blankz(next))
    }

    /// libyaml's yaml_parser_scan_tag: `!<URI>`, or a handle and a suffix of URI
    /// characters (`,`, `[` and `]` only inside `<…>`), then a blank, or `,` in a flow.
    fn tag(&mut self) -> Result<(), Stop> {
        let uri = |c: char| c.is_ascii_alphanumeric() || "-_;/?:@&=+$.%!~*'()".contains(c);
        if self.peek(1) == '<' {
            self.advance();
            self.advance();
            while uri(self.peek(0)) || matches!(self.peek(0), ',' | '[' | ']') {
                self.advance();
            }
            if self.peek(0) != '>' {
                return Err(Stop);
            }
        }
        self.advance();
        while uri(self.peek(0)) {
            self.advance();
        }
        if is_blankz(self.peek(0)) || (self.flow > 0 && self.peek(0) == ',') {
            Ok(())
        } else {
            Err(Stop)
        }
    }

    fn single_quoted(&mut self) -> Result<(), Stop> {
        self.advance();
        loop {
            match (self.peek(0), self.peek(1)) {
                ('\0', _) => return Err(Stop),
                ('\'', '\'') => {
                    self.advance();
                    self.advance();
                }
                ('\'', _) => {
                    self.advance();
                    return Ok(());
                }
                _ => self.advance(),
            }
        }
    }

    fn double_quoted(&mut self) -> Result<(), Stop> {
        self.advance();
        loop {
            match self.peek(0) {
                '\0' => return Err(Stop),
                '\\' => {
                    self.advance();
                    self.advance();
                }
                '"' => {
                    self.advance();
                    return Ok(());
                }
                _ => self.advance(),
            }
        }
    }

    /// libyaml's yaml_parser_scan_plain_scalar, without the value.
    fn plain(&mut self) -> Result<(), Stop> {
        let indent = self.indent() + 1;
        loop {
            if self.document_marker() || self.peek(0) == '#' {
                return Ok(());
            }
            while !is_blankz(self.peek(0)) {
                let (c, next) = (self.peek(0), self.peek(1));
                if self.flow > 0 && c == ':' && ",?[]{}".contains(next) {
                    return Err(Stop); // "found unexpected ':'"
                }
                if (c == ':' && is_blankz(next)) || (self.flow > 0 && ",[]{}".contains(c)) {
                    return Ok(());
                }
                self.advance();
            }
            if !(is_blank(self.peek(0)) || is_break(self.peek(0))) {
                return Ok(());
            }
            while is_blank(self.peek(0)) || is_break(self.peek(0)) {
                self.advance();
            }
            if self.flow == 0 && self.column < indent {
                return Ok(());
            }
        }
    }

    /// libyaml's yaml_parser_scan_block_scalar, without the value: the header, then
    /// every line indented at least as much as the first.
    fn block_scalar(&mut self) -> Result<(), Stop> {
        let parent = self.indent();
        self.advance();
        let mut increment = 0;
        for _ in 0..2 {
            match self.peek(0) {
                '+' | '-' => self.advance(),
                '0' => return Err(Stop),
                c @ '1'..='9' => {
                    increment = i64::from(c as u8 - b'0');
                    self.advance();
                }
                _ => {}
            }
        }
        while is_blank(self.peek(0)) {
            self.advance();
        }
        if self.peek(0) == '#' {
            self.skip_to_break();
        }
        if !is_blankz(self.peek(0)) {
            return Err(Stop);
        }
        if is_break(self.peek(0)) {
            self.advance();
        }
        let mut indent = match increment {
            0 => 0,
            n if parent >= 0 => parent + n,
            n => n,
        };
        let detected = self.breaks(indent)?;
        if indent == 0 {
            indent = detected.max(parent + 1).max(1);
        }
        while self.column == indent && self.peek(0) != '\0' {
            self.skip_to_break();
            if self.peek(0) == '\0' {
                break;
            }
            self.advance();
            self.breaks(indent)?;
        }
        Ok(())
    }

    /// Indentation and empty lines of a block scalar; the deepest indentation seen.
    fn breaks(&mut self, indent: i64) -> Result<i64, Stop> {
        let mut deepest = 0;
        loop {
            while (indent == 0 || self.column < indent) && self.peek(0) == ' ' {
                self.advance();
            }
            deepest = deepest.max(self.column);
            if (indent == 0 || self.column < indent) && self.peek(0) == '\t' {
                return Err(Stop);
            }
            if !is_break(self.peek(0)) {
                return Ok(deepest);
            }
            self.advance();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nested(open: &str, close: &str, depth: usize) -> String {
        format!("{}x{}", open.repeat(depth), close.repeat(depth))
    }

    #[test]
    fn flow_collections_deeper_than_the_bound_are_found_at_their_line() {
        let ok = format!("exec: x\nafter: {}\n", nested("[", "]", MAX_DEPTH));
        assert_eq!(too_deep(&ok), None);
        let deep = format!("exec: x\n\nafter: {}\n", nested("[", "]", MAX_DEPTH + 1));
        assert_eq!(too_deep(&deep), Some(3));
        let maps = format!("exec: x\nenviron: {}\n", nested("{a: ", "}", 100_000));
        assert_eq!(too_deep(&maps), Some(2));
        let mixed = format!("after:\n  - {}\n", nested("[{a: ", "}]", 40));
        assert_eq!(too_deep(&mixed), Some(2));
    }

    #[test]
    fn brackets_in_text_are_not_collections() {
        let brackets = "[".repeat(200);
        for text in [
            format!("exec: sh -c '{brackets}'\n"),
            format!("exec: \"{brackets}\"\n"),
            format!("exec: echo {brackets}\n"),
            format!("exec: x # {brackets}\n"),
            format!("# {brackets}\nexec: x\n"),
            format!("exec: |\n  {brackets}\n  {brackets}\nlog: none\n"),
            format!("exec: >-\n\n    {brackets}\n"),
            format!("exec: echo\n  {brackets}\n"),
            format!("exec: 'it''s {brackets}'\n"),
            format!("exec: \"a \\\" {brackets}\"\n"),
            format!("after: [a, 'b {brackets}', \"{brackets}\"]\n"),
            format!("exec: \"multi\n  line {brackets}\n  \"\n"),
            format!("exec: !<tag{brackets}>\n"),
        ] {
            assert_eq!(too_deep(&text), None, "{text}");
        }
    }

    /// Text that looks like a quote, a comment or a scalar to a careless scan, and is
    /// not one to libyaml.
    #[test]
    fn brackets_that_are_collections_are_counted_whatever_surrounds_them() {
        let deep = nested("[", "]", MAX_DEPTH + 1);
        for text in [
            // A quote that ends on the next line, brackets after it on each line.
            format!("after: [ \"a\n \", {deep}, \"\n \"]\n"),
            // A plain scalar with a quote in it: not a quote.
            format!("exec: echo it 's\nafter: {deep} # '\n"),
            format!("after: [a 'b, {deep}, c']\n"),
            // A plain scalar ends where a line is indented no more than its key.
            format!("exec: echo\n  \"x\nafter: {deep}\nz: \"q\"\n"),
            // A block scalar ends where a line is indented less than its first.
            format!("exec: |\n    it 's\n  \nafter: {deep} # '\n"),
            format!("- a: |\n    text '\n  after: {deep} # '\n"),
            // In a flow, `#` right after text is text; a comment needs a blank.
            format!("after: [a#b, {deep}]\n"),
            // A flow collection as a key: the mapping's indentation is the `{`'s,
            // so `'y` continues the plain `x` and is no quote.
            format!("k:\n  {{a: b}}k: x\n    'y\n  z: {deep} # '\n"),
            // A tag ends at `,` in a flow.
            format!("after: [!t,{deep}]\n"),
            // A line break libyaml knows and `lines()` does not.
            format!("exec: x #\u{2028}after: {deep}\n"),
        ] {
            assert!(too_deep(&text).is_some(), "{text}");
        }
    }

    #[test]
    fn a_megabyte_at_the_bound_is_scanned_to_its_end() {
        let wide = format!(
            "after: {}{}{}\n",
            "[".repeat(MAX_DEPTH),
            "a, ".repeat(300_000),
            "]".repeat(MAX_DEPTH)
        );
        assert_eq!(too_deep(&wide), None);
        assert_eq!(
            too_deep(&format!("{wide}x: {}", nested("[", "]", 65))),
            Some(2)
        );
    }
}
