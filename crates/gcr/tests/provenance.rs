//! Build provenance end to end (issue 14, item 5): every `gcr build` attaches an SLSA
//! provenance v1 statement (in-toto Statement v1, canonical JSON) to the image as an OCI
//! referrer; its fields carry the spec's digest and path, the base image's and the pinned
//! dependency's digests and the build record's digest; two builds in two directories and
//! stores give byte-identical statements and a cached rebuild attaches the same one; with
//! `--sign-key` (or config.json's `build.signKey`) the signed provenance and build record
//! verify with `gcr verify` and with securesystemslib and @sigstore/verify.

mod common;
#[allow(dead_code)]
#[path = "peers/mod.rs"]
mod peers;

use std::path::Path;

use common::{need_root, stderr, Env, IMAGE};
use peers::{blob, bundle_of, manifest_digest, peers};
use serde_json::Value;

const SLSA: &str = "https://slsa.dev/provenance/v1";
const RECORD: &str = "https://gcr.dev/attestations/build-record/v1";
const BUNDLE: &str = "application/vnd.dev.sigstore.bundle.v0.3+json";
const INTOTO: &str = "application/vnd.in-toto+json";

/// Lowercase hex SHA-256, computed by coreutils' sha256sum (no gcr code involved).
fn sha256(b: &[u8]) -> String {
    use std::io::Write;
    let mut c = std::process::Command::new("sha256sum")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("sha256sum");
    c.stdin.take().unwrap().write_all(b).unwrap();
    let out = c.wait_with_output().unwrap();
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .next()
        .unwrap()
        .to_string()
}

fn spec() -> String {
    format!(
        "format: gcr-v1.0\nname: test/prov\nversion: \"1.0\"\nbase: {IMAGE}\nbuild:\n  copy:\n    - src: ./one.txt\n      dest: /etc/app/\n  dependencies:\n    - name: raw\n      version: \"2\"\n      source: file://dep.txt\n      hash: sha256:{}\n      dest: /opt/raw/\n  commands:\n    - echo built > /built\nruntime:\n  cmd: [cat, /built]\n",
        sha256(b"dep\n")
    )
}

/// A context with the spec, one copied file and one pinned dependency.
fn context(dir: &Path) {
    std::fs::create_dir_all(dir).unwrap();
    std::fs::write(dir.join("one.txt"), "one\n").unwrap();
    std::fs::write(dir.join("dep.txt"), "dep\n").unwrap();
    std::fs::write(dir.join("app.gcr"), spec()).unwrap();
}

fn tempdir() -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix("gcr-prov-test-")
        .tempdir()
        .unwrap()
}

/// Runs `gcr build --progress json` with `extra` flags; returns the events.
fn build(env: &Env, dir: &Path, extra: &[&str]) -> Vec<Value> {
    let mut args = vec!["build", "--progress", "json"];
    args.extend_from_slice(extra);
    args.push(dir.to_str().unwrap());
    env.ok(&args)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

fn event<'a>(events: &'a [Value], kind: &str) -> &'a Value {
    events
        .iter()
        .find(|e| e["event"] == "attestation" && e["kind"] == kind)
        .unwrap_or_else(|| panic!("no {kind} attestation in {events:?}"))
}

fn manifest_of(events: &[Value]) -> String {
    let done = events.iter().find(|e| e["event"] == "done").unwrap();
    done["manifest"].as_str().unwrap().to_string()
}

/// The image's referrers as `gcr inspect --referrers` lists them.
fn referrers(env: &Env, image: &str) -> Vec<Value> {
    let out = env.ok(&["inspect", "--referrers", image]);
    let v: Value = serde_json::from_str(&out).unwrap();
    v[0]["Referrers"].as_array().unwrap().clone()
}

/// The provenance statement's bytes, found through `inspect --referrers`.
fn provenance_bytes(env: &Env, image: &str) -> Vec<u8> {
    let list = referrers(env, image);
    let prov: Vec<&Value> = list
        .iter()
        .filter(|r| r["artifactType"] == INTOTO)
        .collect();
    assert_eq!(prov.len(), 1, "one provenance referrer: {list:?}");
    assert_eq!(prov[0]["annotations"]["in-toto.io/predicate-type"], SLSA);
    bundle_of(env, prov[0]["digest"].as_str().unwrap())
}

/// The payload of a Sigstore bundle's DSSE envelope.
fn payload(bundle: &[u8]) -> Vec<u8> {
    let b: Value = serde_json::from_slice(bundle).unwrap();
    assert_eq!(b["mediaType"], BUNDLE);
    peers::b64_decode(b["dsseEnvelope"]["payload"].as_str().unwrap())
}

