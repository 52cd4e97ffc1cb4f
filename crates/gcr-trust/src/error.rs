//! The errors of gcr-trust: each is one sentence naming the object and what to do.

use std::path::PathBuf;

pub type Result<T, E = TrustError> = std::result::Result<T, E>;

/// What can go wrong with keys, envelopes, bundles and their verification.
#[derive(Debug, thiserror::Error)]
pub enum TrustError {
    #[error(
        "no key named '{0}'; list keys with `gcr key list` or make one with `gcr key generate {0}`"
    )]
    KeyNotFound(String),
    #[error(
        "a key named '{0}' already exists; remove it with `gcr key rm {0}` or choose another name"
    )]
    KeyExists(String),
    #[error("'{0}' is not a valid key name; use up to 64 letters, digits, '.', '_' or '-', starting with a letter or digit")]
    BadKeyName(String),
    #[error("key '{0}' has only its public half; import its private key with `gcr key import {0} FILE` to sign with it")]
    NoPrivateKey(String),
    #[error("{0} is encrypted; give its password on standard input with --password-stdin")]
    PasswordNeeded(String),
    #[error("{0} is not encrypted; import it without --password-stdin")]
    PasswordUnused(String),
    #[error("the password for {0} is empty; give a non-empty password")]
    EmptyPassword(String),
    #[error("cannot decrypt {0}: the password is wrong or the file is damaged; check the password and try again")]
    WrongPassword(String),
    #[error("{what} is not a valid PEM key ({reason}); give an Ed25519 private key (PKCS#8 PEM) or public key (PKIX PEM)")]
    BadPem { what: String, reason: String },
    #[error("{what} holds {alg} key, but gcr signs with Ed25519 only; make one with `gcr key generate` or `openssl genpkey -algorithm ed25519`")]
    WrongAlgorithm { what: String, alg: String },
    #[error("cannot {action} {path}: {source}; check its permissions and the free space")]
    Io {
        action: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot encrypt the private key of '{name}' ({reason}); try again")]
    Encrypt { name: String, reason: String },
    #[error("cannot encode {what} as canonical JSON ({reason}); report this as a bug")]
    Canonical { what: String, reason: String },
    #[error("{what} is not a valid Sigstore bundle or DSSE envelope ({reason}); sign the image again with `gcr sign`")]
    BadBundle { what: String, reason: String },
    #[error("{what} is signed by key id {found}, not by the given key {want}; verify with the signer's public key")]
    KeyIdMismatch {
        what: String,
        found: String,
        want: String,
    },
    #[error("the signature in {what} does not verify with key {key_id}: its payload or signature was changed; sign the image again")]
    BadSignature { what: String, key_id: String },
    #[error("{what} does not hold a valid in-toto Statement v1 ({reason}); sign the image again with `gcr sign`")]
    BadStatement { what: String, reason: String },
    #[error("{what} covers manifest {found}, not this image's manifest {want}; sign this image with `gcr sign`")]
    SubjectMismatch {
        what: String,
        found: String,
        want: String,
    },
}

impl TrustError {
    pub(crate) fn io(
        action: &'static str,
        path: impl Into<PathBuf>,
        source: std::io::Error,
    ) -> Self {
        TrustError::Io {
            action,
            path: path.into(),
            source,
        }
    }

    pub(crate) fn bad_bundle(what: &str, reason: impl std::fmt::Display) -> Self {
        TrustError::BadBundle {
            what: what.to_string(),
            reason: reason.to_string(),
        }
    }

    pub(crate) fn bad_statement(what: &str, reason: impl std::fmt::Display) -> Self {
        TrustError::BadStatement {
            what: what.to_string(),
            reason: reason.to_string(),
        }
    }
}
