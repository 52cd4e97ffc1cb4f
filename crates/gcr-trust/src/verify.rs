//! Verification of one signature artifact (a Sigstore bundle or a DSSE envelope) against
//! one public key and one manifest: the key ids it names must be the key's, the Ed25519
//! signature over the DSSE PAE must verify (strictly), the payload must be an in-toto
//! Statement v1, and one of its subjects must carry this manifest's sha256 (and, when the
//! statement gives one, its blake3). Anything else is an error naming what failed.

use serde::Serialize;

use crate::bundle;
use crate::dsse::{decode_b64, pae};
use crate::error::{Result, TrustError};
use crate::keys::PublicKey;
use crate::statement::{Statement, Subject, PAYLOAD_TYPE};

/// A signature that verified.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct Verified {
    #[serde(rename = "KeyID")]
    pub key_id: String,
    pub statement_type: String,
    pub predicate_type: String,
    /// The subject name the signer gave.
    pub subject_name: String,
    /// When it was signed, as the statement says (RFC 3339), if it says.
    pub time: Option<String>,
}

/// Verifies `bytes` (named `what` in errors) as a signature by `key` over the manifest
/// described by `want` (see [`Subject::for_manifest`]).
pub fn verify(what: &str, bytes: &[u8], key: &PublicKey, want: &Subject) -> Result<Verified> {
    let parsed = bundle::parse(what, bytes)?;
    let env = parsed.envelope;
    if let Some(hint) = parsed.hint.filter(|h| !h.is_empty()) {
        if hint != key.id() {
            return Err(TrustError::KeyIdMismatch {
                what: what.to_string(),
                found: hint,
                want: key.id().to_string(),
            });
        }
    }
    if env.payload_type != PAYLOAD_TYPE {
        return Err(TrustError::bad_bundle(
            what,
            format!(
                "its payloadType is '{}', not {PAYLOAD_TYPE}",
                env.payload_type
            ),
        ));
    }
    if env.signatures.is_empty() {
        return Err(TrustError::bad_bundle(
            what,
            "its envelope has no signature",
        ));
    }
    let payload = env.payload_bytes(what)?;
    let message = pae(&env.payload_type, &payload);
    let mut other_key = None;
    let mut verified = false;
    for s in &env.signatures {
        if !s.keyid.is_empty() && s.keyid != key.id() {
            other_key.get_or_insert_with(|| s.keyid.clone());
            continue;
        }
        let sig = decode_b64(what, "signature", &s.sig)?;
        if key.verify(&message, &sig) {
            verified = true;
            break;
        }
    }
    if !verified {
        if let (Some(found), true) = (
            other_key,
            env.signatures
                .iter()
                .all(|s| !s.keyid.is_empty() && s.keyid != key.id()),
        ) {
            return Err(TrustError::KeyIdMismatch {
                what: what.to_string(),
                found,
                want: key.id().to_string(),
            });
        }
        return Err(TrustError::BadSignature {
            what: what.to_string(),
            key_id: key.id().to_string(),
        });
    }
    let statement = Statement::parse(what, &payload)?;
    let name = statement.covers(what, want)?.to_string();
    Ok(Verified {
        key_id: key.id().to_string(),
        statement_type: statement.statement_type.clone(),
        predicate_type: statement.predicate_type.clone(),
        subject_name: name,
        time: statement.time(),
    })
}

/// Signs `statement` with `key` and wraps it in a Sigstore bundle: the bytes to attach.
pub fn sign(statement: &Statement, key: &crate::keys::PrivateKey) -> Result<Vec<u8>> {
    let payload = statement.to_payload()?;
    let env = crate::dsse::Envelope::sign(PAYLOAD_TYPE, &payload, key);
    bundle::wrap(&env, key.public().id())
}

#[cfg(test)]
mod tests;
