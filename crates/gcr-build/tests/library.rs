//! gcr-build against a real store with a fake command runner (no root needed): layers,
//! determinism across contexts, the step cache, the file-metadata index, the transcript
//! and pinned dependencies.

use std::path::Path;
use std::sync::Mutex;

use gcr_build::{build, BuildError, BuildOptions, Event, RunRequest, Runner};
use gcr_store::Store;

/// Writes `/made-by-run` into the upper dir instead of running anything.
struct FakeRunner {
    calls: Mutex<Vec<Vec<String>>>,
    code: i32,
}

impl Runner for FakeRunner {
    fn run(&self, req: &RunRequest, out: &mut dyn FnMut(&str)) -> Result<i32, String> {
        self.calls.lock().unwrap().push(req.argv.clone());
        assert!(!req.lowers.is_empty());
        assert!(req.env.iter().any(|e| e == "MODE=test"), "{:?}", req.env);
        std::fs::write(req.upper.join("made-by-run"), req.argv.join(" ")).unwrap();
        out("line one");
        out("line two");
        Ok(self.code)
    }
}

fn runner(code: i32) -> FakeRunner {
    FakeRunner {
        calls: Mutex::new(Vec::new()),
        code,
    }
}

const SPEC: &str = "format: gcr-v1.0
name: lib/app
version: \"2\"
base: scratch
build:
  copy:
    - src: ./files/
      dest: /srv/
      owner: 10:20
  dependencies:
    - name: blob
      version: \"1\"
      source: file://dep.bin
      hash: sha256:HASH
  env: { MODE: test }
  commands:
    - [/bin/true]
runtime:
  entrypoint: [/srv/run]
  ports: [80/tcp]
  stop_signal: SIGINT
metadata:
  author: me
";

fn context(dir: &Path) -> std::path::PathBuf {
    std::fs::create_dir_all(dir.join("files/a")).unwrap();
    for i in 0..50 {
        std::fs::write(dir.join(format!("files/a/{i}")), format!("{i}")).unwrap();
    }
    std::fs::write(dir.join("dep.bin"), b"dependency bytes").unwrap();
    let hash = {
        use sha2::Digest;
        hex::encode(sha2::Sha256::digest(b"dependency bytes"))
    };
    let spec = dir.join("app.gcr");
    std::fs::write(&spec, SPEC.replace("HASH", &hash)).unwrap();
    spec
}

fn opts(spec: &Path) -> BuildOptions {
    BuildOptions {
        spec_file: spec.to_path_buf(),
        tag: true,
        ..Default::default()
    }
}

#[test]
fn deterministic_cached_and_transcribed() {
    let (s1, s2) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let (c1, c2) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let store1 = Store::open(s1.path()).unwrap();
    let store2 = Store::open(s2.path()).unwrap();
    let spec1 = context(c1.path());
    let r = runner(0);
    let mut events = Vec::new();
    let b1 = build(&store1, &r, &opts(&spec1), &mut |e: &Event| {
        events.push(e.clone())
    })
    .unwrap();
    assert_eq!(b1.steps, 3);
    assert_eq!(b1.cached, 0);
    assert_eq!(b1.files_read, 50);
    assert_eq!(r.calls.lock().unwrap().len(), 1);
    assert!(events
        .iter()
        .any(|e| matches!(e, Event::Output { line, .. } if line == "line two")));

    std::thread::sleep(std::time::Duration::from_millis(20));
    let spec2 = context(&c2.path().join("elsewhere"));
    let b2 = build(&store2, &r, &opts(&spec2), &mut |_| {}).unwrap();
    assert_eq!(b1.manifest_digest, b2.manifest_digest);

    // Warm: every step cached, no file re-read, the runner not called again.
    let b3 = build(&store1, &r, &opts(&spec1), &mut |_| {}).unwrap();
    assert_eq!((b3.cached, b3.files_read), (3, 0));
    assert_eq!(b3.manifest_digest, b1.manifest_digest);
    assert_eq!(r.calls.lock().unwrap().len(), 2);

    // The transcript is stored with the image.
    let t = gcr_build::cache::transcript(&store1, &b3.id)
        .unwrap()
        .unwrap();
    assert_eq!(t["base"]["name"], "scratch");
    assert_eq!(t["steps"].as_array().unwrap().len(), 3);
    assert!(t["steps"]
        .as_array()
        .unwrap()
        .iter()
        .all(|s| s["cache"] == "hit"));
    assert_eq!(t["inputs"][0]["files"], 50);
    assert!(t["inputs"][1]["digest"]
        .as_str()
        .unwrap()
        .starts_with("sha256:"));
    assert_eq!(t["gcr_version"], env!("CARGO_PKG_VERSION"));

    // Config: runtime fields, labels, owner in the layer.
    let cfg: serde_json::Value =
        serde_json::from_slice(&store1.image_config(&b1.id).unwrap()).unwrap();
    assert_eq!(cfg["config"]["Entrypoint"][0], "/srv/run");
    assert_eq!(cfg["config"]["StopSignal"], "SIGINT");
    assert!(cfg["config"]["ExposedPorts"]["80/tcp"].is_object());
    assert_eq!(cfg["config"]["Env"][0], "MODE=test");
    assert_eq!(cfg["author"], "me");
    assert_eq!(cfg["created"], "1970-01-01T00:00:00Z");
    assert_eq!(cfg["rootfs"]["diff_ids"].as_array().unwrap().len(), 3);

    // A changed file is re-read alone and changes the digest.
    std::fs::write(c1.path().join("files/a/7"), "seven").unwrap();
    let b4 = build(&store1, &r, &opts(&spec1), &mut |_| {}).unwrap();
    assert_eq!(b4.files_read, 1);
    assert_ne!(b4.manifest_digest, b1.manifest_digest);

    // --source-date-epoch changes `created` and every mtime.
    let mut o = opts(&spec1);
    o.source_date_epoch = Some(1_700_000_000);
    let b5 = build(&store1, &r, &o, &mut |_| {}).unwrap();
    let cfg5: serde_json::Value =
        serde_json::from_slice(&store1.image_config(&b5.id).unwrap()).unwrap();
    assert_eq!(cfg5["created"], "2023-11-14T22:13:20Z");
}

