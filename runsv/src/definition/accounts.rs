//! Users and groups, read from /etc/passwd and /etc/group directly (by runsv and chpst):
//! a statically linked program cannot use glibc's NSS, and these two files are what
//! every system that runs it has.

use std::path::{Path, PathBuf};

/// One line of /etc/passwd, as far as running a service needs it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PasswdEntry {
    pub name: String,
    pub uid: u32,
    pub gid: u32,
    pub home: PathBuf,
}

/// A non-blank, non-comment line and its 1-based number. Lines starting with `+` or `-`
/// are NIS compatibility markers, not accounts.
fn account_lines(text: &str) -> impl Iterator<Item = (usize, &str)> {
    text.lines()
        .enumerate()
        .map(|(index, line)| (index + 1, line.trim_end_matches('\r')))
        .filter(|(_, line)| {
            let line = line.trim();
            !(line.is_empty()
                || line.starts_with('#')
                || line.starts_with('+')
                || line.starts_with('-'))
        })
}

/// The `count` colon-separated fields of a line.
fn fields(line: &str, count: usize) -> Result<Vec<&str>, String> {
    let fields: Vec<&str> = line.split(':').collect();
    if fields.len() != count {
        return Err(format!("has {} fields instead of {count}", fields.len()));
    }
    Ok(fields)
}

/// A uid or gid field, `what` naming it in the error.
fn id(field: &str, what: &str) -> Result<u32, String> {
    field
        .parse()
        .map_err(|_| format!("{what} `{field}` is not a number"))
}

fn parse_passwd_line(line: &str) -> Result<PasswdEntry, String> {
    let fields = fields(line, 7)?;
    let uid = id(fields[2], "uid")?;
    let gid = id(fields[3], "gid")?;
    // login(1) uses / for an account without a home, and so does runsv.
    let home = if fields[5].is_empty() { "/" } else { fields[5] };
    Ok(PasswdEntry {
        name: fields[0].to_string(),
        uid,
        gid,
        home: PathBuf::from(home),
    })
}

struct GroupEntry<'a> {
    gid: u32,
    members: Vec<&'a str>,
}

fn parse_group_line(line: &str) -> Result<GroupEntry<'_>, String> {
    let fields = fields(line, 4)?;
    let gid = id(fields[2], "gid")?;
    let members = fields[3]
        .split(',')
        .map(str::trim)
        .filter(|member| !member.is_empty())
        .collect();
    Ok(GroupEntry { gid, members })
}

fn malformed(path: &Path, line_number: usize, problem: &str) -> String {
    format!(
        "{} line {} is malformed: {}",
        path.display(),
        line_number,
        problem
    )
}

/// The entry named exactly `wanted` (the first field), parsed; `None` when no line has
/// that name. A malformed line is skipped unless it is the one asked for: then it is
/// reported, rather than silently picking a later line.
fn named<'a, T>(
    text: &'a str,
    path: &Path,
    wanted: &str,
    parse: impl Fn(&'a str) -> Result<T, String>,
) -> Option<Result<T, String>> {
    let (line_number, line) =
        account_lines(text).find(|(_, line)| line.split(':').next().unwrap_or("") == wanted)?;
    Some(parse(line).map_err(|problem| malformed(path, line_number, &problem)))
}

/// The account named `wanted`, or else, when `wanted` is a number, the first account with
/// that uid (names win, as with chown(1)).
pub fn find_user(
    passwd_text: &str,
    passwd_path: &Path,
    wanted: &str,
) -> Result<PasswdEntry, String> {
    if let Some(found) = named(passwd_text, passwd_path, wanted, parse_passwd_line) {
        return found;
    }
    if let Ok(uid) = wanted.parse::<u32>() {
        let by_uid = account_lines(passwd_text)
            .filter_map(|(_, line)| parse_passwd_line(line).ok())
            .find(|entry| entry.uid == uid);
        return by_uid.ok_or_else(|| {
            format!(
                "no user with uid {} in {} (a user needs an entry there, for its group and home)",
                uid,
                passwd_path.display()
            )
        });
    }
    Err(format!("no user `{}` in {}", wanted, passwd_path.display()))
}

