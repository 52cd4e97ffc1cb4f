//! The blob CAS: `blobs/sha256/<hex>`, written through a temp file in `tmp/`, hashed while
//! written, fsynced and renamed into place; verified against an expected digest.

use crate::error::{Result, StoreError};
use crate::util::{digest_hex, HashWriter};
use crate::Store;
use std::io::{Read, Write};
use std::path::PathBuf;

impl Store {
    /// Path of a blob (whether or not it exists).
    pub fn blob_path(&self, digest: &str) -> Result<PathBuf> {
        Ok(self.root.join("blobs/sha256").join(digest_hex(digest)?))
    }

    /// True if the blob is present.
    pub fn has_blob(&self, digest: &str) -> bool {
        self.blob_path(digest).map(|p| p.exists()).unwrap_or(false)
    }

    /// Removes the blob `digest` when nothing in the store references it (images, layers,
    /// the registry's tables, referrers), decided under the write lock; returns the bytes
    /// freed (0 when it is referenced or absent).
    pub fn remove_blob_if_unreferenced(&self, digest: &str) -> Result<u64> {
        let path = self.blob_path(digest)?;
        self.transaction(|tx| -> Result<u64> {
            if crate::images::blob_referenced(tx, digest)? {
                return Ok(0);
            }
            let len = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
            match std::fs::remove_file(&path) {
                Ok(()) => Ok(len),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(0),
                Err(e) => Err(StoreError::io("removing blob", &path, e)),
            }
        })
    }

    /// Stores bytes; returns `(digest, size)`. With `expected`, a mismatch is an error.
    pub fn put_blob(&self, data: &[u8], expected: Option<&str>) -> Result<(String, u64)> {
        self.put_blob_reader(data, expected)
    }

    /// Stores a stream; returns `(digest, size)`. With `expected`, a mismatch is an error and
    /// nothing is left behind.
    pub fn put_blob_reader(
        &self,
        mut r: impl Read,
        expected: Option<&str>,
    ) -> Result<(String, u64)> {
        if let Some(e) = expected {
            digest_hex(e)?;
        }
        let tmp = tempfile::Builder::new()
            .prefix(&crate::tmpfiles::prefix("blob"))
            .tempfile_in(self.tmp_dir())
            .map_err(|e| StoreError::io("cannot create a temp file in", self.tmp_dir(), e))?;
        let mut w = HashWriter::new(std::io::BufWriter::with_capacity(256 * 1024, tmp.as_file()));
        std::io::copy(&mut r, &mut w).map_err(|e| {
            crate::error::input_or_space(tmp.path(), e, |e| StoreError::Read {
                what: "blob data".into(),
                source: e,
            })
        })?;
        w.flush()
            .map_err(|e| StoreError::io("cannot write", tmp.path(), e))?;
        let (digest, size) = (w.digest(), w.count);
        drop(w);
        self.commit_temp(tmp, &digest, expected)?;
        Ok((digest, size))
    }

    /// Moves a fully written temp file into the CAS under `digest` after checking `expected`.
    pub(crate) fn commit_temp(
        &self,
        tmp: tempfile::NamedTempFile,
        digest: &str,
        expected: Option<&str>,
    ) -> Result<()> {
        if let Some(e) = expected {
            if e != digest {
                return Err(StoreError::DigestMismatch {
                    expected: e.to_string(),
                    actual: digest.to_string(),
                });
            }
        }
        let dest = self.blob_path(digest)?;
        if dest.exists() {
            return Ok(());
        }
        tmp.as_file()
            .sync_all()
            .map_err(|e| StoreError::io("cannot fsync", tmp.path(), e))?;
        tmp.persist(&dest)
            .map_err(|e| StoreError::io("cannot move blob into", &dest, e.error))?;
        Ok(())
    }

    /// Reads a whole blob.
    pub fn read_blob(&self, digest: &str) -> Result<Vec<u8>> {
        let p = self.blob_path(digest)?;
        std::fs::read(&p).map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => StoreError::BlobMissing(digest.to_string()),
            _ => StoreError::io("cannot read blob", p, e),
        })
    }

    /// Opens a blob for streaming.
    pub fn open_blob(&self, digest: &str) -> Result<std::fs::File> {
        let p = self.blob_path(digest)?;
        std::fs::File::open(&p).map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => StoreError::BlobMissing(digest.to_string()),
            _ => StoreError::io("cannot open blob", p, e),
        })
    }

    /// What blob `digest`'s content hashes to (`sha256:<hex>`), read where it lies.
    pub fn blob_sha256(&self, digest: &str) -> Result<String> {
        let f = self.open_blob(digest)?;
        let p = self.blob_path(digest)?;
        sha256_of_blob(&f).map_err(|e| StoreError::io("cannot read blob", p, e))
    }
}

/// `sha256:<hex>` of a CAS blob's content, hashed where it lies in the page cache (mapped,
/// not copied into a buffer first: for a layer the copy cost a third as much as the hash).
pub(crate) fn sha256_of_blob(f: &std::fs::File) -> std::io::Result<String> {
    use sha2::{Digest, Sha256};
    if f.metadata()?.len() == 0 {
        return Ok(format!("sha256:{}", hex::encode(Sha256::digest([]))));
    }
    // SAFETY: a CAS blob is never written in place once stored (written to a temporary
    // file, fsynced, renamed into place; removal unlinks the name, which leaves mapped pages
    // intact), and blobs are 0600 in 0700 directories of the store's owner, so the
    // mapping's bytes do not change under it.
    let map = unsafe { memmap2::MmapOptions::new().populate().map(f) }?;
    Ok(format!("sha256:{}", hex::encode(Sha256::digest(&map[..]))))
}

impl Store {
    /// Moves an already-hashed file (same filesystem) into the CAS after an fsync.
    pub(crate) fn commit_file(&self, path: &std::path::Path, digest: &str) -> Result<()> {
        let dest = self.blob_path(digest)?;
        if dest.exists() {
            return Ok(());
        }
        let f = std::fs::File::open(path).map_err(|e| StoreError::io("cannot open", path, e))?;
        f.sync_all()
            .map_err(|e| StoreError::io("cannot fsync", path, e))?;
        std::fs::rename(path, &dest).map_err(|e| StoreError::io("cannot move blob into", &dest, e))
    }
}

#[cfg(test)]
mod tests {
    use crate::Store;

    #[test]
    fn put_and_verify() {
        let d = tempfile::tempdir().unwrap();
        let s = Store::open(d.path()).unwrap();
        let (dg, n) = s.put_blob(b"hello", None).unwrap();
        assert_eq!(n, 5);
        assert_eq!(
            dg,
            "sha256:2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824"
        );
        assert_eq!(s.read_blob(&dg).unwrap(), b"hello");
        let bad = "sha256:0000000000000000000000000000000000000000000000000000000000000000";
        let e = s.put_blob(b"hellx", Some(bad)).unwrap_err().to_string();
        assert!(e.contains(bad) && e.contains("sha256:"), "{e}");
        assert_eq!(std::fs::read_dir(d.path().join("tmp")).unwrap().count(), 0);
        assert!(!s.has_blob(bad));
    }
}
