//! Container DNA (issue 14 item 6): `gcr inspect --dna` is stable across calls and across a
//! stop/start, equal for two containers of the same image and flags, changed by a limit, a
//! capability, a mount or the network mode (through the runtime part), changed by a
//! signature (through the signers part), and `ps --format json` carries the same value.

mod common;
use common::*;
use serde_json::Value;

/// Says "started" once its TERM trap is in place.
const LOOP: &str =
    "trap 'echo bye; exit 0' TERM; echo started; while :; do sleep 1 & wait $!; done";

fn dna(env: &Env, name: &str) -> Value {
    let out = env.ok(&["inspect", "--dna", name]);
    let doc: Value = serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}"));
    let d = doc["dna"].as_str().unwrap_or_default();
    assert!(d.starts_with("sha256:") && d.len() == 71, "{out}");
    assert!(doc["parts"]["image"]
        .as_str()
        .unwrap()
        .starts_with("sha256:"));
    assert!(doc["parts"]["runtime"]
        .as_str()
        .unwrap()
        .starts_with("sha256:"));
    assert!(doc["parts"]["signers"].is_array(), "{out}");
    doc
}

fn ps_dna(env: &Env, name: &str) -> String {
    let out = env.ok(&["ps", "-a", "--format", "json"]);
    out.lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .find(|row| row["Names"] == name)
        .unwrap_or_else(|| panic!("{name} not in ps: {out}"))["Dna"]
        .as_str()
        .unwrap_or_else(|| panic!("no Dna for {name}: {out}"))
        .to_string()
}

#[test]
fn dna_is_stable_and_shared_by_same_flags() {
    if !need_root("dna_is_stable_and_shared_by_same_flags") {
        return;
    }
    let env = Env::new();
    let flags = ["-d", "--network", "none", "--memory", "64m"];
    for name in ["ca", "cb"] {
        let mut args = vec!["run", "--name", name];
        args.extend(flags);
        args.extend([IMAGE, "sh", "-c", LOOP]);
        env.ok(&args);
    }
    assert!(eventually(5, || env
        .ok(&["logs", "ca"])
        .contains("started")));
    let first = dna(&env, "ca");
    assert_eq!(first, dna(&env, "ca"), "two inspects differ");
    assert!(first["parts"]["signers"].as_array().unwrap().is_empty());
    let b = dna(&env, "cb");
    assert_eq!(
        first["dna"], b["dna"],
        "same image and flags, different DNA"
    );
    assert_eq!(ps_dna(&env, "ca"), first["dna"].as_str().unwrap());
    assert_eq!(ps_dna(&env, "cb"), first["dna"].as_str().unwrap());

    env.ok(&["stop", "ca"]);
    assert_eq!(dna(&env, "ca")["dna"], first["dna"], "changed by stop");
    env.ok(&["start", "ca"]);
    assert!(eventually(5, || env
        .ok(&["logs", "ca"])
        .matches("started")
        .count()
        == 2));
    assert_eq!(
        dna(&env, "ca")["dna"],
        first["dna"],
        "changed by stop/start"
    );
    assert_eq!(ps_dna(&env, "ca"), first["dna"].as_str().unwrap());
}

