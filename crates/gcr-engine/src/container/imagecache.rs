//! The images foreground runs resolved last, cached in the run directory (tmpfs), so that
//! the next `gcr run` of the same name can prepare and start its container while the store
//! is still opening. An entry is only a guess: the container is held before `pivot_root`
//! until the store confirms the name still means the same image on the same snapshots
//! (see `run_foreground`), and a stale or damaged entry just sends the run down the
//! ordinary path.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct CachedImage {
    /// The name as given to `gcr run`.
    pub image_ref: String,
    /// The image id: `sha256:` + the digest of `config`.
    pub id: String,
    /// Snapshot directories, top layer first.
    pub lowers: Vec<String>,
    /// The image config, byte for byte.
    pub config: String,
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// The cache directory of the store at `root`: stores sharing a run dir (the default
/// `/run/gcr`) keep their own entries, and each can drop its own (see [`forget_store`]).
fn store_dir(run_dir: &Path, root: &Path) -> PathBuf {
    use std::os::unix::ffi::OsStrExt;
    let h = Sha256::digest(root.as_os_str().as_bytes());
    run_dir.join("images").join(hex(&h[..16]))
}

/// One file per store and name.
fn entry_path(run_dir: &Path, root: &Path, image_ref: &str) -> PathBuf {
    let h = Sha256::digest(image_ref.as_bytes());
    store_dir(run_dir, root).join(hex(&h[..16]))
}

/// An entry as stored: the image and the identity (device, inode) of each snapshot
/// directory when the entry was made. A snapshot removed since (`rmi`, `prune`, `doctor
/// --repair`), even if unpacked again under the same name, no longer matches.
#[derive(Serialize, Deserialize)]
struct Stored {
    image: CachedImage,
    idents: Vec<(u64, u64)>,
}

/// (device, inode) of each path; None if any is missing.
fn idents(lowers: &[String]) -> Option<Vec<(u64, u64)>> {
    use std::os::unix::fs::MetadataExt;
    lowers
        .iter()
        .map(|l| std::fs::metadata(l).ok().map(|m| (m.dev(), m.ino())))
        .collect()
}

impl CachedImage {
    /// True when `config` is the one the id names.
    fn consistent(&self) -> bool {
        self.id
            .strip_prefix("sha256:")
            .is_some_and(|d| d == hex(&Sha256::digest(self.config.as_bytes())))
    }
}

/// The entry for `image_ref` in the store at `root`, if there is a sound one whose
/// snapshot directories are still the ones it was made with (a stat each).
pub(crate) fn load(run_dir: &Path, root: &Path, image_ref: &str) -> Option<CachedImage> {
    let bytes = std::fs::read(entry_path(run_dir, root, image_ref)).ok()?;
    let s: Stored = serde_json::from_slice(&bytes).ok()?;
    let c = s.image;
    (c.image_ref == image_ref
        && !c.lowers.is_empty()
        && c.consistent()
        && idents(&c.lowers).is_some_and(|now| now == s.idents))
    .then_some(c)
}

/// Records `c` unless the same entry is there (best effort: a cache). The caller has made
/// sure the run dir is in place (see `rundir::ensure`). Entries are readable by root only:
/// they name the store's snapshots and hold image configs.
pub(crate) fn save(run_dir: &Path, root: &Path, c: &CachedImage) {
    use std::io::Write;
    use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
    if load(run_dir, root, &c.image_ref).as_ref() == Some(c) {
        return;
    }
    let Some(idents) = idents(&c.lowers) else {
        return;
    };
    let path = entry_path(run_dir, root, &c.image_ref);
    let Some(dir) = path.parent() else {
        return;
    };
    let Ok(bytes) = serde_json::to_vec(&Stored {
        image: c.clone(),
        idents,
    }) else {
        return;
    };
    let tmp = dir.join(format!(".tmp-{}", std::process::id()));
    let ok = std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .is_ok()
        && std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&tmp)
            .and_then(|mut f| f.write_all(&bytes))
            .is_ok()
        && std::fs::rename(&tmp, &path).is_ok();
    if !ok {
        let _ = std::fs::remove_file(&tmp);
    }
}

