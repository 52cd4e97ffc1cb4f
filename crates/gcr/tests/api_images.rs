//! Images through `gcr system service` (issue 20): docker save / load / history / push /
//! login with the stock docker CLI and docker-py 7. Archives round-trip between two stores
//! with the same image id, history shows each layer's row, a push to `gcr registry serve`
//! pulls back by `gcr pull` with the same manifest digest, login is checked against a
//! registry with htpasswd users (a wrong password is a 401), a push uses the client's
//! credentials (X-Registry-Auth) rather than any the service saved (a pull too), and a client that
//! leaves in the middle of a load leaves no spool behind. Services and registries are
//! killed and reaped by guards, even when a test fails.

mod common;

use std::io::{Read, Write};
use std::process::Command;

use common::servers::{need_tools, Server};
use common::service::{docker_py, Service};
use common::{eventually, need_root, stderr, stdout, Env, IMAGE};

/// What only these tests ask of the service.
impl Service {
    fn image_id(&self, image: &str) -> String {
        self.ok(&["image", "inspect", "--format", "{{.Id}}", image])
            .trim()
            .to_string()
    }
}

fn ready(test: &str) -> bool {
    need_root(test) && need_tools(test, &["docker", "tar"])
}

/// The manifest digest a store records for `image` (from its RepoDigests).
fn manifest_digest(env: &Env, image: &str) -> String {
    let v: serde_json::Value = serde_json::from_str(&env.ok(&["inspect", image])).unwrap();
    let v = if v.is_array() { v[0].clone() } else { v };
    v["RepoDigests"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|d| d.as_str())
        .find_map(|d| d.split_once('@').map(|(_, d)| d.to_string()))
        .unwrap_or_else(|| panic!("no RepoDigests in inspect of {image}: {v}"))
}

