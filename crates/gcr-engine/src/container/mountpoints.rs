//! Bind-mount targets the image lacks (`/etc/hosts`, `/etc/hostname`, `/etc/resolv.conf`),
//! as a small shared read-only layer on top of the image's layers, like Docker's per-container
//! "init" layer but made once per store. Without it, each start creates them in the
//! container's upper directory (a copy-up of /etc and three new files, then as many
//! deletions at removal), which on a filesystem like ext4 without a journal grows slower
//! with every recent deletion.
//!
//! The layer only ever adds what no image layer has (or what a whiteout removed), so an
//! image's own files are never hidden; an image whose /etc is not a plain directory gets
//! no layer. Layers are only inspected with lstat of names under a real `etc` directory,
//! never through a symlink: an image's symlinked `/etc` or `/etc/hosts` stays the image's,
//! for the runtime to resolve inside the container's root.

use std::ffi::CString;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// What one image layer holds at a path.
enum Entry {
    Absent,
    Whiteout,
    Dir(std::fs::Metadata),
    Other,
}

fn entry(p: &Path) -> Entry {
    match std::fs::symlink_metadata(p) {
        Err(_) => Entry::Absent,
        Ok(m) if m.file_type().is_dir() => Entry::Dir(m),
        Ok(m) if (m.mode() & libc::S_IFMT) == libc::S_IFCHR && m.rdev() == 0 => Entry::Whiteout,
        Ok(_) => Entry::Other,
    }
}

fn opaque(dir: &Path) -> bool {
    let Ok(c) = CString::new(dir.as_os_str().as_bytes()) else {
        return false;
    };
    let mut v = [0u8; 2];
    // SAFETY: lgetxattr into a stack buffer of the given length, on a NUL-terminated path.
    let n = unsafe {
        libc::lgetxattr(
            c.as_ptr(),
            c"trusted.overlay.opaque".as_ptr(),
            v.as_mut_ptr().cast(),
            v.len(),
        )
    };
    n == 1 && v[0] == b'y'
}

/// The layer with the `files` (names under /etc) that the image's `lowers` (top first)
/// lack, created under `root/mountpoints` on first use; None when nothing is missing or
/// the image's /etc is not a directory.
pub(crate) fn layer(root: &Path, lowers: &[String], files: &[&str]) -> Option<PathBuf> {
    let mut present = vec![None::<bool>; files.len()];
    let mut etc_attrs = None;
    for (i, l) in lowers.iter().enumerate() {
        let etc = Path::new(l).join("etc");
        let m = match entry(&etc) {
            Entry::Absent => continue,
            Entry::Whiteout => break,
            Entry::Other if etc_attrs.is_none() => return None,
            Entry::Other => break,
            Entry::Dir(m) => m,
        };
        etc_attrs.get_or_insert((m.mode() & 0o7777, m.uid(), m.gid()));
        for (f, p) in files.iter().zip(present.iter_mut()) {
            if p.is_none() {
                *p = match entry(&etc.join(f)) {
                    Entry::Absent => None,
                    Entry::Whiteout => Some(false),
                    Entry::Dir(_) | Entry::Other => Some(true),
                };
            }
        }
        // Lower layers matter only for what is still undecided, unless this /etc hides them.
        let last = i + 1 == lowers.len();
        if last || present.iter().all(Option::is_some) || opaque(&etc) {
            break;
        }
    }
    let missing: Vec<&str> = files
        .iter()
        .zip(&present)
        .filter(|(_, p)| **p != Some(true))
        .map(|(f, _)| *f)
        .collect();
    if missing.is_empty() {
        return None;
    }
    let (mode, uid, gid) = etc_attrs.unwrap_or((0o755, 0, 0));
    let name = format!("{}-{mode:o}-{uid}-{gid}", missing.join("+"));
    let dir = root.join("mountpoints").join(name);
    if dir.join("etc").is_dir() {
        return Some(dir);
    }
    make(&dir, &missing, (mode, uid, gid)).then_some(dir)
}

