//! Images whose paths are symlinks that point out of the root (issue 13, item 6). Volume
//! copy-up, volume, tmpfs and `/etc/{hosts,hostname,resolv.conf}` mount targets, the
//! workdir and the image's `/etc/passwd` are all resolved inside the container's root: such
//! images run, and a marker directory on the host that their links name is neither read
//! (its content shows up nowhere: not in the container, not in a volume) nor written
//! (names, contents and times unchanged).

mod common;

use std::path::{Path, PathBuf};

use common::*;

const SECRET: &str = "MARKER-SECRET-6c1d";

/// A host directory outside every container root, for the images' links to point at.
struct Marker {
    dir: tempfile::TempDir,
    before: Vec<String>,
}

impl Marker {
    fn new() -> Marker {
        let dir = tempfile::Builder::new()
            .prefix("gcr-symlink-marker-")
            .tempdir()
            .expect("marker tempdir");
        let p = dir.path();
        for sub in ["x", "sub", "wd/sub"] {
            std::fs::create_dir_all(p.join(sub)).unwrap();
            std::fs::write(p.join(sub).join("secret"), format!("{SECRET}\n")).unwrap();
        }
        std::fs::write(p.join("hostname"), format!("{SECRET}\n")).unwrap();
        std::fs::write(p.join("hosts"), format!("10.9.9.9 {SECRET}\n")).unwrap();
        std::fs::write(
            p.join("passwd"),
            "evil:x:4242:4242:MARKER-SECRET-6c1d:/:/bin/sh\n",
        )
        .unwrap();
        let mut m = Marker {
            dir,
            before: Vec::new(),
        };
        m.before = m.snapshot();
        m
    }

    fn path(&self) -> &str {
        self.dir.path().to_str().expect("utf-8 temp path")
    }

    /// Every entry with its kind, size, modification time and content.
    fn snapshot(&self) -> Vec<String> {
        fn walk(dir: &Path, base: &Path, out: &mut Vec<String>) {
            use std::os::unix::fs::MetadataExt;
            let m = std::fs::symlink_metadata(dir).unwrap();
            out.push(format!(
                "{} dir {}.{}",
                dir.strip_prefix(base).unwrap().display(),
                m.mtime(),
                m.mtime_nsec()
            ));
            for e in std::fs::read_dir(dir).unwrap() {
                let p = e.unwrap().path();
                let m = std::fs::symlink_metadata(&p).unwrap();
                if m.is_dir() {
                    walk(&p, base, out);
                } else {
                    out.push(format!(
                        "{} {:?} {}.{} {:?}",
                        p.strip_prefix(base).unwrap().display(),
                        m.file_type(),
                        m.mtime(),
                        m.mtime_nsec(),
                        std::fs::read(&p).ok()
                    ));
                }
            }
        }
        let mut out = Vec::new();
        walk(self.dir.path(), self.dir.path(), &mut out);
        out.sort();
        out
    }

    fn assert_untouched(&self) {
        assert_eq!(
            self.snapshot(),
            self.before,
            "the marker directory outside the root changed"
        );
    }
}

/// Builds `test/NAME:1` on the busybox image: `commands` (one shell line) then `runtime`
/// (YAML lines of the spec's runtime section, may be empty).
fn build(env: &Env, name: &str, commands: &str, runtime: &[&str]) -> String {
    let ctx = tempfile::Builder::new()
        .prefix("gcr-symlink-ctx-")
        .tempdir()
        .unwrap();
    let mut spec = format!(
        "format: gcr-v1.0\nname: test/{name}\nversion: \"1\"\nbase: {IMAGE}\nbuild:\n  commands:\n    - {commands}\n"
    );
    if !runtime.is_empty() {
        spec.push_str("runtime:\n");
        for l in runtime {
            spec.push_str(&format!("  {l}\n"));
        }
    }
    std::fs::write(ctx.path().join("app.gcr"), spec).unwrap();
    env.ok(&["build", ctx.path().to_str().unwrap()]);
    format!("test/{name}:1")
}

/// Every regular file under `dir` (not following links).
fn files_under(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return;
    };
    for e in rd.flatten() {
        let p = e.path();
        match std::fs::symlink_metadata(&p) {
            Ok(m) if m.is_dir() => files_under(&p, out),
            Ok(m) if m.is_file() => out.push(p),
            _ => {}
        }
    }
}

/// Asserts that the marker's content was copied nowhere into the store (volumes, upper
/// dirs, run-time files).
fn assert_secret_not_in_store(env: &Env) {
    let mut files = Vec::new();
    files_under(env.root.path(), &mut files);
    for f in files {
        if let Ok(b) = std::fs::read(&f) {
            assert!(
                !String::from_utf8_lossy(&b).contains(SECRET),
                "host marker content copied into {}",
                f.display()
            );
        }
    }
}

