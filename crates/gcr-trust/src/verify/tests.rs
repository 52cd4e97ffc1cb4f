//! Verification: a good signature passes; the tamper matrix (payload, signature, key id,
//! subject digest, blake3), other keys, other payload types and malformed bundles fail with
//! the error that names what is wrong.

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use serde_json::Value;

use super::*;
use crate::keys::PrivateKey;

const MANIFEST: &[u8] = br#"{"schemaVersion":2,"config":{},"layers":[]}"#;

fn setup() -> (PrivateKey, Vec<u8>, Subject) {
    let key = PrivateKey::generate();
    let subject = Subject::for_manifest("example.com/app", MANIFEST);
    let st = Statement::signature(subject.clone(), "2025-01-01T00:00:00Z");
    let bundle = sign(&st, &key).unwrap();
    (key, bundle, subject)
}

fn edit(bundle: &[u8], f: impl FnOnce(&mut Value)) -> Vec<u8> {
    let mut v: Value = serde_json::from_slice(bundle).unwrap();
    f(&mut v);
    serde_json::to_vec(&v).unwrap()
}

fn edit_payload(bundle: &[u8], f: impl FnOnce(String) -> String) -> Vec<u8> {
    edit(bundle, |v| {
        let p = &mut v["dsseEnvelope"]["payload"];
        let text = String::from_utf8(STANDARD.decode(p.as_str().unwrap()).unwrap()).unwrap();
        let changed = f(text.clone());
        assert_ne!(changed, text, "the edit changed nothing");
        *p = Value::String(STANDARD.encode(changed));
    })
}

#[test]
fn a_good_signature_verifies() {
    let (key, bundle, want) = setup();
    let v = verify("b", &bundle, &key.public(), &want).unwrap();
    assert_eq!(v.key_id, key.public().id());
    assert_eq!(v.statement_type, "https://in-toto.io/Statement/v1");
    assert_eq!(v.predicate_type, crate::statement::SIGNATURE_PREDICATE);
    assert_eq!(v.time.as_deref(), Some("2025-01-01T00:00:00Z"));
    assert_eq!(v.subject_name, "example.com/app");
    // The subject carries both digests of the manifest.
    let b: Value = serde_json::from_slice(&bundle).unwrap();
    assert_eq!(b["mediaType"], crate::BUNDLE_MEDIA_TYPE);
    assert_eq!(
        b["verificationMaterial"]["publicKey"]["hint"],
        key.public().id()
    );
    assert_eq!(
        b["verificationMaterial"]["tlogEntries"],
        serde_json::json!([])
    );
    let payload = STANDARD
        .decode(b["dsseEnvelope"]["payload"].as_str().unwrap())
        .unwrap();
    let st: Value = serde_json::from_slice(&payload).unwrap();
    assert_eq!(
        st["subject"][0]["digest"]["blake3"],
        blake3::hash(MANIFEST).to_hex().as_str()
    );
    // The payload is canonical JSON.
    assert_eq!(crate::canonical::to_vec("t", &st).unwrap(), payload);
    // A bare DSSE envelope verifies too.
    let env = serde_json::to_vec(&b["dsseEnvelope"]).unwrap();
    verify("e", &env, &key.public(), &want).unwrap();
}

