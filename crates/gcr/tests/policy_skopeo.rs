//! Interop of the image policy with skopeo 1.9 (containers/image), the peer for the
//! containers-policy.json rules it enforces: one policy file with scopes by registry,
//! namespace, repository, exact tag, a `*.domain` wildcard and the default, holding
//! `insecureAcceptAnything` and `reject`; for each reference `skopeo --policy F copy` and
//! `gcr --policy F pull` (a fresh store each) must both accept or both refuse. Under
//! `sigstoreSigned` with a `keyPath` both refuse an unsigned image. The file carries a
//! `gcr` transport section too, which skopeo must accept (it ignores transports it does
//! not know); gcr's run policy lives in a separate file and is not shown to skopeo.

mod common;

use std::path::Path;

use common::servers::{need_tools, Server};
use common::{stderr, Env, IMAGE};

/// What skopeo made of `skopeo --policy POLICY copy docker://NAME oci:…`: true when it
/// copied, false when the policy refused it; panics on any other failure (a refusal for
/// another reason must not count as agreement).
fn skopeo_allows(policy: &Path, name: &str) -> bool {
    let dest = tempfile::tempdir().unwrap();
    let out = std::process::Command::new("skopeo")
        .arg("--policy")
        .arg(policy)
        .args(["copy", "--src-tls-verify=false"])
        .arg(format!("docker://{name}"))
        .arg(format!("oci:{}:x", dest.path().display()))
        .stdin(std::process::Stdio::null())
        .output()
        .expect("run skopeo");
    let err = stderr(&out);
    if out.status.success() {
        assert!(
            dest.path().join("index.json").exists(),
            "skopeo copy {name} succeeded but wrote no OCI layout"
        );
        return true;
    }
    assert!(
        err.contains("Source image rejected"),
        "skopeo copy {name} failed for a reason other than policy: {err}"
    );
    false
}

/// The `repository:tag` names in `env`'s store.
fn tags(env: &Env) -> Vec<String> {
    env.ok(&["images", "--format", "json"])
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .map(|v| {
            format!(
                "{}:{}",
                v["Repository"].as_str().unwrap_or(""),
                v["Tag"].as_str().unwrap_or("")
            )
        })
        .collect()
}

/// What gcr made of `gcr --policy POLICY pull NAME` in a fresh store: Ok on success,
/// Err(rule) on a refusal (exit 125 with the POLICY_DENY JSON line, nothing kept); panics
/// on any other failure.
fn gcr_allows(policy: &Path, name: &str) -> Result<(), String> {
    let env = Env::new();
    let before = tags(&env);
    let out = env.gcr(&["--policy", policy.to_str().unwrap(), "pull", name]);
    if out.status.success() {
        let after = tags(&env);
        assert!(
            after.iter().any(|t| t == name),
            "gcr pull {name} kept no image: {after:?}"
        );
        return Ok(());
    }
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(125), "gcr pull {name}: {err}");
    let line = err
        .lines()
        .find(|l| l.starts_with('{'))
        .unwrap_or_else(|| panic!("gcr pull {name}: no JSON line on stderr: {err}"));
    let v: serde_json::Value = serde_json::from_str(line)
        .unwrap_or_else(|e| panic!("gcr pull {name}: bad JSON line ({e}): {line}"));
    assert_eq!(v["code"], "POLICY_DENY", "gcr pull {name}: {line}");
    assert!(
        v["reason"].as_str().is_some_and(|r| !r.is_empty()),
        "{line}"
    );
    assert_eq!(
        tags(&env),
        before,
        "a refused pull of {name} kept something"
    );
    Err(v["rule"].as_str().unwrap_or_default().to_string())
}

/// Pushes IMAGE from `env` as each of `names`.
fn push(env: &Env, names: &[String]) {
    for name in names {
        env.ok(&["tag", IMAGE, name]);
        env.ok(&["push", name]);
    }
}

