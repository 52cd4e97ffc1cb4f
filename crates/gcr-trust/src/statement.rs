//! in-toto Statement v1 (<https://in-toto.io/Statement/v1>): the payload gcr signs. Its
//! subject names the image and gives its manifest digest twice, as `sha256` (the OCI
//! digest) and `blake3` of the same bytes; the predicate of a plain signature says when it
//! was made. Parsing is strict about what verification relies on and ignores the rest, so
//! statements made by other tools (SLSA provenance, for instance) verify too.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::BTreeMap;

use crate::error::{Result, TrustError};

/// `_type` of an in-toto Statement v1.
pub const STATEMENT_V1: &str = "https://in-toto.io/Statement/v1";
/// The DSSE `payloadType` of an in-toto statement.
pub const PAYLOAD_TYPE: &str = "application/vnd.in-toto+json";
/// `predicateType` of gcr's image signature.
pub const SIGNATURE_PREDICATE: &str = "https://gcr.dev/attestations/signature/v1";

/// What a statement is about: an image name and its manifest's digests.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Subject {
    pub name: String,
    /// Algorithm (`sha256`, `blake3`) → lowercase hex.
    pub digest: BTreeMap<String, String>,
}

impl Subject {
    /// The subject for a manifest: `sha256` and `blake3` of its bytes.
    pub fn for_manifest(name: &str, manifest: &[u8]) -> Subject {
        use sha2::Digest;
        let mut digest = BTreeMap::new();
        digest.insert("sha256".into(), hex::encode(sha2::Sha256::digest(manifest)));
        digest.insert("blake3".into(), blake3::hash(manifest).to_hex().to_string());
        Subject {
            name: name.to_string(),
            digest,
        }
    }
}

/// A parsed statement.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Statement {
    #[serde(rename = "_type")]
    pub statement_type: String,
    pub subject: Vec<Subject>,
    #[serde(rename = "predicateType")]
    pub predicate_type: String,
    #[serde(default)]
    pub predicate: Value,
}

impl Statement {
    /// gcr's signature statement over `subject`, made at `signed_at` (RFC 3339).
    pub fn signature(subject: Subject, signed_at: &str) -> Statement {
        Statement {
            statement_type: STATEMENT_V1.into(),
            subject: vec![subject],
            predicate_type: SIGNATURE_PREDICATE.into(),
            predicate: serde_json::json!({ "signedAt": signed_at }),
        }
    }

    /// The canonical JSON bytes (the DSSE payload).
    pub fn to_payload(&self) -> Result<Vec<u8>> {
        crate::canonical::to_vec("the in-toto statement", self)
    }

    /// Parses a DSSE payload; `what` names its bundle in errors.
    pub fn parse(what: &str, payload: &[u8]) -> Result<Statement> {
        let s: Statement =
            serde_json::from_slice(payload).map_err(|e| TrustError::bad_statement(what, e))?;
        if s.statement_type != STATEMENT_V1 {
            return Err(TrustError::bad_statement(
                what,
                format!("its _type is '{}', not {STATEMENT_V1}", s.statement_type),
            ));
        }
        if s.subject.is_empty() {
            return Err(TrustError::bad_statement(what, "it has no subject"));
        }
        if s.predicate_type.is_empty() {
            return Err(TrustError::bad_statement(
                what,
                "its predicateType is empty",
            ));
        }
        Ok(s)
    }

    /// When it was signed: the predicate's `signedAt`, else SLSA's
    /// `runDetails.metadata.startedOn`.
    pub fn time(&self) -> Option<String> {
        let p = &self.predicate;
        p.get("signedAt")
            .or_else(|| p.pointer("/runDetails/metadata/startedOn"))
            .and_then(Value::as_str)
            .map(str::to_string)
    }

    /// Checks that a subject covers `want` (every digest algorithm both name must agree,
    /// and `sha256` must be among them); returns that subject's name.
    pub fn covers(&self, what: &str, want: &Subject) -> Result<&str> {
        let want_sha = want.digest.get("sha256").map(String::as_str).unwrap_or("");
        let mut found = None;
        for s in &self.subject {
            let Some(sha) = s.digest.get("sha256") else {
                continue;
            };
            if !sha.eq_ignore_ascii_case(want_sha) {
                found.get_or_insert_with(|| format!("sha256:{sha}"));
                continue;
            }
            for (alg, hex) in &s.digest {
                if let Some(w) = want.digest.get(alg) {
                    if !hex.eq_ignore_ascii_case(w) {
                        return Err(TrustError::SubjectMismatch {
                            what: what.to_string(),
                            found: format!("{alg}:{hex}"),
                            want: format!("{alg}:{w}"),
                        });
                    }
                }
            }
            return Ok(&s.name);
        }
        Err(TrustError::SubjectMismatch {
            what: what.to_string(),
            found: found.unwrap_or_else(|| "no sha256 digest".into()),
            want: format!("sha256:{want_sha}"),
        })
    }
}
