//! Fuzz target: `PUT /containers/{id}/archive`: the bytes up to the first newline are the
//! query (`path=…&copyUIDGID=…`), the rest the tar body, unpacked by gcr-api's archive PUT
//! path (the engine's copy) into a tree standing for a container's root. The tree holds a
//! directory, a file, and symlinks that point out of it (absolute and `..`). It must never
//! panic, and nothing may appear outside the root: after each run the sandbox holds only
//! `root/`, and the file next to the root is untouched.
#![no_main]

use gcr_api::fuzzing::archive_put;
use libfuzzer_sys::fuzz_target;
use std::path::PathBuf;

fn sandbox() -> PathBuf {
    std::env::temp_dir().join(format!("gcr-fuzz-archive-{}", std::process::id()))
}

fuzz_target!(|data: &[u8]| {
    let sb = sandbox();
    let root = sb.join("root");
    let _ = std::fs::remove_dir_all(&sb);
    std::fs::create_dir_all(root.join("etc")).expect("make the fuzz root");
    std::fs::write(root.join("etc/hostname"), "fuzz\n").expect("write a file");
    std::fs::write(sb.join("outside"), "keep\n").expect("write the outside file");
    let link = |target: &str, name: &str| {
        std::os::unix::fs::symlink(target, root.join(name)).expect("make a symlink")
    };
    link(sb.to_str().expect("utf-8 sandbox"), "abs");
    link("../..", "up");
    link("/", "slash");
    let split = data.iter().position(|b| *b == b'\n').unwrap_or(data.len());
    let query = String::from_utf8_lossy(&data[..split]);
    let tar = data.get(split + 1..).unwrap_or(&[]);
    if let Err(e) = archive_put(&root, &query, tar) {
        assert!(!e.message.trim().is_empty(), "a refusal says why");
    }
    let mut names: Vec<_> = std::fs::read_dir(&sb)
        .expect("list sandbox")
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(names, ["outside", "root"], "the unpack escaped the root");
    assert_eq!(
        std::fs::read_to_string(sb.join("outside")).ok().as_deref(),
        Some("keep\n"),
        "the file outside the root changed"
    );
    let _ = std::fs::remove_dir_all(&sb);
});