#[test]
fn provenance_names_spec_base_dependency_and_record() {
    if !need_root("provenance_names_spec_base_dependency_and_record") {
        return;
    }
    let env = Env::new();
    let dir = tempdir();
    context(dir.path());
    let events = build(&env, dir.path(), &[]);
    let manifest = manifest_of(&events);
    let ev = event(&events, "provenance");
    assert_eq!(ev["predicate_type"], SLSA);
    assert!(ev["key_id"].is_null());
    assert!(
        !events.iter().any(|e| e["kind"] == "signed provenance"),
        "signed without a key: {events:?}"
    );
    let bytes = provenance_bytes(&env, "test/prov:1.0");
    // Canonical JSON: sorted keys, no whitespace (serde_json's map is sorted, and the
    // statement holds only ASCII strings and integers).
    let s: Value = serde_json::from_slice(&bytes).unwrap();
    assert_eq!(serde_json::to_vec(&s).unwrap(), bytes, "not canonical JSON");
    let text = String::from_utf8(bytes.clone()).unwrap();
    let ctx = dir.path().to_str().unwrap();
    assert!(!text.contains(ctx), "the context's path leaks: {text}");
    assert!(!text.contains("duration"), "timings leak: {text}");

    assert_eq!(s["_type"], "https://in-toto.io/Statement/v1");
    assert_eq!(s["predicateType"], SLSA);
    assert_eq!(s["subject"][0]["name"], "docker.io/test/prov");
    let man_bytes = std::fs::read(blob(&env, &manifest)).unwrap();
    assert_eq!(
        sha256(&man_bytes),
        manifest.strip_prefix("sha256:").unwrap()
    );
    assert_eq!(
        s["subject"][0]["digest"]["sha256"],
        manifest.strip_prefix("sha256:").unwrap()
    );
    assert_eq!(
        s["subject"][0]["digest"]["blake3"].as_str().unwrap().len(),
        64
    );
    let def = &s["predicate"]["buildDefinition"];
    assert_eq!(def["buildType"], "https://gcr.dev/build/gcr-v1.0@v1");
    let spec_file = std::fs::read(dir.path().join("app.gcr")).unwrap();
    assert_eq!(def["externalParameters"]["spec"]["path"], "app.gcr");
    assert_eq!(
        def["externalParameters"]["spec"]["digest"]["sha256"],
        sha256(&spec_file)
    );
    let deps = def["resolvedDependencies"].as_array().unwrap();
    let base = deps.iter().find(|d| d["name"] == "base").expect("base");
    let base_digest = manifest_digest(&env);
    assert_eq!(
        base["digest"]["sha256"],
        base_digest.strip_prefix("sha256:").unwrap()
    );
    let raw = deps
        .iter()
        .find(|d| d["name"] == "raw")
        .expect("dependency");
    assert_eq!(raw["digest"]["sha256"], sha256(b"dep\n"));
    assert_eq!(raw["uri"], "file://dep.txt");
    assert!(
        deps.iter().any(|d| d["name"] == "context:one.txt"),
        "{deps:?}"
    );
    let run = &s["predicate"]["runDetails"];
    assert_eq!(run["builder"]["id"], "https://gcr.dev/gcr");
    let by = &run["byproducts"][0];
    assert_eq!(by["name"], "build-transcript");
    assert_eq!(by["digest"]["sha256"].as_str().unwrap().len(), 64, "{by:?}");

    // The byproduct is the build record that a signed build attaches: sign the same
    // build (cached) and compare the record's digest.
    env.ok(&["key", "generate", "k"]);
    let events = build(&env, dir.path(), &["--sign-key", "k"]);
    let rec = event(&events, "signed build record")["referrer"]
        .as_str()
        .unwrap()
        .to_string();
    let st: Value = serde_json::from_slice(&payload(&bundle_of(&env, &rec))).unwrap();
    assert_eq!(st["predicateType"], RECORD);
    let rec_bytes = serde_json::to_vec(&st["predicate"]).unwrap();
    assert_eq!(by["digest"]["sha256"], sha256(&rec_bytes));
    assert_eq!(st["predicate"]["spec"]["path"], "app.gcr");
}

#[test]
fn two_directories_and_stores_give_identical_provenance_and_rebuilds_reuse_it() {
    if !need_root("two_directories_and_stores_give_identical_provenance_and_rebuilds_reuse_it") {
        return;
    }
    let (a, b) = (tempdir(), tempdir());
    context(a.path());
    context(&b.path().join("elsewhere/deeper"));
    let (env1, env2) = (Env::new(), Env::new());
    let e1 = build(&env1, a.path(), &[]);
    std::thread::sleep(std::time::Duration::from_millis(1100));
    let e2 = build(&env2, &b.path().join("elsewhere/deeper"), &[]);
    assert_eq!(manifest_of(&e1), manifest_of(&e2));
    let (p1, p2) = (
        provenance_bytes(&env1, "test/prov:1.0"),
        provenance_bytes(&env2, "test/prov:1.0"),
    );
    assert_eq!(
        String::from_utf8_lossy(&p1),
        String::from_utf8_lossy(&p2),
        "provenance differs between two directories and stores"
    );
    assert_eq!(
        event(&e1, "provenance")["referrer"],
        event(&e2, "provenance")["referrer"]
    );
    // A cached rebuild attaches the same provenance (nothing new), --no-cache too.
    let before = referrers(&env1, "test/prov:1.0");
    let warm = build(&env1, a.path(), &[]);
    assert!(warm
        .iter()
        .filter(|e| e["event"] == "step")
        .all(|e| e["cached"] == true));
    assert_eq!(
        event(&warm, "provenance")["referrer"],
        event(&e1, "provenance")["referrer"]
    );
    let cold = build(&env1, a.path(), &["--no-cache"]);
    assert_eq!(
        event(&cold, "provenance")["referrer"],
        event(&e1, "provenance")["referrer"]
    );
    assert_eq!(referrers(&env1, "test/prov:1.0"), before);
}