/// The overlay's layers, top first: the image's `lowers`, under the layer of the `files`
/// they lack (see [`layer`]).
pub(crate) fn lowers(root: &Path, lowers: &[String], files: &[&str]) -> Vec<PathBuf> {
    layer(root, lowers, files)
        .into_iter()
        .chain(lowers.iter().map(PathBuf::from))
        .collect()
}

/// Builds the layer in a temporary directory and renames it into place.
fn make(dir: &Path, files: &[&str], (mode, uid, gid): (u32, u32, u32)) -> bool {
    let Some(parent) = dir.parent() else {
        return false;
    };
    let tmp = parent.join(format!(".tmp-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&tmp);
    let etc = tmp.join("etc");
    let built = std::fs::create_dir_all(parent).is_ok()
        && std::fs::DirBuilder::new()
            .mode(0o755)
            .recursive(true)
            .create(&etc)
            .is_ok()
        && files.iter().all(|f| {
            std::fs::write(etc.join(f), b"").is_ok()
                && std::fs::set_permissions(etc.join(f), std::fs::Permissions::from_mode(0o644))
                    .is_ok()
        })
        && std::fs::set_permissions(&etc, std::fs::Permissions::from_mode(mode)).is_ok()
        && std::os::unix::fs::lchown(&etc, Some(uid), Some(gid)).is_ok();
    let placed = built && std::fs::rename(&tmp, dir).is_ok();
    if !placed {
        let _ = std::fs::remove_dir_all(&tmp);
    }
    // Another process may have placed the same layer first.
    dir.join("etc").is_dir()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn layer_dir(base: &Path, name: &str, files: &[&str]) -> String {
        let etc = base.join(name).join("etc");
        std::fs::create_dir_all(&etc).unwrap();
        for f in files {
            std::fs::write(etc.join(f), b"x").unwrap();
        }
        base.join(name).to_string_lossy().into_owned()
    }

    #[test]
    fn adds_only_what_the_image_lacks() {
        let d = tempfile::tempdir().unwrap();
        let root = d.path().join("store");
        let top = layer_dir(d.path(), "top", &["hostname"]);
        let bottom = layer_dir(d.path(), "bottom", &["resolv.conf"]);
        let want = ["hosts", "hostname", "resolv.conf"];
        let l = layer(&root, &[top.clone(), bottom.clone()], &want).unwrap();
        let mut names: Vec<String> = std::fs::read_dir(l.join("etc"))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        assert_eq!(names, ["hosts"]);
        // The same answer comes from the existing layer.
        assert_eq!(layer(&root, &[top.clone(), bottom], &want), Some(l));
        // Nothing missing: no layer.
        let full = layer_dir(d.path(), "full", &want);
        assert_eq!(layer(&root, &[full], &want), None);
        // /etc as a symlink in the image: no layer (it would hide the link).
        let odd = d.path().join("odd");
        std::fs::create_dir_all(&odd).unwrap();
        std::os::unix::fs::symlink("usr/etc", odd.join("etc")).unwrap();
        assert_eq!(
            layer(&root, &[odd.to_string_lossy().into_owned()], &want),
            None
        );
        // A symlinked /etc/hosts (even one pointing out of the image) is the image's own: no
        // stub hides it, the runtime resolves it inside the root.
        let linked = d.path().join("linked");
        std::fs::create_dir_all(linked.join("etc")).unwrap();
        std::os::unix::fs::symlink("/etc/hosts", linked.join("etc/hosts")).unwrap();
        std::os::unix::fs::symlink("../../../../x", linked.join("etc/hostname")).unwrap();
        let l = layer(&root, &[linked.to_string_lossy().into_owned()], &want).unwrap();
        let names: Vec<String> = std::fs::read_dir(l.join("etc"))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert_eq!(names, ["resolv.conf"]);
        // No /etc at all: every file comes from the layer.
        let bare = d.path().join("bare");
        std::fs::create_dir_all(&bare).unwrap();
        let l = layer(&root, &[bare.to_string_lossy().into_owned()], &want).unwrap();
        assert_eq!(std::fs::read_dir(l.join("etc")).unwrap().count(), 3);
    }
}
