//! `gcr system service` (issue 20): the stock docker CLI and docker-py 7 drive gcr through
//! the Docker Engine API on a unix socket in a temp dir (foreground runs with their exit
//! codes and output, `run -d`, ps, logs, inspect, stop, rm, images, errors), a loopback TCP
//! port works and a non-loopback one is refused, and the socket serves only root or
//! members of `--group` — checked by peer credentials even when its modes are opened up.
//! The service is killed and reaped by a guard, even when a test fails.

mod common;

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::servers::{free_port, need_tools};
use common::service::{docker_py, sock_host, Service};
use common::{need_root, stderr, stdout, Env, IMAGE};

fn ready(test: &str) -> bool {
    need_root(test) && need_tools(test, &["docker", "curl", "setpriv"])
}

#[test]
fn docker_cli_runs_containers() {
    if !ready("docker_cli_runs_containers") {
        return;
    }
    let env = Env::new();
    let svc = Service::start(&env, &sock_host(env.root.path()), &[]);
    assert_eq!(
        svc.ok(&["version", "--format", "{{.Server.APIVersion}}"])
            .trim(),
        "1.41"
    );
    assert!(svc.ok(&["images"]).contains("test/busybox"));

    // Foreground: both streams and the exit code come back.
    let o = svc.docker(&[
        "run",
        "--rm",
        IMAGE,
        "sh",
        "-c",
        "echo out; echo err >&2; exit 3",
    ]);
    assert_eq!(o.status.code(), Some(3), "stderr: {}", stderr(&o));
    assert_eq!(stdout(&o), "out\n");
    assert!(stderr(&o).contains("err"), "stderr: {}", stderr(&o));
    assert_eq!(env.ok(&["ps", "-aq"]).trim(), "", "--rm left a container");
    let o = svc.docker(&[
        "run",
        "--name",
        "once",
        IMAGE,
        "sh",
        "-c",
        "echo hi; exit 0",
    ]);
    assert_eq!(o.status.code(), Some(0), "stderr: {}", stderr(&o));
    assert_eq!(stdout(&o), "hi\n");

    // A bind mount and a tmpfs, as docker run -v and --tmpfs give them.
    let data = tempfile::tempdir().unwrap();
    std::fs::write(data.path().join("f"), "bound\n").unwrap();
    let bind = format!("{}:/data:ro", data.path().display());
    let o = svc.docker(&[
        "run",
        "--rm",
        "-v",
        &bind,
        "--tmpfs",
        "/scratch",
        IMAGE,
        "sh",
        "-c",
        "cat /data/f; grep -c ' /scratch tmpfs' /proc/mounts",
    ]);
    assert_eq!(stdout(&o), "bound\n1\n", "{}", stderr(&o));

    // Detached, listed, logged, inspected, stopped, removed.
    let id = svc.ok(&[
        "run",
        "-d",
        "--name",
        "web",
        "-e",
        "X=1",
        "--label",
        "role=web",
        IMAGE,
        "sh",
        "-c",
        "echo hello; echo $X; sleep 30",
    ]);
    let id = id.trim();
    assert_eq!(id.len(), 64, "docker run -d prints the id: {id:?}");
    let ps = svc.ok(&["ps", "--format", "{{.ID}} {{.Names}} {{.Status}}"]);
    assert!(ps.contains(&format!("{} web Up", &id[..12])), "ps: {ps}");
    assert!(common::eventually(10, || svc.ok(&["logs", "web"]) == "hello\n1\n"));
    let doc: serde_json::Value = serde_json::from_str(&svc.ok(&["inspect", "web"])).unwrap();
    assert_eq!(doc[0]["Id"], id);
    assert_eq!(doc[0]["Name"], "/web");
    assert_eq!(doc[0]["State"]["Running"], true);
    assert_eq!(doc[0]["Config"]["Labels"]["role"], "web");
    assert!(doc[0]["Config"]["Env"]
        .as_array()
        .unwrap()
        .iter()
        .any(|e| e == "X=1"));
    let f = svc.ok(&["ps", "--filter", "label=role=web", "--format", "{{.Names}}"]);
    assert_eq!(f.trim(), "web");
    assert_eq!(
        svc.ok(&["ps", "--filter", "label=role=db", "-q"]).trim(),
        ""
    );
    // The CLI sees the same container.
    assert!(env.ok(&["ps"]).contains("web"));
    let o = svc.docker(&["rm", "web"]);
    assert!(
        !o.status.success() && stderr(&o).contains("running"),
        "{}",
        stderr(&o)
    );
    svc.ok(&["stop", "-t", "1", "web"]);
    let exited = svc.ok(&[
        "ps",
        "-a",
        "--filter",
        "status=exited",
        "--format",
        "{{.Names}}",
    ]);
    assert!(exited.lines().any(|l| l == "web"), "ps -a: {exited}");
    assert!(svc
        .ok(&["ps", "--format", "{{.Names}}"])
        .lines()
        .all(|l| l != "web"));
    svc.ok(&["rm", "web", "once"]);
    assert_eq!(svc.ok(&["ps", "-aq"]).trim(), "");

    // logs -f follows until the container ends; a wait on an auto-removed one gets its code.
    svc.ok(&[
        "run",
        "-d",
        "--name",
        "lf",
        IMAGE,
        "sh",
        "-c",
        "echo a; sleep 1; echo b >&2; exit 2",
    ]);
    let t = Instant::now();
    let o = svc.docker(&["logs", "-f", "lf"]);
    assert_eq!((stdout(&o).as_str(), stderr(&o).as_str()), ("a\n", "b\n"));
    assert!(t.elapsed() < Duration::from_secs(10));
    assert_eq!(
        svc.ok(&["inspect", "-f", "{{.State.ExitCode}}", "lf"])
            .trim(),
        "2"
    );
    svc.ok(&["rm", "lf"]);
    svc.ok(&[
        "run",
        "-d",
        "--rm",
        "--name",
        "rmw",
        IMAGE,
        "sh",
        "-c",
        "sleep 1; exit 6",
    ]);
    assert_eq!(svc.ok(&["wait", "rmw"]).trim(), "6");

    // Kill and wait.
    svc.ok(&["run", "-d", "--name", "kk", IMAGE, "sleep", "30"]);
    svc.ok(&["kill", "kk"]);
    assert_eq!(svc.ok(&["wait", "kk"]).trim(), "137");
    svc.ok(&["rm", "kk"]);

    // Docker's errors.
    let o = svc.docker(&["inspect", "--type", "container", "nosuch"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).to_lowercase().contains("no such"),
        "{}",
        stderr(&o)
    );
    let o = svc.docker(&["run", "--rm", "--restart", "sometimes", IMAGE, "true"]);
    assert!(!o.status.success());
    let o = svc.docker(&["rmi", "nosuch:tag"]);
    assert!(
        !o.status.success() && stderr(&o).contains("No such image"),
        "{}",
        stderr(&o)
    );

    // Log drivers: none shows the output but keeps nothing (logs says so, as dockerd);
    // drivers that ship logs elsewhere are refused by name.
    let out = svc.ok(&[
        "run",
        "--name",
        "nolog",
        "--log-driver",
        "none",
        IMAGE,
        "echo",
        "hi",
    ]);
    assert_eq!(out, "hi\n");
    let o = svc.docker(&["logs", "nolog"]);
    assert!(
        !o.status.success()
            && stderr(&o).contains("configured logging driver does not support reading"),
        "{}",
        stderr(&o)
    );
    let t = svc.ok(&["inspect", "-f", "{{.HostConfig.LogConfig.Type}}", "nolog"]);
    assert_eq!(t.trim(), "none");
    svc.ok(&["rm", "nolog"]);
    let o = svc.docker(&["run", "--rm", "--log-driver", "syslog", IMAGE, "true"]);
    assert!(
        !o.status.success() && stderr(&o).contains("log driver 'syslog' is not supported"),
        "{}",
        stderr(&o)
    );

    // Published ports as the docker CLI shows them: without an address on both families
    // (IPv6 where the host has it), with one on that address only.
    svc.ok(&[
        "run",
        "-d",
        "--name",
        "pub",
        "-p",
        "80",
        "-p",
        "127.0.0.1::81",
        IMAGE,
        "sleep",
        "60",
    ]);
    let ports = svc.ok(&["port", "pub"]);
    assert!(
        ports.contains("80/tcp -> 0.0.0.0:") && ports.contains("81/tcp -> 127.0.0.1:"),
        "{ports}"
    );
    let ipv6 = std::net::TcpListener::bind("[::1]:0").is_ok();
    assert_eq!(ports.contains("80/tcp -> [::]:"), ipv6, "{ports}");
    assert_eq!(ports.lines().count(), if ipv6 { 3 } else { 2 }, "{ports}");
    let ps = svc.ok(&["ps", "--filter", "name=pub", "--format", "{{.Ports}}"]);
    assert_eq!(ps.contains("[::]:"), ipv6, "{ps}");
    svc.ok(&["rm", "-f", "pub"]);

    // Images: tag, inspect, remove the tag.
    svc.ok(&["tag", IMAGE, "copy:1"]);
    let doc: serde_json::Value =
        serde_json::from_str(&svc.ok(&["image", "inspect", "copy:1"])).unwrap();
    assert!(doc[0]["RepoTags"]
        .as_array()
        .unwrap()
        .iter()
        .any(|t| t == "copy:1"));
    svc.ok(&["rmi", "copy:1"]);
    assert!(!svc
        .ok(&["images", "--format", "{{.Repository}}"])
        .contains("copy"));
}