/// Entries of the store's temp dir (load spools live there while they run).
fn tmp_entries(env: &Env) -> Vec<String> {
    std::fs::read_dir(env.root.path().join("tmp"))
        .map(|d| {
            d.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default()
}

/// A two-layer image (busybox plus a committed /f), tagged `test/two:1`.
fn two_layer_image(env: &Env) {
    env.ok(&["run", "--name", "c1", IMAGE, "sh", "-c", "echo hi > /f"]);
    env.ok(&["commit", "-m", "add f", "c1", "test/two:1"]);
    env.ok(&["rm", "c1"]);
}

#[test]
fn docker_save_load_and_history() {
    if !ready("docker_save_load_and_history") {
        return;
    }
    let env = Env::new();
    two_layer_image(&env);
    let svc = Service::on_socket(&env);
    let id = svc.image_id("test/two:1");
    assert!(id.starts_with("sha256:") && id.len() == 71, "{id}");

    // history: one row per layer, newest first; the id and comment on the top row.
    let rows = svc.ok(&[
        "history",
        "--no-trunc",
        "--format",
        "{{.ID}}|{{.CreatedBy}}|{{.Comment}}",
        "test/two:1",
    ]);
    let rows: Vec<&str> = rows.lines().collect();
    assert_eq!(
        rows,
        vec![
            format!("{id}|gcr commit|add f").as_str(),
            "<missing>|gcr import|imported rootfs"
        ]
    );
    let table = svc.ok(&["history", "test/two:1"]);
    assert!(
        table.starts_with("IMAGE") && table.contains(&id[7..19]),
        "{table}"
    );
    svc.fails(&["history", "nosuch:1"], "No such image: nosuch:1");

    // save: a docker-archive naming the tag; a missing image is refused before any byte.
    let out = tempfile::tempdir().unwrap();
    let file = out.path().join("two.tar");
    let file_s = file.to_str().unwrap();
    svc.ok(&["save", "-o", file_s, "test/two:1"]);
    let o = Command::new("tar")
        .args(["-xOf", file_s, "manifest.json"])
        .output()
        .unwrap();
    let m: serde_json::Value = serde_json::from_slice(&o.stdout).expect("manifest.json");
    assert_eq!(m[0]["RepoTags"], serde_json::json!(["test/two:1"]), "{m}");
    assert_eq!(m[0]["Layers"].as_array().map(Vec::len), Some(2), "{m}");
    svc.fails(
        &["save", "-o", file_s, "nosuch:1"],
        "No such image: nosuch:1",
    );
    // By its id (full or short), as dockerd: the archive names no tag, and loads untagged.
    for by_id in [id.as_str(), &id[7..19]] {
        let byid = out.path().join("byid.tar");
        svc.ok(&["save", "-o", byid.to_str().unwrap(), by_id]);
        let o = Command::new("tar")
            .args(["-xOf", byid.to_str().unwrap(), "manifest.json"])
            .output()
            .unwrap();
        let m: serde_json::Value = serde_json::from_slice(&o.stdout).expect("manifest.json");
        assert_eq!(m[0]["RepoTags"], serde_json::Value::Null, "{m}");
        assert_eq!(m[0]["Layers"].as_array().map(Vec::len), Some(2), "{m}");
    }
    // Several names (images/get?names=…&names=…): one archive with both.
    let both = out.path().join("both.tar");
    svc.ok(&["save", "-o", both.to_str().unwrap(), "test/two:1", IMAGE]);
    let o = Command::new("tar")
        .args(["-xOf", both.to_str().unwrap(), "manifest.json"])
        .output()
        .unwrap();
    let m: serde_json::Value = serde_json::from_slice(&o.stdout).expect("manifest.json");
    let mut tags: Vec<String> = m
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|e| e["RepoTags"].as_array().cloned().unwrap_or_default())
        .filter_map(|t| t.as_str().map(str::to_string))
        .collect();
    tags.sort();
    assert_eq!(
        tags,
        vec![IMAGE.to_string(), "test/two:1".to_string()],
        "{m}"
    );

    // load into a fresh store: the same image id, and its layers are there to run.
    let env2 = Env::new();
    let svc2 = Service::on_socket(&env2);
    let loaded = svc2.ok(&["load", "-i", file_s]);
    assert!(loaded.contains("Loaded image: test/two:1"), "{loaded}");
    assert_eq!(svc2.image_id("test/two:1"), id);
    assert_eq!(svc2.ok(&["run", "--rm", "test/two:1", "cat", "/f"]), "hi\n");

    // A truncated archive is an error and leaves no spool and no image.
    let data = std::fs::read(&file).unwrap();
    let cut = out.path().join("cut.tar");
    std::fs::write(&cut, &data[..data.len() / 2]).unwrap();
    svc2.ok(&["rmi", "test/two:1"]);
    svc2.fails(&["load", "-i", cut.to_str().unwrap()], "truncated");
    svc2.fails(&["image", "inspect", "test/two:1"], "No such image");
    assert_eq!(tmp_entries(&env2), Vec::<String>::new());

    // A client that leaves in the middle of the upload leaves no spool behind.
    let mut s = std::os::unix::net::UnixStream::connect(svc2.socket()).unwrap();
    write!(
        s,
        "POST /v1.41/images/load?quiet=1 HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-tar\r\nContent-Length: {}\r\n\r\n",
        data.len()
    )
    .unwrap();
    s.write_all(&data[..data.len() / 2]).unwrap();
    assert!(
        eventually(10, || !tmp_entries(&env2).is_empty()),
        "the load did not start spooling"
    );
    drop(s);
    assert!(
        eventually(10, || tmp_entries(&env2).is_empty()),
        "the spool of an abandoned load stayed: {:?}",
        tmp_entries(&env2)
    );
    // So does one that leaves in the middle of a save; the service carries on.
    let mut s = std::os::unix::net::UnixStream::connect(svc.socket()).unwrap();
    write!(
        s,
        "GET /v1.41/images/test/two:1/get HTTP/1.1\r\nHost: x\r\n\r\n"
    )
    .unwrap();
    let mut first = [0u8; 4096];
    assert!(s.read(&mut first).unwrap() > 0);
    drop(s);
    assert_eq!(svc.image_id("test/two:1"), id);
    svc2.ok(&["load", "-i", file_s]);
    assert_eq!(svc2.image_id("test/two:1"), id);
}

#[test]
fn docker_push_then_gcr_pull() {
    if !ready("docker_push_then_gcr_pull") {
        return;
    }
    let reg = Server::gcr(&[], &[]);
    let env = Env::new();
    let svc = Service::on_socket(&env);
    let dest = format!("{}/api/bb:1", reg.host());
    svc.ok(&["tag", IMAGE, &dest]);
    let out = svc.ok(&["push", &dest]);
    assert!(
        out.contains(&format!(
            "The push refers to repository [{}/api/bb]",
            reg.host()
        )),
        "{out}"
    );
    let digest = out
        .lines()
        .find_map(|l| l.strip_prefix("1: digest: "))
        .and_then(|l| l.split_whitespace().next())
        .unwrap_or_else(|| panic!("no digest line in {out}"))
        .to_string();
    assert!(digest.starts_with("sha256:"), "{digest}");
    assert_eq!(digest, manifest_digest(&env, &dest));
    // Pulled back by gcr into another store: the same manifest.
    let other = Env::new();
    other.ok(&["pull", &dest]);
    assert_eq!(manifest_digest(&other, &dest), digest);
    // A tag the store does not have is refused.
    svc.fails(
        &["push", &format!("{}/api/bb:nope", reg.host())],
        "does not exist locally",
    );
}

#[test]
fn docker_login_and_push_with_credentials() {
    if !ready("docker_login_and_push_with_credentials") {
        return;
    }
    let reg = Server::gcr_with_alice();
    let host = reg.host();
    let env = Env::new();
    let svc = Service::on_socket(&env);
    let cfg = svc.config.path().join("config.json");

    let o = svc.login(&host, "alice", "wrong");
    assert!(!o.status.success(), "a wrong password logged in");
    assert!(
        stderr(&o).contains("failed with status: 401 Unauthorized"),
        "{}",
        stderr(&o)
    );
    assert!(!std::fs::read_to_string(&cfg)
        .unwrap_or_default()
        .contains(&host));

    let o = svc.login(&host, "alice", "secret");
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stdout(&o).contains("Login Succeeded"), "{}", stdout(&o));
    // The client keeps the credentials; the service saved none.
    assert!(std::fs::read_to_string(&cfg).unwrap().contains(&host));
    assert!(!svc.own_config.path().join("config.json").exists());

    // The push authenticates with what the client sends (X-Registry-Auth).
    let dest = format!("{host}/alice/bb:1");
    svc.ok(&["tag", IMAGE, &dest]);
    let out = svc.ok(&["push", &dest]);
    assert!(out.contains("1: digest: sha256:"), "{out}");
    // So does a pull (docker pull sends X-Registry-Auth too).
    svc.ok(&["rmi", &dest]);
    svc.ok(&["pull", &dest]);
    svc.ok(&["logout", &host]);
    svc.fails(&["push", &dest], "requires credentials");
    svc.fails(&["pull", &dest], "requires credentials");
}

