//! Trust end to end (issue 14, items 1, 2, 7): `gcr key ...`, `gcr sign`, `gcr verify`,
//! refused keys that write nothing, the tamper matrix (payload, signature, key id, subject
//! digest, manifest, config, one layer byte), and the peers: Python securesystemslib and
//! npm @sigstore/verify verify what gcr signs, and gcr verifies what securesystemslib
//! signs. The peers are installed by scripts/deps.sh under target/peers (GCR_PEERS
//! overrides); without them the peer checks are skipped, except when CI=true, where they
//! fail.

mod common;
#[path = "peers/mod.rs"]
mod peers;

use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;

use common::{stderr, stdout, Env, IMAGE};
use peers::*;
use serde_json::Value;

// ---- keys ------------------------------------------------------------------------------

#[test]
fn keys_generate_list_import_export_rm() {
    let env = Env::new();
    let out = env.ok(&["key", "generate", "k1"]);
    assert!(out.contains("k1"), "{out}");
    let dir = root(&env).join("keys");
    assert_eq!(
        std::fs::metadata(&dir).unwrap().permissions().mode() & 0o777,
        0o700
    );
    assert_eq!(key_files(&env), ["k1.key", "k1.pub"]);
    for f in ["k1.key", "k1.pub"] {
        let mode = std::fs::metadata(dir.join(f)).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600, "{f}");
    }
    let key = std::fs::read_to_string(dir.join("k1.key")).unwrap();
    assert!(key.starts_with("-----BEGIN PRIVATE KEY-----"), "{key}");
    let list = key_list(&env);
    assert_eq!(list.len(), 1);
    assert_eq!(list[0]["Algorithm"], "ed25519");
    assert_eq!(list[0]["Private"], true);
    assert_eq!(list[0]["Encrypted"], false);
    let id = key_id(&env, "k1");
    assert!(
        id.len() == 64 && id.bytes().all(|b| b.is_ascii_hexdigit()),
        "{id}"
    );
    assert!(env.ok(&["key", "list"]).contains(&id));
    assert_eq!(env.ok(&["key", "list", "-q"]).trim(), "k1");

    // Export: PKIX PEM that openssl reads as the same key.
    let pem = env.ok(&["key", "export", "k1"]);
    assert!(pem.starts_with("-----BEGIN PUBLIC KEY-----"), "{pem}");
    let pubfile = root(&env).join("k1.pem");
    std::fs::write(&pubfile, &pem).unwrap();
    let from_private = openssl(&[
        "pkey",
        "-in",
        dir.join("k1.key").to_str().unwrap(),
        "-pubout",
    ]);
    assert_eq!(stdout(&from_private), pem);

    // Import of the public half only: same key id, cannot sign.
    env.ok(&["key", "import", "k1pub", pubfile.to_str().unwrap()]);
    assert_eq!(key_id(&env, "k1pub"), id);
    let k = key_list(&env)
        .into_iter()
        .find(|k| k["Name"] == "k1pub")
        .unwrap();
    assert_eq!(k["Private"], false);
    fails(
        &env,
        &["sign", IMAGE, "--key", "k1pub"],
        "only its public half",
    );

    // Import of an openssl-made Ed25519 private key: its id is that of its public half.
    let ossl = root(&env).join("ossl.key");
    openssl(&[
        "genpkey",
        "-algorithm",
        "ed25519",
        "-out",
        ossl.to_str().unwrap(),
    ]);
    env.ok(&["key", "import", "ossl", ossl.to_str().unwrap()]);
    let ossl_pub = root(&env).join("ossl.pub");
    openssl(&[
        "pkey",
        "-in",
        ossl.to_str().unwrap(),
        "-pubout",
        "-out",
        ossl_pub.to_str().unwrap(),
    ]);
    env.ok(&["key", "import", "osslpub", ossl_pub.to_str().unwrap()]);
    assert_eq!(key_id(&env, "ossl"), key_id(&env, "osslpub"));
    assert_ne!(key_id(&env, "ossl"), id);
    env.ok(&["sign", IMAGE, "--key", "ossl"]);
    env.ok(&["verify", IMAGE, "--key", "osslpub"]);

    // Names are unique; rm removes both halves; unknown names are errors.
    fails(&env, &["key", "generate", "k1"], "already exists");
    fails(
        &env,
        &["key", "import", "k1", pubfile.to_str().unwrap()],
        "already exists",
    );
    assert_eq!(key_id(&env, "k1"), id, "a refused generate changed nothing");
    let out = env.ok(&["key", "rm", "k1"]);
    assert_eq!(out.trim(), "k1");
    assert!(!key_files(&env).iter().any(|f| f.starts_with("k1.")));
    fails(&env, &["key", "rm", "k1"], "no key named 'k1'");
    fails(&env, &["key", "export", "k1"], "no key named 'k1'");
    fails(&env, &["sign", IMAGE, "--key", "k1"], "no key named 'k1'");
    fails(&env, &["verify", IMAGE, "--key", "k1"], "no key named 'k1'");
    fails(
        &env,
        &["key", "generate", "../evil"],
        "not a valid key name",
    );
    fails(
        &env,
        &["key", "generate", ".hidden"],
        "not a valid key name",
    );
    assert!(!root(&env).join("evil.key").exists());
}

