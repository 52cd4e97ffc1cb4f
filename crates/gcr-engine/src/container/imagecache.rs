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

/// One file per store and name: stores sharing a run dir (the default `/run/gcr`) keep
/// their own entries instead of replacing each other's.
fn entry_path(run_dir: &Path, root: &Path, image_ref: &str) -> PathBuf {
    use std::os::unix::ffi::OsStrExt;
    let mut h = Sha256::new();
    h.update(root.as_os_str().as_bytes());
    h.update([0]);
    h.update(image_ref.as_bytes());
    run_dir.join("images").join(hex(&h.finalize()[..16]))
}

impl CachedImage {
    /// True when `config` is the one the id names.
    fn consistent(&self) -> bool {
        self.id
            .strip_prefix("sha256:")
            .is_some_and(|d| d == hex(&Sha256::digest(self.config.as_bytes())))
    }
}

/// The entry for `image_ref` in the store at `root`, if there is a sound one.
pub(crate) fn load(run_dir: &Path, root: &Path, image_ref: &str) -> Option<CachedImage> {
    let bytes = std::fs::read(entry_path(run_dir, root, image_ref)).ok()?;
    let c: CachedImage = serde_json::from_slice(&bytes).ok()?;
    (c.image_ref == image_ref && !c.lowers.is_empty() && c.consistent()).then_some(c)
}

/// Records `c` unless the same entry is there (best effort: a cache). The caller has made
/// sure the run dir is in place (see `rundir::ensure`).
pub(crate) fn save(run_dir: &Path, root: &Path, c: &CachedImage) {
    if load(run_dir, root, &c.image_ref).as_ref() == Some(c) {
        return;
    }
    let path = entry_path(run_dir, root, &c.image_ref);
    let Some(dir) = path.parent() else {
        return;
    };
    let Ok(bytes) = serde_json::to_vec(c) else {
        return;
    };
    let tmp = dir.join(format!(".tmp-{}", std::process::id()));
    let ok = std::fs::create_dir_all(dir).is_ok()
        && std::fs::write(&tmp, bytes).is_ok()
        && std::fs::rename(&tmp, &path).is_ok();
    if !ok {
        let _ = std::fs::remove_file(&tmp);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(config: &str) -> CachedImage {
        CachedImage {
            image_ref: "busybox:1".into(),
            id: format!("sha256:{}", hex(&Sha256::digest(config.as_bytes()))),
            lowers: vec!["/s/1/fs".into()],
            config: config.into(),
        }
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
        std::fs::write(
            entry_path(d.path(), root, "busybox:1"),
            serde_json::to_vec(&bad).unwrap(),
        )
        .unwrap();
        assert!(load(d.path(), root, "busybox:1").is_none());
        // Garbage is refused.
        std::fs::write(entry_path(d.path(), root, "busybox:1"), b"{not json").unwrap();
        assert!(load(d.path(), root, "busybox:1").is_none());
    }
}
