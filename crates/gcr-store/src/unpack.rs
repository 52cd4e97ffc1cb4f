//! Hostile-input-safe layer unpacking. Every entry is created relative to a directory file
//! descriptor reached by walking its parent components one by one with `O_NOFOLLOW`, so no
//! entry can land outside the target: `..` is rejected, leading `/` is stripped, a parent
//! component that is a symlink is refused, hardlink targets must already exist inside the
//! layer, device nodes are skipped (only OCI whiteouts become 0/0 character devices), and
//! `.wh..wh..opq` becomes the `trusted.overlay.opaque=y` xattr. setuid bits are kept.

use rustix::fs::{self as rfs, AtFlags, FileType, Mode, OFlags, Timespec, Timestamps, XattrFlags};
use rustix::io::Errno;
use std::io::{self, Read};
use std::os::fd::{AsFd, OwnedFd};
use std::path::{Path, PathBuf};

/// What an unpack did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct UnpackStats {
    pub entries: u64,
    pub files: u64,
    pub dirs: u64,
    pub symlinks: u64,
    pub hardlinks: u64,
    pub whiteouts: u64,
    pub opaque_dirs: u64,
    /// Device nodes that were not created.
    pub skipped_devices: u64,
    /// Regular file bytes written.
    pub bytes: u64,
}

/// An unpack failure, naming the entry.
#[derive(Debug, thiserror::Error)]
pub enum UnpackError {
    /// The entry is refused (escape attempt, bad name, ...).
    #[error("layer entry '{entry}' is refused: {reason}")]
    Refused { entry: String, reason: String },
    /// Creating the entry failed.
    #[error("layer entry '{entry}' could not be created: {source}")]
    Create {
        entry: String,
        #[source]
        source: io::Error,
    },
    /// The archive itself is unreadable.
    #[error("the layer archive is truncated or corrupt: {0}")]
    Stream(#[source] io::Error),
    /// The filesystem of the target is full (ENOSPC) or the quota used up (EDQUOT).
    #[error("no space left on the filesystem holding '{}' (the gcr store): free space there (e.g. 'gcr system prune', or remove other files) and retry", path.display())]
    NoSpace { path: PathBuf },
    /// The target directory cannot be opened.
    #[error("cannot open unpack target '{}': {source}", path.display())]
    Target {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
}

fn refused(entry: &str, reason: impl Into<String>) -> UnpackError {
    UnpackError::Refused {
        entry: entry.to_string(),
        reason: reason.into(),
    }
}

fn create_err(entry: &str, e: impl Into<io::Error>) -> UnpackError {
    UnpackError::Create {
        entry: entry.to_string(),
        source: e.into(),
    }
}

/// Splits an entry path into clean components: strips `/` and `.`, rejects `..` and NUL.
fn components<'a>(entry: &str, raw: &'a [u8]) -> Result<Vec<&'a [u8]>, UnpackError> {
    let mut out = Vec::new();
    for c in raw.split(|&b| b == b'/') {
        match c {
            b"" | b"." => {}
            b".." => return Err(refused(entry, "the path contains '..'")),
            c if c.contains(&0) => return Err(refused(entry, "the path contains a NUL byte")),
            c => out.push(c),
        }
    }
    Ok(out)
}

const DIR_FLAGS: OFlags = OFlags::RDONLY
    .union(OFlags::DIRECTORY)
    .union(OFlags::NOFOLLOW)
    .union(OFlags::CLOEXEC);

/// Walks `comps` from `root` without following symlinks, creating missing directories.
fn walk(
    root: &OwnedFd,
    comps: &[&[u8]],
    create: bool,
    entry: &str,
) -> Result<OwnedFd, UnpackError> {
    let mut cur: Option<OwnedFd> = None;
    for c in comps {
        let dir = cur.as_ref().unwrap_or(root).as_fd();
        let fd = match rfs::openat(dir, *c, DIR_FLAGS, Mode::empty()) {
            Ok(fd) => fd,
            Err(Errno::NOENT) if create => {
                match rfs::mkdirat(dir, *c, Mode::from_raw_mode(0o755)) {
                    Ok(()) | Err(Errno::EXIST) => {}
                    Err(e) => return Err(create_err(entry, e)),
                }
                rfs::openat(dir, *c, DIR_FLAGS, Mode::empty()).map_err(|e| create_err(entry, e))?
            }
            Err(Errno::LOOP) | Err(Errno::NOTDIR) => {
                return Err(refused(
                    entry,
                    format!(
                        "its parent '{}' is a symlink or not a directory; writing through it could escape the layer",
                        String::from_utf8_lossy(c)
                    ),
                ))
            }
            Err(e) => return Err(create_err(entry, e)),
        };
        cur = Some(fd);
    }
    match cur {
        Some(fd) => Ok(fd),
        None => rfs::openat(root, ".", DIR_FLAGS, Mode::empty()).map_err(|e| create_err(entry, e)),
    }
}

