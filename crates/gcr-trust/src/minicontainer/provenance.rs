//! Provenance and grant signatures (`alg` `ed25519-blake3`). What is signed is the RFC 8785
//! canonical JSON of the manifest with `provenance.sig` left out (so `provenance.kid` and
//! `alg` are covered); its BLAKE3 hash, `blake3:<hex>`, is the manifest's digest (the
//! `mc:<tenant>/<name>@blake3:…` reference, the idempotency check), and `provenance.sig` is
//! the standard base64 of the Ed25519 signature of the 32 hash bytes by the signing slot
//! `provenance.kid`. A grant's `sig` is `ed25519:<base64>` of the Ed25519 signature of the
//! BLAKE3 hash of the grant's canonical JSON without `sig`, by any active signing slot.

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use ed25519_dalek::{Signature, VerifyingKey};
use serde::Serialize;
use serde_json::{json, Value};

use super::error::{Code, McError};
use super::Manifest;
use crate::keys::{key_id, PrivateKey};

/// The provenance algorithm of seed 002.
pub const PROVENANCE_ALG: &str = "ed25519-blake3";

fn canonical(what: &str, v: &Value) -> Result<Vec<u8>, McError> {
    crate::canonical::to_vec(what, v).map_err(|e| McError::internal("", e.to_string()))
}

/// The canonical bytes the provenance signature covers.
pub fn payload(doc: &Value) -> Result<Vec<u8>, McError> {
    let mut d = doc.clone();
    if let Some(p) = d.get_mut("provenance").and_then(Value::as_object_mut) {
        p.remove("sig");
    }
    canonical("the manifest", &d)
}

/// The canonical bytes a grant's signature covers.
pub fn grant_payload(grant: &Value) -> Result<Vec<u8>, McError> {
    let mut g = grant.clone();
    if let Some(o) = g.as_object_mut() {
        o.remove("sig");
    }
    canonical("a grant", &g)
}

/// The manifest's digest, `blake3:<hex>` of [`payload`].
pub fn digest(doc: &Value) -> Result<String, McError> {
    Ok(format!("blake3:{}", blake3::hash(&payload(doc)?).to_hex()))
}

/// What a valid provenance signature says.
#[derive(Debug, Clone, Serialize)]
pub struct Signer {
    /// `blake3:<hex>` of the signed payload.
    pub digest: String,
    /// The signing slot.
    pub kid: String,
    /// The securesystemslib key id of its public key (as `gcr key list` shows).
    pub key_id: String,
    /// The raw public key, hex.
    pub public_hex: String,
    /// Grants whose signature verified.
    pub grants: usize,
}

fn key_of(pub_hex: &str) -> Option<VerifyingKey> {
    let raw: [u8; 32] = hex::decode(pub_hex).ok()?.try_into().ok()?;
    VerifyingKey::from_bytes(&raw).ok()
}

fn decode_sig(s: &str) -> Option<Signature> {
    let bytes = B64.decode(s).ok()?;
    Signature::from_slice(&bytes).ok()
}