#[test]
fn failing_command_and_bad_dependency_tag_nothing() {
    let s = tempfile::tempdir().unwrap();
    let c = tempfile::tempdir().unwrap();
    let store = Store::open(s.path()).unwrap();
    let spec = context(c.path());
    let err = build(&store, &runner(7), &opts(&spec), &mut |_| {}).unwrap_err();
    match &err {
        BuildError::CommandFailed { code, tail, .. } => {
            assert_eq!(*code, 7);
            assert!(tail.contains("line one\nline two"), "{tail}");
        }
        other => panic!("unexpected {other}"),
    }
    assert!(store.resolve_image("lib/app:2").is_err());
    // A dependency is content-addressed: a cached layer for its pinned hash stays valid (it
    // was verified when made), so tampering shows when the dependency is fetched again.
    std::fs::write(c.path().join("dep.bin"), b"tampered").unwrap();
    let mut o = opts(&spec);
    o.no_cache = true;
    let err = build(&store, &runner(0), &o, &mut |_| {}).unwrap_err();
    let msg = err.to_string();
    assert!(
        msg.contains("dependency 'blob' hash mismatch: expected sha256:"),
        "{msg}"
    );
    assert!(store.resolve_image("lib/app:2").is_err());
}

/// Serves `body` to every request on a loopback port (for http:// dependencies).
fn serve(body: Vec<u8>) -> u16 {
    use std::io::{BufRead, BufReader, Write};
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for s in l.incoming().flatten() {
            let mut r = BufReader::new(s.try_clone().unwrap());
            loop {
                let mut line = String::new();
                if r.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                    break;
                }
            }
            let mut s = s;
            let _ = write!(
                s,
                "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                body.len()
            );
            let _ = s.write_all(&body);
        }
    });
    port
}

#[test]
fn http_dependency_is_fetched_verified_and_extracted() {
    // A tar.gz with one file, made with the tar crate.
    let mut tgz = Vec::new();
    {
        let gz = flate2::write::GzEncoder::new(&mut tgz, flate2::Compression::default());
        let mut b = tar::Builder::new(gz);
        let mut h = tar::Header::new_gnu();
        h.set_size(5);
        h.set_mode(0o755);
        h.set_cksum();
        b.append_data(&mut h, "pkg/bin/tool", &b"hello"[..])
            .unwrap();
        b.into_inner().unwrap().finish().unwrap();
    }
    let hash = {
        use sha2::Digest;
        hex::encode(sha2::Sha256::digest(&tgz))
    };
    let port = serve(tgz);
    let s = tempfile::tempdir().unwrap();
    let c = tempfile::tempdir().unwrap();
    let store = Store::open(s.path()).unwrap();
    let spec = c.path().join("dep.gcr");
    std::fs::write(
        &spec,
        format!(
            "format: gcr-v1.0\nname: lib/dep\nversion: \"1\"\nbase: scratch\nbuild:\n  dependencies:\n    - name: tool\n      version: \"1.0\"\n      source: http://127.0.0.1:{port}/tool-1.0.tgz\n      hash: sha256:{hash}\n      extract: true\n      dest: /opt/tool/\n"
        ),
    )
    .unwrap();
    let b = build(&store, &runner(0), &opts(&spec), &mut |_| {}).unwrap();
    let layers = store.image_layers(&b.id).unwrap();
    let f = store.open_blob(&layers[0].digest).unwrap();
    let mut ar = tar::Archive::new(flate2::read::GzDecoder::new(f));
    let names: Vec<(String, u32)> = ar
        .entries()
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            (
                e.path().unwrap().to_string_lossy().into_owned(),
                e.header().mode().unwrap(),
            )
        })
        .collect();
    assert!(
        names.contains(&("opt/tool/pkg/bin/tool".to_string(), 0o755)),
        "{names:?}"
    );
    assert!(names.iter().any(|(n, _)| n == "opt/"), "{names:?}");
}