#[test]
fn encrypted_keys_need_the_right_password() {
    let env = Env::new();
    let out = gcr_stdin(
        &env,
        &["key", "generate", "enc", "--password-stdin"],
        "s3cret\n",
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let keyfile = root(&env).join("keys/enc.key");
    let pem = std::fs::read_to_string(&keyfile).unwrap();
    assert!(
        pem.starts_with("-----BEGIN ENCRYPTED PRIVATE KEY-----"),
        "{pem}"
    );
    let k = key_list(&env)
        .into_iter()
        .find(|k| k["Name"] == "enc")
        .unwrap();
    assert_eq!(k["Encrypted"], true);
    // openssl opens it with the password (standard PKCS#8 PBES2).
    let ossl = openssl(&[
        "pkey",
        "-in",
        keyfile.to_str().unwrap(),
        "-passin",
        "pass:s3cret",
        "-pubout",
    ]);
    assert_eq!(stdout(&ossl), env.ok(&["key", "export", "enc"]));

    fails(
        &env,
        &["sign", IMAGE, "--key", "enc"],
        "is encrypted; give its password",
    );
    let out = gcr_stdin(
        &env,
        &["sign", IMAGE, "--key", "enc", "--password-stdin"],
        "wrong\n",
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("password is wrong"),
        "{}",
        stderr(&out)
    );
    let out = gcr_stdin(
        &env,
        &["sign", IMAGE, "--key", "enc", "--password-stdin"],
        "",
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("empty"), "{}", stderr(&out));
    assert!(
        referrers(&env).is_empty(),
        "a refused sign attached nothing"
    );
    let out = gcr_stdin(
        &env,
        &["sign", IMAGE, "--key", "enc", "--password-stdin"],
        "s3cret\n",
    );
    assert!(out.status.success(), "{}", stderr(&out));
    env.ok(&["verify", IMAGE, "--key", "enc"]);

    // An encrypted key made by openssl (PBKDF2, AES-256-CBC) imports with its password only.
    let file = root(&env).join("ossl-enc.pem");
    openssl(&[
        "genpkey",
        "-algorithm",
        "ed25519",
        "-aes256",
        "-pass",
        "pass:pw123",
        "-out",
        file.to_str().unwrap(),
    ]);
    let f = file.to_str().unwrap();
    let before = key_files(&env);
    fails(
        &env,
        &["key", "import", "o", f],
        "is encrypted; give its password",
    );
    let out = gcr_stdin(&env, &["key", "import", "o", f, "--password-stdin"], "nope");
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("password is wrong"),
        "{}",
        stderr(&out)
    );
    assert_eq!(key_files(&env), before, "a refused import wrote nothing");
    let out = gcr_stdin(
        &env,
        &["key", "import", "o", f, "--password-stdin"],
        "pw123\n",
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let out = gcr_stdin(
        &env,
        &["sign", IMAGE, "--key", "o", "--password-stdin"],
        "pw123",
    );
    assert!(out.status.success(), "{}", stderr(&out));
    // A password for a plain key file is refused rather than ignored.
    let plain = root(&env).join("plain.pem");
    openssl(&[
        "genpkey",
        "-algorithm",
        "ed25519",
        "-out",
        plain.to_str().unwrap(),
    ]);
    let out = gcr_stdin(
        &env,
        &[
            "key",
            "import",
            "p",
            plain.to_str().unwrap(),
            "--password-stdin",
        ],
        "x",
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("not encrypted"), "{}", stderr(&out));
}

#[test]
fn bad_keys_are_refused_and_write_nothing() {
    let env = Env::new();
    env.ok(&["key", "generate", "good"]);
    let dir = root(&env);
    let path = |n: &str| dir.join(n).to_str().unwrap().to_string();
    let rsa = path("rsa.pem");
    openssl(&[
        "genpkey",
        "-algorithm",
        "RSA",
        "-pkeyopt",
        "rsa_keygen_bits:2048",
        "-out",
        &rsa,
    ]);
    let rsa_pub = path("rsa.pub");
    openssl(&["pkey", "-in", &rsa, "-pubout", "-out", &rsa_pub]);
    let rsa_trad = path("rsa-trad.pem");
    openssl(&["rsa", "-in", &rsa, "-traditional", "-out", &rsa_trad]);
    let p256 = path("p256.pem");
    openssl(&[
        "genpkey",
        "-algorithm",
        "EC",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-out",
        &p256,
    ]);
    let p256_pub = path("p256.pub");
    openssl(&["pkey", "-in", &p256, "-pubout", "-out", &p256_pub]);
    let ed = std::fs::read_to_string(dir.join("keys/good.key")).unwrap();
    let corrupt = path("corrupt.pem");
    std::fs::write(&corrupt, ed.replacen('M', "*", 1)).unwrap();
    let truncated = path("truncated.pem");
    std::fs::write(&truncated, &ed[..ed.len() / 2]).unwrap();
    let garbage = path("garbage.pem");
    std::fs::write(&garbage, b"\x00\x01not a key at all\xff").unwrap();
    let x25519 = path("x25519.pem");
    openssl(&["genpkey", "-algorithm", "X25519", "-out", &x25519]);

    let before = key_files(&env);
    let cases: &[(&str, &str)] = &[
        (&rsa, "holds an RSA key"),
        (&rsa_pub, "holds an RSA key"),
        (&rsa_trad, "holds an RSA key"),
        (&p256, "holds an ECDSA P-256 key"),
        (&p256_pub, "holds an ECDSA P-256 key"),
        (&x25519, "holds an X25519 key"),
        (&corrupt, "is not a valid PEM key"),
        (&truncated, "is not a valid PEM key"),
        (&garbage, "is not a valid PEM key"),
        ("/nonexistent/key.pem", "cannot read key file"),
    ];
    for (file, needle) in cases {
        let err = fails(&env, &["key", "import", "bad", file], needle);
        assert!(err.contains(file), "the error names the file: {err}");
        assert_eq!(key_files(&env), before, "import of {file} wrote something");
        // As a verification key too.
        if !file.starts_with("/nonexistent") {
            fails(&env, &["verify", IMAGE, "--key", file], needle);
        }
    }
    assert_eq!(key_list(&env).len(), 1);
    // Nothing was signed along the way either.
    assert!(referrers(&env).is_empty());
}

// ---- sign and verify -------------------------------------------------------------------

#[test]
fn sign_then_verify() {
    let env = Env::new();
    env.ok(&["key", "generate", "k"]);
    env.ok(&["key", "generate", "other"]);
    fails(&env, &["verify", IMAGE, "--key", "k"], "has no signature");
    let out = env.ok(&["sign", IMAGE, "--key", "k"]);
    assert!(
        out.contains("Signed") && out.contains(&key_id(&env, "k")),
        "{out}"
    );
    let refs = referrers(&env);
    assert_eq!(refs.len(), 1);
    assert_eq!(
        refs[0]["artifactType"],
        "application/vnd.dev.sigstore.bundle.v0.3+json"
    );

    let text = env.ok(&["verify", IMAGE, "--key", "k"]);
    for needle in [
        "Verified",
        "Signer:    k",
        &format!("Key ID:    {}", key_id(&env, "k")),
        "https://in-toto.io/Statement/v1",
        "Time:      20",
    ] {
        assert!(text.contains(needle), "{needle:?} in {text}");
    }
    let json: Value =
        serde_json::from_str(&env.ok(&["verify", IMAGE, "--key", "k", "--format", "json"]))
            .unwrap();
    assert_eq!(
        json["ManifestDigest"].as_str().unwrap(),
        manifest_digest(&env)
    );
    let sig = &json["Signatures"][0];
    assert_eq!(sig["KeyID"].as_str().unwrap(), key_id(&env, "k"));
    assert_eq!(sig["StatementType"], "https://in-toto.io/Statement/v1");
    assert!(sig["Time"].as_str().unwrap().ends_with('Z'));
    assert_eq!(sig["Source"], refs[0]["digest"]);

    // By public key file; the stored key's name is still reported as the signer.
    let pubfile = root(&env).join("k.pem");
    std::fs::write(&pubfile, env.ok(&["key", "export", "k"])).unwrap();
    let text = env.ok(&["verify", IMAGE, "--key", pubfile.to_str().unwrap()]);
    assert!(text.contains("Signer:    k\n"), "{text}");
    // Another key does not verify it.
    fails(
        &env,
        &["verify", IMAGE, "--key", "other"],
        "not by the given key",
    );
    // The statement: in-toto v1 with sha256 and blake3 of the manifest.
    let bundle: Value =
        serde_json::from_slice(&bundle_of(&env, refs[0]["digest"].as_str().unwrap())).unwrap();
    assert_eq!(
        bundle["mediaType"],
        "application/vnd.dev.sigstore.bundle.v0.3+json"
    );
    assert_eq!(
        bundle["verificationMaterial"]["publicKey"]["hint"]
            .as_str()
            .unwrap(),
        key_id(&env, "k")
    );
    let env_json = &bundle["dsseEnvelope"];
    assert_eq!(env_json["payloadType"], "application/vnd.in-toto+json");
    let st: Value =
        serde_json::from_slice(&b64_decode(env_json["payload"].as_str().unwrap())).unwrap();
    let manifest = std::fs::read(blob(&env, &manifest_digest(&env))).unwrap();
    let d = &st["subject"][0]["digest"];
    assert_eq!(
        format!("sha256:{}", d["sha256"].as_str().unwrap()),
        manifest_digest(&env)
    );
    assert_eq!(d["blake3"].as_str().unwrap().len(), 64);
    assert_ne!(d["blake3"], d["sha256"]);
    assert_eq!(st["subject"][0]["name"], "docker.io/test/busybox");
    assert!(!manifest.is_empty());
}

/// A tampered copy of the bundle: `edit` changes its JSON.
fn tampered(s: &Signed, name: &str, edit: impl FnOnce(&mut Value)) -> PathBuf {
    let mut v: Value = serde_json::from_slice(&s.bundle).unwrap();
    edit(&mut v);
    let p = root(&s.env).join(format!("{name}.bundle.json"));
    std::fs::write(&p, serde_json::to_vec(&v).unwrap()).unwrap();
    p
}

fn edit_payload(v: &mut Value, f: impl FnOnce(String) -> String) {
    let p = &mut v["dsseEnvelope"]["payload"];
    let text = String::from_utf8(b64_decode(p.as_str().unwrap())).unwrap();
    let changed = f(text.clone());
    assert_ne!(changed, text);
    *p = Value::String(b64_encode(changed.as_bytes()));
}

#[test]
fn tamper_matrix() {
    let s = signed();
    let env = &s.env;
    let peers = peers("tamper_matrix");
    let manifest_file = blob(env, &s.manifest);
    let blobs = blob_dir(env);
    let original = root(env).join("original.bundle.json");
    std::fs::write(&original, &s.bundle).unwrap();
    let pubf = s.pubfile.to_str().unwrap();
    env.ok(&[
        "verify",
        IMAGE,
        "--key",
        "k",
        "--bundle",
        original.to_str().unwrap(),
    ]);
    if let Some(p) = &peers {
        p.accept("original", &s.pubfile, &original, &[&manifest_file, &blobs]);
    }
    let hex = s.manifest.strip_prefix("sha256:").unwrap().to_string();
    let mut other_hex = hex.clone().into_bytes();
    other_hex[0] = if other_hex[0] == b'0' { b'1' } else { b'0' };
    let other_hex = String::from_utf8(other_hex).unwrap();

    let cases: Vec<(&str, PathBuf, &str)> = vec![
        (
            "payload",
            tampered(&s, "payload", |v| {
                edit_payload(v, |t| t.replace("test/busybox", "test/busyboy"))
            }),
            "does not verify with key",
        ),
        (
            "signature",
            tampered(&s, "signature", |v| {
                let sig = &mut v["dsseEnvelope"]["signatures"][0]["sig"];
                let mut b = b64_decode(sig.as_str().unwrap());
                b[10] ^= 0x20;
                *sig = Value::String(b64_encode(&b));
            }),
            "does not verify with key",
        ),
        (
            "key id",
            tampered(&s, "keyid", |v| {
                let fake = "ab".repeat(32);
                v["verificationMaterial"]["publicKey"]["hint"] = Value::String(fake.clone());
                v["dsseEnvelope"]["signatures"][0]["keyid"] = Value::String(fake);
            }),
            "is signed by key id abab",
        ),
        (
            "subject digest",
            tampered(&s, "subject", |v| {
                edit_payload(v, |t| t.replace(&hex, &other_hex))
            }),
            "does not verify with key",
        ),
    ];
    for (what, file, needle) in &cases {
        let f = file.to_str().unwrap();
        let err = fails(env, &["verify", IMAGE, "--key", "k", "--bundle", f], needle);
        assert!(err.contains(f), "{what}: the error names the bundle: {err}");
        if let Some(p) = &peers {
            p.reject(what, &s.pubfile, file, &[&manifest_file, &blobs]);
        }
    }

    // The same tampered payload as the image's only attached signature, in a fresh store
    // (imports are deterministic: same manifest digest).
    let fresh = Env::new();
    assert_eq!(manifest_digest(&fresh), s.manifest);
    fresh.ok(&["key", "import", "k", pubf]);
    fresh.ok(&[
        "__attach",
        IMAGE,
        "application/vnd.dev.sigstore.bundle.v0.3+json",
        cases[0].1.to_str().unwrap(),
    ]);
    fails(
        &fresh,
        &["verify", IMAGE, "--key", "k"],
        "does not verify with key",
    );
    fresh.ok(&[
        "__attach",
        IMAGE,
        "application/vnd.dev.sigstore.bundle.v0.3+json",
        original.to_str().unwrap(),
    ]);
    fresh.ok(&["verify", IMAGE, "--key", "k"]);

    // Subject digest, re-signed with the right key: a valid signature of another manifest.
    if let Some(p) = &peers {
        let keyfile = root(env).join("keys/k.key");
        let envelope = root(env).join("resigned.env.json");
        let out = p.python(&[
            "sign",
            keyfile.to_str().unwrap(),
            &other_hex,
            "docker.io/test/busybox",
            envelope.to_str().unwrap(),
        ]);
        assert!(out.status.success(), "{}", stderr(&out));
        let env_json: Value = serde_json::from_slice(&std::fs::read(&envelope).unwrap()).unwrap();
        let resigned = tampered(&s, "resigned", |v| v["dsseEnvelope"] = env_json);
        let err = fails(
            env,
            &[
                "verify",
                IMAGE,
                "--key",
                "k",
                "--bundle",
                resigned.to_str().unwrap(),
            ],
            &format!(
                "covers manifest sha256:{other_hex}, not this image's manifest {}",
                s.manifest
            ),
        );
        assert!(err.contains("resigned"), "{err}");
        p.reject(
            "re-signed subject digest",
            &s.pubfile,
            &resigned,
            &[&manifest_file, &blobs],
        );
    }

    // One byte of the manifest, the config or a layer in the store.
    let m: Value = serde_json::from_slice(&std::fs::read(&manifest_file).unwrap()).unwrap();
    let config = m["config"]["digest"].as_str().unwrap().to_string();
    let layer = m["layers"][0]["digest"].as_str().unwrap().to_string();
    let stored = s.bundle.clone();
    let bundle_file = root(env).join("stored.bundle.json");
    std::fs::write(&bundle_file, &stored).unwrap();
    for (what, digest, at) in [
        ("manifest", s.manifest.clone(), 20),
        ("config", config, 5),
        ("layer", layer.clone(), 1000),
    ] {
        let path = blob(env, &digest);
        flip(&path, at);
        let err = fails(
            env,
            &["verify", IMAGE, "--key", "k"],
            &format!("{what} {digest}"),
        );
        assert!(err.contains("damaged"), "{err}");
        if let Some(p) = &peers {
            p.reject(what, &s.pubfile, &bundle_file, &[&manifest_file, &blobs]);
        }
        flip(&path, at);
        env.ok(&["verify", IMAGE, "--key", "k"]);
    }
    // A flipped byte in the stored bundle itself.
    let bundle_blob = {
        let m: Value =
            serde_json::from_slice(&std::fs::read(blob(env, &s.referrer)).unwrap()).unwrap();
        blob(env, m["layers"][0]["digest"].as_str().unwrap())
    };
    flip(&bundle_blob, 40);
    fails(env, &["verify", IMAGE, "--key", "k"], "is damaged");
    flip(&bundle_blob, 40);
    env.ok(&["verify", IMAGE, "--key", "k"]);
}

// ---- peers -----------------------------------------------------------------------------

#[test]
fn peers_verify_what_gcr_signs() {
    let Some(p) = peers("peers_verify_what_gcr_signs") else {
        return;
    };
    let s = signed();
    let env = &s.env;
    // The key id is securesystemslib's.
    let out = p.python(&["keyid", s.pubfile.to_str().unwrap()]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(stdout(&out).trim(), s.key_id);
    let bundle = root(env).join("gcr.bundle.json");
    std::fs::write(&bundle, &s.bundle).unwrap();
    let manifest = blob(env, &s.manifest);
    p.accept(
        "gcr's bundle",
        &s.pubfile,
        &bundle,
        &[&manifest, &blob_dir(env)],
    );
    p.accept("gcr's bundle, signature only", &s.pubfile, &bundle, &[]);
    // An encrypted key signs the same way.
    let out = gcr_stdin(env, &["key", "generate", "enc", "--password-stdin"], "pw");
    assert!(out.status.success());
    let out = gcr_stdin(
        env,
        &["sign", IMAGE, "--key", "enc", "--password-stdin", "-q"],
        "pw",
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let b2 = root(env).join("enc.bundle.json");
    std::fs::write(&b2, bundle_of(env, stdout(&out).trim())).unwrap();
    let pub2 = root(env).join("enc.pub");
    std::fs::write(&pub2, env.ok(&["key", "export", "enc"])).unwrap();
    p.accept("encrypted key's bundle", &pub2, &b2, &[&manifest]);
    // The wrong key is refused by both.
    p.reject("another key", &pub2, &bundle, &[]);
}

#[test]
fn gcr_verifies_what_securesystemslib_signs() {
    let Some(p) = peers("gcr_verifies_what_securesystemslib_signs") else {
        return;
    };
    let env = Env::new();
    let digest = manifest_digest(&env);
    let hex = digest.strip_prefix("sha256:").unwrap();
    let envelope = root(&env).join("sslib.env.json");
    let pubfile = root(&env).join("sslib.pub");
    let out = p.python(&[
        "sign",
        "new",
        hex,
        "docker.io/test/busybox",
        envelope.to_str().unwrap(),
        pubfile.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let e = envelope.to_str().unwrap();
    let k = pubfile.to_str().unwrap();
    let text = env.ok(&["verify", IMAGE, "--key", k, "--bundle", e]);
    assert!(text.contains("https://example.com/peer/v1"), "{text}");
    assert!(text.contains("2024-01-02T03:04:05Z"), "{text}");
    // Attached as a DSSE referrer, and with the key imported by name.
    fails(&env, &["verify", IMAGE, "--key", k], "has no signature");
    env.ok(&[
        "__attach",
        IMAGE,
        "application/vnd.dsse.envelope.v1+json",
        e,
    ]);
    env.ok(&["key", "import", "sslib", k]);
    let json: Value =
        serde_json::from_str(&env.ok(&["verify", IMAGE, "--key", "sslib", "--format", "json"]))
            .unwrap();
    let out = p.python(&["keyid", k]);
    assert_eq!(
        json["Signatures"][0]["KeyID"].as_str().unwrap(),
        stdout(&out).trim()
    );
    assert_eq!(json["Signatures"][0]["Signer"], "sslib");
    // securesystemslib's envelope for another manifest is refused.
    let other = root(&env).join("other.env.json");
    let other_pub = root(&env).join("other.pub");
    let o = other_pub.to_str().unwrap();
    let out = p.python(&[
        "sign",
        "new",
        &"0".repeat(64),
        "x",
        other.to_str().unwrap(),
        o,
    ]);
    assert!(out.status.success());
    fails(
        &env,
        &[
            "verify",
            IMAGE,
            "--key",
            o,
            "--bundle",
            other.to_str().unwrap(),
        ],
        "covers manifest sha256:0000",
    );
}
