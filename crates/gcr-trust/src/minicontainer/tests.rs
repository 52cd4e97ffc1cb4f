//! Parsing, consistency, signing and archive tests of MiniContainer manifests.

use serde_json::{json, Value};

use super::*;
use crate::PrivateKey;

fn sample() -> Value {
    json!({
      "type": "ll.minicontainer.v1",
      "version": "1.0.0",
      "owner": { "user_id": "usr_123", "tenant": "voulezvous" },
      "slots": {
        "api": [{ "token_id": "tok_cli", "scopes": ["deploy:*", "prove:*"], "status": "active" }],
        "crypto": [{ "kid": "kid_sym_1", "alg": "xchacha20", "status": "active" }]
      },
      "artifacts": [
        { "id": "secret_db_url", "type": "secret.url.v1", "hash": format!("blake3:{}", "ab".repeat(32)), "enc": "xchacha20" }
      ],
      "grants": [
        { "id": "grt_db", "artifact_id": "secret_db_url", "scope": ["runtime:read"], "ttl": "P30D", "aud": "railway" }
      ],
      "deploy": {
        "engine": "container",
        "image": "ghcr.io/vv/app:1.0.0",
        "entrypoint": ["node", "server.js"],
        "env": { "DB_URL": "grant://grt_db", "PORT": "8080" },
        "ports": [{ "host": 0, "container": 8080 }],
        "resources": { "memory_bytes": 536870912 },
        "security": { "read_only_rootfs": true },
        "targets": [{ "provider": "railway", "project_id": "rw_proj", "service": "web" }]
      },
      "ledger_refs": ["s3://ledger/vv/2025/11/"],
      "ts": "2025-11-17T13:37:00Z"
    })
}

fn bytes(v: &Value) -> Vec<u8> {
    serde_json::to_vec(v).unwrap()
}

fn signed(key: &PrivateKey) -> Value {
    let m = Manifest::parse(&bytes(&sample())).unwrap();
    sign(&m.doc, key, "k1").unwrap()
}

fn err(v: &Value) -> McError {
    Manifest::parse(&bytes(v)).unwrap_err()
}

#[test]
fn the_seed_manifest_parses_and_signs_and_verifies() {
    let key = PrivateKey::generate();
    let doc = signed(&key);
    let m = Manifest::parse(&bytes(&doc)).unwrap();
    assert_eq!(m.slots.signing.len(), 1);
    assert_eq!(m.slots.signing[0].kid, "k1");
    let s = verify_provenance(&m).unwrap();
    assert_eq!(s.key_id, key.public().id());
    assert_eq!(s.grants, 1);
    assert_eq!(s.digest, digest(&m.doc).unwrap());
    assert_eq!(m.deploy.env.len(), 2);
    assert_eq!(m.env_grants().len(), 1);
    assert_eq!(m.deploy_name(), "voulezvous-web");
    // Key order and whitespace do not matter: the canonical form is signed.
    let pretty = serde_json::to_vec_pretty(&doc).unwrap();
    let m2 = Manifest::parse(&pretty).unwrap();
    assert_eq!(verify_provenance(&m2).unwrap().digest, s.digest);
    // Signing again reuses the slot.
    let again = sign(&m.doc, &key, "k1").unwrap();
    assert_eq!(again["slots"]["signing"].as_array().unwrap().len(), 1);
}

#[test]
fn unsigned_manifests_need_a_proof() {
    let m = Manifest::parse(&bytes(&sample())).unwrap();
    let e = verify_provenance(&m).unwrap_err();
    assert_eq!(
        (e.code, e.field.as_str()),
        (Code::ProofRequired, "provenance")
    );
}