#[test]
fn docker_search_reads_the_registry_catalog() {
    if !ready("docker_search_reads_the_registry_catalog") {
        return;
    }
    let reg = Server::gcr_with_alice();
    let host = reg.host();
    let env = Env::new();
    let svc = Service::on_socket(&env);
    // (Anonymous, the registry's 401 makes the CLI prompt for a login, as from dockerd:
    // docker-py's 401 below checks that answer.)
    let o = svc.login(&host, "alice", "secret");
    assert!(o.status.success(), "{}", stderr(&o));
    for dest in ["alice/bb:1", "alice/busybox:2", "alice/web:1"] {
        let dest = format!("{host}/{dest}");
        svc.ok(&["tag", IMAGE, &dest]);
        svc.ok(&["push", &dest]);
    }
    // The client's credentials (X-Registry-Auth) read the catalog.
    let out = svc.ok(&["search", &format!("{host}/alice/b")]);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 3, "{out}");
    assert!(
        lines[0].starts_with("NAME") && lines[0].contains("STARS"),
        "{out}"
    );
    assert!(lines[1].starts_with(&format!("{host}/alice/bb ")), "{out}");
    assert!(
        lines[2].starts_with(&format!("{host}/alice/busybox ")),
        "{out}"
    );
    let names = svc.ok(&[
        "search",
        "--limit",
        "2",
        "--format",
        "{{.Name}} {{.StarCount}}",
        &format!("{host}/alice"),
    ]);
    assert_eq!(
        names,
        format!("{host}/alice/bb 0\n{host}/alice/busybox 0\n")
    );
    assert_eq!(
        svc.ok(&[
            "search",
            "-f",
            "is-official=true",
            "--format",
            "{{.Name}}",
            &format!("{host}/")
        ]),
        ""
    );
    svc.fails(
        &["search", "-f", "colour=red", &format!("{host}/")],
        "invalid filter 'colour'",
    );
    svc.fails(
        &["search", "--limit", "101", &format!("{host}/")],
        "outside the range of [1, 100]",
    );

    // docker-py (its search sends no credentials): an open registry is searched, the one
    // with users is a 401, a bad filter a 400.
    let Some(python) = docker_py("docker_search_reads_the_registry_catalog") else {
        return;
    };
    let open = Server::gcr(&[], &[]);
    let dest = format!("{}/team/web:1", open.host());
    svc.ok(&["tag", IMAGE, &dest]);
    svc.ok(&["push", &dest]);
    let script = r#"
