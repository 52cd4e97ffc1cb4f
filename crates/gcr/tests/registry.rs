//! Registry interoperability: gcr against Debian's `docker-registry`, skopeo and umoci, and
//! `gcr registry serve` against skopeo and gcr itself, including htpasswd users. Every
//! server is started by the test on a free loopback port and killed by a Drop guard.
//! Tools that are missing skip the test, except with CI=true, where that is a failure.

mod common;

use common::servers::{need_tools, Server, SECRET_HASH};
use common::{stderr, stdout, Env, IMAGE};

use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

/// docker-registry without authentication.
fn docker_registry() -> Server {
    Server::docker_registry("")
}

/// docker-registry, optionally with htpasswd (Basic) authentication.
fn docker_registry_auth(htpasswd: Option<&str>) -> Server {
    let dir = tempfile::tempdir().unwrap();
    let auth = match htpasswd {
        Some(h) => {
            let p = dir.path().join("htpasswd");
            std::fs::write(&p, h).unwrap();
            format!(
                "auth:\n  htpasswd:\n    realm: test\n    path: {}\n",
                p.display()
            )
        }
        None => String::new(),
    };
    Server::docker_registry_in(dir, &auth)
}

/// `gcr registry serve` on its own store, optionally with an htpasswd file.
fn gcr_registry(htpasswd: Option<&str>) -> Server {
    let dir = tempfile::tempdir().unwrap();
    let Some(h) = htpasswd else {
        return Server::gcr_in(dir, &[], &[]);
    };
    let p = dir.path().join("htpasswd");
    std::fs::write(&p, h).unwrap();
    let p = p.to_string_lossy().into_owned();
    Server::gcr_in(dir, &["--htpasswd", &p], &[])
}

/// A client side: a gcr store (empty, or with test/busybox:1) and a private DOCKER_CONFIG.
struct Client {
    env: Option<Env>,
    root: tempfile::TempDir,
    docker_config: tempfile::TempDir,
}

impl Client {
    fn with_image() -> Client {
        Client {
            env: Some(Env::new()),
            root: tempfile::tempdir().unwrap(),
            docker_config: tempfile::tempdir().unwrap(),
        }
    }

    fn empty() -> Client {
        Client {
            env: None,
            root: tempfile::tempdir().unwrap(),
            docker_config: tempfile::tempdir().unwrap(),
        }
    }

    fn root(&self) -> &Path {
        self.env
            .as_ref()
            .map(|e| e.root.path())
            .unwrap_or(self.root.path())
    }

    fn cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new(common::gcr_bin());
        c.env("GCR_ROOT", self.root())
            .env("GCR_RUN_DIR", self.root().join("run"))
            .env("DOCKER_CONFIG", self.docker_config.path())
            .args(args)
            .stdin(Stdio::null());
        c
    }

    fn gcr(&self, args: &[&str]) -> Output {
        self.cmd(args).output().expect("run gcr")
    }

    fn ok(&self, args: &[&str]) -> String {
        let o = self.gcr(args);
        assert!(
            o.status.success(),
            "gcr {args:?} failed: {}{}",
            stdout(&o),
            stderr(&o)
        );
        stdout(&o)
    }

    fn fails(&self, args: &[&str], needle: &str) -> String {
        let o = self.gcr(args);
        assert_eq!(
            o.status.code(),
            Some(1),
            "gcr {args:?} should fail: {}{}",
            stdout(&o),
            stderr(&o)
        );
        let e = stderr(&o);
        assert!(
            e.contains(needle),
            "gcr {args:?}: expected '{needle}' in: {e}"
        );
        e
    }

    fn login(&self, host: &str, user: &str, password: &str) -> Output {
        use std::io::Write;
        let mut c = self.cmd(&["login", "-u", user, "--password-stdin", host]);
        c.stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = c.spawn().unwrap();
        child
            .stdin
            .take()
            .unwrap()
            .write_all(format!("{password}\n").as_bytes())
            .unwrap();
        child.wait_with_output().unwrap()
    }

    /// The manifest digest of a local image.
    fn manifest_digest(&self, image: &str) -> String {
        let v: serde_json::Value = serde_json::from_str(&self.ok(&["inspect", image])).unwrap();
        let v = if v.is_array() { v[0].clone() } else { v };
        let digests = v["RepoDigests"].as_array().cloned().unwrap_or_default();
        let d = digests
            .iter()
            .filter_map(|d| d.as_str())
            .find_map(|d| d.split_once('@').map(|(_, d)| d.to_string()));
        d.unwrap_or_else(|| panic!("no RepoDigests in inspect of {image}: {v}"))
    }

    fn blob_count(&self) -> usize {
        std::fs::read_dir(self.root().join("blobs/sha256"))
            .map(|d| d.count())
            .unwrap_or(0)
    }
}