#[test]
fn any_change_after_signing_is_refused_naming_the_signature() {
    let key = PrivateKey::generate();
    let mut doc = signed(&key);
    doc["deploy"]["env"]["PORT"] = json!("9090");
    let m = Manifest::parse(&bytes(&doc)).unwrap();
    let e = verify_provenance(&m).unwrap_err();
    assert_eq!(
        (e.code, e.field.as_str()),
        (Code::SignatureInvalid, "provenance.sig")
    );

    let mut doc = signed(&key);
    doc["grants"][0]["ttl"] = json!("P365D");
    // The grant's own signature fails first? No: the provenance covers the grant too.
    let m = Manifest::parse(&bytes(&doc)).unwrap();
    assert_eq!(
        verify_provenance(&m).unwrap_err().code,
        Code::SignatureInvalid
    );

    // Another key's signature under the declared slot.
    let other = PrivateKey::generate();
    let mut doc = signed(&key);
    doc["slots"]["signing"][0]["pub"] = json!(other.public().raw_hex());
    let m = Manifest::parse(&bytes(&doc)).unwrap();
    assert_eq!(verify_provenance(&m).unwrap_err().field, "provenance.sig");

    // A grant signed by no declared key.
    let mut doc = signed(&key);
    let g = doc["grants"][0].clone();
    let h = blake3::hash(&grant_payload(&g).unwrap());
    use base64::Engine as _;
    let forged = base64::engine::general_purpose::STANDARD.encode(other.sign(h.as_bytes()));
    doc["grants"][0]["sig"] = json!(format!("ed25519:{forged}"));
    let resigned = {
        // Re-sign only the provenance so that the grant signature is what fails.
        let mut d = doc.clone();
        d["provenance"].as_object_mut().unwrap().remove("sig");
        let h = blake3::hash(&payload(&d).unwrap());
        let s = base64::engine::general_purpose::STANDARD.encode(key.sign(h.as_bytes()));
        d["provenance"]["sig"] = json!(s);
        d
    };
    let m = Manifest::parse(&bytes(&resigned)).unwrap();
    let e = verify_provenance(&m).unwrap_err();
    assert_eq!(
        (e.code, e.field.as_str()),
        (Code::SignatureInvalid, "grants[0].sig")
    );

    // A revoked signing key.
    let mut doc = signed(&key);
    doc["slots"]["signing"][0]["status"] = json!("revoked");
    let m = Manifest::parse(&bytes(&doc)).unwrap();
    assert_eq!(verify_provenance(&m).unwrap_err().field, "provenance.kid");
}

#[test]
fn schema_errors_name_their_field() {
    type Change = Box<dyn Fn(&mut Value)>;
    let cases: Vec<(&str, Change)> = vec![
        ("type", Box::new(|v| v["type"] = json!("ll.other.v1"))),
        ("version", Box::new(|v| v["version"] = json!("2.0.0"))),
        (
            "owner.tenant",
            Box::new(|v| v["owner"]["tenant"] = json!("a/b")),
        ),
        (
            "owner.user_id",
            Box::new(|v| {
                v["owner"].as_object_mut().unwrap().remove("user_id");
            }),
        ),
        ("colour", Box::new(|v| v["colour"] = json!("red"))),
        (
            "deploy.extra",
            Box::new(|v| v["deploy"]["extra"] = json!(1)),
        ),
        (
            "deploy.engine",
            Box::new(|v| v["deploy"]["engine"] = json!("vm")),
        ),
        (
            "deploy.env.DB_URL",
            Box::new(|v| v["deploy"]["env"]["DB_URL"] = json!("grant://nope")),
        ),
        (
            "deploy.env.1X",
            Box::new(|v| v["deploy"]["env"]["1X"] = json!("y")),
        ),
        (
            "deploy.env.PORT",
            Box::new(|v| v["deploy"]["env"]["PORT"] = json!(8080)),
        ),
        (
            "deploy.ports[0].container",
            Box::new(|v| v["deploy"]["ports"][0]["container"] = json!(70000)),
        ),
        (
            "deploy.ports[1].container",
            Box::new(|v| {
                v["deploy"]["ports"] = json!([{"container": 80}, {"host": 1, "container": 80}])
            }),
        ),
        (
            "deploy.resources.memory_bytes",
            Box::new(|v| v["deploy"]["resources"]["memory_bytes"] = json!(1.5)),
        ),
        (
            "grants[0].artifact_id",
            Box::new(|v| v["grants"][0]["artifact_id"] = json!("nope")),
        ),
        (
            "grants[0].ttl",
            Box::new(|v| v["grants"][0]["ttl"] = json!("30 days")),
        ),
        (
            "grants[0].sig",
            Box::new(|v| v["grants"][0]["sig"] = json!("rsa:xyz")),
        ),
        (
            "artifacts[0].hash",
            Box::new(|v| v["artifacts"][0]["hash"] = json!("sha256:00")),
        ),
        (
            "artifacts[0].enc",
            Box::new(|v| v["slots"]["crypto"][0]["status"] = json!("revoked")),
        ),
        (
            "slots.signing[0].pub",
            Box::new(|v| {
                v["slots"]["signing"] = json!([{"kid": "k", "pub": "00", "status": "active"}])
            }),
        ),
        (
            "slots.api[0].scopes[0]",
            Box::new(|v| v["slots"]["api"][0]["scopes"][0] = json!("everything")),
        ),
        ("ts", Box::new(|v| v["ts"] = json!("2025-13-17T13:37:00Z"))),
        (
            "ledger_refs[0]",
            Box::new(|v| v["ledger_refs"][0] = json!("not a uri")),
        ),
        (
            "grants[1]",
            Box::new(|v| {
                let g = v["grants"][0].clone();
                v["grants"].as_array_mut().unwrap().push(g);
            }),
        ),
    ];
    for (field, change) in cases {
        let mut v = sample();
        change(&mut v);
        let e = err(&v);
        // Memory as a float is refused by the strict reader (whole document).
        if field == "deploy.resources.memory_bytes" {
            assert_eq!(e.code, Code::SchemaInvalid);
            continue;
        }
        assert_eq!(
            (e.code, e.field.as_str()),
            (Code::SchemaInvalid, field),
            "{e:?}"
        );
    }
}

