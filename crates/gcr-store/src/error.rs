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

/// Shorthand for store results.
pub type Result<T, E = StoreError> = std::result::Result<T, E>;
