//! Sigstore bundle v0.3 (`application/vnd.dev.sigstore.bundle.v0.3+json`) around a DSSE
//! envelope, for a bring-your-own public key: `verificationMaterial.publicKey.hint` is the
//! key id, with no certificate, no transparency-log entry and no timestamp (gcr signs
//! offline; a verifier sets its log and timestamp thresholds to 0). The same module reads a
//! bare DSSE envelope, which is what securesystemslib and in-toto tools write.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::dsse::Envelope;
use crate::error::{Result, TrustError};

/// Media type of a Sigstore bundle v0.3 (also the artifact type of its referrer).
pub const BUNDLE_MEDIA_TYPE: &str = "application/vnd.dev.sigstore.bundle.v0.3+json";
/// Media type of a bare DSSE envelope attached as a referrer.
pub const DSSE_MEDIA_TYPE: &str = "application/vnd.dsse.envelope.v1+json";
/// The older bundle media types this reads as well (same shape for a public key).
const OLDER_BUNDLES: &[&str] = &[
    "application/vnd.dev.sigstore.bundle+json;version=0.2",
    "application/vnd.dev.sigstore.bundle.v0.2+json",
];

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Bundle {
    media_type: String,
    verification_material: Material,
    dsse_envelope: Option<Envelope>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    message_signature: Option<Value>,
}

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Material {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    public_key: Option<Hint>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    certificate: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    x509_certificate_chain: Option<Value>,
    #[serde(default)]
    tlog_entries: Vec<Value>,
    #[serde(default)]
    timestamp_verification_data: Option<Value>,
}

#[derive(Serialize, Deserialize)]
struct Hint {
    #[serde(default)]
    hint: String,
}

/// The bundle's bytes (canonical JSON) for `envelope`, signed by the key `key_id`.
pub fn wrap(envelope: &Envelope, key_id: &str) -> Result<Vec<u8>> {
    let b = Bundle {
        media_type: BUNDLE_MEDIA_TYPE.into(),
        verification_material: Material {
            public_key: Some(Hint {
                hint: key_id.to_string(),
            }),
            certificate: None,
            x509_certificate_chain: None,
            tlog_entries: Vec::new(),
            timestamp_verification_data: Some(serde_json::json!({ "rfc3161Timestamps": [] })),
        },
        dsse_envelope: Some(envelope.clone()),
        message_signature: None,
    };
    crate::canonical::to_vec("the Sigstore bundle", &b)
}

/// What [`parse`] found: the envelope and, for a bundle, its public key hint.
pub struct Parsed {
    pub envelope: Envelope,
    pub hint: Option<String>,
}

/// Reads a Sigstore bundle (v0.3, or v0.2) holding a DSSE envelope, or a bare DSSE
/// envelope; `what` names it in errors.
pub fn parse(what: &str, bytes: &[u8]) -> Result<Parsed> {
    let v: Value = serde_json::from_slice(bytes).map_err(|e| TrustError::bad_bundle(what, e))?;
    let Some(obj) = v.as_object() else {
        return Err(TrustError::bad_bundle(what, "it is not a JSON object"));
    };
    if !obj.contains_key("mediaType") && obj.contains_key("payloadType") {
        let envelope: Envelope =
            serde_json::from_value(v).map_err(|e| TrustError::bad_bundle(what, e))?;
        return Ok(Parsed {
            envelope,
            hint: None,
        });
    }
    let b: Bundle = serde_json::from_value(v).map_err(|e| TrustError::bad_bundle(what, e))?;
    if b.media_type != BUNDLE_MEDIA_TYPE && !OLDER_BUNDLES.contains(&b.media_type.as_str()) {
        return Err(TrustError::bad_bundle(
            what,
            format!(
                "its mediaType '{}' is not {BUNDLE_MEDIA_TYPE}",
                b.media_type
            ),
        ));
    }
    let m = b.verification_material;
    if m.certificate.is_some() || m.x509_certificate_chain.is_some() {
        return Err(TrustError::bad_bundle(
            what,
            "it is signed with a certificate (keyless), and gcr verifies public keys only",
        ));
    }
    let Some(hint) = m.public_key else {
        return Err(TrustError::bad_bundle(
            what,
            "its verificationMaterial has no publicKey",
        ));
    };
    let Some(envelope) = b.dsse_envelope else {
        return Err(TrustError::bad_bundle(
            what,
            "it holds a message signature, not a DSSE envelope",
        ));
    };
    Ok(Parsed {
        envelope,
        hint: Some(hint.hint),
    })
}
