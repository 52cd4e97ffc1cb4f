//! The one error type of the runc personality: each variant is one sentence naming the
//! object and, where there is one, the fix.

use std::path::PathBuf;

/// Errors of `gcr-runc` commands (the CLI prints them and exits 1, as runc does).
#[derive(Debug, thiserror::Error)]
pub enum OciError {
    #[error("invalid container id {0:?}: use letters, digits, '_', '+', '-' and '.' only")]
    BadId(String),
    #[error("container {0} already exists; delete it first or pick another id")]
    Exists(String),
    #[error("container {0} does not exist")]
    NotFound(String),
    #[error("cannot read the bundle's config {}: {source}", path.display())]
    NoConfig {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("the bundle's config {} is not valid JSON for the runtime spec: {msg}", path.display())]
    BadConfig { path: PathBuf, msg: String },
    #[error("{0}")]
    Invalid(String),
    #[error("{field} is not supported by gcr-runc yet; remove it from config.json")]
    Unsupported { field: String },
    #[error("container {id} is {status}; {what}")]
    BadState {
        id: String,
        status: &'static str,
        what: &'static str,
    },
    #[error("{what} {}: {source}", path.display())]
    Io {
        what: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(transparent)]
    Runtime(#[from] gcr_runtime::RuntimeError),
    #[error("cgroup of the container: {0}")]
    Cgroup(String),
    /// An OCI hook failed (the message names it).
    #[error("{0}")]
    Hook(String),
}

impl OciError {
    pub(crate) fn io(what: &'static str, path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        OciError::Io {
            what,
            path: path.into(),
            source,
        }
    }

    pub(crate) fn unsupported(field: &str) -> Self {
        OciError::Unsupported {
            field: field.to_string(),
        }
    }
}
