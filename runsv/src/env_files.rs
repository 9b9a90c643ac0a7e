//! The environment files a YAML service names (`env_file`, `env_dir`), read each time
//! runsv starts one of the service's processes (so an edit applies at the next start,
//! as with `chpst -e` in a run script), and runit's env dir rule, which chpst's `-e`
//! and `envdir` share.

use crate::definition::ProcessControls;
use crate::reader::{self, Links};
use std::fs::File;
use std::io::{self, Read};
use std::path::Path;

/// Longer first lines (env dir) or files (env file) are refused rather than read on.
const MAX_ENV_FILE: u64 = 1024 * 1024;

/// What one file of an env dir says: its first line without trailing blanks, NULs made
/// newlines (how a value can hold a newline); an empty file removes the variable.
pub fn envdir_value(content: &[u8]) -> Option<Vec<u8>> {
    if content.is_empty() {
        return None;
    }
    let line = content.split(|&b| b == b'\n').next().unwrap_or(b"");
    let kept = line
        .iter()
        .rposition(|&b| b != b' ' && b != b'\t')
        .map_or(0, |last| last + 1);
    Some(
        line[..kept]
            .iter()
            .map(|&b| if b == 0 { b'\n' } else { b })
            .collect(),
    )
}

/// Reads up to the end of the first line: that is all a value is, and a huge file must
/// not be read whole.
pub fn first_line(file: &mut File) -> io::Result<Vec<u8>> {
    let mut content = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        let n = match file.read(&mut chunk) {
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        if n == 0 {
            return Ok(content);
        }
        content.extend_from_slice(&chunk[..n]);
        if chunk[..n].contains(&b'\n') || content.len() as u64 > MAX_ENV_FILE {
            return Ok(content);
        }
    }
}

/// The service's environment: `variables` (from `environ`), then what `env_file` sets,
/// then what `env_dir` sets or removes. `None` when the service names neither file.
/// Errors name the file (and line) and the cause.
pub fn environment(
    variables: &[(String, String)],
    controls: &ProcessControls,
) -> Result<Option<Vec<(String, String)>>, String> {
    if controls.env_file.is_none() && controls.env_dir.is_none() {
        return Ok(None);
    }
    let mut variables = variables.to_vec();
    if let Some(file) = &controls.env_file {
        for (name, value) in read_env_file(file)? {
            set(&mut variables, name, Some(value));
        }
    }
    if let Some(dir) = &controls.env_dir {
        for (name, value) in read_env_dir(dir)? {
            set(&mut variables, name, value);
        }
    }
    Ok(Some(variables))
}

fn set(variables: &mut Vec<(String, String)>, name: String, value: Option<String>) {
    let at = variables.iter().position(|(set, _)| *set == name);
    match (at, value) {
        (Some(at), Some(value)) => variables[at].1 = value,
        (None, Some(value)) => variables.push((name, value)),
        (Some(at), None) => {
            variables.remove(at);
        }
        (None, None) => {}
    }
}

/// `NAME=VALUE` lines; blank lines and lines starting with `#` are skipped, an `export `
/// before the name is allowed, and one pair of quotes around the whole value ('…' or
/// "…") is removed (as in /etc/default files); nothing else is interpreted.
pub fn read_env_file(path: &Path) -> Result<Vec<(String, String)>, String> {
    let bytes = reader::read(path, MAX_ENV_FILE, Links::Follow)
        .map_err(|error| format!("env_file {}: {}", path.display(), error.reason()))?;
    let text = String::from_utf8(bytes)
        .map_err(|_| format!("env_file {}: not valid UTF-8", path.display()))?;
    let mut variables = Vec::new();
    for (index, line) in text.lines().enumerate() {
        let problem =
            |cause: &str| format!("env_file {}: line {}: {cause}", path.display(), index + 1);
        let line = line.trim_start();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let line = line.strip_prefix("export ").map_or(line, str::trim_start);
        let Some((name, value)) = line.split_once('=') else {
            return Err(problem("not NAME=VALUE"));
        };
        if name.is_empty() || name.contains(|c: char| c.is_whitespace()) {
            return Err(problem(&format!("`{name}` cannot be a variable name")));
        }
        if value.contains('\0') {
            return Err(problem("a value cannot contain a NUL character"));
        }
        let unquoted = ['"', '\'']
            .into_iter()
            .find_map(|quote| value.strip_prefix(quote)?.strip_suffix(quote))
            .filter(|_| value.len() >= 2)
            .unwrap_or(value);
        variables.push((name.to_string(), unquoted.to_string()));
    }
    Ok(variables)
}