import sys, docker
c = docker.DockerClient(base_url=sys.argv[1])
reg, closed = sys.argv[2], sys.argv[3]
hits = c.images.search(reg + "/web")
assert hits == [{"name": reg + "/team/web", "description": "", "star_count": 0,
                 "is_official": False, "is_automated": False}], hits
assert c.images.search(reg + "/nothing-like-it") == []
for term, status in [(closed + "/bb", 401), ("", 400)]:
    try:
        c.images.search(term)
        raise SystemExit("searched " + term)
    except docker.errors.APIError as e:
        assert e.status_code == status, (term, e)
try:
    c.api._result(c.api._get(c.api._url("/images/search"),
                             params={"term": reg + "/", "filters": '{"stars":["x"]}'}), True)
    raise SystemExit("a bad filter searched")
except docker.errors.APIError as e:
    assert e.status_code == 400 and "stars=x" in str(e), e
print("docker-py ok")
"#;
    let out = Command::new(&python)
        .args(["-c", script, &svc.host, &open.host(), &host])
        .output()
        .expect("python");
    assert!(
        out.status.success() && stdout(&out).contains("docker-py ok"),
        "docker-py script failed: {}{}",
        stdout(&out),
        stderr(&out)
    );
}

#[test]
fn docker_py_save_load_and_push() {
    if !ready("docker_py_save_load_and_push") {
        return;
    }
    let Some(python) = docker_py("docker_py_save_load_and_push") else {
        return;
    };
    let reg = Server::gcr_with_alice();
    let env = Env::new();
    let svc = Service::on_socket(&env);
    let env2 = Env::new();
    let svc2 = Service::on_socket(&env2);
    svc2.ok(&["rmi", IMAGE]);
    let script = r#"
import sys, docker
a = docker.DockerClient(base_url=sys.argv[1])
b = docker.DockerClient(base_url=sys.argv[2])
image, reg = sys.argv[3], sys.argv[4]
img = a.images.get(image)
data = b"".join(img.save(named=True))
loaded = b.images.load(data)
assert [i.id for i in loaded] == [img.id], (loaded, img.id)
assert image in b.images.get(image).tags
rows = a.images.get(image).history()
assert rows[0]["Id"] == img.id and rows[0]["Tags"] == [image], rows
try:
    b.images.load(data[: len(data) // 2])
    raise SystemExit("a truncated archive loaded")
except docker.errors.ImageLoadError as e:
    assert "truncated" in str(e), e
repo = reg + "/py/bb"
img.tag(repo, "7")
auth = {"username": "alice", "password": "secret"}
lines = list(a.images.push(repo, tag="7", stream=True, decode=True, auth_config=auth))
assert not [l for l in lines if "error" in l], lines
aux = [l["aux"] for l in lines if "aux" in l]
assert aux and aux[0]["Tag"] == "7" and aux[0]["Digest"].startswith("sha256:"), lines
assert any(l.get("status") == "7: digest: %s size: %d" % (aux[0]["Digest"], aux[0]["Size"]) for l in lines), lines
lines = list(a.images.push(repo, tag="7", stream=True, decode=True))
assert [l for l in lines if "error" in l], lines
assert a.login("alice", "secret", registry=reg)["Status"] == "Login Succeeded"
try:
    a.login("alice", "bad", registry=reg, reauth=True)
    raise SystemExit("a wrong password logged in")
except docker.errors.APIError as e:
    assert e.status_code == 401, e
try:
    a.images.get("nosuch:1").save()
    raise SystemExit("saved a missing image")
except docker.errors.ImageNotFound:
    pass
print("docker-py ok")
"#;
    let out = Command::new(&python)
        .args(["-c", script, &svc.host, &svc2.host, IMAGE, &reg.host()])
        .output()
        .expect("python");
    assert!(
        out.status.success() && stdout(&out).contains("docker-py ok"),
        "docker-py script failed: {}{}",
        stdout(&out),
        stderr(&out)
    );
}

/// A registry on a test network's bridge address (not loopback: plain http to it must be
/// allowed by name), with the network; both removed on drop.
struct BridgeRegistry<'a> {
    env: &'a Env,
    child: std::process::Child,
    host: String,
    _dir: tempfile::TempDir,
}

impl<'a> BridgeRegistry<'a> {
    fn start(env: &'a Env) -> BridgeRegistry<'a> {
        let sub = format!("10.232.{}.0/24", std::process::id() % 200 + 20);
        env.ok(&["network", "create", "--subnet", &sub, "insreg"]);
        let gw = sub.replace(".0/24", ".1");
        let dir = tempfile::tempdir().unwrap();
        let mut child = Command::new(common::gcr_bin())
            .arg("--root")
            .arg(dir.path().join("store"))
            .args(["registry", "serve", "--addr", &format!("{gw}:0")])
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("start gcr registry serve");
        let mut line = String::new();
        std::io::BufRead::read_line(
            &mut std::io::BufReader::new(child.stdout.take().unwrap()),
            &mut line,
        )
        .unwrap();
        let port = line.trim().rsplit(':').next().unwrap_or("").to_string();
        BridgeRegistry {
            env,
            child,
            host: format!("{gw}:{port}"),
            _dir: dir,
        }
    }
}

impl Drop for BridgeRegistry<'_> {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = self.env.cmd(&["network", "rm", "insreg"]).output();
        let _ = self.env.cmd(&["network", "__teardown"]).output();
    }
}