#[test]
fn signed_build_verifies_with_gcr_and_peers() {
    if !need_root("signed_build_verifies_with_gcr_and_peers") {
        return;
    }
    let env = Env::new();
    let dir = tempdir();
    context(dir.path());
    // An unknown key fails before anything is built or tagged.
    let out = env.gcr(&["build", "--sign-key", "nope", dir.path().to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(stderr(&out).contains("nope"), "{}", stderr(&out));
    assert!(!env.gcr(&["inspect", "test/prov:1.0"]).status.success());

    env.ok(&["key", "generate", "k"]);
    let events = build(&env, dir.path(), &["--sign-key", "k"]);
    let key_id = peers::key_id(&env, "k");
    let sp = event(&events, "signed provenance");
    assert_eq!(sp["key_id"], key_id.as_str());
    let v: Value = serde_json::from_str(&env.ok(&[
        "verify",
        "test/prov:1.0",
        "--key",
        "k",
        "--format",
        "json",
    ]))
    .unwrap();
    let types: Vec<&str> = v["Signatures"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["PredicateType"].as_str().unwrap())
        .collect();
    assert!(types.contains(&SLSA) && types.contains(&RECORD), "{v}");
    // The signed payload is the attached statement, byte for byte.
    let bundle = bundle_of(&env, sp["referrer"].as_str().unwrap());
    assert_eq!(payload(&bundle), provenance_bytes(&env, "test/prov:1.0"));
    // The bundle alone verifies too.
    let bfile = env.root.path().join("prov.bundle.json");
    std::fs::write(&bfile, &bundle).unwrap();
    env.ok(&[
        "verify",
        "test/prov:1.0",
        "--key",
        "k",
        "--bundle",
        bfile.to_str().unwrap(),
    ]);
    // Another key does not verify it.
    env.ok(&["key", "generate", "other"]);
    let out = env.gcr(&["verify", "test/prov:1.0", "--key", "other"]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));

    // The default key from config.json; --no-sign skips it.
    std::fs::write(
        env.root.path().join("config.json"),
        r#"{"build": {"signKey": "other"}}"#,
    )
    .unwrap();
    let events = build(&env, dir.path(), &[]);
    assert_eq!(
        event(&events, "signed provenance")["key_id"],
        peers::key_id(&env, "other").as_str()
    );
    env.ok(&["verify", "test/prov:1.0", "--key", "other"]);
    let events = build(&env, dir.path(), &["--no-sign"]);
    assert!(!events.iter().any(|e| e["kind"] == "signed provenance"));
    std::fs::write(env.root.path().join("config.json"), "{not json").unwrap();
    let out = env.gcr(&["build", dir.path().to_str().unwrap()]);
    assert!(stderr(&out).contains("config.json"), "{}", stderr(&out));

    // Peers: securesystemslib and @sigstore/verify verify the signed provenance.
    let Some(p) = peers("signed_build_verifies_with_gcr_and_peers") else {
        return;
    };
    let pubfile = env.root.path().join("k.pem");
    std::fs::write(&pubfile, env.ok(&["key", "export", "k"])).unwrap();
    let manifest = blob(&env, &manifest_of(&events));
    p.accept("signed provenance", &pubfile, &bfile, &[&manifest]);
}

#[test]
fn encrypted_key_needs_its_password_and_a_wrong_one_builds_nothing() {
    if !need_root("encrypted_key_needs_its_password_and_a_wrong_one_builds_nothing") {
        return;
    }
    let env = Env::new();
    let dir = tempdir();
    context(dir.path());
    let d = dir.path().to_str().unwrap();
    let out = peers::gcr_stdin(&env, &["key", "generate", "ek", "--password-stdin"], "pw\n");
    assert!(out.status.success(), "{}", stderr(&out));
    for (args, input, needle) in [
        (vec!["build", "--sign-key", "ek", d], "", "--password-stdin"),
        (
            vec!["build", "--sign-key", "ek", "--password-stdin", d],
            "wrong\n",
            "password is wrong",
        ),
    ] {
        let out = peers::gcr_stdin(&env, &args, input);
        assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
        assert!(stderr(&out).contains(needle), "{}", stderr(&out));
        assert!(!env.gcr(&["inspect", "test/prov:1.0"]).status.success());
    }
    let mut args = vec!["build", "--progress", "json", "--sign-key", "ek"];
    args.extend(["--password-stdin", d]);
    let out = peers::gcr_stdin(&env, &args, "pw\n");
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(String::from_utf8_lossy(&out.stdout).contains("signed provenance"));
    env.ok(&["verify", "test/prov:1.0", "--key", "ek"]);
}