/// Removes whatever is at `name` so a new entry can take its place. Existing directories are
/// kept when `keep_dir` (a directory entry over a directory only updates its metadata).
/// Returns true if a directory was kept.
fn clear(parent: &OwnedFd, name: &[u8], keep_dir: bool, entry: &str) -> Result<bool, UnpackError> {
    match rfs::statat(parent, name, AtFlags::SYMLINK_NOFOLLOW) {
        Err(Errno::NOENT) => Ok(false),
        Err(e) => Err(create_err(entry, e)),
        Ok(st) if FileType::from_raw_mode(st.st_mode) == FileType::Directory => {
            if keep_dir {
                return Ok(true);
            }
            rfs::unlinkat(parent, name, AtFlags::REMOVEDIR).map_err(|e| match e {
                Errno::NOTEMPTY | Errno::EXIST => {
                    refused(entry, "it would replace a non-empty directory")
                }
                e => create_err(entry, e),
            })?;
            Ok(false)
        }
        Ok(_) => {
            rfs::unlinkat(parent, name, AtFlags::empty()).map_err(|e| create_err(entry, e))?;
            Ok(false)
        }
    }
}

/// Extended attributes from PAX `SCHILY.xattr.*` records that are safe to apply:
/// `security.capability` (file capabilities) and `user.*`. `trusted.*` (overlay's own
/// metadata) and everything else is dropped so a layer cannot forge overlay state.
fn safe_xattrs<R: Read>(entry: &mut tar::Entry<'_, R>) -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    if let Ok(Some(exts)) = entry.pax_extensions() {
        for ext in exts.flatten() {
            let Ok(key) = ext.key() else { continue };
            if let Some(name) = key.strip_prefix("SCHILY.xattr.") {
                if name == "security.capability" || name.starts_with("user.") {
                    out.push((name.to_string(), ext.value_bytes().to_vec()));
                }
            }
        }
    }
    out
}

/// Best effort: filesystems without xattr support simply do not get them.
fn set_xattrs(fd: &OwnedFd, xattrs: &[(String, Vec<u8>)]) {
    for (k, v) in xattrs {
        let _ = rfs::fsetxattr(fd, k.as_str(), v, XattrFlags::empty());
    }
}

fn ts(secs: u64) -> Timestamps {
    let t = Timespec {
        tv_sec: secs.min(i64::MAX as u64) as i64,
        tv_nsec: 0,
    };
    Timestamps {
        last_access: t,
        last_modification: t,
    }
}

/// Unpacks a layer (plain or gzip'd tar) into `target`, which must exist. Hostile-input safe.
/// A full disk is reported as such ([`UnpackError::NoSpace`]), not as a corrupt layer.
pub fn unpack_layer(reader: impl Read, target: &Path) -> Result<UnpackStats, UnpackError> {
    unpack_checked(reader, target, true)
}

/// Unpacks a plain tree (a build context sent to `POST /build`) as [`unpack_layer`] does,
/// with the same guards, except that names starting with `.wh.` are ordinary entries, not
/// whiteouts.
pub fn unpack_tree(reader: impl Read, target: &Path) -> Result<UnpackStats, UnpackError> {
    unpack_checked(reader, target, false)
}

fn unpack_checked(
    reader: impl Read,
    target: &Path,
    whiteouts: bool,
) -> Result<UnpackStats, UnpackError> {
    unpack_into(reader, target, whiteouts).map_err(|e| match &e {
        UnpackError::Create { source, .. }
        | UnpackError::Stream(source)
        | UnpackError::Target { source, .. }
            if crate::error::is_no_space(source) =>
        {
            UnpackError::NoSpace {
                path: target.to_path_buf(),
            }
        }
        _ => e,
    })
}