#[test]
fn insecure_registries_are_reached_over_http_when_named() {
    if !ready("insecure_registries_are_reached_over_http_when_named") {
        return;
    }
    let env = Env::new();
    let reg = BridgeRegistry::start(&env);
    let image = format!("{}/ins/bb:1", reg.host);
    env.ok(&["push", "-q", "--insecure", IMAGE, &image]);
    // A service not told: https only, which this registry does not speak.
    let other = Env::new();
    let svc = Service::on_socket(&other);
    let o = svc.docker(&["pull", &image]);
    assert!(!o.status.success(), "pulled over plain http unasked");
    assert!(
        stderr(&o).contains("cannot reach registry"),
        "{}",
        stderr(&o)
    );
    drop(svc);
    // Told (dockerd's --insecure-registry): pull, search and a build's base.
    let third = Env::new();
    let svc = Service::start(
        &third,
        &common::service::sock_host(third.root.path()),
        &["--insecure-registry", &reg.host],
    );
    let info = svc.ok(&["info", "--format", "{{json .RegistryConfig}}"]);
    let v: serde_json::Value = serde_json::from_str(info.trim()).unwrap();
    assert_eq!(v["IndexConfigs"][&reg.host]["Secure"], false, "{v}");
    assert_eq!(v["IndexConfigs"]["docker.io"]["Secure"], true, "{v}");
    let listed = svc.ok(&["info"]);
    assert!(listed.contains("Insecure Registries:"), "{listed}");
    assert!(listed.contains(&reg.host), "{listed}");
    svc.ok(&["rmi", IMAGE]);
    svc.ok(&["pull", &image]);
    let found = svc.ok(&[
        "search",
        "--format",
        "{{.Name}}",
        &format!("{}/ins", reg.host),
    ]);
    assert_eq!(found.trim(), format!("{}/ins/bb", reg.host));
    svc.ok(&["tag", &image, &format!("{}/ins/again:2", reg.host)]);
    svc.ok(&["push", &format!("{}/ins/again:2", reg.host)]);
    svc.ok(&["rmi", &image]);
    let ctx = tempfile::tempdir().unwrap();
    std::fs::write(
        ctx.path().join("Dockerfile"),
        format!("FROM {image}\nRUN echo over-http > /h\n"),
    )
    .unwrap();
    let out = svc.ok(&["build", "-t", "overhttp:1", ctx.path().to_str().unwrap()]);
    assert!(out.contains("Digest: sha256:"), "the base is pulled: {out}");
    drop(svc);
    // Told by network (dockerd's --insecure-registry CIDR): the registry's address is in it.
    let fourth = Env::new();
    let ip = reg.host.split(':').next().unwrap();
    let net = format!("{}.0/24", ip.rsplit_once('.').unwrap().0);
    let svc = Service::start(
        &fourth,
        &common::service::sock_host(fourth.root.path()),
        &["--insecure-registry", &net],
    );
    let cidrs = svc.ok(&[
        "info",
        "--format",
        "{{json .RegistryConfig.InsecureRegistryCIDRs}}",
    ]);
    assert!(cidrs.contains(&net), "{cidrs}");
    svc.ok(&["pull", &image]);
    drop(svc);
    // A bad value is refused at start, naming the flag.
    let o = third.gcr(&[
        "system",
        "service",
        "--insecure-registry",
        "a b",
        "--host",
        "unix:///nonexistent/x.sock",
    ]);
    assert_eq!(o.status.code(), Some(125), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("invalid --insecure-registry"),
        "{}",
        stderr(&o)
    );
}
