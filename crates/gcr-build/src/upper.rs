//! Turns a command step's overlay upper directory into layer entries: overlay whiteouts
//! (a 0/0 character device, a directory with `trusted.overlay.opaque=y`) become OCI
//! whiteouts (`.wh.NAME`, `DIR/.wh..wh..opq`); hardlinked files become one file plus links;
//! every mtime is the image's `created` (or, for `gcr commit`, the file's own).

use std::collections::{BTreeMap, HashMap};
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::Path;

use gcr_store::{EntryData, LayerEntry};

use crate::error::{BuildError, Result};

/// Collects the entries of an upper directory (relative paths, sorted).
pub fn entries(upper: &Path, mtime: u64) -> Result<BTreeMap<String, LayerEntry>> {
    let mut out = BTreeMap::new();
    let mut links: HashMap<(u64, u64), String> = HashMap::new();
    walk(upper, "", Some(mtime), &mut out, &mut links)?;
    Ok(out)
}

/// [`entries`] keeping each file's own mtime (`gcr commit`, as docker commit does).
pub fn entries_as_is(upper: &Path) -> Result<BTreeMap<String, LayerEntry>> {
    let mut out = BTreeMap::new();
    let mut links: HashMap<(u64, u64), String> = HashMap::new();
    walk(upper, "", None, &mut out, &mut links)?;
    Ok(out)
}

fn opaque(p: &Path) -> bool {
    let mut buf = [0u8; 4];
    for name in ["trusted.overlay.opaque", "user.overlay.opaque"] {
        if let Ok(n) = rustix::fs::lgetxattr(p, name, &mut buf[..]) {
            if n >= 1 && buf[0] == b'y' {
                return true;
            }
        }
    }
    false
}

fn walk(
    dir: &Path,
    rel: &str,
    clamp: Option<u64>,
    out: &mut BTreeMap<String, LayerEntry>,
    links: &mut HashMap<(u64, u64), String>,
) -> Result<()> {
    let mut names: Vec<String> = Vec::new();
    for e in std::fs::read_dir(dir).map_err(BuildError::io("cannot list", dir))? {
        let e = e.map_err(BuildError::io("cannot list", dir))?;
        names.push(e.file_name().to_string_lossy().into_owned());
    }
    names.sort();
    for name in names {
        let abs = dir.join(&name);
        let path = if rel.is_empty() {
            name.clone()
        } else {
            format!("{rel}/{name}")
        };
        let md = std::fs::symlink_metadata(&abs).map_err(BuildError::io("cannot read", &abs))?;
        let ft = md.file_type();
        let mtime = clamp.unwrap_or(md.mtime().max(0) as u64);
        let base = LayerEntry {
            ty: tar::EntryType::Regular,
            mode: md.mode() & 0o7777,
            uid: md.uid() as u64,
            gid: md.gid() as u64,
            mtime,
            link: None,
            dev: (0, 0),
            data: EntryData::None,
        };
        if ft.is_char_device() && md.rdev() == 0 {
            let wh = if rel.is_empty() {
                format!(".wh.{name}")
            } else {
                format!("{rel}/.wh.{name}")
            };
            out.insert(
                wh,
                LayerEntry {
                    mode: 0,
                    uid: 0,
                    gid: 0,
                    ..base
                },
            );
        } else if ft.is_dir() {
            out.insert(
                path.clone(),
                LayerEntry {
                    ty: tar::EntryType::Directory,
                    ..base
                },
            );
            if opaque(&abs) {
                out.insert(
                    format!("{path}/.wh..wh..opq"),
                    LayerEntry::regular_empty(mtime),
                );
            }
            walk(&abs, &path, clamp, out, links)?;
        } else if ft.is_symlink() {
            let t = std::fs::read_link(&abs).map_err(BuildError::io("cannot read link", &abs))?;
            out.insert(
                path,
                LayerEntry {
                    ty: tar::EntryType::Symlink,
                    mode: 0o777,
                    link: Some(t.to_string_lossy().into_owned()),
                    ..base
                },
            );
        } else if ft.is_file() {
            let key = (md.dev(), md.ino());
            if md.nlink() > 1 {
                if let Some(first) = links.get(&key) {
                    out.insert(
                        path,
                        LayerEntry {
                            ty: tar::EntryType::Link,
                            link: Some(first.clone()),
                            ..base
                        },
                    );
                    continue;
                }
                links.insert(key, path.clone());
            }
            out.insert(
                path,
                LayerEntry {
                    data: EntryData::File(abs.clone(), md.size()),
                    ..base
                },
            );
        } else if ft.is_char_device() || ft.is_block_device() {
            let dev = md.rdev();
            out.insert(
                path,
                LayerEntry {
                    ty: if ft.is_char_device() {
                        tar::EntryType::Char
                    } else {
                        tar::EntryType::Block
                    },
                    dev: (rustix::fs::major(dev), rustix::fs::minor(dev)),
                    ..base
                },
            );
        } else if ft.is_fifo() {
            out.insert(
                path,
                LayerEntry {
                    ty: tar::EntryType::Fifo,
                    ..base
                },
            );
        }
    }
    Ok(())
}

