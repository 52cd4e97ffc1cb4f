//! Helpers of tests/trust.rs: the store's files, gcr runs that must fail, base64 for
//! tampering, a signed store, and the peers (securesystemslib through sslib.py,
//! @sigstore/verify through sigstore_verify.js).

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

use crate::common::{stderr, stdout, Env, IMAGE};

// ---- helpers ---------------------------------------------------------------------------

pub fn root(env: &Env) -> &Path {
    env.root.path()
}

pub fn blob(env: &Env, digest: &str) -> PathBuf {
    let hex = digest.strip_prefix("sha256:").unwrap_or(digest);
    root(env).join("blobs/sha256").join(hex)
}

pub fn blob_dir(env: &Env) -> PathBuf {
    root(env).join("blobs/sha256")
}

/// Runs gcr, expects failure with exit code 1 and `needle` in stderr; returns stderr.
pub fn fails(env: &Env, args: &[&str], needle: &str) -> String {
    let out = env.gcr(args);
    let err = stderr(&out);
    assert_eq!(
        out.status.code(),
        Some(1),
        "gcr {args:?} should fail with 1; stdout {} stderr {err}",
        stdout(&out)
    );
    assert!(
        err.contains(needle),
        "gcr {args:?}: expected {needle:?} in stderr: {err}"
    );
    assert_eq!(err.lines().count(), 1, "one line of error: {err}");
    err
}

/// gcr with `input` on stdin.
pub fn gcr_stdin(env: &Env, args: &[&str], input: &str) -> Output {
    use std::io::Write;
    let mut child = env
        .cmd(args)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn gcr");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.as_bytes())
        .unwrap();
    child.wait_with_output().expect("wait gcr")
}