#[test]
fn skopeo_and_gcr_agree_on_the_same_policy_file() {
    if !need_tools("skopeo_and_gcr_agree_on_the_same_policy_file", &["skopeo"]) {
        return;
    }
    // Two registries: `a` has a registry scope of its own; `b` is matched only by the
    // wildcard. containers/image drops the port before forming `*.domain` candidates and
    // splits the host at dots, so 127.0.0.1:PORT is matched by `*.0.0.1` (and `*.0.1`,
    // `*.1`) — in skopeo and in gcr alike — while `localhost` (no dot) has no wildcard
    // candidate and falls to the default.
    let a = Server::gcr(&[], &[]);
    let b = Server::gcr(&[], &[]);
    let (ha, hb) = (a.host(), b.host());
    let pusher = Env::new();
    let at_a = |r: &str| format!("{ha}/{r}");
    let at_b = |r: &str| format!("{hb}/{r}");
    push(
        &pusher,
        &[
            at_a("open/app:1"),
            at_a("open/app:bad"),
            at_a("blocked/app:1"),
            at_a("blocked/special:1"),
            at_b("any/app:1"),
            at_b("deny/app:1"),
        ],
    );
    let dir = tempfile::tempdir().unwrap();
    let policy = dir.path().join("policy.json");
    let accept = r#"[{"type":"insecureAcceptAnything"}]"#;
    let reject = r#"[{"type":"reject"}]"#;
    std::fs::write(
        &policy,
        format!(
            r#"{{
  "default": {reject},
  "transports": {{
    "docker": {{
      "{ha}": {accept},
      "{ha}/blocked": {reject},
      "{ha}/blocked/special": {accept},
      "{ha}/open/app:bad": {reject},
      "*.0.0.1": {accept},
      "{hb}/deny": {reject}
    }},
    "gcr": {{
      "docker.io/test/busybox:1": {accept}
    }}
  }}
}}"#
        ),
    )
    .unwrap();
    // (reference, accepted, the rule gcr names when it refuses)
    let cases: Vec<(String, bool, String)> = vec![
        (at_a("open/app:1"), true, String::new()),
        (
            at_a("open/app:bad"),
            false,
            format!("policy.transports.docker.{ha}/open/app:bad"),
        ),
        (
            at_a("blocked/app:1"),
            false,
            format!("policy.transports.docker.{ha}/blocked"),
        ),
        (at_a("blocked/special:1"), true, String::new()),
        (at_b("any/app:1"), true, String::new()),
        (
            at_b("deny/app:1"),
            false,
            format!("policy.transports.docker.{hb}/deny"),
        ),
        (
            format!("localhost:{}/open/app:1", a.port),
            false,
            "policy.default".to_string(),
        ),
    ];
    for (name, want, rule) in &cases {
        let sk = skopeo_allows(&policy, name);
        let gcr = gcr_allows(&policy, name);
        assert_eq!(sk, *want, "skopeo on {name}");
        assert_eq!(
            gcr.is_ok(),
            sk,
            "skopeo {} {name}, gcr {gcr:?}",
            if sk { "accepts" } else { "refuses" }
        );
        if let Err(r) = gcr {
            assert_eq!(&r, rule, "gcr's rule for {name}");
        }
    }

    // sigstoreSigned with a keyPath (gcr's Ed25519 PEM, which containers/image reads
    // too): both refuse the unsigned image. Only the unsigned case is compared: skopeo
    // looks for cosign-style signatures (`sha256-….sig` tags), while gcr signs with
    // Sigstore bundles attached as OCI referrers, which skopeo 1.9 does not read — so a
    // gcr-signed image is refused by skopeo and accepted by gcr by design.
    pusher.ok(&["key", "generate", "k"]);
    let pem = pusher.ok(&["key", "export", "k"]);
    let key = dir.path().join("k.pem");
    std::fs::write(&key, pem).unwrap();
    let signed = dir.path().join("signed.json");
    std::fs::write(
        &signed,
        format!(
            r#"{{"default":{accept},"transports":{{"docker":{{"{ha}":[{{"type":"sigstoreSigned","keyPath":"{}","signedIdentity":{{"type":"matchRepository"}}}}]}},"gcr":{{"":{accept}}}}}}}"#,
            key.display()
        ),
    )
    .unwrap();
    // Each fresh store already holds the pushed image under test/busybox:1 (imported, so
    // the pull fetches no blob): the pull is still judged in the docker transport, and its
    // refusal takes away the pulled name only.
    let name = at_a("open/app:1");
    assert!(
        !skopeo_allows(&signed, &name),
        "skopeo accepted an unsigned image under sigstoreSigned"
    );
    assert_eq!(
        gcr_allows(&signed, &name),
        Err(format!("policy.transports.docker.{ha}")),
        "gcr on an unsigned image under sigstoreSigned"
    );
    // The default of that file lets skopeo and gcr through elsewhere.
    let other = at_b("any/app:1");
    assert!(skopeo_allows(&signed, &other));
    assert_eq!(gcr_allows(&signed, &other), Ok(()));
}
