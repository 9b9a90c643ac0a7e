//! Service names that are not UTF-8. runit's sv prints a name's bytes as they are; sv
//! builds its lines as text, so each byte that is not part of valid UTF-8 travels in the
//! text as a private-use character (U+10FF80 + byte - 0x80, plane 16) and is written
//! back as that byte when the line is written. Such bytes are always 0x80 or more, so
//! the 128 characters U+10FF80..U+10FFFF suffice; a name that really contains one of
//! them (private use, unassigned by Unicode) is printed as the byte it stands for.

use std::borrow::Cow;
use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;

const BASE: u32 = 0x10FF00;

/// The name as text, its invalid bytes carried as private-use characters.
pub fn text(name: &OsStr) -> String {
    let mut bytes = name.as_bytes();
    let mut text = String::with_capacity(bytes.len());
    loop {
        match std::str::from_utf8(bytes) {
            Ok(valid) => {
                text.push_str(valid);
                return text;
            }
            Err(error) => {
                let (valid, rest) = bytes.split_at(error.valid_up_to());
                text.push_str(std::str::from_utf8(valid).unwrap_or_default());
                let invalid = error.error_len().unwrap_or(rest.len());
                for &byte in rest.get(..invalid).unwrap_or_default() {
                    text.extend(char::from_u32(BASE + u32::from(byte)));
                }
                bytes = rest.get(invalid..).unwrap_or_default();
            }
        }
    }
}

/// The byte a character of [`text`] stands for, if it is one.
pub fn byte(c: char) -> Option<u8> {
    let code = u32::from(c);
    (BASE + 0x80..=BASE + 0xFF)
        .contains(&code)
        .then(|| (code - BASE) as u8)
}

/// The bytes to write for a line: the text, with the name's bytes restored.
pub fn bytes(line: &str) -> Cow<'_, [u8]> {
    if !line.chars().any(|c| byte(c).is_some()) {
        return Cow::Borrowed(line.as_bytes());
    }
    let mut bytes = Vec::with_capacity(line.len());
    for c in line.chars() {
        match byte(c) {
            Some(raw) => bytes.push(raw),
            None => bytes.extend_from_slice(c.encode_utf8(&mut [0; 4]).as_bytes()),
        }
    }
    Cow::Owned(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_come_back_byte_for_byte() {
        for name in [
            b"plain".as_slice(),
            "café".as_bytes(),
            b"caf\xe9",
            b"\xff\xfe/x\x80",
            b"half \xe2\x82",
        ] {
            let name = OsStr::from_bytes(name);
            let text = text(name);
            assert_eq!(
                &*bytes(&format!("ok: {text}: done")),
                [b"ok: ", name.as_bytes(), b": done"].concat()
            );
        }
        assert_eq!(text(OsStr::new("café")), "café");
        assert_eq!(byte('é'), None);
    }
}