#[test]
fn duplicate_keys_deep_nesting_and_garbage_are_refused() {
    let dup = br#"{"type":"ll.minicontainer.v1","type":"ll.minicontainer.v1"}"#;
    assert!(Manifest::parse(dup).unwrap_err().reason.contains("twice"));
    let deep = format!("{}{}", "[".repeat(100), "]".repeat(100));
    assert_eq!(
        Manifest::parse(deep.as_bytes()).unwrap_err().code,
        Code::SchemaInvalid
    );
    assert_eq!(
        Manifest::parse(b"\xff\x00").unwrap_err().code,
        Code::SchemaInvalid
    );
    assert_eq!(
        Manifest::parse(b"{} x").unwrap_err().code,
        Code::SchemaInvalid
    );
    let big = vec![b' '; MAX_MANIFEST + 1];
    assert_eq!(Manifest::parse(&big).unwrap_err().code, Code::SchemaInvalid);
}

#[test]
fn durations_and_timestamps() {
    for ok in ["P30D", "PT12H", "P1Y2M3DT4H5M6S", "P2W", "PT1S"] {
        assert!(schema::is_duration(ok), "{ok}");
    }
    for bad in [
        "P", "PT", "30D", "P0D", "PD", "P1H", "PT1D", "P1D2Y", "P1DT",
    ] {
        assert!(!schema::is_duration(bad), "{bad}");
    }
    assert!(schema::is_timestamp("2025-11-17T13:37:00Z"));
    assert!(schema::is_timestamp("2025-11-17T13:37:00.123Z"));
    assert!(!schema::is_timestamp("2025-11-17T13:37:00+01:00"));
    assert!(!schema::is_timestamp("2025-11-17 13:37:00Z"));
}

fn zip_of(entries: &[(&str, &[u8])]) -> Vec<u8> {
    use std::io::Write;
    let mut buf = std::io::Cursor::new(Vec::new());
    let mut w = zip::ZipWriter::new(&mut buf);
    for (name, data) in entries {
        if name.ends_with('/') {
            w.add_directory(*name, zip::write::SimpleFileOptions::default())
                .unwrap();
        } else {
            w.start_file(*name, zip::write::SimpleFileOptions::default())
                .unwrap();
            w.write_all(data).unwrap();
        }
    }
    w.finish().unwrap();
    buf.into_inner()
}

#[test]
fn llc_archives_are_read_and_hostile_ones_refused() {
    let key = PrivateKey::generate();
    let doc = bytes(&signed(&key));
    let llc = zip_of(&[
        ("manifest.json", &doc),
        ("artifacts/", b""),
        ("artifacts/secret_db_url", b"\x01\x02"),
    ]);
    assert!(is_zip(&llc));
    let a = read_llc(&llc).unwrap();
    let m = Manifest::parse(&a.manifest).unwrap();
    a.check(&m).unwrap();
    verify_provenance(&m).unwrap();
    assert_eq!(a.artifacts.len(), 1);

    for (entries, field) in [
        (
            vec![("../manifest.json", &doc[..])],
            "archive:../manifest.json",
        ),
        (
            vec![("manifest.json", &doc[..]), ("artifacts/../x", b"")],
            "archive:artifacts/../x",
        ),
        (vec![("/etc/passwd", b"x" as &[u8])], "archive:/etc/passwd"),
        (
            vec![("artifacts/a", b"x" as &[u8])],
            "archive:manifest.json",
        ),
    ] {
        let z = zip_of(&entries);
        let e = read_llc(&z).unwrap_err();
        assert_eq!((e.code, e.field.as_str()), (Code::SchemaInvalid, field));
    }
    let undeclared = zip_of(&[("manifest.json", &doc), ("artifacts/other", b"x")]);
    let a = read_llc(&undeclared).unwrap();
    let m = Manifest::parse(&a.manifest).unwrap();
    assert_eq!(a.check(&m).unwrap_err().field, "archive:artifacts/other");
    assert_eq!(read_llc(b"PK\x03\x04garbage").unwrap_err().field, "archive");
}
