//! `-u`/`-U` accounts as runit resolves them: `user` (its uid and only its primary
//! group, no initgroups), `user:group[:group…]` (the groups by name, the first one the
//! gid), `:uid:gid[:gid…]` (numbers, no lookup). Looked up in /etc/passwd and /etc/group
//! themselves, after any chroot, so a static chpst needs no NSS.

use crate::plan::Account;
use runsv::definition::accounts::{group_named, user_named};
use std::path::Path;

/// runit's limit on the groups of one `-u`.
const MAX_GROUPS: usize = 60;

#[derive(Debug, PartialEq, Eq)]
pub struct Ids {
    pub uid: u32,
    /// The gid first, then every further supplementary group; never empty.
    pub gids: Vec<u32>,
}

#[derive(Debug, PartialEq, Eq)]
pub enum Failure {
    /// `:uid:gid` that is not numbers: runit's `invalid uid/gids: REST`.
    Invalid,
    /// No such account or group: `unknown user/group: SPEC` (`unknown account: NAME`).
    Unknown,
    /// The account files could not be read: `unable to get password/group file entry`.
    Files(String),
}

/// Reads an account file (/etc/passwd, /etc/group) when it is needed, and only then:
/// `-u user` works without an /etc/group, as with getpwnam(3).
pub fn read_file(path: &str) -> Result<String, Failure> {
    std::fs::read(path)
        .map(|bytes| String::from_utf8_lossy(&bytes).into_owned())
        .map_err(|e| Failure::Files(runsv::errno_text::describe(&e).to_string()))
}

/// djb's scan_ulong: the digits at the start of `text`, and what follows them.
fn leading_number(text: &[u8]) -> (u32, &[u8]) {
    let digits = text.iter().take_while(|b| b.is_ascii_digit()).count();
    let value = text[..digits].iter().fold(0u64, |n, &b| {
        n.wrapping_mul(10).wrapping_add(u64::from(b - b'0'))
    });
    // runit casts the unsigned long to uid_t/gid_t: the low 32 bits.
    (value as u32, &text[digits..])
}

/// `uid:gid[:gid…]` (after the leading colon). An empty number is 0, as in runit.
fn numeric(spec: &[u8]) -> Result<Ids, Failure> {
    let (uid, rest) = leading_number(spec);
    let Some(mut rest) = rest.strip_prefix(b":") else {
        return Err(Failure::Invalid);
    };
    let mut gids = Vec::new();
    loop {
        let (gid, after) = leading_number(rest);
        gids.push(gid);
        match after.strip_prefix(b":") {
            Some(more) if gids.len() < MAX_GROUPS => rest = more,
            _ => {
                rest = after;
                break;
            }
        }
    }
    if rest.is_empty() {
        Ok(Ids { uid, gids })
    } else {
        Err(Failure::Invalid)
    }
}

pub fn resolve(
    account: &Account,
    read: impl Fn(&str) -> Result<String, Failure>,
) -> Result<Ids, Failure> {
    let spec = account.spec.as_slice();
    if account.with_groups {
        if let Some(numbers) = spec.strip_prefix(b":") {
            return numeric(numbers);
        }
    }
    let (user, groups) = match spec.iter().position(|&b| b == b':') {
        Some(colon) if account.with_groups => (&spec[..colon], Some(&spec[colon + 1..])),
        _ => (spec, None),
    };
    let user = std::str::from_utf8(user).map_err(|_| Failure::Unknown)?;
    let passwd = read("/etc/passwd")?;
    let entry = user_named(&passwd, Path::new("/etc/passwd"), user)
        .map_err(Failure::Files)?
        .ok_or(Failure::Unknown)?;
    let Some(groups) = groups else {
        return Ok(Ids {
            uid: entry.uid,
            gids: vec![entry.gid],
        });
    };
    let group = read("/etc/group")?;
    let mut gids = Vec::new();
    for name in groups.split(|&b| b == b':').take(MAX_GROUPS) {
        let name = std::str::from_utf8(name).map_err(|_| Failure::Unknown)?;
        let gid = group_named(&group, Path::new("/etc/group"), name)
            .map_err(Failure::Files)?
            .ok_or(Failure::Unknown)?;
        gids.push(gid);
    }
    Ok(Ids {
        uid: entry.uid,
        gids,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn files(path: &str) -> Result<String, Failure> {
        Ok(match path {
            "/etc/passwd" => "root:x:0:0::/root:/bin/sh\nwww:x:33:34::/var/www:/bin/sh\n",
            _ => "root:x:0:\nstaff:x:50:www\nadm:x:4:\n",
        }
        .to_string())
    }

    fn ids(spec: &str, with_groups: bool) -> Result<Ids, Failure> {
        let account = Account {
            spec: spec.as_bytes().to_vec(),
            with_groups,
        };
        resolve(&account, files)
    }

    #[test]
    fn a_user_alone_gets_only_its_primary_group() {
        assert_eq!(
            ids("www", true),
            Ok(Ids {
                uid: 33,
                gids: vec![34]
            })
        );
        assert_eq!(ids("33", true), Err(Failure::Unknown));
    }

    #[test]
    fn groups_by_name_replace_the_primary_one() {
        assert_eq!(
            ids("www:staff:adm", true),
            Ok(Ids {
                uid: 33,
                gids: vec![50, 4]
            })
        );
        assert_eq!(ids("www:nosuch", true), Err(Failure::Unknown));
        assert_eq!(ids("www:", true), Err(Failure::Unknown));
        // setuidgid takes the whole word as an account name.
        assert_eq!(ids("www:staff", false), Err(Failure::Unknown));
    }

    #[test]
    fn numeric_forms_as_runit_scans_them() {
        assert_eq!(
            ids(":5:6:7", true),
            Ok(Ids {
                uid: 5,
                gids: vec![6, 7]
            })
        );
        assert_eq!(
            ids(":5:", true),
            Ok(Ids {
                uid: 5,
                gids: vec![0]
            })
        );
        assert_eq!(ids(":5", true), Err(Failure::Invalid));
        assert_eq!(ids(":5:x", true), Err(Failure::Invalid));
        assert_eq!(ids(":abc", true), Err(Failure::Invalid));
    }
}