#[test]
fn tamper_matrix() {
    let (key, bundle, want) = setup();
    let public = key.public();
    let hex = want.digest["sha256"].clone();
    let other_hex = format!(
        "{}{}",
        if hex.starts_with('0') { "1" } else { "0" },
        &hex[1..]
    );
    let fake_id = "ab".repeat(32);
    let cases: Vec<(&str, Vec<u8>)> = vec![
        (
            "payload",
            edit_payload(&bundle, |t| t.replace("example.com/app", "example.com/apq")),
        ),
        (
            "payload byte",
            edit(&bundle, |v| {
                let p = &mut v["dsseEnvelope"]["payload"];
                let mut b = STANDARD.decode(p.as_str().unwrap()).unwrap();
                b[3] ^= 1;
                *p = Value::String(STANDARD.encode(b));
            }),
        ),
        (
            "signature",
            edit(&bundle, |v| {
                let s = &mut v["dsseEnvelope"]["signatures"][0]["sig"];
                let mut b = STANDARD.decode(s.as_str().unwrap()).unwrap();
                b[0] ^= 0x80;
                *s = Value::String(STANDARD.encode(b));
            }),
        ),
        (
            "payload type",
            edit(&bundle, |v| {
                v["dsseEnvelope"]["payloadType"] = "application/vnd.in-toto+jsoN".into()
            }),
        ),
        (
            "subject digest",
            edit_payload(&bundle, |t| t.replace(&hex, &other_hex)),
        ),
    ];
    for (what, b) in &cases {
        let e = verify("bundle x", b, &public, &want).unwrap_err();
        let expected = if *what == "payload type" {
            matches!(e, TrustError::BadBundle { .. })
        } else {
            matches!(e, TrustError::BadSignature { .. })
        };
        assert!(expected, "{what}: {e}");
        assert!(
            e.to_string().contains("bundle x"),
            "{what}: the error names it: {e}"
        );
    }
    // Key id: in the hint, in the signature, in both.
    for (what, b) in [
        (
            "hint",
            edit(&bundle, |v| {
                v["verificationMaterial"]["publicKey"]["hint"] = fake_id.clone().into()
            }),
        ),
        (
            "keyid",
            edit(&bundle, |v| {
                v["dsseEnvelope"]["signatures"][0]["keyid"] = fake_id.clone().into()
            }),
        ),
    ] {
        let e = verify("bundle x", &b, &public, &want).unwrap_err();
        assert!(
            matches!(&e, TrustError::KeyIdMismatch { found, .. } if *found == fake_id),
            "{what}: {e}"
        );
    }
    // A valid signature by the same key over another manifest.
    let mut other = want.clone();
    other.digest.insert("sha256".into(), other_hex.clone());
    let resigned = sign(&Statement::signature(other, "t"), &key).unwrap();
    let e = verify("bundle x", &resigned, &public, &want).unwrap_err();
    assert!(
        matches!(&e, TrustError::SubjectMismatch { found, .. } if *found == format!("sha256:{other_hex}")),
        "{e}"
    );
    // Same sha256, other blake3: refused as well.
    let mut bad_b3 = want.clone();
    bad_b3.digest.insert("blake3".into(), "00".repeat(32));
    let b = sign(&Statement::signature(bad_b3, "t"), &key).unwrap();
    let e = verify("bundle x", &b, &public, &want).unwrap_err();
    assert!(e.to_string().contains("blake3:0000"), "{e}");
    // Another key.
    let e = verify("bundle x", &bundle, &PrivateKey::generate().public(), &want).unwrap_err();
    assert!(matches!(e, TrustError::KeyIdMismatch { .. }), "{e}");
}

#[test]
fn malformed_bundles_are_errors() {
    let (key, bundle, want) = setup();
    let public = key.public();
    let statement = |s: &str| {
        let env = crate::dsse::Envelope::sign(crate::statement::PAYLOAD_TYPE, s.as_bytes(), &key);
        env.to_json().unwrap()
    };
    let cases: Vec<(Vec<u8>, &str)> = vec![
        (b"".to_vec(), "not a valid Sigstore bundle"),
        (b"[]".to_vec(), "not a JSON object"),
        (
            edit(&bundle, |v| v["mediaType"] = "application/x".into()),
            "mediaType",
        ),
        (
            edit(&bundle, |v| {
                v["verificationMaterial"]["certificate"] = serde_json::json!({"rawBytes": "AA=="})
            }),
            "certificate",
        ),
        (
            edit(&bundle, |v| {
                v["dsseEnvelope"]["signatures"] = serde_json::json!([])
            }),
            "no signature",
        ),
        (
            edit(&bundle, |v| v["dsseEnvelope"]["payload"] = "!!!".into()),
            "not base64",
        ),
        (statement("not json"), "in-toto Statement"),
        (
            statement(
                r#"{"_type":"https://in-toto.io/Statement/v0.1","subject":[{"name":"a","digest":{}}],"predicateType":"p"}"#,
            ),
            "Statement/v0.1",
        ),
        (
            statement(
                r#"{"_type":"https://in-toto.io/Statement/v1","subject":[],"predicateType":"p"}"#,
            ),
            "no subject",
        ),
    ];
    for (b, needle) in cases {
        let e = verify("b", &b, &public, &want).unwrap_err();
        assert!(e.to_string().contains(needle), "{needle}: {e}");
    }
}
