//! The registry error type: one clear sentence per variant, naming the object and the fix.

use gcr_store::StoreError;

/// Everything that can go wrong talking to, or serving, a registry.
#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    /// The user gave something unusable (a bad reference, flag or file).
    #[error("{0}")]
    Usage(String),
    /// The registry could not be reached at all.
    #[error("cannot reach registry {host}: {reason}; check the address (plain http needs localhost or --insecure)")]
    Connect { host: String, reason: String },
    /// The registry stopped answering (after retries).
    #[error("registry {host} did not answer in time ({secs} s per read, {attempts} attempts); check that it is up, or raise GCR_REGISTRY_TIMEOUT (seconds)")]
    Timeout {
        host: String,
        secs: u64,
        attempts: u32,
    },
    /// Credentials missing or refused.
    #[error("authentication to {host} failed: {reason}; run 'gcr login {host}'")]
    Unauthorized { host: String, reason: String },
    /// A login check refused (Docker's sentence; `gcr login` reports it as
    /// [`RegistryError::Unauthorized`]).
    #[error("login attempt to {url} failed with status: {status}")]
    LoginRefused {
        host: String,
        url: String,
        /// The HTTP status and its reason phrase (`401 Unauthorized`).
        status: String,
        reason: String,
    },
    /// A manifest, blob or repository the registry does not have.
    #[error("{0}")]
    NotFound(String),
    /// A transfer stopped because whoever asked for it left.
    #[error("{0}")]
    Cancelled(String),
    /// The registry answered with something unusable (status, size, JSON).
    #[error("registry {host}: {reason}")]
    Protocol { host: String, reason: String },
    /// Received content that does not hash to its announced digest.
    #[error("digest mismatch for {what}: expected {expected}, received content hashes to {actual}; the registry sent corrupt data and nothing was stored")]
    Digest {
        what: String,
        expected: String,
        actual: String,
    },
    /// A local file operation failed.
    #[error("{action} '{path}': {source}")]
    Io {
        action: &'static str,
        path: String,
        #[source]
        source: std::io::Error,
    },
    /// The local store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The registry server's database failed.
    #[error("registry database error: {0}; check permissions on the store root")]
    Db(#[from] rusqlite::Error),
}

impl RegistryError {
    pub(crate) fn io(
        action: &'static str,
        path: impl AsRef<std::path::Path>,
        source: std::io::Error,
    ) -> Self {
        RegistryError::Io {
            action,
            path: path.as_ref().display().to_string(),
            source,
        }
    }

    pub(crate) fn protocol(host: &str, reason: impl Into<String>) -> Self {
        RegistryError::Protocol {
            host: host.to_string(),
            reason: reason.into(),
        }
    }

    /// True for "no such image/manifest" errors.
    pub fn is_not_found(&self) -> bool {
        matches!(self, RegistryError::NotFound(_))
            || matches!(self, RegistryError::Store(e) if e.is_not_found())
    }

    /// True for errors in what the user typed.
    pub fn is_usage(&self) -> bool {
        matches!(self, RegistryError::Usage(_))
    }
}

/// Shorthand for registry results.
pub type Result<T, E = RegistryError> = std::result::Result<T, E>;
