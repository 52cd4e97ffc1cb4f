//! Build errors: each one sentence naming the object and what to do.

use gcr_store::StoreError;

/// Why a build failed.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    /// The spec file could not be read or is invalid.
    #[error("{0}")]
    Spec(String),
    /// A usage problem (bad flags, no spec found, ...).
    #[error("{0}")]
    Usage(String),
    /// The base image is not in the store.
    #[error("base image '{0}' was not found locally; import, load or pull it first")]
    UnknownBase(String),
    /// A copy source does not exist.
    #[error("copy source '{0}' does not exist in the build context; fix `src` or add the file")]
    MissingSource(String),
    /// A copy source leaves the build context.
    #[error("copy source '{0}' resolves outside the build context; sources must stay inside it")]
    EscapingSource(String),
    /// A pinned digest did not match.
    #[error("{what} hash mismatch: expected {expected}, got {actual}; update the pin if the change is intended")]
    HashMismatch {
        what: String,
        expected: String,
        actual: String,
    },
    /// A dependency could not be fetched.
    #[error("dependency '{name}' could not be fetched from {source_url}: {reason}")]
    Fetch {
        name: String,
        source_url: String,
        reason: String,
    },
    /// A command exited non-zero.
    #[error("command {index} ({command}) failed with exit code {code}{tail}")]
    CommandFailed {
        index: usize,
        command: String,
        code: i32,
        /// `; last output:` and the last lines, or `; it printed nothing`.
        tail: String,
    },
    /// A command could not be run at all.
    #[error("command {index} ({command}) could not be run: {reason}")]
    Runner {
        index: usize,
        command: String,
        reason: String,
    },
    /// Reading or writing a file failed.
    #[error("{what} {path}: {source}")]
    Io {
        what: &'static str,
        path: String,
        #[source]
        source: std::io::Error,
    },
    /// Files a copy step takes hold what look like secrets (one sentence per hit).
    #[error("{}", .0.join("\n"))]
    SecretsFound(Vec<String>),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("build database: {0}")]
    Db(#[from] rusqlite::Error),
}

impl BuildError {
    pub(crate) fn io(
        what: &'static str,
        path: impl AsRef<std::path::Path>,
    ) -> impl FnOnce(std::io::Error) -> BuildError {
        let path = path.as_ref().display().to_string();
        move |source| BuildError::Io { what, path, source }
    }
}

/// Result of build operations.
pub type Result<T> = std::result::Result<T, BuildError>;
