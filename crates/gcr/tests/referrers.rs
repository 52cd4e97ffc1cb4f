//! OCI 1.1 referrers end to end: made with the hidden `gcr __attach` hook, listed by
//! `inspect --referrers`, pushed to `gcr registry serve` (referrers API) and to Debian's
//! `docker-registry` 2.8 (no referrers API: the `sha256-<hex>` tag fallback), pulled back
//! into fresh stores with identical digests, read by skopeo and curl, and kept by
//! `save --format oci-archive` / `load`. Every server is started by the test on a free
//! loopback port and killed by a Drop guard. Missing tools skip, except with CI=true.

mod common;

use common::servers::{need_tools, Server};
use common::{stderr, stdout, Env, IMAGE};
use serde_json::Value;

use std::path::Path;
use std::process::{Command, Output, Stdio};

const SIG: &str = "application/vnd.test.sig+json";
const SBOM: &str = "application/spdx+json";
const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";

/// A fresh, empty store with a private DOCKER_CONFIG.
struct Fresh {
    root: tempfile::TempDir,
}

impl Fresh {
    fn new() -> Fresh {
        Fresh {
            root: tempfile::tempdir().unwrap(),
        }
    }

    fn gcr(&self, args: &[&str]) -> Output {
        gcr_in(self.root.path(), args)
    }

    fn ok(&self, args: &[&str]) -> String {
        ok(self.gcr(args), args)
    }
}

fn gcr_in(root: &Path, args: &[&str]) -> Output {
    Command::new(common::gcr_bin())
        .env("GCR_ROOT", root)
        .env("GCR_RUN_DIR", root.join("run"))
        .env("DOCKER_CONFIG", root.join("docker-config"))
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("run gcr")
}

fn ok(o: Output, args: &[&str]) -> String {
    assert!(
        o.status.success(),
        "gcr {args:?} failed: {}{}",
        stdout(&o),
        stderr(&o)
    );
    stdout(&o)
}

/// `inspect --referrers`: (subject digest, referrer digests) of one image.
fn referrers(o: &str) -> (String, Vec<String>, Value) {
    let v: Value = serde_json::from_str(o).unwrap_or_else(|e| panic!("{e}: {o}"));
    let one = &v[0];
    let list: Vec<String> = one["Referrers"]
        .as_array()
        .unwrap_or_else(|| panic!("no Referrers list: {o}"))
        .iter()
        .map(|d| d["digest"].as_str().unwrap().to_string())
        .collect();
    (
        one["Subject"]["digest"].as_str().unwrap().to_string(),
        list,
        one.clone(),
    )
}

fn sorted(mut v: Vec<String>) -> Vec<String> {
    v.sort();
    v
}

fn tool(cmd: &str, args: &[&str]) -> String {
    let o = Command::new(cmd).args(args).output().expect(cmd);
    assert!(o.status.success(), "{cmd} {args:?} failed: {}", stderr(&o));
    stdout(&o)
}

/// The referrers of `subject` in a store, by `inspect --referrers`.
fn listed(root: &Path, subject: &str) -> Vec<String> {
    referrers(&ok(
        gcr_in(root, &["inspect", "--referrers", subject]),
        &["inspect"],
    ))
    .1
}

