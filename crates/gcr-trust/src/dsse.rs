//! DSSE (Dead Simple Signing Envelope, v1): the envelope, its pre-authentication encoding
//! (PAE) and Ed25519 signing over it. The payload is carried base64-encoded and is never
//! parsed before its signature has been checked.

use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD};
use base64::Engine as _;
use serde::{Deserialize, Serialize};

use crate::error::{Result, TrustError};
use crate::keys::PrivateKey;

/// One signature of an envelope.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Signature {
    /// Base64 of the signature bytes.
    pub sig: String,
    /// The signer's key id (optional in DSSE, always set by gcr).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub keyid: String,
}

/// A DSSE envelope as JSON.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Envelope {
    /// Base64 of the payload bytes.
    pub payload: String,
    pub payload_type: String,
    pub signatures: Vec<Signature>,
}

/// The pre-authentication encoding: `DSSEv1 SP LEN(type) SP type SP LEN(body) SP body`,
/// lengths in ASCII decimal.
pub fn pae(payload_type: &str, payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(payload.len() + payload_type.len() + 32);
    out.extend_from_slice(b"DSSEv1 ");
    out.extend_from_slice(payload_type.len().to_string().as_bytes());
    out.push(b' ');
    out.extend_from_slice(payload_type.as_bytes());
    out.push(b' ');
    out.extend_from_slice(payload.len().to_string().as_bytes());
    out.push(b' ');
    out.extend_from_slice(payload);
    out
}

/// Decodes base64 as DSSE allows it (standard or URL-safe alphabet, padded or not).
pub fn decode_b64(what: &str, field: &str, s: &str) -> Result<Vec<u8>> {
    [&STANDARD, &STANDARD_NO_PAD, &URL_SAFE, &URL_SAFE_NO_PAD]
        .iter()
        .find_map(|e| e.decode(s).ok())
        .ok_or_else(|| TrustError::bad_bundle(what, format!("its {field} is not base64")))
}

impl Envelope {
    /// Signs `payload` of `payload_type` with `key`, naming the key by its id.
    pub fn sign(payload_type: &str, payload: &[u8], key: &PrivateKey) -> Envelope {
        let sig = key.sign(&pae(payload_type, payload));
        Envelope {
            payload: STANDARD.encode(payload),
            payload_type: payload_type.to_string(),
            signatures: vec![Signature {
                sig: STANDARD.encode(sig),
                keyid: key.public().id().to_string(),
            }],
        }
    }

    /// The decoded payload (unverified).
    pub fn payload_bytes(&self, what: &str) -> Result<Vec<u8>> {
        decode_b64(what, "payload", &self.payload)
    }

    /// The envelope as JSON bytes (canonical, so signing the same statement twice gives the
    /// same bytes).
    pub fn to_json(&self) -> Result<Vec<u8>> {
        crate::canonical::to_vec("the DSSE envelope", self)
    }
}

#[cfg(test)]
mod tests;