fn skopeo(args: &[&str]) -> String {
    let o = Command::new("skopeo")
        .args(args)
        .output()
        .expect("run skopeo");
    assert!(o.status.success(), "skopeo {args:?} failed: {}", stderr(&o));
    stdout(&o)
}

fn skopeo_digest(image: &str, extra: &[&str]) -> String {
    let mut args = vec!["inspect", "--tls-verify=false"];
    args.extend_from_slice(extra);
    args.push(image);
    let v: serde_json::Value = serde_json::from_str(&skopeo(&args)).unwrap();
    v["Digest"].as_str().unwrap().to_string()
}

#[test]
fn push_to_docker_registry_inspect_copy_and_pull_back() {
    if !need_tools("push_to_docker_registry", &["docker-registry", "skopeo"]) {
        return;
    }
    let reg = docker_registry();
    let host = reg.host();
    let a = Client::with_image();
    let local = a.manifest_digest(IMAGE);
    let dest = format!("{host}/test/busybox:1");
    let pushed = a.ok(&["push", "-q", IMAGE, &dest]);
    assert_eq!(pushed.trim(), local);
    assert_eq!(
        skopeo_digest(&format!("docker://{dest}"), &[]),
        local,
        "digest preserved by push"
    );
    // A second push finds every blob present.
    let o = a.gcr(&["push", IMAGE, &dest]);
    assert!(stderr(&o).contains("already exists"), "{}", stderr(&o));
    // skopeo copies it to another repository; an empty store pulls it back.
    skopeo(&[
        "copy",
        "--src-tls-verify=false",
        "--dest-tls-verify=false",
        &format!("docker://{dest}"),
        &format!("docker://{host}/copied/bb:2"),
    ]);
    let b = Client::empty();
    let out = b.ok(&["pull", &format!("{host}/copied/bb:2")]);
    assert!(out.contains("Downloaded newer image"), "{out}");
    assert_eq!(
        b.manifest_digest(&format!("{host}/copied/bb:2")),
        local,
        "digest preserved by pull"
    );
    // Re-pull: up to date, no blob transfer.
    let t = Instant::now();
    let out = b.ok(&["pull", &format!("{host}/copied/bb:2")]);
    assert!(out.contains("up to date"), "{out}");
    assert!(t.elapsed() < Duration::from_secs(5));
    // Pull by digest works too and stores nothing new.
    let n = b.blob_count();
    b.ok(&["pull", &format!("{host}/copied/bb@{local}")]);
    assert_eq!(b.blob_count(), n);
    // Pushing from the pulled store to a third repository mounts the blobs.
    let o = b.gcr(&[
        "push",
        &format!("{host}/copied/bb:2"),
        &format!("{host}/third/bb:3"),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("Mounted from copied/bb"),
        "{}",
        stderr(&o)
    );
    assert_eq!(
        skopeo_digest(&format!("docker://{host}/third/bb:3"), &[]),
        local
    );
}

#[test]
fn skopeo_into_gcr_registry_then_gcr_pull() {
    if !need_tools("skopeo_into_gcr_registry", &["docker-registry", "skopeo"]) {
        return;
    }
    let src = docker_registry();
    let a = Client::with_image();
    let local = a.manifest_digest(IMAGE);
    a.ok(&["push", IMAGE, &format!("{}/src/bb:1", src.host())]);
    let reg = gcr_registry(None);
    let host = reg.host();
    skopeo(&[
        "copy",
        "--src-tls-verify=false",
        "--dest-tls-verify=false",
        &format!("docker://{}/src/bb:1", src.host()),
        &format!("docker://{host}/lib/bb:7"),
    ]);
    assert_eq!(
        skopeo_digest(&format!("docker://{host}/lib/bb:7"), &[]),
        local
    );
    let b = Client::empty();
    b.ok(&["pull", &format!("{host}/lib/bb:7")]);
    assert_eq!(b.manifest_digest(&format!("{host}/lib/bb:7")), local);
    // Tag list and catalog.
    let tags: serde_json::Value =
        serde_json::from_str(&http_get(reg.port, "/v2/lib/bb/tags/list")).unwrap();
    assert_eq!(tags["tags"], serde_json::json!(["7"]));
    let cat: serde_json::Value = serde_json::from_str(&http_get(reg.port, "/v2/_catalog")).unwrap();
    assert_eq!(cat["repositories"], serde_json::json!(["lib/bb"]));
    // Delete by tag, then the tag is gone.
    skopeo(&[
        "delete",
        "--tls-verify=false",
        &format!("docker://{host}/lib/bb:7"),
    ]);
    b.fails(&["pull", &format!("{host}/lib/bb:7")], "not found");
}

#[test]
fn gcr_push_to_gcr_registry_then_skopeo_out_and_umoci_unpack() {
    if !need_tools("gcr_push_to_gcr_registry", &["skopeo", "umoci"]) {
        return;
    }
    let reg = gcr_registry(None);
    let host = reg.host();
    let a = Client::with_image();
    let local = a.manifest_digest(IMAGE);
    a.ok(&["push", IMAGE, &format!("{host}/app/bb:1")]);
    let out = tempfile::tempdir().unwrap();
    let layout = out.path().join("oci");
    skopeo(&[
        "copy",
        "--src-tls-verify=false",
        &format!("docker://{host}/app/bb:1"),
        &format!("oci:{}:bb", layout.display()),
    ]);
    let bundle = out.path().join("bundle");
    let o = Command::new("umoci")
        .args(["unpack", "--rootless", "--image"])
        .arg(format!("{}:bb", layout.display()))
        .arg(&bundle)
        .output()
        .unwrap();
    assert!(o.status.success(), "umoci unpack: {}", stderr(&o));
    assert!(bundle.join("rootfs/bin/busybox").exists() || bundle.join("rootfs/bin/sh").exists());
    assert_eq!(
        skopeo_digest(&format!("docker://{host}/app/bb:1"), &[]),
        local
    );
}

#[test]
fn htpasswd_users_login_logout_and_permissions() {
    if !need_tools("htpasswd_users", &["skopeo"]) {
        return;
    }
    let reg = gcr_registry(Some(&format!(
        "alice:{SECRET_HASH}\nbob:{SECRET_HASH}:pub/*=r,bob/*=rw\n"
    )));
    let host = reg.host();
    let a = Client::with_image();
    // Anonymous: refused, with the fix in the message.
    a.fails(&["push", IMAGE, &format!("{host}/pub/bb:1")], "gcr login");
    // Wrong password: refused, nothing saved.
    let o = a.login(&host, "alice", "wrong");
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(
        !a.docker_config.path().join("config.json").exists(),
        "nothing saved on failure"
    );
    // Right password: saved 0600 in Docker's format, other keys and hosts kept.
    std::fs::write(
        a.docker_config.path().join("config.json"),
        r#"{"auths":{"other.example:5000":{"auth":"eDp5"}},"psFormat":"table"}"#,
    )
    .unwrap();
    let o = a.login(&host, "alice", "secret");
    assert!(o.status.success(), "{}", stderr(&o));
    let cfg = a.docker_config.path().join("config.json");
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        std::fs::metadata(&cfg).unwrap().permissions().mode() & 0o777,
        0o600
    );
    let v: serde_json::Value = serde_json::from_slice(&std::fs::read(&cfg).unwrap()).unwrap();
    assert!(v["auths"][&host]["auth"].is_string(), "{v}");
    assert_eq!(v["psFormat"], serde_json::json!("table"), "{v}");
    assert_eq!(
        v["auths"]["other.example:5000"]["auth"],
        serde_json::json!("eDp5"),
        "{v}"
    );
    a.ok(&["push", IMAGE, &format!("{host}/pub/bb:1")]);
    // skopeo reads the same credentials file format.
    let auth = cfg.display().to_string();
    skopeo_digest(&format!("docker://{host}/pub/bb:1"), &["--authfile", &auth]);
    // bob may read pub/* and write bob/* only.
    let b = Client::empty();
    assert!(b.login(&host, "bob", "secret").status.success());
    b.ok(&["pull", &format!("{host}/pub/bb:1")]);
    b.ok(&[
        "push",
        &format!("{host}/pub/bb:1"),
        &format!("{host}/bob/bb:1"),
    ]);
    b.fails(
        &[
            "push",
            &format!("{host}/pub/bb:1"),
            &format!("{host}/pub/other:1"),
        ],
        "403",
    );
    // Existing auths written by other tools are honoured: alice's entry copied by hand.
    let c = Client::empty();
    std::fs::write(
        c.docker_config.path().join("config.json"),
        std::fs::read(&cfg).unwrap(),
    )
    .unwrap();
    c.ok(&["pull", &format!("{host}/pub/bb:1")]);
    // Logout removes the entry.
    a.ok(&["logout", &host]);
    let v: serde_json::Value = serde_json::from_slice(&std::fs::read(&cfg).unwrap()).unwrap();
    assert!(v["auths"].get(&host).is_none(), "{v}");
    let d = Client::empty();
    d.fails(&["pull", &format!("{host}/pub/bb:1")], "authentication");
    // A search reads the catalog as its user: bob sees what he may read, anonymous nothing.
    let names = b.ok(&["search", "--format", "{{.Name}}", &format!("{host}/")]);
    assert_eq!(
        names.lines().collect::<Vec<_>>(),
        [format!("{host}/bob/bb"), format!("{host}/pub/bb")]
    );
    d.fails(&["search", &format!("{host}/bb")], "gcr login");
}