/// Drops every entry of the store at `root` (after `rmi`, on `network __teardown`, by
/// `doctor --repair`); other stores' entries stay.
pub(crate) fn forget_store(run_dir: &Path, root: &Path) {
    let _ = std::fs::remove_dir_all(store_dir(run_dir, root));
    let images = run_dir.join("images");
    // Entries of older versions lay directly in images/, with no owner to tell.
    if let Ok(rd) = std::fs::read_dir(&images) {
        for e in rd.flatten() {
            if e.file_type().is_ok_and(|t| t.is_file()) {
                let _ = std::fs::remove_file(e.path());
            }
        }
    }
    let _ = std::fs::remove_dir(images);
}

impl crate::Engine {
    /// Drops this store's image cache entries in the run dir (see [`forget_store`]).
    pub fn forget_image_cache(&self) {
        forget_store(self.run_dir(), self.root());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(config: &str) -> CachedImage {
        CachedImage {
            image_ref: "busybox:1".into(),
            id: format!("sha256:{}", hex(&Sha256::digest(config.as_bytes()))),
            lowers: vec![std::env::temp_dir().to_string_lossy().into_owned()],
            config: config.into(),
        }
    }

    fn write_stored(run: &Path, root: &Path, c: &CachedImage) {
        let s = Stored {
            image: c.clone(),
            idents: idents(&c.lowers).unwrap(),
        };
        std::fs::write(
            entry_path(run, root, &c.image_ref),
            serde_json::to_vec(&s).unwrap(),
        )
        .unwrap();
    }

    #[test]
    fn round_trip_and_refusals() {
        let d = tempfile::tempdir().unwrap();
        let root = Path::new("/var/lib/gcr");
        assert!(load(d.path(), root, "busybox:1").is_none());
        let e = entry("{\"config\":{}}");
        save(d.path(), root, &e);
        assert_eq!(load(d.path(), root, "busybox:1"), Some(e.clone()));
        assert!(load(d.path(), root, "busybox:2").is_none());
        // Another store's entry for the same name is its own.
        assert!(load(d.path(), Path::new("/srv/gcr"), "busybox:1").is_none());
        // A config that does not match its id is refused.
        let mut bad = e.clone();
        bad.config.push(' ');
        write_stored(d.path(), root, &bad);
        assert!(load(d.path(), root, "busybox:1").is_none());
        // Garbage is refused.
        std::fs::write(entry_path(d.path(), root, "busybox:1"), b"{not json").unwrap();
        assert!(load(d.path(), root, "busybox:1").is_none());
    }

    #[test]
    fn a_removed_or_replaced_snapshot_invalidates_the_entry() {
        let d = tempfile::tempdir().unwrap();
        let snap = d.path().join("snapshots/abc");
        std::fs::create_dir_all(&snap).unwrap();
        let root = d.path();
        let run = d.path().join("run");
        let mut e = entry("{}");
        e.lowers = vec![snap.to_string_lossy().into_owned()];
        save(&run, root, &e);
        assert_eq!(load(&run, root, "busybox:1"), Some(e.clone()));
        // rmi removed it.
        std::fs::remove_dir(&snap).unwrap();
        assert!(load(&run, root, "busybox:1").is_none());
        // A new import unpacked the same chain again: another directory, same name.
        let other = d.path().join("keep-inode-busy");
        std::fs::create_dir(&other).unwrap();
        std::fs::create_dir(&snap).unwrap();
        let now = idents(&e.lowers).unwrap();
        let stored: Stored =
            serde_json::from_slice(&std::fs::read(entry_path(&run, root, "busybox:1")).unwrap())
                .unwrap();
        if now != stored.idents {
            assert!(load(&run, root, "busybox:1").is_none());
        }
        // A fresh save is trusted again.
        save(&run, root, &e);
        assert_eq!(load(&run, root, "busybox:1"), Some(e.clone()));
    }

    #[test]
    fn forgetting_one_store_keeps_the_others() {
        use std::os::unix::fs::PermissionsExt;
        let d = tempfile::tempdir().unwrap();
        let run = d.path();
        let e = entry("{}");
        let (a, b) = (Path::new("/srv/a"), Path::new("/srv/b"));
        save(run, a, &e);
        save(run, b, &e);
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&entry_path(run, a, "busybox:1")), 0o600);
        assert_eq!(mode(&store_dir(run, a)), 0o700);
        forget_store(run, a);
        assert!(load(run, a, "busybox:1").is_none());
        assert_eq!(load(run, b, "busybox:1"), Some(e));
        forget_store(run, b);
        assert!(!run.join("images").exists());
    }
}