/// Empty regular file entry helper (used for opaque markers).
trait RegularEmpty {
    fn regular_empty(mtime: u64) -> Self;
}

impl RegularEmpty for LayerEntry {
    fn regular_empty(mtime: u64) -> LayerEntry {
        LayerEntry {
            ty: tar::EntryType::Regular,
            mode: 0,
            uid: 0,
            gid: 0,
            mtime,
            link: None,
            dev: (0, 0),
            data: EntryData::None,
        }
    }
}

/// Removes what mounting build secrets left in a step's upper dir: the empty
/// `run/secrets` mount point, and `run` when that leaves it empty (made for the mount point
/// or copied up from a lower layer for it). A step that wrote files under `/run` keeps them.
pub fn drop_secrets_mountpoint(upper: &Path) {
    let run = upper.join("run");
    let _ = std::fs::remove_dir(run.join("secrets"));
    let empty = std::fs::read_dir(&run).is_ok_and(|mut d| d.next().is_none());
    if empty {
        let _ = std::fs::remove_dir(&run);
    }
}

/// Removes the mount point a step's mount left at `target` (absolute, in the container)
/// when it is an empty directory or file, and the directories above it that it leaves
/// empty: a mount's stub is not part of the step's result (BuildKit's rule too).
pub fn drop_mount_stub(upper: &Path, target: &str) {
    let Some(mut p) = stub_path(upper, target) else {
        return;
    };
    if !drop_empty_file(&p) && std::fs::remove_dir(&p).is_err() {
        return;
    }
    while let Some(parent) = p.parent().map(Path::to_path_buf) {
        if parent == upper || !parent.starts_with(upper) || std::fs::remove_dir(&parent).is_err() {
            break;
        }
        p = parent;
    }
}

/// Removes the empty file a file mount (a secret at a custom target) left at `target`.
pub fn drop_file_stub(upper: &Path, target: &str) {
    if let Some(p) = stub_path(upper, target) {
        drop_empty_file(&p);
    }
}

/// Where a mount target (absolute, in the container) is in the upper dir; None for the
/// root or a path with `..`.
fn stub_path(upper: &Path, target: &str) -> Option<std::path::PathBuf> {
    let rel = target.trim_start_matches('/');
    (!rel.is_empty() && !rel.split('/').any(|c| c == "..")).then(|| upper.join(rel))
}

/// Removes `p` if it is an empty regular file; whether it did.
fn drop_empty_file(p: &Path) -> bool {
    std::fs::symlink_metadata(p).is_ok_and(|m| m.is_file() && m.len() == 0)
        && std::fs::remove_file(p).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn whiteouts_and_hardlinks() {
        let d = tempfile::tempdir().unwrap();
        let u = d.path();
        std::fs::create_dir_all(u.join("etc")).unwrap();
        std::fs::write(u.join("etc/a"), b"x").unwrap();
        std::fs::hard_link(u.join("etc/a"), u.join("etc/b")).unwrap();
        std::os::unix::fs::symlink("a", u.join("etc/c")).unwrap();
        // A 0/0 char device needs CAP_MKNOD; only check it when we can make one.
        let can_mknod = rustix::fs::mknodat(
            rustix::fs::CWD,
            u.join("gone"),
            rustix::fs::FileType::CharacterDevice,
            rustix::fs::Mode::from_raw_mode(0),
            0,
        )
        .is_ok();
        let e = entries(u, 7).unwrap();
        assert_eq!(e["etc"].ty, tar::EntryType::Directory);
        assert_eq!(e["etc/a"].ty, tar::EntryType::Regular);
        assert_eq!(e["etc/b"].ty, tar::EntryType::Link);
        assert_eq!(e["etc/b"].link.as_deref(), Some("etc/a"));
        assert_eq!(e["etc/c"].ty, tar::EntryType::Symlink);
        assert!(e.values().all(|x| x.mtime == 7));
        if can_mknod {
            assert!(e.contains_key(".wh.gone"));
            assert!(!e.contains_key("gone"));
        }
    }
}