#[test]
fn search_and_list_tags_of_docker_registry() {
    if !need_tools("search_docker_registry", &["docker-registry"]) {
        return;
    }
    let reg = docker_registry();
    let host = reg.host();
    let a = Client::with_image();
    for dest in [
        "test/busybox:1",
        "test/busybox:2",
        "other/app:1",
        "tools/busy:x",
    ] {
        a.ok(&["push", "-q", IMAGE, &format!("{host}/{dest}")]);
    }
    // Docker's table; the names are pullable as they are.
    let out = a.ok(&["search", &format!("{host}/busy")]);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 3, "{out}");
    for (col, title) in ["NAME", "DESCRIPTION", "STARS", "OFFICIAL"]
        .iter()
        .enumerate()
    {
        assert_eq!(lines[0].split_whitespace().nth(col), Some(*title), "{out}");
    }
    assert!(
        lines[1].starts_with(&format!("{host}/test/busybox ")),
        "{out}"
    );
    assert!(
        lines[2].starts_with(&format!("{host}/tools/busy ")),
        "{out}"
    );
    assert!(!out.contains("other/app"), "{out}");
    let b = Client::empty();
    b.ok(&[
        "pull",
        &format!("{}:2", lines[1].split_whitespace().next().unwrap()),
    ]);
    // --limit, --filter, json.
    let one = a.ok(&[
        "search",
        "--limit",
        "1",
        "--format",
        "{{.Name}}",
        &format!("{host}/"),
    ]);
    assert_eq!(one.trim(), format!("{host}/other/app"));
    let starred = a.ok(&[
        "search",
        "-f",
        "stars=1",
        "--format",
        "{{.Name}}",
        &format!("{host}/"),
    ]);
    assert_eq!(starred, "");
    let json = a.ok(&["search", "--format", "json", &format!("{host}/app")]);
    let v: serde_json::Value = serde_json::from_str(json.trim()).unwrap();
    assert_eq!(
        v["Name"],
        serde_json::json!(format!("{host}/other/app")),
        "{v}"
    );
    // Tags, Podman's --list-tags.
    let tags = a.ok(&[
        "search",
        "--list-tags",
        "--format",
        "{{.Tag}}",
        &format!("{host}/test/busybox"),
    ]);
    assert_eq!(tags, "1\n2\n");
    // Bad input: one sentence, Docker's exit codes, nothing asked of the registry.
    let o = a.gcr(&["search", "--limit", "0", &format!("{host}/")]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("outside the range of [1, 100]"),
        "{}",
        stderr(&o)
    );
    let o = a.gcr(&["search", "-f", "colour=red", &format!("{host}/")]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    a.fails(
        &["search", "--list-tags", &format!("{host}/no/such")],
        "is not in registry",
    );
}