/// Raw HTTP over the socket with curl: status code and body.
fn curl(sock: &Path, method: &str, path: &str, body: Option<&str>) -> (String, String) {
    let mut c = Command::new("curl");
    c.args([
        "-s",
        "-o",
        "-",
        "-w",
        "\n%{http_code}",
        "-X",
        method,
        "--unix-socket",
    ])
    .arg(sock)
    .arg(format!("http://gcr{path}"));
    if let Some(b) = body {
        c.args(["-H", "Content-Type: application/json", "--data-binary", b]);
    }
    let out = stdout(&c.output().expect("curl"));
    let (body, code) = out.rsplit_once('\n').unwrap_or(("", &out));
    (code.to_string(), body.to_string())
}

/// `docker inspect` shows the run's settings in Docker's HostConfig and Config fields
/// (each body checked against the swagger by the service guard).
#[test]
fn docker_inspect_shows_the_settings() {
    if !ready("docker_inspect_shows_the_settings") {
        return;
    }
    let env = Env::new();
    let svc = Service::start(&env, &sock_host(env.root.path()), &[]);
    svc.ok(&[
        "create",
        "--name",
        "set",
        "--dns",
        "10.0.0.53",
        "--dns-search",
        "example.test",
        "--add-host",
        "db.test:10.1.2.3",
        "--ulimit",
        "nofile=1024:2048",
        "--sysctl",
        "net.ipv4.ip_forward=1",
        "--shm-size",
        "128m",
        "--health-cmd",
        "test -e /etc/hosts",
        "--health-interval",
        "5s",
        "-p",
        "8080",
        IMAGE,
        "true",
    ]);
    let f = |t: &str| svc.ok(&["inspect", "-f", t, "set"]).trim().to_string();
    assert_eq!(f("{{json .HostConfig.Dns}}"), r#"["10.0.0.53"]"#);
    assert_eq!(f("{{json .HostConfig.DnsSearch}}"), r#"["example.test"]"#);
    assert_eq!(
        f("{{json .HostConfig.ExtraHosts}}"),
        r#"["db.test:10.1.2.3"]"#
    );
    assert_eq!(
        f("{{json .HostConfig.Ulimits}}"),
        r#"[{"Name":"nofile","Hard":2048,"Soft":1024}]"#
    );
    assert_eq!(
        f("{{json .HostConfig.Sysctls}}"),
        r#"{"net.ipv4.ip_forward":"1"}"#
    );
    assert_eq!(f("{{.HostConfig.ShmSize}}"), "134217728");
    assert_eq!(
        f("{{json .HostConfig.PortBindings}}"),
        r#"{"8080/tcp":[{"HostIp":"","HostPort":""}]}"#
    );
    assert_eq!(
        f("{{json .Config.Healthcheck.Test}} {{.Config.Healthcheck.Interval}}"),
        r#"["CMD-SHELL","test -e /etc/hosts"] 5s"#
    );
    assert_eq!(f("{{.State.Restarting}} {{.State.Dead}}"), "false false");
    let hosts = f("{{.HostsPath}}");
    assert!(hosts.ends_with("/hosts"), "{hosts}");
    // gcr's own inspect shows the same document.
    let mine: serde_json::Value = serde_json::from_str(&env.ok(&["inspect", "set"])).unwrap();
    let mine = if mine.is_array() {
        mine[0].clone()
    } else {
        mine
    };
    assert_eq!(mine["HostConfig"]["Dns"][0], "10.0.0.53");
    assert_eq!(mine["HostConfig"]["Ulimits"][0]["Name"], "nofile");
    svc.ok(&["rm", "set"]);
    // Legacy links: the linked container under its alias, and Docker's inspect form.
    svc.ok(&["run", "-d", "--name", "linked", IMAGE, "sleep", "60"]);
    let ip = svc.ok(&["inspect", "-f", "{{.NetworkSettings.IPAddress}}", "linked"]);
    let hosts = svc.ok(&[
        "run",
        "--rm",
        "--name",
        "linker",
        "--link",
        "linked:db",
        IMAGE,
        "cat",
        "/etc/hosts",
    ]);
    assert!(hosts.contains(&format!("{}\tdb ", ip.trim())), "{hosts}");
    svc.ok(&[
        "create",
        "--name",
        "lk",
        "--link",
        "linked:db",
        IMAGE,
        "true",
    ]);
    assert_eq!(
        svc.ok(&["inspect", "-f", "{{json .HostConfig.Links}}", "lk"])
            .trim(),
        r#"["/linked:/lk/db"]"#
    );
    svc.ok(&["rm", "-f", "lk", "linked"]);
}

#[test]
fn docker_errors_and_versions() {
    if !ready("docker_errors_and_versions") {
        return;
    }
    let env = Env::new();
    let host = sock_host(env.root.path());
    let _svc = Service::start(&env, &host, &[]);
    let sock = PathBuf::from(host.trim_start_matches("unix://"));
    let (code, body) = curl(&sock, "GET", "/_ping", None);
    assert_eq!((code.as_str(), body.as_str()), ("200", "OK"));
    let (code, body) = curl(&sock, "GET", "/v1.41/containers/nosuch/json", None);
    assert_eq!(code, "404");
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert!(v["message"].as_str().unwrap().contains("nosuch"), "{body}");
    let (code, body) = curl(&sock, "POST", "/containers/create", Some("{not json"));
    assert_eq!(code, "400", "{body}");
    assert!(body.contains("\"message\""), "{body}");
    let (code, _) = curl(&sock, "POST", "/containers/create", Some(r#"{"Image": 7}"#));
    assert_eq!(code, "400");
    let (code, body) = curl(
        &sock,
        "POST",
        "/containers/create",
        Some(r#"{"Image": "nosuch:1"}"#),
    );
    assert_eq!(code, "404", "{body}");
    let (code, _) = curl(&sock, "GET", "/v1.12/info", None);
    assert_eq!(code, "400");
    let (code, body) = curl(&sock, "GET", "/v1.24/containers/json?all=1", None);
    assert_eq!((code.as_str(), body.as_str()), ("200", "[]"));
    let (code, _) = curl(&sock, "GET", "/containers/json?filters=%7Bbad", None);
    assert_eq!(code, "400");
    let (code, _) = curl(&sock, "GET", "/no/such/endpoint", None);
    assert_eq!(code, "404");
    let (code, body) = curl(
        &sock,
        "POST",
        "/containers/create?name=c1",
        Some(&format!(r#"{{"Image": "{IMAGE}", "Cmd": ["true"]}}"#)),
    );
    assert_eq!(code, "201", "{body}");
    let (code, _) = curl(
        &sock,
        "POST",
        "/containers/create?name=c1",
        Some(&format!(r#"{{"Image": "{IMAGE}", "Cmd": ["true"]}}"#)),
    );
    assert_eq!(code, "409", "a second container named c1 is a conflict");
    let (code, body) = curl(&sock, "POST", "/containers/c1/wait?condition=bogus", None);
    assert_eq!(code, "400", "{body}");
    let (code, _) = curl(&sock, "GET", "/containers/c1/logs", None);
    assert_eq!(code, "400", "logs without a stream is a bad request");
    let (code, _) = curl(&sock, "DELETE", "/containers/c1", None);
    assert_eq!(code, "204");

    // Hostile bodies: unknown fields are ignored (as Docker), a huge body is refused.
    let (code, body) = curl(
        &sock,
        "POST",
        "/containers/create?name=c2",
        Some(&format!(
            r#"{{"Image": "{IMAGE}", "Cmd": ["true"], "NoSuchField": {{"x": 1}}}}"#
        )),
    );
    assert_eq!(code, "201", "{body}");
    let huge = format!(
        r#"{{"Image": "{IMAGE}", "Env": ["{}"]}}"#,
        "x".repeat(5 << 20)
    );
    let file = env.root.path().join("huge.json");
    std::fs::write(&file, huge).unwrap();
    let (code, body) = curl(
        &sock,
        "POST",
        "/containers/create",
        Some(&format!("@{}", file.display())),
    );
    assert_eq!(code, "413", "{body}");
    assert!(body.contains("4 MiB"), "{body}");

    // A tar whose names climb out of the destination lands inside the container or is
    // refused; nothing appears on the host.
    let escape = format!("/tmp/gcr-api-escape-{}", std::process::id());
    let tar = env.root.path().join("evil.tar");
    let mut b = tar::Builder::new(std::fs::File::create(&tar).unwrap());
    let mut h = tar::Header::new_gnu();
    h.set_size(4);
    h.set_mode(0o644);
    h.set_entry_type(tar::EntryType::Regular);
    let name = format!("../../../../../../..{escape}");
    h.as_gnu_mut().unwrap().name[..name.len()].copy_from_slice(name.as_bytes());
    h.set_cksum();
    b.append(&h, &b"evil"[..]).unwrap();
    b.into_inner().unwrap();
    let (code, _) = curl(
        &sock,
        "PUT",
        "/containers/c2/archive?path=/tmp",
        Some(&format!("@{}", tar.display())),
    );
    assert!(
        code == "200" || code.starts_with('4'),
        "archive PUT answered {code}"
    );
    assert!(
        !Path::new(&escape).exists(),
        "the tar wrote {escape} on the host"
    );
    let (code, _) = curl(&sock, "DELETE", "/containers/c2", None);
    assert_eq!(code, "204");
}

#[test]
fn docker_py_drives_the_service() {
    let script = r#"
import sys, time, docker
c = docker.DockerClient(base_url=sys.argv[1])
image = sys.argv[2]
assert c.ping()
assert any(image in (i.tags or []) for i in c.images.list()), c.images.list()
out = c.containers.run(image, ["sh", "-c", "echo from-py; echo err >&2"], remove=True)
assert out == b"from-py\n", out
try:
    c.containers.run(image, ["sh", "-c", "exit 3"], remove=True)
    raise SystemExit("exit 3 did not raise")
except docker.errors.ContainerError as e:
    assert e.exit_status == 3, e.exit_status
d = c.containers.run(image, ["sh", "-c", "echo a; sleep 0.2; echo b; exit 5"], detach=True, name="pyd", labels={"k": "v"})
assert d.wait()["StatusCode"] == 5
assert d.logs() == b"a\nb\n", d.logs()
# attach with logs=1: the log so far (here all of it: the container exited), in order,
# only the streams asked for.
got = d.attach(stdout=True, stderr=True, logs=True)
assert got == b"a\nb\n", got
m = c.containers.run(image, ["sh", "-c", "echo 1; echo 2 >&2; echo 3"], detach=True)
m.wait()
both = m.attach(stdout=True, stderr=True, logs=True)
assert sorted(both.split()) == [b"1", b"2", b"3"], both
assert m.attach(stdout=True, stderr=False, logs=True) == b"1\n3\n"
assert m.attach(stdout=False, stderr=True, logs=True) == b"2\n"
m.remove()
# logs keeps the order of the two streams as written (one frame per record, Docker's).
o = c.containers.run(image, ["sh", "-c", "echo 1; sleep 0.1; echo 2 >&2; sleep 0.1; echo 3"], detach=True)
o.wait()
assert o.logs(stdout=True, stderr=True) == b"1\n2\n3\n", o.logs(stdout=True, stderr=True)
assert o.logs(stdout=True, stderr=False) == b"1\n3\n", o.logs(stdout=True, stderr=False)
assert b"".join(o.logs(stream=True, follow=True)) == b"1\n2\n3\n"
o.remove()
# logs=1 with stream=1 on a running container: the log so far, then the live output.
r = c.containers.run(image, ["sh", "-c", "echo early; sleep 1; echo late"], detach=True)
time.sleep(0.5)
got = b"".join(r.attach(stdout=True, stderr=True, logs=True, stream=True))
assert got == b"early\nlate\n", got
r.wait()
r.remove()
streamed = b"".join(d.logs(stream=True, follow=True))
assert streamed == b"a\nb\n", streamed
d.reload()
assert d.status == "exited" and d.labels == {"k": "v"}, (d.status, d.labels)
assert [x.name for x in c.containers.list(all=True, filters={"label": "k=v"})] == ["pyd"]
d.remove()
try:
    c.containers.get("pyd")
    raise SystemExit("removed container still found")
except docker.errors.NotFound:
    pass
v = c.volumes.create("pyvol")
assert v.name == "pyvol" and "pyvol" in [x.name for x in c.volumes.list()]
v.remove()
print("docker-py ok")
"#;
    py_test("docker_py_drives_the_service", script, "docker-py ok");
}

/// Runs a docker-py `script` (argv: the service's host, the test image) against a fresh
/// store's service and asserts it succeeded and printed `ok`; skips as `test` when root,
/// the tools or docker-py are missing.
fn py_test(test: &str, script: &str, ok: &str) {
    if !ready(test) {
        return;
    }
    let Some(python) = docker_py(test) else {
        return;
    };
    let env = Env::new();
    let host = sock_host(env.root.path());
    let _svc = Service::start(&env, &host, &[]);
    let out = Command::new(python)
        .args(["-c", script, &host, IMAGE])
        .output()
        .expect("python");
    assert!(
        out.status.success() && stdout(&out).contains(ok),
        "docker-py script failed: {}{}",
        stdout(&out),
        stderr(&out)
    );
}

#[test]
fn only_root_or_the_group_may_connect() {
    if !ready("only_root_or_the_group_may_connect") {
        return;
    }
    let env = Env::new();
    // A parent that nobody may traverse, so the socket's own modes decide.
    let base = tempfile::tempdir().unwrap();
    std::fs::set_permissions(base.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let host = sock_host(base.path());
    let sock = PathBuf::from(host.trim_start_matches("unix://"));
    let as_nobody = || {
        let o = Command::new("setpriv")
            .args([
                "--reuid",
                "65534",
                "--regid",
                "65534",
                "--clear-groups",
                "curl",
                "-s",
                "--unix-socket",
            ])
            .arg(&sock)
            .arg("http://gcr/_ping")
            .output()
            .expect("setpriv curl");
        stdout(&o)
    };
    {
        let _svc = Service::start(&env, &host, &[]);
        let dir = sock.parent().unwrap();
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(dir), 0o700);
        assert_eq!(mode(&sock), 0o600);
        assert_eq!(curl(&sock, "GET", "/_ping", None).1, "OK");
        assert_eq!(
            as_nobody(),
            "",
            "nobody got an answer through a root-only socket"
        );
        // Opened up by hand: the peer check still refuses.
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o755)).unwrap();
        std::fs::set_permissions(&sock, std::fs::Permissions::from_mode(0o666)).unwrap();
        assert_eq!(as_nobody(), "", "the peer credentials check let nobody in");
        assert_eq!(curl(&sock, "GET", "/_ping", None).1, "OK");
    }
    // A directory others may read (or a sticky one, like /tmp) is never taken over: the
    // service refuses it and leaves its mode alone.
    let dir = sock.parent().unwrap();
    let o = env.gcr(&["system", "service", "--host", &host]);
    assert_eq!(o.status.code(), Some(125), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("shared with other users"),
        "{}",
        stderr(&o)
    );
    // The error alone: nothing said it served.
    assert!(!stderr(&o).contains("serving"), "{}", stderr(&o));
    let mode = std::fs::metadata(dir).unwrap().permissions().mode() & 0o7777;
    assert_eq!(mode, 0o755);
    // Closed up again, it is the socket's own: with --group, members (here by primary
    // gid) get in.
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700)).unwrap();
    let _svc = Service::start(&env, &host, &["--group", "65534"]);
    let dir = sock.parent().unwrap();
    let meta = std::fs::metadata(dir).unwrap();
    assert_eq!(meta.permissions().mode() & 0o777, 0o750);
    assert_eq!(std::os::unix::fs::MetadataExt::gid(&meta), 65534);
    assert_eq!(as_nobody(), "OK");
}

/// Kills and reaps a service started by hand, even when the test fails.
struct Reaped(std::process::Child);

impl Drop for Reaped {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn serving_is_said_once_the_sockets_listen() {
    if !ready("serving_is_said_once_the_sockets_listen") {
        return;
    }
    use std::io::BufRead;
    let env = Env::new();
    let base = tempfile::tempdir().unwrap();
    let host = sock_host(base.path());
    let sock = PathBuf::from(host.trim_start_matches("unix://"));
    let jsonl = sock.with_file_name("gcr.jsonl.sock");
    let mut svc = Reaped(
        env.cmd(&["system", "service", "--host", &host])
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start gcr system service"),
    );
    let err = svc.0.stderr.take().expect("the service's stderr");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(err).lines() {
            if tx.send(line.unwrap_or_default()).is_err() {
                break;
            }
        }
    });
    let line = |what: &str| {
        let l = rx
            .recv_timeout(Duration::from_secs(20))
            .unwrap_or_else(|e| panic!("no line about {what} from the service: {e}"));
        assert!(l.contains(what), "{l}");
    };
    // Each line is said once its socket answers: connecting right then succeeds.
    line("serving the Docker Engine API on");
    std::os::unix::net::UnixStream::connect(&sock).expect("the API socket listens");
    line("serving the JSONL protocol on");
    std::os::unix::net::UnixStream::connect(&jsonl).expect("the JSONL socket listens");
    assert_eq!(curl(&sock, "GET", "/_ping", None).1, "OK");
    // SIGTERM, caught from then on, removes both sockets.
    // SAFETY: kill of our own child's pid with a signal number.
    unsafe { libc::kill(svc.0.id() as i32, libc::SIGTERM) };
    let deadline = Instant::now() + Duration::from_secs(20);
    let status = loop {
        if let Some(st) = svc.0.try_wait().expect("wait for the service") {
            break st;
        }
        assert!(
            Instant::now() < deadline,
            "the service did not stop on SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    assert_eq!(status.code(), Some(0));
    assert!(!sock.exists() && !jsonl.exists());
}

#[test]
fn tcp_is_loopback_only() {
    if !ready("tcp_is_loopback_only") {
        return;
    }
    let env = Env::new();
    let o = env.gcr(&["system", "service", "--host", "tcp://0.0.0.0:2375"]);
    assert_eq!(o.status.code(), Some(125));
    assert!(
        stderr(&o).contains("not a loopback address"),
        "{}",
        stderr(&o)
    );
    assert!(!stderr(&o).contains("serving"), "{}", stderr(&o));
    env.fails(
        &["system", "service", "--host", "unix://relative.sock"],
        "invalid --host",
    );
    let port = free_port();
    let svc = Service::start(&env, &format!("tcp://127.0.0.1:{port}"), &[]);
    assert!(svc.ok(&["ps", "-a"]).starts_with("CONTAINER ID"));
    let o = svc.docker(&["run", "--rm", IMAGE, "sh", "-c", "echo tcp; exit 7"]);
    assert_eq!(
        (o.status.code(), stdout(&o).as_str()),
        (Some(7), "tcp\n"),
        "{}",
        stderr(&o)
    );

    // A published port (-p), as docker port and ps show it, serves from the container.
    let web = free_port();
    let publish = format!("127.0.0.1:{web}:8080");
    svc.ok(&[
        "run",
        "-d",
        "--name",
        "web",
        "-p",
        &publish,
        IMAGE,
        "sh",
        "-c",
        "mkdir /w; echo hello-web > /w/index.html; exec httpd -f -p 8080 -h /w",
    ]);
    assert_eq!(
        svc.ok(&["port", "web"]).trim(),
        format!("8080/tcp -> 127.0.0.1:{web}")
    );
    assert_eq!(
        svc.ok(&["ps", "--format", "{{.Ports}}"]).trim(),
        format!("127.0.0.1:{web}->8080/tcp")
    );
    // inspect shows what was asked for, as Docker's HostConfig does.
    assert_eq!(
        svc.ok(&[
            "inspect",
            "-f",
            "{{json .HostConfig.PortBindings}} {{.HostConfig.PublishAllPorts}}",
            "web"
        ])
        .trim(),
        format!(r#"{{"8080/tcp":[{{"HostIp":"127.0.0.1","HostPort":"{web}"}}]}} false"#)
    );
    let url = format!("http://127.0.0.1:{web}/index.html");
    assert!(common::eventually(10, || {
        Command::new("curl")
            .args(["-s", &url])
            .output()
            .is_ok_and(|o| o.stdout == b"hello-web\n")
    }));
    svc.ok(&["rm", "-f", "web"]);
}

#[test]
fn docker_pull_and_events() {
    if !ready("docker_pull_and_events") {
        return;
    }
    let env = Env::new();
    let registry = common::servers::Server::gcr(&[], &[]);
    let pushed = format!("{}/api/busybox:1", registry.host());
    let other = format!("{}/api/other:2", registry.host());
    env.ok(&["push", "-q", IMAGE, &pushed]);
    env.ok(&["push", "-q", IMAGE, &other]);
    let svc = Service::start(&env, &sock_host(env.root.path()), &[]);

    let out = svc.ok(&["pull", &pushed]);
    assert!(
        out.contains("Downloaded newer image for") || out.contains("Image is up to date"),
        "{out}"
    );
    assert!(out.contains("Digest: sha256:"), "{out}");
    let tags = svc.ok(&["images", "--format", "{{.Repository}}:{{.Tag}}"]);
    assert!(tags.lines().any(|t| t == pushed), "images: {tags}");
    // An image the store lacks: the CLI pulls it when create says 404, then runs it.
    let o = svc.docker(&[
        "run",
        "--rm",
        "--name",
        "pulledrun",
        &other,
        "echo",
        "pulled",
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(stdout(&o), "pulled\n");
    assert!(
        stderr(&o).contains("Unable to find image"),
        "{}",
        stderr(&o)
    );
    let o = svc.docker(&["pull", &format!("{}/api/nosuch:1", registry.host())]);
    assert!(!o.status.success(), "pulling a missing image succeeded");

    // Events: what happened, in Docker's shape, bounded by --until.
    svc.ok(&["run", "--name", "ev", IMAGE, "true"]);
    let ev = past_events(
        &svc,
        &[
            "--filter",
            "type=container",
            "--format",
            "{{.Type}} {{.Action}} {{.Actor.Attributes.name}}",
        ],
    );
    assert!(
        ev.lines().any(|l| l == "container create ev"),
        "events: {ev}"
    );
    assert!(ev.lines().any(|l| l == "container die ev"), "events: {ev}");
    assert!(
        ev.lines().any(|l| l == "container destroy pulledrun"),
        "no destroy of the --rm run: {ev}"
    );
    assert!(
        ev.lines().all(|l| l.starts_with("container ")),
        "events: {ev}"
    );
    // A removed container's events keep its image and labels, as they were: the image
    // and label filters find a --rm run's whole life.
    svc.ok(&[
        "run",
        "--rm",
        "--name",
        "gone",
        "--label",
        "tier=batch",
        IMAGE,
        "true",
    ]);
    let gone = past_events(
        &svc,
        &[
        "--filter",
        "label=tier=batch",
        "--filter",
        &format!("image={IMAGE}"),
        "--format",
        "{{.Action}} {{.Actor.Attributes.name}} {{.Actor.Attributes.image}} {{.Actor.Attributes.tier}}",
    ]);
    let actions: Vec<&str> = gone.lines().map(|l| l.split(' ').next().unwrap()).collect();
    assert_eq!(actions, ["create", "start", "die", "destroy"], "{gone}");
    assert!(
        gone.lines()
            .all(|l| l.ends_with(&format!("gone {IMAGE} batch"))),
        "{gone}"
    );
    // Volumes and networks made and removed are events (and ledger entries) too.
    svc.ok(&["volume", "create", "evv"]);
    svc.ok(&["volume", "rm", "evv"]);
    svc.ok(&["network", "create", "evn"]);
    svc.ok(&["network", "rm", "evn"]);
    let vn = past_events(
        &svc,
        &[
        "--filter",
        "type=volume",
        "--filter",
        "type=network",
        "--format",
        "{{.Type}} {{.Action}} {{.Actor.Attributes.name}} {{with .Actor.Attributes.driver}}{{.}}{{end}}{{with .Actor.Attributes.type}}{{.}}{{end}}",
    ]);
    let vn: Vec<&str> = vn.lines().filter(|l| l.contains(" ev")).collect();
    assert_eq!(
        vn,
        [
            "volume create evv local",
            "volume destroy evv local",
            "network create evn bridge",
            "network destroy evn bridge"
        ]
    );
    let o = env.gcr(&["audit", "verify"]);
    assert!(o.status.success(), "{}", stderr(&o));
    svc.ok(&["rm", "ev"]);
}

/// `docker events --since 0 --until NOW+1s ARGS...`: every event so far, then it ends.
fn past_events(svc: &Service, args: &[&str]) -> String {
    let until = (std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        + 1)
    .to_string();
    let mut all = vec!["events", "--since", "0", "--until", &until];
    all.extend_from_slice(args);
    svc.ok(&all)
}

/// Runs `cmd` under a pty (util-linux `script`), typing `input` once the terminal shows
/// `ready` (the CLI has set its terminal raw by then: input typed earlier can be flushed);
/// its output and exit code.
fn in_pty(svc: &Service, cmd: &str, ready: &str, input: &str) -> (String, Option<i32>) {
    let mut c = svc.docker_cmd(&[]);
    let docker_env: Vec<(String, String)> = c
        .get_envs()
        .filter_map(|(k, v)| Some((k.to_str()?.to_string(), v?.to_str()?.to_string())))
        .collect();
    c = Command::new("script");
    c.args([
        "-qec",
        &format!("docker -H {} {cmd}", svc.host),
        "/dev/null",
    ])
    .envs(docker_env)
    .stdin(Stdio::piped())
    .stdout(Stdio::piped())
    .stderr(Stdio::null());
    let mut child = c.spawn().expect("script");
    let mut stdin = child.stdin.take();
    let mut out = child.stdout.take().unwrap();
    let shown = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let reader = {
        let shown = shown.clone();
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while let Ok(n @ 1..) = std::io::Read::read(&mut out, &mut buf) {
                shown.lock().unwrap().extend_from_slice(&buf[..n]);
            }
        })
    };
    let text = || String::from_utf8_lossy(&shown.lock().unwrap()).replace('\r', "");
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut typed = false;
    // The pipe stays open until the command ends: script ends the session with its input.
    while !reader.is_finished() && Instant::now() < deadline {
        if !typed && text().contains(ready) {
            std::thread::sleep(Duration::from_millis(100));
            if let Some(s) = stdin.as_mut() {
                let _ = std::io::Write::write_all(s, input.as_bytes());
            }
            typed = true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    if !reader.is_finished() {
        let _ = child.kill();
    }
    drop(stdin.take());
    let status = child.wait().expect("script status");
    let _ = reader.join();
    assert!(typed, "{cmd:?} never showed {ready:?}: {}", text());
    (text(), status.code())
}

#[test]
fn docker_exec_and_terminals() {
    if !ready("docker_exec_and_terminals") || !need_tools("docker_exec_and_terminals", &["script"])
    {
        return;
    }
    let env = Env::new();
    let svc = Service::start(&env, &sock_host(env.root.path()), &[]);
    svc.ok(&["run", "-d", "--name", "ex", IMAGE, "sleep", "60"]);
    let o = svc.docker(&["exec", "ex", "sh", "-c", "echo out; echo err >&2; exit 4"]);
    assert_eq!(o.status.code(), Some(4));
    assert_eq!(
        (stdout(&o).as_str(), stderr(&o).as_str()),
        ("out\n", "err\n")
    );
    let o = svc.docker(&[
        "exec",
        "-e",
        "A=b",
        "-w",
        "/tmp",
        "-u",
        "65534",
        "ex",
        "sh",
        "-c",
        "echo $A $(pwd) $(id -u)",
    ]);
    assert_eq!(stdout(&o), "b /tmp 65534\n", "{}", stderr(&o));
    let mut c = svc.docker_cmd(&["exec", "-i", "ex", "sh", "-c", "read x; echo got $x"]);
    let mut child = c
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    std::io::Write::write_all(&mut child.stdin.take().unwrap(), b"line\n").unwrap();
    let o = child.wait_with_output().unwrap();
    assert_eq!(
        (o.status.code(), stdout(&o).as_str()),
        (Some(0), "got line\n")
    );
    let o = svc.docker(&["exec", "ex", "nosuchcmd"]);
    assert_eq!(o.status.code(), Some(127), "{}", stderr(&o));
    assert!(stderr(&o).contains("nosuchcmd"), "{}", stderr(&o));
    svc.ok(&["exec", "-d", "ex", "sh", "-c", "echo d > /tmp/d"]);
    assert!(common::eventually(5, || svc
        .docker(&["exec", "ex", "cat", "/tmp/d"])
        .stdout
        == b"d\n"));
    let o = svc.docker(&["exec", "nosuch", "true"]);
    assert!(
        !o.status.success() && stderr(&o).to_lowercase().contains("no such"),
        "{}",
        stderr(&o)
    );

    // Terminals: exec -it and run -it get a pty, typed input and the exit code.
    let (out, code) = in_pty(
        &svc,
        "exec -it ex sh -c 'tty; read x; echo typed-$x; exit 5'",
        "/dev/pts/",
        "abc\r",
    );
    assert_eq!(code, Some(5), "{out}");
    assert!(
        out.contains("/dev/pts/") && out.contains("typed-abc"),
        "{out}"
    );
    let (out, code) = in_pty(
        &svc,
        &format!("run --rm -it {IMAGE} sh"),
        "# ",
        "echo in-$((40+2)); exit 9\r",
    );
    assert_eq!(code, Some(9), "{out}");
    assert!(out.contains("in-42"), "{out}");
    svc.ok(&["rm", "-f", "ex"]);
}

#[test]
fn docker_admin_verbs() {
    if !ready("docker_admin_verbs") {
        return;
    }
    let env = Env::new();
    let svc = Service::start(&env, &sock_host(env.root.path()), &[]);
    svc.ok(&["run", "-d", "--name", "tp", IMAGE, "sleep", "60"]);
    // The host's ps -ef rows of the container's processes (dockerd's default), and ps's
    // own options when given.
    let top = svc.ok(&["top", "tp"]);
    assert!(
        top.starts_with("UID") && top.contains("STIME") && top.contains("sleep 60"),
        "{top}"
    );
    assert_eq!(
        top.lines().count(),
        2,
        "only the container's process: {top}"
    );
    let custom = svc.ok(&["top", "tp", "-o", "pid,args"]);
    let lines: Vec<&str> = custom.lines().collect();
    assert_eq!(lines.len(), 2, "{custom}");
    assert!(
        lines[0].starts_with("PID") && lines[1].ends_with("sleep 60"),
        "{custom}"
    );
    let o = svc.docker(&["top", "tp", "-o", "comm"]);
    assert!(
        !o.status.success() && stderr(&o).contains("no PID column"),
        "{}",
        stderr(&o)
    );
    let mine = env.ok(&["top", "tp", "-o", "pid,args"]);
    assert!(
        mine.lines().nth(1).is_some_and(|l| l.ends_with("sleep 60")),
        "{mine}"
    );
    svc.ok(&["pause", "tp"]);
    assert!(svc
        .ok(&["ps", "--format", "{{.Status}}"])
        .contains("(Paused)"));
    assert!(
        !svc.docker(&["pause", "tp"]).status.success(),
        "pausing twice"
    );
    svc.ok(&["unpause", "tp"]);
    svc.ok(&["rename", "tp", "tp2"]);
    assert_eq!(svc.ok(&["ps", "--format", "{{.Names}}"]).trim(), "tp2");
    assert!(env.ok(&["ps"]).contains("tp2"), "the CLI sees the rename");
    svc.ok(&["run", "--name", "done1", IMAGE, "true"]);
    let pruned = svc.ok(&["container", "prune", "-f"]);
    assert!(pruned.contains("Deleted Containers:"), "{pruned}");
    let names = svc.ok(&["ps", "-a", "--format", "{{.Names}}"]);
    assert_eq!(names.trim(), "tp2", "prune removed only the stopped one");
    svc.ok(&["network", "create", "pn"]);
    svc.ok(&["network", "create", "--internal", "pin"]);
    assert_eq!(
        svc.ok(&["network", "inspect", "-f", "{{.Internal}}", "pin", "pn"]),
        "true\nfalse\n"
    );
    svc.ok(&["network", "rm", "pin"]);
    let third = std::process::id() % 200 + 20;
    svc.ok(&[
        "network",
        "create",
        "--subnet",
        &format!("10.238.{third}.0/24"),
        "--gateway",
        &format!("10.238.{third}.200"),
        "--ip-range",
        &format!("10.238.{third}.64/26"),
        "pgw",
    ]);
    assert_eq!(
        svc.ok(&[
            "network",
            "inspect",
            "-f",
            "{{(index .IPAM.Config 0).Gateway}} {{(index .IPAM.Config 0).IPRange}}",
            "pgw"
        ]),
        format!("10.238.{third}.200 10.238.{third}.64/26\n")
    );
    svc.ok(&["network", "rm", "pgw"]);
    svc.ok(&["volume", "create", "pv"]);
    assert!(svc.ok(&["network", "prune", "-f"]).contains("pn"));
    svc.ok(&["volume", "prune", "-f"]);
    assert!(
        svc.ok(&["volume", "ls", "-q"]).contains("pv"),
        "a named volume survives prune"
    );
    svc.ok(&["volume", "rm", "pv"]);
    // Stats: one sample, Docker's fields, the limit given at run.
    svc.ok(&[
        "run", "-d", "--name", "st", "-m", "64m", IMAGE, "sleep", "60",
    ]);
    let line = svc.ok(&[
        "stats",
        "--no-stream",
        "--format",
        "{{.Name}} {{.MemUsage}} {{.PIDs}}",
        "st",
    ]);
    assert!(
        line.starts_with("st ") && line.contains("/ 64MiB") && line.trim_end().ends_with(" 1"),
        "{line}"
    );
    svc.ok(&["rm", "-f", "tp2", "st"]);
    // The guards of the containers started here (and the trash reaper) were the service's
    // children: it reaps them, so none stays a zombie.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    loop {
        let z = svc.zombie_children();
        if z.is_empty() {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the service left zombie children: {z:?}"
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
}

#[test]
fn docker_cp_both_ways() {
    if !ready("docker_cp_both_ways") {
        return;
    }
    let env = Env::new();
    let svc = Service::start(&env, &sock_host(env.root.path()), &[]);
    svc.ok(&[
        "run",
        "-d",
        "--name",
        "cp1",
        IMAGE,
        "sh",
        "-c",
        "mkdir -p /srv/d; echo one > /srv/d/a; echo two > /srv/b; sleep 60",
    ]);
    assert!(common::eventually(5, || svc
        .docker(&["exec", "cp1", "test", "-f", "/srv/b"])
        .status
        .success()));
    let out = tempfile::tempdir().unwrap();
    let o = out.path().display().to_string();
    svc.ok(&["cp", "cp1:/srv/b", &format!("{o}/")]);
    svc.ok(&["cp", "cp1:/srv/d", &o]);
    svc.ok(&["cp", "cp1:/srv/b", &format!("{o}/renamed")]);
    let read = |p: &str| std::fs::read_to_string(out.path().join(p)).unwrap_or_default();
    assert_eq!(
        (read("b"), read("d/a"), read("renamed")),
        ("two\n".into(), "one\n".into(), "two\n".into())
    );
    std::fs::create_dir_all(out.path().join("in/sub")).unwrap();
    std::fs::write(out.path().join("in/sub/f"), "deep\n").unwrap();
    std::fs::write(out.path().join("f.txt"), "local\n").unwrap();
    svc.ok(&["cp", &format!("{o}/f.txt"), "cp1:/srv/"]);
    svc.ok(&["cp", &format!("{o}/in"), "cp1:/srv/"]);
    svc.ok(&["cp", &format!("{o}/f.txt"), "cp1:/srv/new.txt"]);
    let got = svc.ok(&[
        "exec",
        "cp1",
        "cat",
        "/srv/f.txt",
        "/srv/in/sub/f",
        "/srv/new.txt",
    ]);
    assert_eq!(got, "local\ndeep\nlocal\n");
    let e = svc.docker(&["cp", "cp1:/nonexist", &o]);
    assert!(
        !e.status.success() && stderr(&e).contains("/nonexist"),
        "{}",
        stderr(&e)
    );
    // Out of a stopped container too.
    svc.ok(&["stop", "-t", "0", "cp1"]);
    svc.ok(&["cp", "cp1:/srv/new.txt", &format!("{o}/after-stop")]);
    assert_eq!(read("after-stop"), "local\n");
    svc.ok(&["rm", "cp1"]);
}

#[test]
fn docker_update_and_cpu_flags() {
    if !ready("docker_update_and_cpu_flags") {
        return;
    }
    let env = Env::new();
    let svc = Service::start(&env, &sock_host(env.root.path()), &[]);
    svc.ok(&[
        "run",
        "-d",
        "--name",
        "up",
        "--cpu-shares",
        "512",
        "--cpuset-cpus",
        "0",
        IMAGE,
        "sleep",
        "60",
    ]);
    let hc = env.ok(&[
        "inspect",
        "-f",
        "{{.HostConfig.CpuShares}} {{.HostConfig.CpusetCpus}}",
        "up",
    ]);
    assert_eq!(hc.trim(), "512 0", "create mapped the cpu fields");
    let out = svc.ok(&[
        "update",
        "--memory",
        "64m",
        "--memory-swap",
        "128m",
        "--cpus",
        "0.5",
        "--pids-limit",
        "40",
        "--restart",
        "on-failure:2",
        "up",
    ]);
    assert_eq!(out.trim(), "up");
    let got = env.ok(&[
        "inspect",
        "-f",
        "{{.HostConfig.Memory}} {{.HostConfig.NanoCpus}} {{.HostConfig.PidsLimit}} {{.HostConfig.RestartPolicy.Name}} {{.HostConfig.RestartPolicy.MaximumRetryCount}}",
        "up",
    ]);
    assert_eq!(got.trim(), "67108864 500000000 40 on-failure 2");
    // Applied to the live container: its own cgroup says so.
    let pids = env.ok(&["exec", "up", "cat", "/sys/fs/cgroup/pids/pids.max"]);
    let pids = if pids.trim().is_empty() {
        env.ok(&["exec", "up", "cat", "/sys/fs/cgroup/pids.max"])
    } else {
        pids
    };
    assert_eq!(pids.trim(), "40");
    // What gcr cannot update is refused by name; a bad value by Docker's message.
    let out = svc.docker(&["update", "--kernel-memory", "10m", "up"]);
    assert!(!out.status.success());
    let out = svc.docker(&["update", "--memory", "1m", "up"]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("Minimum memory limit"),
        "{}",
        stderr(&out)
    );
    svc.ok(&["rm", "-f", "up"]);
    // The memory and block I/O tuning flags: applied, in inspect, Docker's warning for
    // what the host cannot apply (printed by the docker CLI from create's Warnings).
    let v2 = Path::new("/sys/fs/cgroup/cgroup.controllers").exists();
    let (dev, numbers) = common::block_device().expect("a block device in /sys/block");
    let out = svc.docker(&[
        "run",
        "-d",
        "--name",
        "tu",
        "-m",
        "128m",
        "--memory-reservation",
        "64m",
        "--oom-kill-disable",
        "--blkio-weight",
        "300",
        "--device-read-bps",
        &format!("{dev}:1mb"),
        IMAGE,
        "sleep",
        "60",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let id = stdout(&out).trim().to_string();
    let weights = common::blkio_weights();
    assert_eq!(
        stderr(&out).contains("WARNING: Your kernel does not support Block I/O weight"),
        v2 || !weights,
        "{}",
        stderr(&out)
    );
    let hc = svc.ok(&[
        "inspect",
        "-f",
        "{{.HostConfig.MemoryReservation}} {{json .HostConfig.BlkioDeviceReadBps}}",
        "tu",
    ]);
    assert_eq!(
        hc.trim(),
        format!("67108864 [{{\"Path\":\"{dev}\",\"Rate\":1048576}}]")
    );
    let (file, rbps) = if v2 {
        ("memory.low", common::group_file(&id, "blkio", "io.max"))
    } else {
        let f = common::group_file(&id, "blkio", "blkio.throttle.read_bps_device");
        ("memory.soft_limit_in_bytes", f)
    };
    assert!(
        rbps.contains(&numbers) && rbps.contains("1048576"),
        "{rbps}"
    );
    svc.ok(&["update", "--memory-reservation", "32m", "tu"]);
    assert_eq!(common::group_file(&id, "memory", file), "33554432");
    svc.ok(&["rm", "-f", "tu"]);
}

#[test]
fn docker_system_df() {
    if !ready("docker_system_df") {
        return;
    }
    let env = Env::new();
    let svc = Service::start(&env, &sock_host(env.root.path()), &[]);
    svc.ok(&[
        "run",
        "--name",
        "dfc",
        "-v",
        "dfv:/data",
        IMAGE,
        "sh",
        "-c",
        "head -c 1048576 /dev/zero > /big; head -c 2097152 /dev/zero > /data/v",
    ]);
    let sock = env.root.path().join("api").join("gcr.sock");
    let (code, body) = curl(&sock, "GET", "/v1.41/system/df", None);
    assert_eq!(code, "200", "{body}");
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    let c = &v["Containers"][0];
    assert_eq!(c["Names"][0], "/dfc");
    let rw = c["SizeRw"].as_u64().unwrap();
    assert!(
        (1 << 20..2 << 20).contains(&rw),
        "the writable layer holds /big: {rw}"
    );
    // docker inspect -s: the same sizes on the container's own document.
    let sizes = svc.ok(&["inspect", "-s", "-f", "{{.SizeRw}} {{.SizeRootFs}}", "dfc"]);
    let sizes: Vec<u64> = sizes
        .split_whitespace()
        .map(|n| n.parse().unwrap())
        .collect();
    assert_eq!(sizes[0], rw, "inspect -s");
    assert!(sizes[1] > rw, "SizeRootFs adds the image: {sizes:?}");
    let vol = &v["Volumes"][0];
    assert_eq!(vol["Name"], "dfv");
    assert_eq!(vol["UsageData"]["RefCount"], 1);
    assert!(vol["UsageData"]["Size"].as_u64().unwrap() >= 2 << 20);
    let img = &v["Images"][0];
    assert_eq!(img["Containers"], 1);
    assert!(img["Size"].as_u64().unwrap() > 0);
    // LayersSize covers every byte of the images (layers and configs) once: the CLI's
    // reclaimable figure (LayersSize less the used images' unique bytes) is never negative,
    // and with one image it is that image's size.
    let layers = v["LayersSize"].as_u64().unwrap();
    let images = v["Images"].as_array().unwrap();
    let unique_used: u64 = images
        .iter()
        .filter(|i| i["Containers"].as_u64().unwrap() > 0)
        .map(|i| i["Size"].as_u64().unwrap() - i["SharedSize"].as_u64().unwrap())
        .sum();
    assert!(
        layers >= unique_used,
        "LayersSize {layers} < {unique_used}: {body}"
    );
    if images.len() == 1 {
        assert_eq!(layers, img["Size"].as_u64().unwrap(), "{body}");
    }
    // The docker CLI's own tables over it.
    let t = svc.ok(&["system", "df"]);
    let row = |k: &str| -> Vec<String> {
        t.lines()
            .find(|l| l.starts_with(k))
            .unwrap_or_else(|| panic!("no {k} row: {t}"))
            .split_whitespace()
            .map(str::to_string)
            .collect()
    };
    assert_eq!(row("Containers")[1], "1", "{t}");
    assert!(
        !row("Images")[4].starts_with('-'),
        "negative reclaimable: {t}"
    );
    assert_eq!(row("Local Volumes")[2], "1", "{t}");
    let verbose = svc.ok(&["system", "df", "-v"]);
    assert!(
        verbose.contains("dfc") && verbose.contains("dfv"),
        "{verbose}"
    );
    // The CLI reports the same sizes from the same engine function.
    let mine = env.ok(&["system", "df", "-v"]);
    assert!(mine.contains("dfc") && mine.contains("dfv"), "{mine}");
}

#[test]
fn docker_diff_export_commit_import() {
    if !ready("docker_diff_export_commit_import") {
        return;
    }
    let env = Env::new();
    let svc = Service::start(&env, &sock_host(env.root.path()), &[]);
    svc.ok(&[
        "run",
        "--name",
        "dc",
        IMAGE,
        "sh",
        "-c",
        "echo hi > /new && rm /bin/ls",
    ]);
    let diff = svc.ok(&["diff", "dc"]);
    assert!(diff.lines().any(|l| l == "A /new"), "{diff}");
    assert!(diff.lines().any(|l| l == "D /bin/ls"), "{diff}");
    let tar = env.root.path().join("dc.tar");
    svc.ok(&["export", "-o", tar.to_str().unwrap(), "dc"]);
    let list = stdout(&Command::new("tar").arg("tf").arg(&tar).output().unwrap());
    assert!(
        list.lines().any(|l| l.trim_start_matches("./") == "new"),
        "{list}"
    );
    assert!(
        !list.lines().any(|l| l.trim_start_matches("./") == "bin/ls"),
        "a deleted file is not exported"
    );
    let id = svc.ok(&["commit", "-c", "ENV X=1", "-m", "from api", "dc", "img:c"]);
    assert!(id.trim().starts_with("sha256:"), "{id}");
    let out = svc.ok(&["run", "--rm", "img:c", "sh", "-c", "cat /new; echo $X"]);
    assert_eq!(out, "hi\n1\n");
    let e = svc.docker(&["export", "nosuch"]);
    assert!(!e.status.success());
    assert!(stderr(&e).contains("No such container"), "{}", stderr(&e));

    // docker import of the export (gzip'd too), with changes and a message; a URL source
    // and a tarball that is not one are refused, leaving no image.
    let id = svc.ok(&[
        "import",
        "-c",
        "ENV Y=2",
        "-c",
        "CMD [\"cat\", \"/new\"]",
        "-m",
        "imported",
        tar.to_str().unwrap(),
        "img:imported",
    ]);
    assert!(id.trim().starts_with("sha256:"), "{id}");
    assert_eq!(svc.ok(&["run", "--rm", "img:imported"]), "hi\n");
    assert_eq!(
        svc.ok(&["run", "--rm", "img:imported", "sh", "-c", "echo $Y"]),
        "2\n"
    );
    let gz = env.root.path().join("dc.tar.gz");
    let o = Command::new("sh")
        .arg("-c")
        .arg(format!("gzip -c {} > {}", tar.display(), gz.display()))
        .output()
        .unwrap();
    assert!(o.status.success());
    svc.ok(&["import", gz.to_str().unwrap(), "img:gz"]);
    assert_eq!(svc.ok(&["run", "--rm", "img:gz", "cat", "/new"]), "hi\n");
    let before = svc.ok(&["images", "-q"]);
    svc.fails(
        &["import", "http://127.0.0.1:9/x.tar", "img:url"],
        "fetches no URL",
    );
    let junk = env.root.path().join("junk.tar");
    std::fs::write(&junk, b"not a tarball at all").unwrap();
    let o = svc.docker(&["import", junk.to_str().unwrap(), "img:junk"]);
    assert!(!o.status.success(), "{}", stdout(&o));
    assert_eq!(
        svc.ok(&["images", "-q"]),
        before,
        "a failed import left an image"
    );
}

/// dockerd's detach keys on a hijacked attach (docker-py's raw attach socket): on a tty's
/// stdin the sequence (`detachKeys`, here ctrl-a,d) ends the attach and the container runs
/// on; bytes before it reach the container; a bad sequence is a 400 before any upgrade.
#[test]
fn attach_detach_keys() {
    let script = r#"
import sys, time, docker
c = docker.DockerClient(base_url=sys.argv[1])
d = c.containers.run(sys.argv[2], ["sh"], detach=True, tty=True, stdin_open=True, name="detachme")
s = c.api.attach_socket(d.id, params={"stdin": 1, "stdout": 1, "stream": 1, "detachKeys": "ctrl-a,d"})
sock = s._sock
sock.settimeout(10)
sock.sendall(b"echo marker-$((40+2))\n")
buf = b""
deadline = time.time() + 10
while b"marker-42" not in buf and time.time() < deadline:
    buf += sock.recv(4096)
assert b"marker-42" in buf, buf
sock.sendall(b"\x01d")
while sock.recv(4096):
    pass
d.reload()
assert d.status == "running", d.status
try:
    c.api.attach_socket(d.id, params={"stdin": 1, "stream": 1, "detachKeys": "ctrl-1"})
    raise SystemExit("a bad detachKeys was accepted")
except docker.errors.APIError as e:
    assert e.status_code == 400 and "detachKeys" in str(e), e
d.remove(force=True)
print("detach ok")
"#;
    py_test("attach_detach_keys", script, "detach ok");
}
