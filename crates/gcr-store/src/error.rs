//! The store's error type: one clear sentence per variant, naming the object and the fix.

use std::path::PathBuf;

/// Everything that can go wrong in the store (except layer unpacking, see [`crate::UnpackError`]).
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// No image matches the name, id or digest.
    #[error("image '{0}' not found; see 'gcr images'")]
    ImageNotFound(String),
    /// A tag to remove does not exist.
    #[error("tag '{0}' not found; see 'gcr images'")]
    TagNotFound(String),
    /// A short id matches more than one image.
    #[error("image id prefix '{0}' matches more than one image; give more characters")]
    AmbiguousId(String),
    /// A reference that cannot be parsed.
    #[error("invalid image reference '{reference}': {reason}")]
    InvalidReference { reference: String, reason: String },
    /// The image is used by containers.
    #[error(
        "image '{image}' is used by container(s) {containers}; remove them first or use --force"
    )]
    ImageInUse { image: String, containers: String },
    /// The image has several tags and was named by id.
    #[error("image '{0}' is referenced by several tags; remove the tags first or use --force")]
    MultipleTags(String),
    /// Content did not hash to the digest it was announced with.
    #[error(
        "digest mismatch: expected {expected}, content hashes to {actual}; the source is corrupt"
    )]
    DigestMismatch { expected: String, actual: String },
    /// A digest string that is not `sha256:<64 hex>`.
    #[error("invalid digest '{0}'; expected sha256:<64 hex characters>")]
    InvalidDigest(String),
    /// A blob referenced by metadata is not in the CAS.
    #[error("blob {0} is missing from the store; run 'gcr doctor'")]
    BlobMissing(String),
    /// Another writer changed the ledger's tree meanwhile.
    #[error("{0}")]
    LedgerConflict(String),
    /// A referrer's subject is neither an image manifest nor a referrer of the store.
    #[error("the subject {0} of the referrer is not in the store; pull or load the image it refers to first")]
    ReferrerSubjectMissing(String),
    /// A bad archive or tarball.
    #[error("invalid archive: {0}")]
    Archive(String),
    /// Malformed JSON in a manifest, config or index.
    #[error("invalid {what}: {reason}")]
    BadJson { what: String, reason: String },
    /// Unpacking a layer failed.
    #[error(transparent)]
    Unpack(#[from] crate::unpack::UnpackError),
    /// A filesystem operation failed.
    #[error("{action} '{}': {source}", path.display())]
    Io {
        action: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// A read from the caller's stream failed.
    #[error("reading {what} failed: {source}")]
    Read {
        what: String,
        #[source]
        source: std::io::Error,
    },
    /// The metadata database failed.
    #[error("store database error: {0}; check permissions on the store root or run 'gcr doctor'")]
    Db(#[from] rusqlite::Error),
    /// The filesystem holding the store is full (ENOSPC) or the user's quota is used up
    /// (EDQUOT): the disk, not the input, is at fault.
    #[error("no space left on the filesystem holding '{}' (the gcr store): free space there (e.g. 'gcr system prune', or remove other files) and retry", path.display())]
    NoSpace { path: PathBuf },
    /// The database was written by a newer gcr.
    #[error("store database schema version {found} is newer than this gcr supports ({supported}); upgrade gcr")]
    SchemaTooNew { found: i64, supported: i64 },
}

impl StoreError {
    /// True for "no such image/tag" errors (the CLI exits 1 with the message).
    pub fn is_not_found(&self) -> bool {
        matches!(
            self,
            StoreError::ImageNotFound(_) | StoreError::TagNotFound(_)
        )
    }

    pub(crate) fn io(
        action: &'static str,
        path: impl Into<PathBuf>,
        source: std::io::Error,
    ) -> Self {
        if is_no_space(&source) {
            return StoreError::NoSpace { path: path.into() };
        }
        StoreError::Io {
            action,
            path: path.into(),
            source,
        }
    }

    pub(crate) fn bad_json(what: impl Into<String>, reason: impl ToString) -> Self {
        StoreError::BadJson {
            what: what.into(),
            reason: reason.to_string(),
        }
    }
}

/// True when `e` (or an I/O error it wraps) says the disk is full or the quota used up.
pub fn is_no_space(e: &std::io::Error) -> bool {
    if matches!(e.raw_os_error(), Some(libc::ENOSPC) | Some(libc::EDQUOT))
        || matches!(
            e.kind(),
            std::io::ErrorKind::StorageFull | std::io::ErrorKind::QuotaExceeded
        )
    {
        return true;
    }
    // Wrapping readers and writers (tar, gzip) may box the original error.
    e.get_ref()
        .and_then(|inner| inner.downcast_ref::<std::io::Error>())
        .is_some_and(is_no_space)
}

/// Maps a failed copy from the caller's input into the store: a full disk names `path`
/// (where the data was going), anything else is the input's fault (`read`).
pub(crate) fn input_or_space(
    path: &std::path::Path,
    e: std::io::Error,
    read: impl FnOnce(std::io::Error) -> StoreError,
) -> StoreError {
    if is_no_space(&e) {
        StoreError::NoSpace {
            path: path.to_path_buf(),
        }
    } else {
        read(e)
    }
}

/// Shorthand for store results.
pub type Result<T, E = StoreError> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_disk_names_the_store_path_and_the_fix() {
        let full = std::io::Error::from_raw_os_error(libc::ENOSPC);
        let e = StoreError::io("cannot write", "/srv/gcr/tmp/x", full);
        let msg = e.to_string();
        assert!(matches!(e, StoreError::NoSpace { .. }), "{e:?}");
        assert!(
            msg.contains("/srv/gcr/tmp/x") && msg.contains("free space"),
            "{msg}"
        );
        // Wrapped the way tar and gzip wrap errors.
        let wrapped = std::io::Error::other(std::io::Error::from_raw_os_error(libc::EDQUOT));
        assert!(is_no_space(&wrapped));
        assert!(!is_no_space(&std::io::Error::from(
            std::io::ErrorKind::UnexpectedEof
        )));
        let e = input_or_space(
            std::path::Path::new("/s/tmp"),
            std::io::Error::from(std::io::ErrorKind::UnexpectedEof),
            |e| StoreError::Archive(format!("truncated: {e}")),
        );
        assert!(matches!(e, StoreError::Archive(_)), "{e:?}");
    }
}