#[test]
fn login_and_push_to_docker_registry_with_htpasswd() {
    if !need_tools("docker_registry_htpasswd", &["docker-registry", "skopeo"]) {
        return;
    }
    let reg = docker_registry_auth(Some(&format!("alice:{SECRET_HASH}\n")));
    let host = reg.host();
    let a = Client::with_image();
    let local = a.manifest_digest(IMAGE);
    let dest = format!("{host}/private/bb:1");
    a.fails(&["push", IMAGE, &dest], "gcr login");
    let o = a.login(&host, "alice", "nope");
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(stderr(&o).contains("authentication"), "{}", stderr(&o));
    let o = a.login(&host, "alice", "secret");
    assert!(o.status.success(), "{}", stderr(&o));
    a.ok(&["push", IMAGE, &dest]);
    assert_eq!(
        skopeo_digest(&format!("docker://{dest}"), &["--creds", "alice:secret"]),
        local
    );
    let b = Client::empty();
    b.fails(&["pull", &dest], "gcr login");
    assert!(b.login(&host, "alice", "secret").status.success());
    b.ok(&["pull", &dest]);
    assert_eq!(b.manifest_digest(&dest), local);
}

#[test]
fn chunked_upload_and_referrers_on_gcr_registry() {
    let reg = gcr_registry(None);
    let port = reg.port;
    // Chunked upload: POST, two PATCHes, PUT with the digest.
    let data = b"hello chunked world".to_vec();
    let digest = sha256(&data);
    let (st, h, _) = http(port, "POST", "/v2/c/r/blobs/uploads/", &[], b"");
    assert_eq!(st, 202);
    let loc = header(&h, "location").unwrap();
    let (st, h, _) = http(port, "PATCH", &loc, &[("Content-Range", "0-4")], &data[..5]);
    assert_eq!(st, 202);
    assert_eq!(header(&h, "range").as_deref(), Some("0-4"));
    let loc = header(&h, "location").unwrap();
    let (st, _, _) = http(port, "PATCH", &loc, &[("Content-Range", "0-4")], &data[5..]);
    assert_eq!(st, 416, "a chunk out of order is refused");
    let (st, h, _) = http(port, "PATCH", &loc, &[], &data[5..]);
    assert_eq!(st, 202);
    let loc = header(&h, "location").unwrap();
    let (st, _, _) = http(port, "PUT", &format!("{loc}?digest={digest}"), &[], b"");
    assert_eq!(st, 201);
    let (st, _, body) = http(port, "GET", &format!("/v2/c/r/blobs/{digest}"), &[], b"");
    assert_eq!((st, body), (200, data.clone()));
    let (st, h, body) = http(
        port,
        "GET",
        &format!("/v2/c/r/blobs/{digest}"),
        &[("Range", "bytes=6-")],
        b"",
    );
    assert_eq!((st, body), (206, data[6..].to_vec()));
    assert_eq!(
        header(&h, "content-range").as_deref(),
        Some("bytes 6-18/19")
    );
    // A wrong digest is refused and nothing is stored.
    let (st, _, _) = http(
        port,
        "POST",
        &format!("/v2/c/r/blobs/uploads/?digest={}", sha256(b"other")),
        &[],
        b"not other",
    );
    assert_eq!(st, 400);
    let (st, _, _) = http(
        port,
        "HEAD",
        &format!("/v2/c/r/blobs/{}", sha256(b"other")),
        &[],
        b"",
    );
    assert_eq!(st, 404);
    // Manifests: invalid JSON, unknown blobs and oversize bodies are refused.
    let ct = [("Content-Type", "application/vnd.oci.image.manifest.v1+json")];
    assert_eq!(
        http(port, "PUT", "/v2/c/r/manifests/x", &ct, b"{not json").0,
        400
    );
    let big = vec![b' '; 4 * 1024 * 1024 + 1];
    assert_eq!(http(port, "PUT", "/v2/c/r/manifests/x", &ct, &big).0, 413);
    let cfg = br#"{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}"#;
    let cd = sha256(cfg);
    let m = format!(
        r#"{{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"{cd}","size":{}}},"layers":[]}}"#,
        cfg.len()
    );
    assert_eq!(
        http(port, "PUT", "/v2/c/r/manifests/v1", &ct, m.as_bytes()).0,
        400,
        "config blob not uploaded yet"
    );
    assert_eq!(
        http(
            port,
            "POST",
            &format!("/v2/c/r/blobs/uploads/?digest={cd}"),
            &[],
            cfg
        )
        .0,
        201
    );
    let (st, h, _) = http(port, "PUT", "/v2/c/r/manifests/v1", &ct, m.as_bytes());
    assert_eq!(st, 201);
    let md = header(&h, "docker-content-digest").unwrap();
    assert_eq!(md, sha256(m.as_bytes()));
    // A referrer (artifact with subject) shows up in the referrers API.
    let sig = format!(
        r#"{{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","artifactType":"application/vnd.example.sig","config":{{"mediaType":"application/vnd.oci.empty.v1+json","digest":"{cd}","size":{}}},"layers":[],"subject":{{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"{md}","size":{}}},"annotations":{{"k":"v"}}}}"#,
        cfg.len(),
        m.len()
    );
    let sd = sha256(sig.as_bytes());
    let (st, h, _) = http(
        port,
        "PUT",
        &format!("/v2/c/r/manifests/{sd}"),
        &ct,
        sig.as_bytes(),
    );
    assert_eq!(st, 201);
    assert_eq!(header(&h, "oci-subject").as_deref(), Some(md.as_str()));
    let (st, _, body) = http(port, "GET", &format!("/v2/c/r/referrers/{md}"), &[], b"");
    assert_eq!(st, 200);
    let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(v["manifests"][0]["digest"], serde_json::json!(sd));
    assert_eq!(
        v["manifests"][0]["artifactType"],
        serde_json::json!("application/vnd.example.sig")
    );
    assert_eq!(
        v["manifests"][0]["annotations"]["k"],
        serde_json::json!("v")
    );
    let (_, _, body) = http(
        port,
        "GET",
        &format!("/v2/c/r/referrers/{md}?artifactType=x/y"),
        &[],
        b"",
    );
    let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(v["manifests"], serde_json::json!([]));
    // Delete by digest.
    assert_eq!(
        http(port, "DELETE", &format!("/v2/c/r/manifests/{md}"), &[], b"").0,
        202
    );
    assert_eq!(http(port, "GET", "/v2/c/r/manifests/v1", &[], b"").0, 404);
}