#[test]
fn referrers_are_listed_travel_both_ways_and_survive_archives() {
    if !need_tools("referrers", &["docker-registry", "skopeo", "curl"]) {
        return;
    }
    let a = Env::new();
    let files = tempfile::tempdir().unwrap();
    let file = |name: &str, body: &str| {
        let p = files.path().join(name);
        std::fs::write(&p, body).unwrap();
        p.to_str().unwrap().to_string()
    };
    let (sig_f, sbom_f, sig2_f) = (
        file("sig.json", r#"{"sig":"one"}"#),
        file("sbom.json", r#"{"spdx":"x"}"#),
        file("sig2.json", r#"{"sig":"of the sbom"}"#),
    );
    // Make: two referrers of the image and one of the SBOM.
    let sig = a
        .ok(&["__attach", IMAGE, SIG, &sig_f, "--annotation", "k=v"])
        .trim()
        .to_string();
    let sbom = a.ok(&["__attach", IMAGE, SBOM, &sbom_f]).trim().to_string();
    let sig2 = a.ok(&["__attach", &sbom, SIG, &sig2_f]).trim().to_string();
    assert!(sig.starts_with("sha256:") && sig.len() == 71, "{sig}");

    // List, and filter.
    let (subject, list, doc) = referrers(&a.ok(&["inspect", "--referrers", IMAGE]));
    assert_eq!(list, vec![sig.clone(), sbom.clone()]);
    assert_eq!(doc["Referrers"][0]["artifactType"], SIG);
    assert_eq!(doc["Referrers"][0]["annotations"]["k"], "v");
    assert_eq!(
        doc["Referrers"][0]["mediaType"],
        "application/vnd.oci.image.manifest.v1+json"
    );
    let (_, only, _) =
        referrers(&a.ok(&["inspect", "--referrers", "--artifact-type", SBOM, IMAGE]));
    assert_eq!(only, vec![sbom.clone()]);
    assert_eq!(listed(a.root.path(), &sbom), vec![sig2.clone()]);
    let all = sorted(vec![sig.clone(), sbom.clone(), sig2.clone()]);

    // gcr registry serve: the referrers API.
    let reg = Server::gcr(&[], &[]);
    let dest = format!("{}/test/bb:1", reg.host());
    let out = a.ok(&["push", IMAGE, &dest]);
    assert!(out.contains("Referrers: 3 pushed"), "{out}");
    let url = format!("http://{}/v2/test/bb/referrers/{subject}", reg.host());
    let idx: Value = serde_json::from_str(&tool("curl", &["-sf", &url])).unwrap();
    assert_eq!(idx["mediaType"], OCI_INDEX);
    assert_eq!(idx["schemaVersion"], 2);
    let in_index = |idx: &Value| -> Vec<String> {
        sorted(
            idx["manifests"]
                .as_array()
                .unwrap()
                .iter()
                .map(|d| d["digest"].as_str().unwrap().to_string())
                .collect(),
        )
    };
    assert_eq!(in_index(&idx), sorted(vec![sig.clone(), sbom.clone()]));
    let filtered = tool(
        "curl",
        &[
            "-sfi",
            &format!("{url}?artifactType=application/spdx%2Bjson"),
        ],
    );
    assert!(
        filtered
            .to_ascii_lowercase()
            .contains("oci-filters-applied: artifacttype"),
        "{filtered}"
    );
    let body = filtered.split("\r\n\r\n").nth(1).unwrap_or("");
    let fidx: Value = serde_json::from_str(body).unwrap();
    assert_eq!(in_index(&fidx), vec![sbom.clone()]);
    assert_eq!(fidx["manifests"][0]["artifactType"], SBOM);
    let v: Value = serde_json::from_str(&tool(
        "skopeo",
        &["inspect", "--tls-verify=false", &format!("docker://{dest}")],
    ))
    .unwrap();
    assert_eq!(v["Digest"].as_str(), Some(subject.as_str()));

    // Pull into fresh stores: with referrers (identical digests), and without.
    let b = Fresh::new();
    let out = b.ok(&["pull", &dest]);
    assert!(out.contains("Referrers: 3 pulled"), "{out}");
    // The registry lists referrers in its own order (gcr registry serve: by digest).
    assert_eq!(
        sorted(listed(b.root.path(), &dest)),
        sorted(vec![sig.clone(), sbom.clone()])
    );
    assert_eq!(listed(b.root.path(), &sbom), vec![sig2.clone()]);
    for d in &all {
        let hex = d.trim_start_matches("sha256:");
        assert_eq!(
            std::fs::read(b.root.path().join("blobs/sha256").join(hex)).unwrap(),
            std::fs::read(a.root.path().join("blobs/sha256").join(hex)).unwrap(),
            "{d}"
        );
    }
    // A re-pull finds them all present.
    let out = b.ok(&["pull", &dest]);
    assert!(
        out.contains("up to date") && !out.contains("Referrers:"),
        "{out}"
    );
    let c = Fresh::new();
    c.ok(&["pull", "--no-referrers", &dest]);
    assert!(listed(c.root.path(), &dest).is_empty());

    // docker-registry 2.8: no referrers API, the sha256-<hex> tag fallback.
    let dreg = Server::docker_registry("");
    let ddest = format!("{}/test/bb:1", dreg.host());
    let out = a.ok(&["push", IMAGE, &ddest]);
    assert!(out.contains("Referrers: 3 pushed"), "{out}");
    let fallback = |subject: &str| -> Value {
        let tag = subject.replacen(':', "-", 1);
        serde_json::from_str(&tool(
            "skopeo",
            &[
                "inspect",
                "--raw",
                "--tls-verify=false",
                &format!("docker://{}/test/bb:{tag}", dreg.host()),
            ],
        ))
        .unwrap()
    };
    let fidx = fallback(&subject);
    assert_eq!(fidx["mediaType"], OCI_INDEX);
    // Each entry embeds its (small) manifest, byte for byte (descriptor `data`), and each
    // manifest its layer: a pull reads them from the index with no request of their own.
    let b64 = |d: &str| {
        let path = a
            .root
            .path()
            .join("blobs/sha256")
            .join(d.trim_start_matches("sha256:"));
        tool("base64", &["-w0", path.to_str().unwrap()])
    };
    for e in fidx["manifests"].as_array().unwrap() {
        let d = e["digest"].as_str().unwrap();
        assert_eq!(e["data"].as_str(), Some(b64(d).as_str()), "{e}");
        let blob = a
            .root
            .path()
            .join("blobs/sha256")
            .join(d.trim_start_matches("sha256:"));
        let m: Value = serde_json::from_slice(&std::fs::read(blob).unwrap()).unwrap();
        let layer = m["layers"][0]["digest"].as_str().unwrap();
        assert_eq!(
            m["layers"][0]["data"].as_str(),
            Some(b64(layer).as_str()),
            "{m}"
        );
    }
    assert_eq!(in_index(&fidx), sorted(vec![sig.clone(), sbom.clone()]));
    assert_eq!(in_index(&fallback(&sbom)), vec![sig2.clone()]);
    let v: Value = serde_json::from_str(&tool(
        "skopeo",
        &[
            "inspect",
            "--tls-verify=false",
            &format!("docker://{ddest}"),
        ],
    ))
    .unwrap();
    assert_eq!(v["Digest"].as_str(), Some(subject.as_str()));
    // A later referrer is merged into the fallback index, not written over it.
    let late_f = file("late.json", r#"{"late":true}"#);
    let late = a.ok(&["__attach", IMAGE, SIG, &late_f]).trim().to_string();
    a.ok(&["push", IMAGE, &ddest]);
    assert_eq!(
        in_index(&fallback(&subject)),
        sorted(vec![sig.clone(), sbom.clone(), late.clone()])
    );
    let e = Fresh::new();
    let out = e.ok(&["pull", &ddest]);
    assert!(out.contains("Referrers: 4 pulled"), "{out}");
    assert_eq!(
        sorted(listed(e.root.path(), &ddest)),
        sorted(vec![sig.clone(), sbom.clone(), late.clone()])
    );
    assert_eq!(listed(e.root.path(), &sbom), vec![sig2.clone()]);

    // save --format oci-archive / load keep them; rmi takes them away.
    let tar = files.path().join("img.tar");
    a.ok(&[
        "save",
        "--format",
        "oci-archive",
        "-o",
        tar.to_str().unwrap(),
        IMAGE,
    ]);
    let v: Value = serde_json::from_str(&tool(
        "skopeo",
        &["inspect", &format!("oci-archive:{}:1", tar.display())],
    ))
    .unwrap();
    assert_eq!(v["Digest"].as_str(), Some(subject.as_str()));
    let f = Fresh::new();
    let out = f.ok(&["load", "-i", tar.to_str().unwrap()]);
    assert!(out.contains("Loaded referrers: 4"), "{out}");
    assert_eq!(
        sorted(listed(f.root.path(), IMAGE)),
        sorted(vec![sig.clone(), sbom.clone(), late.clone()])
    );
    assert_eq!(listed(f.root.path(), &sbom), vec![sig2.clone()]);
    f.ok(&["rmi", IMAGE]);
    for d in [&sig, &sbom, &sig2, &late] {
        let hex = d.trim_start_matches("sha256:");
        assert!(
            !f.root.path().join("blobs/sha256").join(hex).exists(),
            "{d} survived rmi"
        );
    }
}

#[test]
fn attach_refuses_unknown_images_and_bad_annotations() {
    let a = Env::new();
    let files = tempfile::tempdir().unwrap();
    let p = files.path().join("x");
    std::fs::write(&p, "x").unwrap();
    let p = p.to_str().unwrap();
    let o = a.gcr(&["__attach", "nope:1", SIG, p]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(stderr(&o).contains("nope:1"), "{}", stderr(&o));
    let o = a.gcr(&["__attach", IMAGE, SIG, p, "--annotation", "novalue"]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    let o = a.gcr(&["inspect", "--referrers", "nope:1"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("not found"), "{}", stderr(&o));
    // An image without referrers lists none.
    let (_, list, _) = referrers(&a.ok(&["inspect", "--referrers", IMAGE]));
    assert!(list.is_empty());
}

/// Issue 14's round trip with real signatures: `gcr sign` → push to `gcr registry serve`
/// (referrers API) and to docker-registry (tag fallback) → pull into a fresh root → `gcr
/// verify` with the exported public key passes there; skopeo still reads the image, and the
/// referrers endpoint lists the signature in a valid OCI index.
#[test]
fn signed_images_verify_after_a_round_trip_through_both_registries() {
    if !common::need_root("signed_images_verify_after_a_round_trip_through_both_registries")
        || !need_tools(
            "signed_images_verify_after_a_round_trip_through_both_registries",
            &["docker-registry", "skopeo", "curl"],
        )
    {
        return;
    }
    const BUNDLE: &str = "application/vnd.dev.sigstore.bundle.v0.3+json";
    let env = Env::new();
    env.ok(&["key", "generate", "rt"]);
    env.ok(&["sign", IMAGE, "--key", "rt"]);
    let keys: Value = serde_json::from_str(&env.ok(&["key", "list", "--format", "json"])).unwrap();
    let keyid = keys[0]["KeyID"].as_str().unwrap().to_string();
    let pubkey = env.root.path().join("rt.pub");
    std::fs::write(&pubkey, env.ok(&["key", "export", "rt"])).unwrap();
    for (server, api) in [
        (Server::gcr(&[], &[]), true),
        (Server::docker_registry(""), false),
    ] {
        let dest = format!("{}/signed/busybox:1", server.host());
        env.ok(&["push", IMAGE, &dest]);
        let fresh = Fresh::new();
        fresh.ok(&["pull", &dest]);
        let out = fresh.ok(&["verify", &dest, "--key", pubkey.to_str().unwrap()]);
        assert!(
            out.starts_with("Verified") && out.contains(&keyid),
            "verify after the round trip ({dest}): {out}"
        );
        // Another key does not verify it.
        fresh.ok(&["key", "generate", "other"]);
        assert!(
            !fresh
                .gcr(&["verify", &dest, "--key", "other"])
                .status
                .success(),
            "a signature by another key was accepted"
        );
        tool(
            "skopeo",
            &["inspect", "--tls-verify=false", &format!("docker://{dest}")],
        );
        if api {
            let (subject, ..) = referrers(&fresh.ok(&["inspect", "--referrers", &dest]));
            let url = format!(
                "http://{}/v2/signed/busybox/referrers/{subject}?artifactType={BUNDLE}",
                server.host()
            );
            let index: Value = serde_json::from_str(&tool("curl", &["-sf", &url])).unwrap();
            assert_eq!(index["mediaType"], OCI_INDEX);
            let arts: Vec<&str> = index["manifests"]
                .as_array()
                .unwrap()
                .iter()
                .filter_map(|m| m["artifactType"].as_str())
                .collect();
            assert!(
                arts.contains(&BUNDLE),
                "the signature is not listed: {index}"
            );
        }
    }
}