fn unpack_into(
    reader: impl Read,
    target: &Path,
    whiteouts: bool,
) -> Result<UnpackStats, UnpackError> {
    let root = rfs::openat(rfs::CWD, target, DIR_FLAGS, Mode::empty()).map_err(|e| {
        UnpackError::Target {
            path: target.to_path_buf(),
            source: e.into(),
        }
    })?;
    let r = crate::util::maybe_gunzip(io::BufReader::with_capacity(128 * 1024, reader))
        .map_err(UnpackError::Stream)?;
    let mut ar = tar::Archive::new(r);
    let is_root = rustix::process::geteuid().is_root();
    let mut stats = UnpackStats::default();
    // Directory (path, mtime, mode), applied last: contents change mtimes, and a read-only
    // mode must not block writing the directory's own entries.
    let mut dir_times: Vec<(Vec<u8>, u64, u32)> = Vec::new();
    // Cache of the last parent directory walked to (cleared whenever something is removed).
    let mut cache: Option<(Vec<u8>, OwnedFd)> = None;
    for entry in ar.entries().map_err(UnpackError::Stream)? {
        let mut entry = entry.map_err(UnpackError::Stream)?;
        let raw = entry.path_bytes().into_owned();
        let name_s = String::from_utf8_lossy(&raw).into_owned();
        let comps = components(&name_s, &raw)?;
        stats.entries += 1;
        let Some((name, parents)) = comps.split_last() else {
            continue;
        };
        let etype = entry.header().entry_type();
        if matches!(
            etype,
            tar::EntryType::XGlobalHeader | tar::EntryType::XHeader
        ) {
            continue;
        }
        let xattrs = safe_xattrs(&mut entry);
        let parent_key = parents.join(&b'/');
        let parent = match cache.take() {
            Some((k, fd)) if k == parent_key => fd,
            _ => walk(&root, parents, true, &name_s)?,
        };
        let header = entry.header();
        let mode = header
            .mode()
            .map_err(|e| refused(&name_s, format!("bad mode: {e}")))?
            & 0o7777;
        let uid = header.uid().unwrap_or(0);
        let gid = header.gid().unwrap_or(0);
        let mtime = header.mtime().unwrap_or(0);
        let owner = |fd: &OwnedFd| -> Result<(), UnpackError> {
            if is_root {
                rfs::fchown(
                    fd,
                    Some(rfs::Uid::from_raw(uid as u32)),
                    Some(rfs::Gid::from_raw(gid as u32)),
                )
                .map_err(|e| create_err(&name_s, e))?;
            }
            Ok(())
        };
        let mut removed = false;
        if let Some(hidden) = name.strip_prefix(b".wh.").filter(|_| whiteouts) {
            if hidden == b".wh..opq" {
                rfs::fsetxattr(&parent, "trusted.overlay.opaque", b"y", XattrFlags::empty())
                    .map_err(|e| {
                        create_err(
                            &name_s,
                            io::Error::other(format!("setting the opaque xattr needs root: {e}")),
                        )
                    })?;
                stats.opaque_dirs += 1;
            } else {
                if hidden.is_empty() {
                    return Err(refused(&name_s, "a whiteout must name a file"));
                }
                clear(&parent, hidden, false, &name_s)?;
                removed = true;
                rfs::mknodat(&parent, hidden, FileType::CharacterDevice, Mode::empty(), 0)
                    .map_err(|e| {
                        create_err(
                            &name_s,
                            io::Error::other(format!("creating a whiteout device needs root: {e}")),
                        )
                    })?;
                stats.whiteouts += 1;
            }
        } else {
            match etype {
                tar::EntryType::Directory => {
                    let kept = clear(&parent, name, true, &name_s)?;
                    if !kept {
                        rfs::mkdirat(&parent, *name, Mode::from_raw_mode(0o700))
                            .map_err(|e| create_err(&name_s, e))?;
                    }
                    let fd = rfs::openat(&parent, *name, DIR_FLAGS, Mode::empty())
                        .map_err(|e| create_err(&name_s, e))?;
                    owner(&fd)?;
                    rfs::fchmod(&fd, Mode::from_raw_mode(mode | 0o700))
                        .map_err(|e| create_err(&name_s, e))?;
                    set_xattrs(&fd, &xattrs);
                    let mut full = parent_key.clone();
                    if !full.is_empty() {
                        full.push(b'/');
                    }
                    full.extend_from_slice(name);
                    dir_times.push((full, mtime, mode));
                    stats.dirs += 1;
                }
                tar::EntryType::Regular | tar::EntryType::Continuous => {
                    removed = true;
                    clear(&parent, name, false, &name_s)?;
                    let fd = rfs::openat(
                        &parent,
                        *name,
                        OFlags::WRONLY
                            | OFlags::CREATE
                            | OFlags::EXCL
                            | OFlags::NOFOLLOW
                            | OFlags::CLOEXEC,
                        Mode::from_raw_mode(0o600),
                    )
                    .map_err(|e| create_err(&name_s, e))?;
                    let mut f = std::fs::File::from(fd);
                    let n = io::copy(&mut entry, &mut f).map_err(UnpackError::Stream)?;
                    let fd = OwnedFd::from(f);
                    owner(&fd)?;
                    rfs::fchmod(&fd, Mode::from_raw_mode(mode))
                        .map_err(|e| create_err(&name_s, e))?;
                    set_xattrs(&fd, &xattrs);
                    rfs::futimens(&fd, &ts(mtime)).map_err(|e| create_err(&name_s, e))?;
                    stats.files += 1;
                    stats.bytes += n;
                }
                tar::EntryType::Symlink => {
                    let target = entry
                        .link_name_bytes()
                        .ok_or_else(|| refused(&name_s, "the symlink has no target"))?
                        .into_owned();
                    if target.contains(&0) {
                        return Err(refused(&name_s, "the symlink target contains a NUL byte"));
                    }
                    removed = true;
                    clear(&parent, name, false, &name_s)?;
                    rfs::symlinkat(&target, &parent, *name).map_err(|e| create_err(&name_s, e))?;
                    if is_root {
                        rfs::chownat(
                            &parent,
                            *name,
                            Some(rfs::Uid::from_raw(uid as u32)),
                            Some(rfs::Gid::from_raw(gid as u32)),
                            AtFlags::SYMLINK_NOFOLLOW,
                        )
                        .map_err(|e| create_err(&name_s, e))?;
                    }
                    let _ = rfs::utimensat(&parent, *name, &ts(mtime), AtFlags::SYMLINK_NOFOLLOW);
                    stats.symlinks += 1;
                }
                tar::EntryType::Link => {
                    let target = entry
                        .link_name_bytes()
                        .ok_or_else(|| refused(&name_s, "the hardlink has no target"))?
                        .into_owned();
                    let tcomps = components(&name_s, &target)?;
                    let Some((tname, tparents)) = tcomps.split_last() else {
                        return Err(refused(&name_s, "the hardlink target is the layer root"));
                    };
                    let not_in_layer = || {
                        refused(
                            &name_s,
                            format!(
                                "its hardlink target '{}' is not a file inside this layer",
                                String::from_utf8_lossy(&target)
                            ),
                        )
                    };
                    let tparent = match walk(&root, tparents, false, &name_s) {
                        Ok(fd) => fd,
                        Err(UnpackError::Create { .. }) => return Err(not_in_layer()),
                        Err(e) => return Err(e),
                    };
                    match rfs::statat(&tparent, *tname, AtFlags::SYMLINK_NOFOLLOW) {
                        Ok(st) if FileType::from_raw_mode(st.st_mode) != FileType::Directory => {}
                        _ => return Err(not_in_layer()),
                    }
                    if tparents == parents && tname == name {
                        cache = Some((parent_key, parent));
                        continue;
                    }
                    removed = true;
                    clear(&parent, name, false, &name_s)?;
                    rfs::linkat(&tparent, *tname, &parent, *name, AtFlags::empty())
                        .map_err(|e| create_err(&name_s, e))?;
                    stats.hardlinks += 1;
                }
                tar::EntryType::Fifo => {
                    removed = true;
                    clear(&parent, name, false, &name_s)?;
                    rfs::mknodat(
                        &parent,
                        *name,
                        FileType::Fifo,
                        Mode::from_raw_mode(mode & 0o777),
                        0,
                    )
                    .map_err(|e| create_err(&name_s, e))?;
                    stats.files += 1;
                }
                tar::EntryType::Char | tar::EntryType::Block => stats.skipped_devices += 1,
                _ => {}
            }
        }
        if !removed {
            cache = Some((parent_key, parent));
        }
    }
    // Directory times last (creating their contents changed them), deepest first.
    for (path, mtime, mode) in dir_times.iter().rev() {
        let comps: Vec<&[u8]> = path.split(|&b| b == b'/').collect();
        let shown = String::from_utf8_lossy(path);
        let fd = walk(&root, &comps, false, &shown)?;
        rfs::fchmod(&fd, Mode::from_raw_mode(*mode)).map_err(|e| create_err(&shown, e))?;
        let _ = rfs::futimens(&fd, &ts(*mtime));
    }
    Ok(stats)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tar_of(entries: &[(&str, tar::EntryType, &[u8], Option<&str>)]) -> Vec<u8> {
        let mut b = tar::Builder::new(Vec::new());
        for (path, ty, data, link) in entries {
            let mut h = tar::Header::new_gnu();
            h.set_entry_type(*ty);
            h.set_mode(0o755);
            h.set_size(data.len() as u64);
            // Write the raw name so hostile paths are kept as-is.
            let name = h.as_old_mut().name.as_mut();
            name[..path.len()].copy_from_slice(path.as_bytes());
            if let Some(l) = link {
                h.as_old_mut().linkname[..l.len()].copy_from_slice(l.as_bytes());
            }
            h.set_cksum();
            b.append(&h, *data).unwrap();
        }
        b.into_inner().unwrap()
    }

    #[test]
    fn unpacks_plain_files_and_links() {
        let d = tempfile::tempdir().unwrap();
        let t = tar_of(&[
            ("./a/b/file", tar::EntryType::Regular, b"hi", None),
            ("a/link", tar::EntryType::Symlink, b"", Some("b/file")),
            ("a/hard", tar::EntryType::Link, b"", Some("a/b/file")),
            ("dev/null", tar::EntryType::Char, b"", None),
        ]);
        let s = unpack_layer(&t[..], d.path()).unwrap();
        assert_eq!(
            (s.files, s.symlinks, s.hardlinks, s.skipped_devices),
            (1, 1, 1, 1)
        );
        assert_eq!(std::fs::read(d.path().join("a/hard")).unwrap(), b"hi");
        assert!(!d.path().join("dev/null").exists());
    }

    #[test]
    fn refuses_dotdot_and_symlink_escape() {
        let outer = tempfile::tempdir().unwrap();
        let d = outer.path().join("t");
        std::fs::create_dir(&d).unwrap();
        let t = tar_of(&[("../../x", tar::EntryType::Regular, b"x", None)]);
        let e = unpack_layer(&t[..], &d).unwrap_err().to_string();
        assert!(e.contains("../../x") && e.contains(".."), "{e}");
        let t = tar_of(&[
            ("esc", tar::EntryType::Symlink, b"", Some("..")),
            ("esc/pwned", tar::EntryType::Regular, b"x", None),
        ]);
        let e = unpack_layer(&t[..], &d).unwrap_err().to_string();
        assert!(e.contains("esc/pwned") && e.contains("symlink"), "{e}");
        assert!(!outer.path().join("pwned").exists());
        // A plain tree has the same guards.
        let e = unpack_tree(&t[..], &d).unwrap_err().to_string();
        assert!(e.contains("esc/pwned"), "{e}");
    }

    #[test]
    fn a_plain_tree_has_no_whiteouts() {
        let d = tempfile::tempdir().unwrap();
        let t = tar_of(&[(".wh.notes", tar::EntryType::Regular, b"kept", None)]);
        let s = unpack_tree(&t[..], d.path()).unwrap();
        assert_eq!((s.files, s.whiteouts), (1, 0));
        assert_eq!(std::fs::read(d.path().join(".wh.notes")).unwrap(), b"kept");
    }
}
