//! Writing into the store's blob CAS from the network: blobs are staged in the store's
//! `tmp/` while being hashed, and only moved into `blobs/sha256/` (fsync, rename) once
//! every blob of an image has been received and verified. Also remembers which
//! repository each blob came from or went to, for cross-repository mounts on push.

use crate::error::{RegistryError, Result};
use gcr_store::Store;
use sha2::Digest as _;
use std::io::Write;
use std::path::{Path, PathBuf};

/// The store's temp directory (same filesystem as the CAS).
pub fn tmp_dir(store: &Store) -> PathBuf {
    store.root().join("tmp")
}

/// A blob being received: a temp file plus a running sha256.
pub struct Staged {
    pub file: tempfile::NamedTempFile,
    hasher: sha2::Sha256,
    pub size: u64,
}

impl Staged {
    /// A new staged blob in `tmp` (the store's `tmp/`, see [`tmp_dir`]); removed on drop
    /// unless committed.
    pub fn new(tmp: &Path) -> Result<Staged> {
        let file = tempfile::NamedTempFile::new_in(tmp)
            .map_err(|e| RegistryError::io("cannot create a temp file in", tmp, e))?;
        Ok(Staged {
            file,
            hasher: sha2::Sha256::new(),
            size: 0,
        })
    }

    /// Appends bytes.
    pub fn write(&mut self, data: &[u8]) -> Result<()> {
        self.hasher.update(data);
        self.size += data.len() as u64;
        self.file
            .write_all(data)
            .map_err(|e| RegistryError::io("cannot write", self.file.path(), e))
    }

    /// The digest of everything written so far.
    pub fn digest(&self) -> String {
        format!("sha256:{}", hex::encode(self.hasher.clone().finalize()))
    }

    /// Moves the blob into the CAS as `digest` (which the caller checked equals
    /// [`Staged::digest`]).
    pub fn commit(self, store: &Store, digest: &str) -> Result<()> {
        commit_file(store, self.file, digest)
    }
}

/// fsyncs and renames a verified temp file into the CAS (no-op if already present).
pub fn commit_file(store: &Store, file: tempfile::NamedTempFile, digest: &str) -> Result<()> {
    let dest = store.blob_path(digest)?;
    if dest.exists() {
        return Ok(());
    }
    file.as_file()
        .sync_all()
        .map_err(|e| RegistryError::io("cannot fsync", file.path(), e))?;
    file.persist(&dest)
        .map_err(|e| RegistryError::io("cannot move blob into", &dest, e.error))?;
    Ok(())
}

/// Stores small verified bytes (manifests, configs).
pub fn put_bytes(store: &Store, data: &[u8], digest: &str) -> Result<()> {
    if store.has_blob(digest) {
        return Ok(());
    }
    store.put_blob(data, Some(digest))?;
    Ok(())
}

/// Records that `digests` exist in `registry/repository` (best effort).
pub fn record_sources(
    store: &Store,
    registry: &str,
    repository: &str,
    digests: &[String],
) -> Result<()> {
    store.transaction(|tx| -> Result<()> {
        let mut st = tx.prepare_cached(
            "INSERT OR IGNORE INTO registry_blob_sources(digest, registry, repository) VALUES (?1, ?2, ?3)",
        )?;
        for d in digests {
            st.execute([d.as_str(), registry, repository])?;
        }
        Ok(())
    })
}

/// Another repository of `registry` known to hold `digest`, if any.
pub fn source_of(store: &Store, registry: &str, repository: &str, digest: &str) -> Option<String> {
    store
        .conn()
        .query_row(
            "SELECT repository FROM registry_blob_sources WHERE digest = ?1 AND registry = ?2 AND repository != ?3 LIMIT 1",
            [digest, registry, repository],
            |r| r.get(0),
        )
        .ok()
}