fn sha256(data: &[u8]) -> String {
    let o = {
        use std::io::Write;
        let mut c = Command::new("sha256sum")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        c.stdin.take().unwrap().write_all(data).unwrap();
        c.wait_with_output().unwrap()
    };
    format!("sha256:{}", stdout(&o).split_whitespace().next().unwrap())
}

fn header(h: &[(String, String)], name: &str) -> Option<String> {
    h.iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.clone())
}

fn http_get(port: u16, path: &str) -> String {
    let (st, _, body) = http(port, "GET", path, &[], b"");
    assert_eq!(st, 200, "GET {path}");
    String::from_utf8(body).unwrap()
}

/// A minimal HTTP/1.1 request over a fresh connection (Connection: close).
fn http(
    port: u16,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> (u16, Vec<(String, String)>, Vec<u8>) {
    use std::io::{Read, Write};
    let path = path
        .strip_prefix(&format!("http://127.0.0.1:{port}"))
        .unwrap_or(path);
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut req = format!("{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\nContent-Length: {}\r\n", body.len());
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    s.write_all(req.as_bytes()).unwrap();
    s.write_all(body).unwrap();
    let mut raw = Vec::new();
    let _ = s.read_to_end(&mut raw);
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("response headers");
    let head = String::from_utf8_lossy(&raw[..split]).into_owned();
    let mut lines = head.lines();
    let status: u16 = lines
        .next()
        .unwrap()
        .split_whitespace()
        .nth(1)
        .unwrap()
        .parse()
        .unwrap();
    let hs: Vec<(String, String)> = lines
        .filter_map(|l| {
            l.split_once(':')
                .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        })
        .collect();
    let mut body = raw[split + 4..].to_vec();
    if header(&hs, "transfer-encoding").is_some_and(|v| v.contains("chunked")) {
        body = dechunk(&body);
    }
    (status, hs, body)
}

fn dechunk(mut b: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    while let Some(i) = b.windows(2).position(|w| w == b"\r\n") {
        let n = usize::from_str_radix(String::from_utf8_lossy(&b[..i]).trim(), 16).unwrap_or(0);
        if n == 0 || b.len() < i + 4 + n {
            break;
        }
        out.extend_from_slice(&b[i + 2..i + 2 + n]);
        b = &b[i + 2 + n + 2..];
    }
    out
}
