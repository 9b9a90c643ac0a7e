//! Unit tests of cgroup.rs and its rooms (no cgroup is touched).

use super::*;

#[test]
fn group_names_are_escaped_paths() {
    assert_eq!(group_name(Path::new("/service/web")), "service-web.service");
    assert_eq!(
        group_name(Path::new("/service/web/log")),
        "service-web-log.service"
    );
    assert_eq!(
        group_name(Path::new("/srv/my-app/.x y")),
        "srv-my\\x2dapp-.x\\x20y.service"
    );
    assert_eq!(group_name(Path::new("/.hidden")), "\\x2ehidden.service");
    let long = format!("/{}", "a/".repeat(300));
    let name = group_name(Path::new(&long));
    assert!(name.len() < 255, "{}", name.len());
    assert_ne!(name, group_name(Path::new(&format!("/b{long}"))));
}

#[test]
fn the_state_field_round_trips() {
    let field = state_field(Path::new("/sys/fs/cgroup/runtree/a.service"));
    let state = format!("state=running\n{field}directory=1:2\n");
    assert_eq!(
        group_in_state(state.as_bytes()),
        Some(PathBuf::from("/sys/fs/cgroup/runtree/a.service"))
    );
    assert_eq!(group_in_state(b"state=running\n"), None);
}

#[test]
fn mount_points_are_unescaped() {
    assert_eq!(unescape_mount("/a\\040b"), "/a b");
    assert_eq!(unescape_mount("/sys/fs/cgroup"), "/sys/fs/cgroup");
}

#[test]
fn bytes_for_people() {
    assert_eq!(human_bytes(512), "512B");
    assert_eq!(human_bytes(1536), "1.5K");
    assert_eq!(human_bytes(64 << 20), "64.0M");
}

#[test]
fn init_stays_in_the_real_root_and_in_its_own_leaf() {
    // A stand-in directory: the real root has no cgroup.type; a leaf named `init` is
    // the one a previous start made.
    let dir = tempfile::tempdir().unwrap();
    assert_eq!(
        init_leaf_in(dir.path()),
        Ok(InitLeaf::Stayed("in the hierarchy's root group"))
    );
    let leaf = dir.path().join(INIT);
    std::fs::create_dir(&leaf).unwrap();
    std::fs::write(leaf.join("cgroup.type"), "domain\n").unwrap();
    assert_eq!(
        init_leaf_in(&leaf),
        Ok(InitLeaf::Stayed("already in a leaf of its own"))
    );
    assert!(!leaf.join(INIT).exists());
}
