//! Shared helpers for gcr-store integration tests.
#![allow(dead_code)]

use std::process::Command;

pub fn ci() -> bool {
    std::env::var("CI").map(|v| v == "true").unwrap_or(false)
}

/// True if root; otherwise prints the skip message (panics under CI=true).
pub fn root_or_skip() -> bool {
    if rustix::process::geteuid().is_root() {
        return true;
    }
    if ci() {
        panic!("this test needs root and CI=true");
    }
    eprintln!("skipped: needs root");
    false
}

/// True if the tool runs; otherwise skips (panics under CI=true).
pub fn tool_or_skip(tool: &str) -> bool {
    let ok = Command::new(tool)
        .arg("--version")
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false);
    if !ok {
        if ci() {
            panic!("{tool} is required when CI=true");
        }
        eprintln!("skipped: {tool} not installed");
    }
    ok
}

/// A tar entry with a raw (possibly hostile) name.
pub struct E<'a> {
    pub path: &'a str,
    pub ty: tar::EntryType,
    pub data: &'a [u8],
    pub link: Option<&'a str>,
    pub mode: u32,
    pub mtime: u64,
}

pub fn file<'a>(path: &'a str, data: &'a [u8]) -> E<'a> {
    E {
        path,
        ty: tar::EntryType::Regular,
        data,
        link: None,
        mode: 0o644,
        mtime: 0,
    }
}
pub fn dir(path: &str) -> E<'_> {
    E {
        path,
        ty: tar::EntryType::Directory,
        data: b"",
        link: None,
        mode: 0o755,
        mtime: 0,
    }
}
pub fn symlink<'a>(path: &'a str, target: &'a str) -> E<'a> {
    E {
        path,
        ty: tar::EntryType::Symlink,
        data: b"",
        link: Some(target),
        mode: 0o777,
        mtime: 0,
    }
}
pub fn hardlink<'a>(path: &'a str, target: &'a str) -> E<'a> {
    E {
        path,
        ty: tar::EntryType::Link,
        data: b"",
        link: Some(target),
        mode: 0o644,
        mtime: 0,
    }
}

/// Builds a tar writing names byte-for-byte (no sanitizing by the tar crate).
pub fn raw_tar(entries: &[E<'_>]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for e in entries {
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(e.ty);
        h.set_mode(e.mode);
        h.set_mtime(e.mtime);
        h.set_size(e.data.len() as u64);
        if e.ty == tar::EntryType::Char {
            h.set_device_major(1).unwrap();
            h.set_device_minor(3).unwrap();
        }
        h.as_old_mut().name[..e.path.len()].copy_from_slice(e.path.as_bytes());
        if let Some(l) = e.link {
            h.as_old_mut().linkname[..l.len()].copy_from_slice(l.as_bytes());
        }
        h.set_cksum();
        b.append(&h, e.data).unwrap();
    }
    b.into_inner().unwrap()
}

/// A busybox rootfs tarball: /bin/busybox plus links, in a scrambled order.
pub fn busybox_rootfs(extra: &str) -> Vec<u8> {
    let bb = std::fs::read("/bin/busybox").expect("busybox-static must be installed");
    let mut bbx = E {
        mode: 0o755,
        mtime: 4_000_000_000,
        ..file("./bin/busybox", &bb)
    };
    bbx.ty = tar::EntryType::Regular;
    raw_tar(&[
        file("etc/hostname", extra.as_bytes()),
        bbx,
        dir("./bin/"),
        symlink("bin/sh", "busybox"),
        hardlink("bin/ash", "bin/busybox"),
        dir("etc"),
        E {
            mtime: 7,
            ..dir("tmp")
        },
    ])
}

pub fn gzip(data: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

pub fn sha256(data: &[u8]) -> String {
    use sha2::Digest;
    format!("sha256:{}", hex::encode(sha2::Sha256::digest(data)))
}
