//! Errors: [`ApiError`] for starting the service, [`HttpError`] for one request (Docker's
//! status codes with a `{"message": …}` body).

use gcr_engine::{EngineError, StoreError};
use hyper::StatusCode;

/// Why the service could not start or stopped.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("invalid --host '{0}': use unix:///path/to/gcr.sock or tcp://127.0.0.1:PORT")]
    BadHost(String),
    #[error(
        "refusing to serve the API on {0}: it is not a loopback address; serve it there only \
         with --tls (and --tlscacert, --tlscert, --tlskey: clients must present a certificate \
         signed by that CA), or use tcp://127.0.0.1:PORT or a unix socket"
    )]
    NotLoopback(String),
    #[error("--tls serves a TCP address only: use --host tcp://IP:PORT with it ({0} is a unix socket, guarded by its file mode and peer credentials)")]
    TlsOnUnix(String),
    #[error("TLS: {0}")]
    Tls(String),
    #[error("{what}: {source}")]
    Io {
        what: String,
        #[source]
        source: std::io::Error,
    },
    #[error("no such group '{0}': name an existing group (getent group NAME) or a numeric gid")]
    NoSuchGroup(String),
    #[error("{0}")]
    Engine(#[from] EngineError),
}

impl ApiError {
    pub(crate) fn io(what: impl Into<String>, source: std::io::Error) -> ApiError {
        ApiError::Io {
            what: what.into(),
            source,
        }
    }
}

/// A failed request: the status and the message of Docker's error body.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct HttpError {
    pub status: StatusCode,
    pub message: String,
    /// For a command that could not be started (exec): its exit code, 126 or 127.
    pub exit_code: i32,
    /// A refusal of the policy gate: its rule and reason (the JSONL protocol's error
    /// carries them; the HTTP body has the gate's JSON line as its message).
    pub policy: Option<(String, String)>,
}

impl HttpError {
    pub fn new(status: StatusCode, message: impl Into<String>) -> HttpError {
        HttpError {
            status,
            message: message.into(),
            exit_code: 126,
            policy: None,
        }
    }

    pub fn bad_request(message: impl Into<String>) -> HttpError {
        HttpError::new(StatusCode::BAD_REQUEST, message)
    }

    pub fn not_found(message: impl Into<String>) -> HttpError {
        HttpError::new(StatusCode::NOT_FOUND, message)
    }

    pub fn internal(message: impl Into<String>) -> HttpError {
        HttpError::new(StatusCode::INTERNAL_SERVER_ERROR, message)
    }
}

impl From<EngineError> for HttpError {
    fn from(e: EngineError) -> HttpError {
        let status = match &e {
            EngineError::NotFound(_) => StatusCode::NOT_FOUND,
            EngineError::Usage(_) => StatusCode::BAD_REQUEST,
            EngineError::Conflict(_) => StatusCode::CONFLICT,
            EngineError::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            EngineError::PolicyDeny { .. } | EngineError::Refused(_) => StatusCode::FORBIDDEN,
            EngineError::Store(s) => store_status(s),
            _ => StatusCode::INTERNAL_SERVER_ERROR,
        };
        let code = match &e {
            EngineError::Exec { code, .. } => *code,
            _ => 126,
        };
        let message = match &e {
            EngineError::NotFound(m) => docker_not_found(m),
            _ => e.to_string(),
        };
        let policy = match &e {
            EngineError::PolicyDeny { rule, reason } => Some((rule.clone(), reason.clone())),
            _ => None,
        };
        HttpError {
            exit_code: code,
            policy,
            ..HttpError::new(status, message)
        }
    }
}

/// The engine's "no such container: X; see 'gcr ps -a'" in Docker's words (the hint is
/// the CLI's); other messages as they are.
fn docker_not_found(m: &str) -> String {
    match m.strip_prefix("no such container: ") {
        Some(rest) => format!(
            "No such container: {}",
            rest.split("; ").next().unwrap_or(rest)
        ),
        None => m.to_string(),
    }
}

fn store_status(e: &StoreError) -> StatusCode {
    match e {
        StoreError::ImageNotFound(_) | StoreError::TagNotFound(_) => StatusCode::NOT_FOUND,
        StoreError::AmbiguousId(_)
        | StoreError::InvalidReference { .. }
        | StoreError::InvalidDigest(_) => StatusCode::BAD_REQUEST,
        StoreError::ImageInUse { .. } | StoreError::MultipleTags(_) => StatusCode::CONFLICT,
        _ => StatusCode::INTERNAL_SERVER_ERROR,
    }
}
