//! `save` and `load` say what a Docker user expects: `load` prints "Loaded image" once per
//! tag (with or without -q), and `save -o` into a missing directory names the user's path
//! and the directory, never an internal temporary file, and leaves nothing behind.

mod common;

use common::{need_root, stderr, Env, IMAGE};

#[test]
fn load_reports_each_image_once_and_save_names_the_users_path() {
    if !need_root("load_reports_each_image_once_and_save_names_the_users_path") {
        return;
    }
    let env = Env::new();
    let dir = tempfile::tempdir().unwrap();
    let tar = dir.path().join("img.tar");
    env.ok(&["save", "-o", tar.to_str().unwrap(), IMAGE]);
    for quiet in [false, true] {
        let mut args = vec!["load", "-i", tar.to_str().unwrap()];
        if quiet {
            args.push("-q");
        }
        let out = env.ok(&args);
        assert_eq!(
            out.matches("Loaded image: test/busybox:1").count(),
            1,
            "quiet={quiet}: {out}"
        );
    }
    let missing = dir.path().join("no/such/dir/x.tar");
    let o = env.gcr(&["save", "-o", missing.to_str().unwrap(), IMAGE]);
    assert_eq!(o.status.code(), Some(1));
    let err = stderr(&o);
    assert!(
        err.contains(&format!("cannot write {}", missing.display()))
            && err.contains("does not exist")
            && !err.contains("gcr-partial"),
        "{err}"
    );
    assert!(!dir.path().join("no").exists());
}