/// runit's env dir: every file not starting with a dot sets the variable it names to
/// its [`envdir_value`], or removes it (`None`); subdirectories are skipped, as chpst -e
/// does. In name order, so the outcome does not depend on the directory's order.
pub fn read_env_dir(dir: &Path) -> Result<Vec<(String, Option<String>)>, String> {
    let fail = |what: &str, error: &dyn std::fmt::Display| {
        format!("env_dir {}: {what}: {error}", dir.display())
    };
    let entries = std::fs::read_dir(dir).map_err(|e| fail("cannot read the directory", &e))?;
    let mut names = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|e| fail("cannot read the directory", &e))?;
        let name = entry.file_name();
        let Some(name) = name.to_str() else {
            return Err(fail("a file name is not UTF-8", &name.to_string_lossy()));
        };
        if !name.starts_with('.') {
            names.push(name.to_string());
        }
    }
    names.sort();
    let mut changes = Vec::new();
    for name in names {
        let path = dir.join(&name);
        if name.contains('=') {
            return Err(fail(&name, &"a variable name cannot contain `=`"));
        }
        let content = match reader::open_regular(&path, Links::Follow) {
            Ok(mut file) => first_line(&mut file).map_err(|e| fail(&name, &e))?,
            // A dangling link reads as empty: removes the variable, as in chpst.
            Err(error) if error.is_missing() => Vec::new(),
            Err(error)
                if matches!(
                    error.cause,
                    reader::Cause::Kind {
                        found: reader::Kind::Directory,
                        ..
                    }
                ) =>
            {
                continue
            }
            Err(error) => return Err(fail(&name, &error.reason())),
        };
        let value = match envdir_value(&content) {
            Some(value) => {
                Some(String::from_utf8(value).map_err(|_| fail(&name, &"the value is not UTF-8"))?)
            }
            None => None,
        };
        changes.push((name, value));
    }
    Ok(changes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;

    #[test]
    fn envdir_values_as_runit_reads_them() {
        assert_eq!(envdir_value(b""), None);
        assert_eq!(envdir_value(b"\n"), Some(vec![]));
        assert_eq!(envdir_value(b"a b \t\nsecond"), Some(b"a b".to_vec()));
        assert_eq!(envdir_value(b"x\0y\nz"), Some(b"x\ny".to_vec()));
        assert_eq!(envdir_value(b"  lead"), Some(b"  lead".to_vec()));
    }

    fn controls(dir: &Path) -> ProcessControls {
        ProcessControls {
            env_file: Some(dir.join("file")),
            env_dir: Some(dir.join("env")),
            ..ProcessControls::default()
        }
    }

    #[test]
    fn environ_then_env_file_then_env_dir() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(
            dir.path().join("file"),
            "# comment\n\nA=from file\n  export B=\"quoted value\"\nC='x'\nD=a=b\nGONE=1\n",
        )
        .unwrap();
        fs::create_dir(dir.path().join("env")).unwrap();
        fs::create_dir(dir.path().join("env/sub")).unwrap();
        fs::write(dir.path().join("env/C"), "from dir  \nignored\n").unwrap();
        fs::write(dir.path().join("env/GONE"), "").unwrap();
        fs::write(dir.path().join("env/PATH"), "").unwrap();
        fs::write(dir.path().join("env/.hidden"), "no").unwrap();
        fs::write(dir.path().join("env/NL"), "one\0two").unwrap();
        let environ = [
            ("PATH".to_string(), "/bin".to_string()),
            ("A".to_string(), "old".to_string()),
        ];
        let got = environment(&environ, &controls(dir.path()))
            .unwrap()
            .unwrap();
        let expected = [
            ("A", "from file"),
            ("B", "quoted value"),
            ("C", "from dir"),
            ("D", "a=b"),
            ("NL", "one\ntwo"),
        ];
        let expected: Vec<(String, String)> = expected
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        assert_eq!(got, expected);
        assert_eq!(environment(&environ, &ProcessControls::default()), Ok(None));
    }

    #[test]
    fn errors_name_the_file_line_and_cause() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("file");
        fs::write(&file, "A=1\nnot a variable\n").unwrap();
        assert_eq!(
            read_env_file(&file),
            Err(format!(
                "env_file {}: line 2: not NAME=VALUE",
                file.display()
            ))
        );
        fs::write(&file, "A B=1\n").unwrap();
        assert_eq!(
            read_env_file(&file),
            Err(format!(
                "env_file {}: line 1: `A B` cannot be a variable name",
                file.display()
            ))
        );
        let missing = dir.path().join("missing");
        let error = read_env_file(&missing).unwrap_err();
        assert!(
            error.starts_with(&format!("env_file {}: ", missing.display())),
            "{error}"
        );
        let error = read_env_dir(&missing).unwrap_err();
        assert!(
            error.starts_with(&format!(
                "env_dir {}: cannot read the directory: ",
                missing.display()
            )),
            "{error}"
        );
    }
}