pub fn run(cmd: &mut Command) -> Output {
    let out = cmd.output().unwrap_or_else(|e| panic!("run {cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}{}",
        stdout(&out),
        stderr(&out)
    );
    out
}

pub fn openssl(args: &[&str]) -> Output {
    run(Command::new("openssl").args(args))
}

/// Names of the files in the store's key directory.
pub fn key_files(env: &Env) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(root(env).join("keys"))
        .map(|d| {
            d.filter_map(|e| e.ok())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

pub fn key_list(env: &Env) -> Vec<Value> {
    let out = env.ok(&["key", "list", "--format", "json"]);
    serde_json::from_str::<Value>(&out)
        .unwrap()
        .as_array()
        .unwrap()
        .clone()
}

pub fn key_id(env: &Env, name: &str) -> String {
    key_list(env)
        .iter()
        .find(|k| k["Name"] == name)
        .unwrap_or_else(|| panic!("key {name} not listed"))["KeyID"]
        .as_str()
        .unwrap()
        .to_string()
}

/// The image's referrers (descriptors).
pub fn referrers(env: &Env) -> Vec<Value> {
    let out = env.ok(&["inspect", "--referrers", IMAGE]);
    let v: Value = serde_json::from_str(&out).unwrap();
    v[0]["Referrers"].as_array().unwrap().clone()
}

pub fn manifest_digest(env: &Env) -> String {
    let out = env.ok(&["inspect", "--referrers", IMAGE]);
    let v: Value = serde_json::from_str(&out).unwrap();
    v[0]["Subject"]["digest"].as_str().unwrap().to_string()
}

/// The bundle bytes of a signature referrer.
pub fn bundle_of(env: &Env, referrer: &str) -> Vec<u8> {
    let m: Value = serde_json::from_slice(&std::fs::read(blob(env, referrer)).unwrap()).unwrap();
    std::fs::read(blob(env, m["layers"][0]["digest"].as_str().unwrap())).unwrap()
}

/// Flips one bit of byte `at` of a file (twice restores it).
pub fn flip(path: &Path, at: usize) {
    let mut data = std::fs::read(path).unwrap();
    data[at] ^= 0x01;
    let _ = std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600));
    std::fs::write(path, data).unwrap();
}

pub const B64: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

pub fn b64_encode(data: &[u8]) -> String {
    let mut out = String::new();
    for chunk in data.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(B64[((n >> (18 - 6 * i)) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

pub fn b64_decode(s: &str) -> Vec<u8> {
    let mut out = Vec::new();
    let (mut acc, mut bits) = (0u32, 0);
    for c in s.bytes().filter(|&c| c != b'=') {
        let v = B64.iter().position(|&x| x == c).expect("base64") as u32;
        acc = (acc << 6) | v;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
        }
    }
    out
}

/// A store with busybox, a key `k` and a signature of the image by it.
pub struct Signed {
    pub env: Env,
    pub key_id: String,
    pub pubfile: PathBuf,
    pub manifest: String,
    pub referrer: String,
    pub bundle: Vec<u8>,
}

pub fn signed() -> Signed {
    let env = Env::new();
    env.ok(&["key", "generate", "k"]);
    let referrer = env
        .ok(&["sign", IMAGE, "--key", "k", "-q"])
        .trim()
        .to_string();
    assert!(referrer.starts_with("sha256:"), "{referrer}");
    let pubfile = root(&env).join("k.pub.pem");
    std::fs::write(&pubfile, env.ok(&["key", "export", "k"])).unwrap();
    let bundle = bundle_of(&env, &referrer);
    Signed {
        key_id: key_id(&env, "k"),
        manifest: manifest_digest(&env),
        env,
        pubfile,
        referrer,
        bundle,
    }
}

// ---- peers -----------------------------------------------------------------------------

pub struct Peers {
    python: PathBuf,
    node_path: PathBuf,
    dir: PathBuf,
}

/// The installed peers; None (after saying why) when they are missing, which fails the
/// test instead when CI=true.
pub fn peers(test: &str) -> Option<Peers> {
    let base = std::env::var_os("GCR_PEERS")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/peers"));
    let p = Peers {
        python: base.join("venv/bin/python"),
        node_path: base.join("node/node_modules"),
        dir: Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/peers"),
    };
    let py_ok = Command::new(&p.python)
        .args([
            "-c",
            "import securesystemslib.dsse, securesystemslib.signer",
        ])
        .output()
        .is_ok_and(|o| o.status.success());
    let node_ok = p.node_path.join("@sigstore/verify/package.json").exists()
        && Command::new("node").arg("--version").output().is_ok();
    if py_ok && node_ok {
        return Some(p);
    }
    let why = format!(
        "{test}: peers missing (securesystemslib: {py_ok}, @sigstore/verify: {node_ok}); run scripts/deps.sh"
    );
    if std::env::var("CI").as_deref() == Ok("true") {
        panic!("{why}; skipping is not allowed when CI=true");
    }
    eprintln!("skipped {why}");
    None
}

impl Peers {
    pub fn python(&self, args: &[&str]) -> Output {
        Command::new(&self.python)
            .arg(self.dir.join("sslib.py"))
            .args(args)
            .output()
            .expect("run python")
    }

    pub fn node(&self, args: &[&str]) -> Output {
        Command::new("node")
            .env("NODE_PATH", &self.node_path)
            .arg(self.dir.join("sigstore_verify.js"))
            .args(args)
            .output()
            .expect("run node")
    }

    /// Both peers' verdicts on `bundle` (with the manifest file and blob dir when given).
    pub fn verdicts(&self, pubfile: &Path, bundle: &Path, rest: &[&Path]) -> [(bool, String); 2] {
        let mut args = vec![
            pubfile.to_str().unwrap().to_string(),
            bundle.to_str().unwrap().to_string(),
        ];
        args.extend(rest.iter().map(|p| p.to_str().unwrap().to_string()));
        let a: Vec<&str> = args.iter().map(String::as_str).collect();
        let py = self.python(&[&["verify"], a.as_slice()].concat());
        let js = self.node(&a);
        [
            (
                py.status.success(),
                format!("{}{}", stdout(&py), stderr(&py)),
            ),
            (
                js.status.success(),
                format!("{}{}", stdout(&js), stderr(&js)),
            ),
        ]
    }

    pub fn accept(&self, what: &str, pubfile: &Path, bundle: &Path, rest: &[&Path]) {
        for (ok, text) in self.verdicts(pubfile, bundle, rest) {
            assert!(ok, "{what}: a peer rejects what should verify: {text}");
        }
    }

    pub fn reject(&self, what: &str, pubfile: &Path, bundle: &Path, rest: &[&Path]) {
        for (ok, text) in self.verdicts(pubfile, bundle, rest) {
            assert!(!ok, "{what}: a peer accepts a tampered signature: {text}");
        }
    }
}