/// The gid of the group named `wanted`; a number is taken as a gid even without an entry,
/// since the number is all that setgid(2) needs.
pub fn find_group_id(group_text: &str, group_path: &Path, wanted: &str) -> Result<u32, String> {
    match group_named(group_text, group_path, wanted)? {
        Some(gid) => Ok(gid),
        None => wanted
            .parse::<u32>()
            .map_err(|_| format!("no group `{}` in {}", wanted, group_path.display())),
    }
}

/// The account named exactly `wanted`, as getpwnam(3) finds it: no numeric fallback.
/// `Ok(None)` when no account has that name; the malformed line of that account is an
/// error, as in `find_user`.
pub fn user_named(
    passwd_text: &str,
    passwd_path: &Path,
    wanted: &str,
) -> Result<Option<PasswdEntry>, String> {
    named(passwd_text, passwd_path, wanted, parse_passwd_line).transpose()
}

/// The gid of the group named exactly `wanted`, as getgrnam(3) finds it: no numeric
/// fallback (runit's `chpst -u user:group` takes names only). `Ok(None)` when no group
/// has that name.
pub fn group_named(
    group_text: &str,
    group_path: &Path,
    wanted: &str,
) -> Result<Option<u32>, String> {
    named(group_text, group_path, wanted, |line| {
        parse_group_line(line).map(|entry| entry.gid)
    })
    .transpose()
}

/// What initgroups(3) would set: `primary_gid` first, then every group that lists
/// `user_name` as a member, each once.
pub fn supplementary_groups(
    group_text: &str,
    group_path: &Path,
    user_name: &str,
    primary_gid: u32,
) -> Result<Vec<u32>, String> {
    let mut groups = vec![primary_gid];
    for (line_number, line) in account_lines(group_text) {
        // Only a line that could list the user matters; a broken line elsewhere must not
        // keep this service from starting.
        if !line
            .split(':')
            .nth(3)
            .is_some_and(|members| members.split(',').any(|member| member.trim() == user_name))
        {
            continue;
        }
        let entry = parse_group_line(line)
            .map_err(|problem| malformed(group_path, line_number, &problem))?;
        if entry.members.contains(&user_name) && !groups.contains(&entry.gid) {
            groups.push(entry.gid);
        }
    }
    Ok(groups)
}

#[cfg(test)]
mod tests {
    use super::*;

    const PASSWD: &str = "\
# comment line
root:x:0:0:root:/root:/bin/bash
daemon:x:1:1:daemon:/usr/sbin:/usr/sbin/nologin

+nisuser::::::
www:x:33:33:www-data:/var/www:/usr/sbin/nologin
broken:x:notanumber:1:Broken:/home/broken:/bin/sh
short:x:5
homeless:x:77:77:No home::/bin/sh
1000:x:2000:2000:numeric name:/home/n:/bin/sh
alice:x:1000:1000:Alice:/home/alice:/bin/sh\r
";

    const GROUP: &str = "\
root:x:0:
daemon:x:1:alice
staff:x:50:bob, alice ,carol
alice:x:1000:
wheel:x:10:bob
malformed-but-irrelevant:x
oops:x:NaN:alice
";

