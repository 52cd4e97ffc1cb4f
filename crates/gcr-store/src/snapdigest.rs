//! Snapshot digests: a sha256 over a canonical list of an unpacked snapshot's entries
//! (path, type, permission bits, owner, size, content hash, link target, device number and
//! the xattrs overlay and the kernel act on), computed when the snapshot is made and
//! checked by `gcr doctor --snapshots`. The entry count and byte total kept with it let
//! plain `doctor` catch truncation with a walk that reads no file contents.

use sha2::{Digest as _, Sha256};
use std::io::{self, Read};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::Path;

/// What a snapshot looked like when it was made.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct TreeSum {
    /// `sha256:<hex>` of the canonical entry list (empty when only counted).
    pub digest: String,
    /// Entries below the snapshot's root, of every type.
    pub entries: u64,
    /// Bytes of regular files.
    pub bytes: u64,
}

/// Xattrs that change what a container sees: overlay's (opaque directories), file
/// capabilities and user attributes. Labels a host may reassign (SELinux) are left out.
fn kept_xattr(name: &[u8]) -> bool {
    name.starts_with(b"trusted.overlay.")
        || name == b"security.capability"
        || name.starts_with(b"user.")
}

struct Walk {
    hasher: Option<Sha256>,
    entries: u64,
    bytes: u64,
    buf: Vec<u8>,
}

fn field(h: &mut Sha256, b: &[u8]) {
    h.update((b.len() as u64).to_le_bytes());
    h.update(b);
}

fn xattrs(path: &Path) -> Vec<(Vec<u8>, Vec<u8>)> {
    let mut names = vec![0u8; 4096];
    let n = match rustix::fs::llistxattr(path, &mut names) {
        Ok(n) => n,
        Err(_) => return Vec::new(),
    };
    let mut out: Vec<(Vec<u8>, Vec<u8>)> = names[..n]
        .split(|&b| b == 0)
        .filter(|n| !n.is_empty() && kept_xattr(n))
        .filter_map(|name| {
            let mut v = vec![0u8; 64 * 1024];
            let len = rustix::fs::lgetxattr(path, name, &mut v).ok()?;
            v.truncate(len);
            Some((name.to_vec(), v))
        })
        .collect();
    out.sort();
    out
}

impl Walk {
    fn entry(&mut self, path: &Path, rel: &[u8], md: &std::fs::Metadata) -> io::Result<()> {
        let ft = md.file_type();
        if ft.is_file() {
            self.bytes += md.len();
        }
        if self.hasher.is_none() {
            return Ok(());
        }
        let ty: &[u8] = if ft.is_dir() {
            b"d"
        } else if ft.is_file() {
            b"f"
        } else if ft.is_symlink() {
            b"l"
        } else if ft.is_char_device() {
            b"c"
        } else if ft.is_block_device() {
            b"b"
        } else if ft.is_fifo() {
            b"p"
        } else {
            b"s"
        };
        let content = if ft.is_file() {
            let mut f = std::fs::File::open(path)?;
            let mut content = Sha256::new();
            loop {
                let n = f.read(&mut self.buf)?;
                if n == 0 {
                    break;
                }
                content.update(&self.buf[..n]);
            }
            Some(content.finalize())
        } else {
            None
        };
        let link = if ft.is_symlink() {
            Some(std::fs::read_link(path)?)
        } else {
            None
        };
        let xs = xattrs(path);
        let Some(h) = self.hasher.as_mut() else {
            return Ok(());
        };
        field(h, rel);
        field(h, ty);
        field(
            h,
            format!(
                "{:o} {} {} {}",
                md.mode() & 0o7777,
                md.uid(),
                md.gid(),
                md.rdev()
            )
            .as_bytes(),
        );
        if let Some(c) = content {
            field(h, &md.len().to_le_bytes());
            field(h, &c);
        }
        if let Some(l) = link {
            field(h, l.as_os_str().as_bytes());
        }
        field(h, &(xs.len() as u64).to_le_bytes());
        for (k, v) in xs {
            field(h, &k);
            field(h, &v);
        }
        Ok(())
    }

