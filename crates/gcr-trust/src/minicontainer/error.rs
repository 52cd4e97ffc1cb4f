//! The canonical errors of seed 002: a code, the field at fault (a JSON path such as
//! `deploy.env.DB_URL`, empty for the whole document) and the reason, printed as one JSON
//! line `{"code":…,"field":…,"reason":…}`.

use serde::Serialize;

/// The seed's canonical error codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Code {
    #[serde(rename = "422_SCHEMA_INVALID")]
    SchemaInvalid,
    #[serde(rename = "422_SIGNATURE_INVALID")]
    SignatureInvalid,
    #[serde(rename = "428_PROOF_REQUIRED")]
    ProofRequired,
    #[serde(rename = "409_IDEMPOTENCY_CONFLICT")]
    IdempotencyConflict,
    #[serde(rename = "409_NONCE_REUSED")]
    NonceReused,
    #[serde(rename = "403_FORBIDDEN")]
    Forbidden,
    #[serde(rename = "500_INTERNAL")]
    Internal,
}

impl Code {
    /// The code as the seed spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            Code::SchemaInvalid => "422_SCHEMA_INVALID",
            Code::SignatureInvalid => "422_SIGNATURE_INVALID",
            Code::ProofRequired => "428_PROOF_REQUIRED",
            Code::IdempotencyConflict => "409_IDEMPOTENCY_CONFLICT",
            Code::NonceReused => "409_NONCE_REUSED",
            Code::Forbidden => "403_FORBIDDEN",
            Code::Internal => "500_INTERNAL",
        }
    }
}

/// A refusal of a manifest or of its application.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, thiserror::Error)]
#[error("{}: {reason}", code.as_str())]
pub struct McError {
    pub code: Code,
    pub field: String,
    pub reason: String,
}

impl McError {
    pub fn new(code: Code, field: impl Into<String>, reason: impl Into<String>) -> McError {
        McError {
            code,
            field: field.into(),
            reason: reason.into(),
        }
    }

    pub fn schema(field: impl Into<String>, reason: impl Into<String>) -> McError {
        McError::new(Code::SchemaInvalid, field, reason)
    }

    pub fn signature(field: impl Into<String>, reason: impl Into<String>) -> McError {
        McError::new(Code::SignatureInvalid, field, reason)
    }

    pub fn internal(field: impl Into<String>, reason: impl Into<String>) -> McError {
        McError::new(Code::Internal, field, reason)
    }

    /// The one-line JSON form.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_else(|_| {
            format!(
                r#"{{"code":"{}","field":"","reason":""}}"#,
                self.code.as_str()
            )
        })
    }
}