    fn passwd() -> &'static Path {
        Path::new("/etc/passwd")
    }

    #[test]
    fn a_user_is_found_by_name_with_uid_gid_and_home() {
        assert_eq!(
            find_user(PASSWD, passwd(), "www"),
            Ok(PasswdEntry {
                name: "www".to_string(),
                uid: 33,
                gid: 33,
                home: PathBuf::from("/var/www"),
            })
        );
    }

    #[test]
    fn carriage_returns_do_not_stick_to_the_last_field() {
        let alice = find_user(PASSWD, passwd(), "alice").unwrap();
        assert_eq!(alice.home, PathBuf::from("/home/alice"));
        assert_eq!(alice.uid, 1000);
    }

    #[test]
    fn a_number_is_a_uid_unless_an_account_has_that_name() {
        assert_eq!(find_user(PASSWD, passwd(), "33").unwrap().name, "www");
        assert_eq!(find_user(PASSWD, passwd(), "1000").unwrap().uid, 2000);
        assert_eq!(find_user(PASSWD, passwd(), "2000").unwrap().name, "1000");
    }

    #[test]
    fn an_empty_home_becomes_the_root_directory() {
        let homeless = find_user(PASSWD, passwd(), "homeless").unwrap();
        assert_eq!(homeless.home, PathBuf::from("/"));
    }

    #[test]
    fn unknown_users_and_malformed_lines_are_errors_naming_the_file() {
        // (user, error); a malformed line is reported only for the user wanted, with
        // its number.
        #[rustfmt::skip]
        let cases = [
            ("mallory", "no user `mallory` in /etc/passwd"),
            ("nisuser", "no user `nisuser` in /etc/passwd"),
            ("comment line", "no user `comment line` in /etc/passwd"),
            ("broken", "/etc/passwd line 7 is malformed: uid `notanumber` is not a number"),
            ("short", "/etc/passwd line 8 is malformed: has 3 fields instead of 7"),
        ];
        for (name, error) in cases {
            assert_eq!(find_user(PASSWD, passwd(), name), Err(error.to_string()));
        }
        let error = find_user(PASSWD, passwd(), "4242").unwrap_err();
        assert!(
            error.starts_with("no user with uid 4242 in /etc/passwd"),
            "{error}"
        );
    }

    #[test]
    fn groups_are_found_by_name_or_taken_as_numbers() {
        let group = Path::new("/etc/group");
        assert_eq!(find_group_id(GROUP, group, "staff"), Ok(50));
        assert_eq!(find_group_id(GROUP, group, "4321"), Ok(4321));
        assert_eq!(
            find_group_id(GROUP, group, "nosuch"),
            Err("no group `nosuch` in /etc/group".to_string())
        );
        assert_eq!(
            find_group_id(GROUP, group, "oops"),
            Err("/etc/group line 7 is malformed: gid `NaN` is not a number".to_string())
        );
    }

    #[test]
    fn user_named_takes_names_only() {
        assert_eq!(
            user_named(PASSWD, passwd(), "www").unwrap().unwrap().uid,
            33
        );
        assert_eq!(user_named(PASSWD, passwd(), "33"), Ok(None));
        assert_eq!(
            user_named(PASSWD, passwd(), "1000").unwrap().unwrap().uid,
            2000
        );
        assert!(user_named(PASSWD, passwd(), "broken").is_err());
    }

    #[test]
    fn group_named_takes_names_only() {
        let group = Path::new("/etc/group");
        assert_eq!(group_named(GROUP, group, "staff"), Ok(Some(50)));
        assert_eq!(group_named(GROUP, group, "50"), Ok(None));
        assert_eq!(group_named(GROUP, group, ""), Ok(None));
        assert!(group_named(GROUP, group, "oops").is_err());
    }

    #[test]
    fn supplementary_groups_are_the_primary_then_every_group_listing_the_user() {
        let group = Path::new("/etc/group");
        assert_eq!(
            supplementary_groups(GROUP, group, "bob", 100),
            Ok(vec![100, 50, 10])
        );
        assert_eq!(
            supplementary_groups(GROUP, group, "carol", 50),
            Ok(vec![50])
        );
        assert_eq!(supplementary_groups("", group, "carol", 7), Ok(vec![7]));
    }

    #[test]
    fn a_malformed_group_listing_the_user_is_an_error_not_a_silently_missing_group() {
        assert_eq!(
            supplementary_groups(GROUP, Path::new("/etc/group"), "alice", 1000),
            Err("/etc/group line 7 is malformed: gid `NaN` is not a number".to_string())
        );
    }
}