    fn dir(&mut self, dir: &Path, rel: &[u8]) -> io::Result<()> {
        let mut names: Vec<_> = std::fs::read_dir(dir)?
            .map(|e| e.map(|e| e.file_name()))
            .collect::<io::Result<_>>()?;
        names.sort();
        for name in names {
            let path = dir.join(&name);
            let md = std::fs::symlink_metadata(&path)?;
            let mut r = rel.to_vec();
            if !r.is_empty() {
                r.push(b'/');
            }
            r.extend_from_slice(name.as_bytes());
            self.entries += 1;
            self.entry(&path, &r, &md)?;
            if md.is_dir() {
                self.dir(&path, &r)?;
            }
        }
        Ok(())
    }
}

fn walk(root: &Path, hash: bool) -> io::Result<TreeSum> {
    let mut w = Walk {
        hasher: hash.then(Sha256::new),
        entries: 0,
        bytes: 0,
        buf: vec![0; if hash { 256 * 1024 } else { 0 }],
    };
    let md = std::fs::symlink_metadata(root)?;
    if !md.is_dir() {
        return Err(io::Error::new(
            io::ErrorKind::NotADirectory,
            format!("{} is not a directory", root.display()),
        ));
    }
    // The root's own metadata (its mode and owner become the container's `/`).
    w.entry(root, b"", &md)?;
    w.dir(root, b"")?;
    Ok(TreeSum {
        digest: w
            .hasher
            .map(|h| format!("sha256:{}", hex::encode(h.finalize())))
            .unwrap_or_default(),
        entries: w.entries,
        bytes: w.bytes,
    })
}

/// The digest, entry count and byte total of the tree at `root` (reads every file).
pub(crate) fn digest_tree(root: &Path) -> io::Result<TreeSum> {
    walk(root, true)
}

/// The entry count and byte total of the tree at `root` (metadata only).
pub(crate) fn count_tree(root: &Path) -> io::Result<TreeSum> {
    walk(root, false)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(d: &Path) {
        std::fs::create_dir_all(d.join("bin")).unwrap();
        std::fs::write(d.join("bin/sh"), vec![0x7f; 10_000]).unwrap();
        std::fs::write(d.join("etc"), b"hello").unwrap();
        std::os::unix::fs::symlink("bin/sh", d.join("sh")).unwrap();
    }

    #[test]
    fn digests_see_flipped_bytes_modes_links_and_truncation() {
        let d = tempfile::tempdir().unwrap();
        sample(d.path());
        let a = digest_tree(d.path()).unwrap();
        assert_eq!((a.entries, a.bytes), (4, 10_005));
        assert_eq!(count_tree(d.path()).unwrap().entries, 4);
        assert_eq!(digest_tree(d.path()).unwrap(), a, "the digest is stable");

        // One flipped byte: same size, same count, different digest.
        let mut b = std::fs::read(d.path().join("bin/sh")).unwrap();
        b[5000] ^= 1;
        std::fs::write(d.path().join("bin/sh"), &b).unwrap();
        let flipped = digest_tree(d.path()).unwrap();
        assert_eq!((flipped.entries, flipped.bytes), (a.entries, a.bytes));
        assert_ne!(flipped.digest, a.digest);
        b[5000] ^= 1;
        std::fs::write(d.path().join("bin/sh"), &b).unwrap();
        assert_eq!(digest_tree(d.path()).unwrap(), a);

        // Truncation shows in the cheap count.
        std::fs::write(d.path().join("bin/sh"), &b[..100]).unwrap();
        assert_eq!(count_tree(d.path()).unwrap().bytes, 105);
        std::fs::write(d.path().join("bin/sh"), &b).unwrap();

        // A changed mode or link target changes the digest.
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(d.path().join("etc"), std::fs::Permissions::from_mode(0o777))
            .unwrap();
        assert_ne!(digest_tree(d.path()).unwrap().digest, a.digest);
        std::fs::set_permissions(d.path().join("etc"), std::fs::Permissions::from_mode(0o644))
            .unwrap();
        std::fs::remove_file(d.path().join("sh")).unwrap();
        std::os::unix::fs::symlink("bin/sx", d.path().join("sh")).unwrap();
        assert_ne!(digest_tree(d.path()).unwrap().digest, a.digest);
    }
}