/// The host directory of the mount at `dest` of container `name`.
fn mount_source(env: &Env, name: &str, dest: &str) -> PathBuf {
    let v: serde_json::Value = serde_json::from_str(&env.ok(&["inspect", name])).unwrap();
    let mounts = v[0]["Mounts"].as_array().expect("Mounts in inspect");
    let m = mounts
        .iter()
        .find(|m| m["Destination"] == dest)
        .unwrap_or_else(|| panic!("no mount at {dest}: {mounts:?}"));
    PathBuf::from(m["Source"].as_str().unwrap())
}

fn names_in(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

#[test]
fn declared_volume_under_an_outward_symlink_is_not_filled_from_the_host() {
    if !need_root("declared_volume_under_an_outward_symlink_is_not_filled_from_the_host") {
        return;
    }
    let env = Env::new();
    let marker = Marker::new();
    let m = marker.path();
    // An absolute link, and a relative one that climbs past the root.
    let image = build(
        &env,
        "symvol",
        &format!("ln -s {m} /data && ln -s ../../../../../../..{m}/wd /rel"),
        &["volumes: [/data/x, /rel/sub]"],
    );
    for (name, dest) in [("abs", "/data/x"), ("rel", "/rel/sub")] {
        let script =
            format!("ls -A {dest}; cat {dest}/secret 2>&1; echo in > {dest}/new; echo done");
        let out = env.gcr(&[
            "run",
            "--name",
            name,
            "--network",
            "none",
            &image,
            "sh",
            "-c",
            &script,
        ]);
        // First what copy-up did (it runs before the container starts).
        assert_secret_not_in_store(&env);
        let (o, e) = (stdout(&out), stderr(&out));
        assert!(out.status.success(), "{name}: {o}{e}");
        assert!(o.trim_end().ends_with("done"), "{name}: {o}");
        assert!(
            !o.contains(SECRET) && !o.contains("secret\n"),
            "{name}: {o}"
        );
        // The volume took the container's write and nothing from the host.
        let src = mount_source(&env, name, dest);
        assert_eq!(names_in(&src), ["new"], "{name}: volume {}", src.display());
        assert_eq!(std::fs::read_to_string(src.join("new")).unwrap(), "in\n");
        env.ok(&["rm", "-f", name]);
    }
    assert_secret_not_in_store(&env);
    marker.assert_untouched();
}

#[test]
fn flag_volumes_and_tmpfs_under_an_outward_symlink_stay_in_the_root() {
    if !need_root("flag_volumes_and_tmpfs_under_an_outward_symlink_stay_in_the_root") {
        return;
    }
    let env = Env::new();
    let marker = Marker::new();
    let m = marker.path();
    let image = build(&env, "symflags", &format!("ln -s {m} /link"), &[]);
    let out = env.gcr(&[
        "run",
        "--rm",
        "--network",
        "none",
        "-v",
        "vol:/link/sub",
        "--tmpfs",
        "/link/tmp",
        &image,
        "sh",
        "-c",
        "ls -A /link/sub /link/tmp; cat /link/sub/secret 2>&1; \
         echo v > /link/sub/new && echo t > /link/tmp/new && echo done",
    ]);
    assert_secret_not_in_store(&env);
    let (o, e) = (stdout(&out), stderr(&out));
    assert!(out.status.success(), "{o}{e}");
    assert!(o.trim_end().ends_with("done"), "{o}");
    assert!(!o.contains(SECRET), "{o}");
    let v: serde_json::Value =
        serde_json::from_str(&env.ok(&["volume", "inspect", "vol"])).unwrap();
    let data = PathBuf::from(v[0]["mountpoint"].as_str().unwrap());
    assert_eq!(names_in(&data), ["new"]);
    assert_secret_not_in_store(&env);
    marker.assert_untouched();
}

#[test]
fn etc_files_behind_symlinks_are_mounted_on_their_targets_inside_the_root() {
    if !need_root("etc_files_behind_symlinks_are_mounted_on_their_targets_inside_the_root") {
        return;
    }
    let env = Env::new();
    let marker = Marker::new();
    let m = marker.path();
    // Absolute links: /etc/hosts to an existing file of the image, /etc/hostname to the
    // marker's file (which exists only on the host).
    let abs = build(
        &env,
        "symetc-abs",
        &format!(
            "mkdir -p /srv && echo image-hosts > /srv/hosts && rm -f /etc/hosts /etc/hostname \
             && ln -s /srv/hosts /etc/hosts && ln -s {m}/hostname /etc/hostname"
        ),
        &[],
    );
    // Relative links, dangling in the image, the hostname one climbing past the root.
    let rel = build(
        &env,
        "symetc-rel",
        &format!(
            "rm -f /etc/hosts /etc/hostname /etc/resolv.conf && ln -s ../srv/hosts.d/h /etc/hosts \
             && ln -s ../../../../run/resolv.conf /etc/resolv.conf \
             && ln -s ../../../../../../..{m}/hostname /etc/hostname"
        ),
        &[],
    );
    for (image, target) in [(&abs, "/srv/hosts"), (&rel, "/srv/hosts.d/h")] {
        let script = format!(
            "cat /etc/hosts; echo ---; cat {target}; echo ---; cat /etc/hostname; echo ---; \
             cat {m}/hostname"
        );
        let out = env.gcr(&[
            "run",
            "--rm",
            "--network",
            "none",
            "--hostname",
            "symhost",
            image,
            "sh",
            "-c",
            &script,
        ]);
        let (o, e) = (stdout(&out), stderr(&out));
        assert!(out.status.success(), "{image}: {o}{e}");
        let parts: Vec<&str> = o.split("---\n").collect();
        assert_eq!(parts.len(), 4, "{image}: {o}");
        assert!(
            parts[0].contains("127.0.0.1") && parts[0].contains("symhost"),
            "{image}: /etc/hosts is not the container's: {o}"
        );
        assert_eq!(parts[1], parts[0], "{image}: the bind missed {target}");
        assert_eq!(parts[2].trim(), "symhost", "{image}: {o}");
        assert_eq!(parts[3].trim(), "symhost", "{image}: {o}");
        assert!(!o.contains(SECRET) && !o.contains("image-hosts"), "{o}");
    }
    // resolv.conf (written for networks other than none) through a relative link.
    let host = std::fs::read_to_string("/etc/resolv.conf").unwrap_or_default();
    let out = env.gcr(&[
        "run",
        "--rm",
        "--network",
        "host",
        &rel,
        "sh",
        "-c",
        "cat /etc/resolv.conf; echo ---; cat /run/resolv.conf",
    ]);
    let (o, e) = (stdout(&out), stderr(&out));
    assert!(out.status.success(), "{o}{e}");
    assert_eq!(o, format!("{host}---\n{host}"));
    assert_secret_not_in_store(&env);
    marker.assert_untouched();
}

#[test]
fn workdir_under_an_outward_symlink_is_made_inside_the_root() {
    if !need_root("workdir_under_an_outward_symlink_is_made_inside_the_root") {
        return;
    }
    let env = Env::new();
    let marker = Marker::new();
    let m = marker.path();
    let image = build(
        &env,
        "symwd",
        &format!("ln -s {m}/wd /wd && ln -s ../../../../..{m} /up"),
        &["workdir: /wd/sub"],
    );
    let script = "ls -A; cat secret 2>/dev/null; echo here > f && echo done";
    for extra in [&[][..], &["-w", "/up/x"][..]] {
        let mut args = vec!["run", "--rm", "--network", "none"];
        args.extend_from_slice(extra);
        args.extend_from_slice(&[&image, "sh", "-c", script]);
        let out = env.gcr(&args);
        let (o, e) = (stdout(&out), stderr(&out));
        assert!(out.status.success(), "{extra:?}: {o}{e}");
        assert_eq!(
            o.trim(),
            "done",
            "{extra:?}: the workdir was not a new, empty directory"
        );
    }
    assert_secret_not_in_store(&env);
    marker.assert_untouched();
}

#[test]
fn user_lookup_does_not_follow_a_passwd_link_to_the_host() {
    if !need_root("user_lookup_does_not_follow_a_passwd_link_to_the_host") {
        return;
    }
    let env = Env::new();
    let marker = Marker::new();
    let m = marker.path();
    let image = build(
        &env,
        "sympasswd",
        &format!("rm /etc/passwd && ln -s {m}/passwd /etc/passwd"),
        &[],
    );
    let out = env.gcr(&[
        "run",
        "--rm",
        "--network",
        "none",
        "--user",
        "evil",
        &image,
        "id",
    ]);
    assert_eq!(out.status.code(), Some(125), "{}", stdout(&out));
    assert!(
        stderr(&out).contains("unable to find user evil"),
        "{}",
        stderr(&out)
    );
    // Numeric ids still run (Docker's rule for users the image does not list).
    let out = env.ok(&[
        "run",
        "--rm",
        "--network",
        "none",
        "--user",
        "4242",
        &image,
        "id",
        "-u",
    ]);
    assert_eq!(out.trim(), "4242");
    marker.assert_untouched();
}