/// Checks the provenance signature and every grant's signature of `m`.
pub fn verify_provenance(m: &Manifest) -> Result<Signer, McError> {
    let Some(p) = &m.provenance else {
        return Err(McError::new(
            Code::ProofRequired,
            "provenance",
            "the manifest is not signed; sign it with `gcr manifest sign FILE --key NAME`",
        ));
    };
    if p.alg != PROVENANCE_ALG {
        return Err(McError::signature(
            "provenance.alg",
            format!("is '{}'; gcr verifies '{PROVENANCE_ALG}'", p.alg),
        ));
    }
    let Some(slot) = m.slots.signing.iter().find(|s| s.kid == p.kid) else {
        return Err(McError::signature(
            "provenance.kid",
            format!(
                "names signing key '{}', which slots.signing does not declare",
                p.kid
            ),
        ));
    };
    if slot.status != "active" {
        return Err(McError::signature(
            "provenance.kid",
            format!("signing key '{}' is {}, not active", p.kid, slot.status),
        ));
    }
    let key = key_of(&slot.pub_hex)
        .ok_or_else(|| McError::schema("slots.signing", "holds a key that is not Ed25519"))?;
    let sig = decode_sig(&p.sig).ok_or_else(|| {
        McError::signature(
            "provenance.sig",
            "is not the base64 of a 64-byte Ed25519 signature",
        )
    })?;
    let hash = blake3::hash(&payload(&m.doc)?);
    if key.verify_strict(hash.as_bytes(), &sig).is_err() {
        return Err(McError::signature(
            "provenance.sig",
            format!(
                "does not verify with signing key '{}': the manifest changed after it was signed, or another key signed it; sign it again",
                p.kid
            ),
        ));
    }
    let active: Vec<VerifyingKey> = m
        .slots
        .signing
        .iter()
        .filter(|s| s.status == "active")
        .filter_map(|s| key_of(&s.pub_hex))
        .collect();
    let grants = m.doc.get("grants").and_then(Value::as_array);
    for (i, g) in grants.into_iter().flatten().enumerate() {
        let field = format!("grants[{i}].sig");
        if g.get("sig").is_none() {
            return Err(McError::new(
                Code::ProofRequired,
                field,
                "the grant is not signed; sign the manifest with `gcr manifest sign FILE --key NAME`",
            ));
        }
        let sig = g
            .get("sig")
            .and_then(Value::as_str)
            .and_then(|s| s.strip_prefix("ed25519:"))
            .and_then(decode_sig)
            .ok_or_else(|| {
                McError::signature(&field, "is not ed25519:<base64 of a 64-byte signature>")
            })?;
        let h = blake3::hash(&grant_payload(g)?);
        if !active
            .iter()
            .any(|k| k.verify_strict(h.as_bytes(), &sig).is_ok())
        {
            return Err(McError::signature(
                field,
                "does not verify with any active signing key: the grant changed after it was signed; sign the manifest again",
            ));
        }
    }
    Ok(Signer {
        digest: format!("blake3:{}", hash.to_hex()),
        kid: p.kid.clone(),
        key_id: key_id(&key.to_bytes()),
        public_hex: slot.pub_hex.clone(),
        grants: grants.map_or(0, Vec::len),
    })
}

/// Signs `doc` with `key` (named `name`): the key's signing slot (added as kid `name`, or
/// `name-<8 hex>` when that kid holds another key, unless a slot already holds it), every
/// grant's `sig`, then `provenance`. The document must have parsed as a manifest.
pub fn sign(doc: &Value, key: &PrivateKey, name: &str) -> Result<Value, McError> {
    let public = key.public();
    let pub_hex = public.raw_hex();
    let mut d = doc.clone();
    let root = d
        .as_object_mut()
        .ok_or_else(|| McError::schema("", "must be a JSON object"))?;
    let slots = root
        .entry("slots")
        .or_insert_with(|| json!({}))
        .as_object_mut()
        .ok_or_else(|| McError::schema("slots", "must be a JSON object"))?;
    let signing = slots
        .entry("signing")
        .or_insert_with(|| json!([]))
        .as_array_mut()
        .ok_or_else(|| McError::schema("slots.signing", "must be an array"))?;
    let existing = signing.iter().find_map(|s| {
        (s.get("pub").and_then(Value::as_str) == Some(pub_hex.as_str())
            && s.get("status").and_then(Value::as_str) == Some("active"))
        .then(|| s.get("kid").and_then(Value::as_str).map(str::to_string))
        .flatten()
    });
    let kid = match existing {
        Some(k) => k,
        None => {
            let taken = signing
                .iter()
                .any(|s| s.get("kid").and_then(Value::as_str) == Some(name));
            let kid = if taken {
                format!("{name}-{}", &public.id()[..8])
            } else {
                name.to_string()
            };
            signing.push(json!({ "kid": kid, "pub": pub_hex, "status": "active" }));
            kid
        }
    };
    if let Some(grants) = root.get_mut("grants").and_then(Value::as_array_mut) {
        for g in grants.iter_mut() {
            let h = blake3::hash(&grant_payload(g)?);
            let sig = format!("ed25519:{}", B64.encode(key.sign(h.as_bytes())));
            if let Some(o) = g.as_object_mut() {
                o.insert("sig".into(), Value::String(sig));
            }
        }
    }
    root.insert(
        "provenance".into(),
        json!({ "kid": kid, "alg": PROVENANCE_ALG }),
    );
    let h = blake3::hash(&payload(&d)?);
    let sig = B64.encode(key.sign(h.as_bytes()));
    if let Some(p) = d.get_mut("provenance").and_then(Value::as_object_mut) {
        p.insert("sig".into(), Value::String(sig));
    }
    Ok(d)
}