#[test]
fn dna_changes_with_limits_caps_mounts_network() {
    if !need_root("dna_changes_with_limits_caps_mounts_network") {
        return;
    }
    let env = Env::new();
    let host_dir = env.root.path().join("shared");
    std::fs::create_dir(&host_dir).unwrap();
    let bind = format!("{}:/data", host_dir.display());
    let base = ["--network", "none"];
    let variants: Vec<(&str, Vec<&str>)> = vec![
        ("base", base.to_vec()),
        ("memory", vec!["--network", "none", "--memory", "32m"]),
        ("cap", vec!["--network", "none", "--cap-add", "NET_ADMIN"]),
        ("mount", vec!["--network", "none", "-v", &bind]),
        ("net", vec!["--network", "host"]),
    ];
    let mut docs = Vec::new();
    for (name, flags) in &variants {
        let mut args = vec!["create", "--name", name];
        args.extend(flags.iter().copied());
        args.extend([IMAGE, "true"]);
        env.ok(&args);
        docs.push((name, dna(&env, name)));
    }
    let (_, b) = &docs[0];
    for (name, d) in &docs[1..] {
        assert_ne!(d["dna"], b["dna"], "{name} did not change the DNA");
        assert_ne!(
            d["parts"]["runtime"], b["parts"]["runtime"],
            "{name} did not change the runtime part"
        );
        assert_eq!(d["parts"]["image"], b["parts"]["image"], "{name}");
        assert_eq!(d["parts"]["signers"], b["parts"]["signers"], "{name}");
    }
    let def = |n: usize| docs[n].1["runtime_definition"].clone();
    assert_eq!(def(1)["limits"]["memory"], 32 << 20);
    let caps = def(2)["security"]["capabilities"].to_string();
    assert!(caps.contains("CAP_NET_ADMIN"), "{caps}");
    assert_eq!(def(3)["mounts"][0]["destination"], "/data");
    assert_eq!(def(4)["network"]["mode"], "host");
    // The same flags again give the base DNA back.
    env.ok(&[
        "create",
        "--name",
        "again",
        "--network",
        "none",
        IMAGE,
        "true",
    ]);
    assert_eq!(dna(&env, "again")["dna"], b["dna"]);
    for (name, d) in &docs {
        assert_eq!(ps_dna(&env, name), d["dna"].as_str().unwrap());
    }
}

#[test]
fn signing_adds_the_signer() {
    if !need_root("signing_adds_the_signer") {
        return;
    }
    let env = Env::new();
    env.ok(&["create", "--name", "cc", "--network", "none", IMAGE, "true"]);
    let before = dna(&env, "cc");
    assert_eq!(before["parts"]["signers"], serde_json::json!([]));
    env.ok(&["key", "generate", "k"]);
    let list: Value =
        serde_json::from_str(&env.ok(&["key", "list", "--format", "json"])).expect("key list json");
    let key_id = list
        .as_array()
        .and_then(|a| a.iter().find(|k| k["Name"] == "k"))
        .map(|k| k["KeyID"].clone())
        .expect("key k listed");
    // A key alone changes nothing: the image is not signed yet.
    assert_eq!(dna(&env, "cc"), before);
    env.ok(&["sign", IMAGE, "--key", "k"]);
    let after = dna(&env, "cc");
    assert_eq!(after["parts"]["signers"], serde_json::json!([key_id]));
    assert_ne!(
        after["dna"], before["dna"],
        "signing did not change the DNA"
    );
    assert_eq!(after["parts"]["image"], before["parts"]["image"]);
    assert_eq!(after["parts"]["runtime"], before["parts"]["runtime"]);
    assert_eq!(ps_dna(&env, "cc"), after["dna"].as_str().unwrap());
    // The verdicts are remembered in the store (one per signature and key), and read
    // from there: a second key adds its own (negative) verdict, and a remembered verdict
    // is what the next DNA uses.
    env.ok(&["key", "generate", "k2"]);
    assert_eq!(
        dna(&env, "cc")["parts"]["signers"],
        serde_json::json!([key_id])
    );
    let db = env.root.path().join("gcr.db");
    let memo = |sql: &str| {
        let out = std::process::Command::new("sqlite3")
            .arg(&db)
            .arg(sql)
            .output()
            .expect("sqlite3 runs");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    };
    assert_eq!(
        memo("SELECT group_concat(ok, ',') FROM (SELECT ok FROM signature_verdicts ORDER BY ok)"),
        "0,1"
    );
    memo("UPDATE signature_verdicts SET ok = 0");
    assert_eq!(dna(&env, "cc")["parts"]["signers"], serde_json::json!([]));
    memo("DELETE FROM signature_verdicts");
    assert_eq!(
        dna(&env, "cc")["parts"]["signers"],
        serde_json::json!([key_id])
    );
    env.ok(&["key", "rm", "k2"]);
    // A signature by a key the store does not hold is not a verified signer.
    env.ok(&["key", "rm", "k"]);
    assert_eq!(dna(&env, "cc")["parts"]["signers"], serde_json::json!([]));
}
