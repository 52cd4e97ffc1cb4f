//! docker-compose (Debian's 1.29, on python3-docker) and `docker network connect|disconnect`
//! against `gcr system service` (issue 20). A three-service project — `db` (busybox httpd
//! CGI scripts storing records in a file on a named volume, with a healthcheck), `worker`
//! (waits for `db` to be healthy, then stores a record through the name `db` on the user
//! network), `web` (publishes a loopback port and serves what `db` holds) — comes up,
//! serves, goes down and comes back with the volume's data; `down -v` removes everything.
//! The service, the containers and the bridges are removed by guards even when a test fails.

mod common;
mod compose_multi;

use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::servers::{free_port, need_tools};
use common::service::{sock_host, Service};
use common::{need_root, stderr, stdout, Env, IMAGE};

const COMPOSE: &str = r#"version: "2.4"
services:
  db:
    image: test/busybox:1
    command: ["httpd", "-f", "-p", "5432", "-h", "/www"]
    volumes:
      - dbdata:/data
      - ./db:/www:ro
    networks: [backend]
    healthcheck:
      test: ["CMD-SHELL", "wget -q -O /dev/null http://127.0.0.1:5432/cgi-bin/get"]
      interval: 1s
      timeout: 2s
      retries: 30
  worker:
    image: test/busybox:1
    command: ["sh", "-c", "wget -q -O- \"http://db:5432/cgi-bin/put?worker-$$RUN\" && exec sleep 100000"]
    environment:
      RUN: "${RUN}"
    networks: [backend]
    logging:
      driver: none
    depends_on:
      db:
        condition: service_healthy
  web:
    image: test/busybox:1
    command: ["httpd", "-f", "-p", "8080", "-h", "/www"]
    volumes:
      - ./web:/www:ro
    ports:
      - "127.0.0.1:${WEB_PORT}:8080"
    networks: [backend]
    mem_limit: 256m
    mem_reservation: 64m
    logging:
      driver: local
      options:
        max-size: 1m
    depends_on: [db]
volumes:
  dbdata:
networks:
  backend:
    driver_opts:
      com.docker.network.driver.mtu: "1400"
"#;

const PUT: &str = "#!/bin/sh\necho \"$QUERY_STRING\" >> /data/records\nprintf 'Content-Type: text/plain\\n\\nstored\\n'\n";
const GET: &str =
    "#!/bin/sh\nprintf 'Content-Type: text/plain\\n\\n'\ntouch /data/records\ncat /data/records\n";
const DATA: &str =
    "#!/bin/sh\nprintf 'Content-Type: text/plain\\n\\n'\nwget -q -O- http://db:5432/cgi-bin/get\n";

fn write_exec(path: &Path, text: &str) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, text).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).unwrap();
}

/// The project directory: the compose file and the two sites' CGI scripts.
fn project(dir: &Path) {
    std::fs::write(dir.join("docker-compose.yml"), COMPOSE).unwrap();
    write_exec(&dir.join("db/cgi-bin/put"), PUT);
    write_exec(&dir.join("db/cgi-bin/get"), GET);
    write_exec(&dir.join("web/cgi-bin/data"), DATA);
    std::fs::write(dir.join("web/index.html"), "hello from web\n").unwrap();
}

struct Compose<'a> {
    svc: &'a Service,
    dir: &'a Path,
    project: &'a str,
    port: u16,
}

impl Compose<'_> {
    fn run(&self, run: u32, args: &[&str]) -> Output {
        Command::new("docker-compose")
            .current_dir(self.dir)
            .env_remove("DOCKER_CONTEXT")
            .env("DOCKER_HOST", &self.svc.host)
            .env("DOCKER_CONFIG", self.svc.config.path())
            .env("COMPOSE_PROJECT_NAME", self.project)
            .env("RUN", run.to_string())
            .env("WEB_PORT", self.port.to_string())
            .args(["--ansi", "never"])
            .args(args)
            .stdin(Stdio::null())
            .output()
            .expect("run docker-compose")
    }

    fn ok(&self, run: u32, args: &[&str]) -> String {
        let o = self.run(run, args);
        assert!(
            o.status.success(),
            "docker-compose {args:?} failed ({:?}):\n{}{}",
            o.status.code(),
            stdout(&o),
            stderr(&o)
        );
        format!("{}{}", stdout(&o), stderr(&o))
    }
}

/// GET http://127.0.0.1:port/path with curl: the body, or None.
fn http_get(port: u16, path: &str) -> Option<String> {
    let o = Command::new("curl")
        .args(["-sf", "--max-time", "3"])
        .arg(format!("http://127.0.0.1:{port}{path}"))
        .output()
        .ok()?;
    o.status.success().then(|| stdout(&o))
}

/// Polls `path` on the web service until its body has every one of `want`.
fn wait_for(port: u16, path: &str, want: &[&str]) -> String {
    let deadline = Instant::now() + Duration::from_secs(40);
    let mut last = String::new();
    while Instant::now() < deadline {
        if let Some(b) = http_get(port, path) {
            if want.iter().all(|w| b.contains(w)) {
                return b;
            }
            last = b;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    panic!("{path} on port {port} never had {want:?}; last answer: {last:?}");
}

fn names(out: &str) -> Vec<String> {
    out.split_whitespace().map(str::to_string).collect()
}

#[test]
fn compose_up_down_up_keeps_the_volume() {
    if !need_root("compose_up_down_up_keeps_the_volume")
        || !need_tools(
            "compose_up_down_up_keeps_the_volume",
            &["docker", "docker-compose", "curl"],
        )
    {
        return;
    }
    let env = Env::new();
    let svc = Service::start(&env, &sock_host(env.root.path()), &[]);
    let dir = tempfile::tempdir().unwrap();
    project(dir.path());
    let c = Compose {
        svc: &svc,
        dir: dir.path(),
        project: "gcrcp",
        port: free_port(),
    };

    let out = c.ok(1, &["up", "-d"]);
    assert!(out.contains("gcrcp_worker_1"), "{out}");
    // The web service answers on its loopback port, and serves what the worker stored in
    // the database by the name `db` (through the web's own lookup of `db`).
    assert_eq!(
        http_get(c.port, "/").as_deref(),
        Some("hello from web\n"),
        "web did not answer"
    );
    wait_for(c.port, "/cgi-bin/data", &["worker-1"]);
    // The network's driver_opts: every container's interface has its MTU.
    let mtu = svc.ok(&["exec", "gcrcp_web_1", "cat", "/sys/class/net/eth0/mtu"]);
    assert_eq!(mtu.trim(), "1400");
    // A second `up` leaves the running project alone: each container's aliases hold its
    // short id, so compose neither recreates nor reconnects it (nor finds the network's
    // options changed: inspect shows them as given).
    let again = c.ok(1, &["up", "-d"]);
    assert_eq!(again.matches("is up-to-date").count(), 3, "{again}");
    // The worker started only once db was healthy.
    let health = svc.ok(&[
        "inspect",
        "--format",
        "{{.State.Health.Status}}",
        "gcrcp_db_1",
    ]);
    assert_eq!(health.trim(), "healthy");
    // Compose's view: three running services, found by their labels.
    let ps = c.ok(1, &["ps", "--services", "--filter", "status=running"]);
    let mut running = names(&ps);
    running.sort();
    assert_eq!(running, ["db", "web", "worker"], "{ps}");
    // The network and the volume carry compose's labels; the db answers to its alias.
    let labels = svc.ok(&[
        "network",
        "inspect",
        "--format",
        "{{index .Labels \"com.docker.compose.network\"}}",
        "gcrcp_backend",
    ]);
    assert_eq!(labels.trim(), "backend");
    let labels = svc.ok(&[
        "volume",
        "inspect",
        "--format",
        "{{index .Labels \"com.docker.compose.volume\"}}",
        "gcrcp_dbdata",
    ]);
    assert_eq!(labels.trim(), "dbdata");
    let aliases = svc.ok(&[
        "inspect",
        "--format",
        "{{json (index .NetworkSettings.Networks \"gcrcp_backend\").Aliases}}",
        "gcrcp_db_1",
    ]);
    assert!(aliases.contains("\"db\""), "{aliases}");
    // Memory reservation and log drivers as compose gives them.
    let web = svc.ok(&[
        "inspect",
        "--format",
        "{{.HostConfig.MemoryReservation}} {{.HostConfig.LogConfig.Type}} {{index .HostConfig.LogConfig.Config \"max-size\"}}",
        "gcrcp_web_1",
    ]);
    assert_eq!(
        web.trim(),
        "67108864 json-file 1m",
        "local is gcr's log as json-file"
    );
    let worker = svc.docker(&["logs", "gcrcp_worker_1"]);
    assert!(
        !worker.status.success() && stderr(&worker).contains("does not support reading"),
        "{}",
        stderr(&worker)
    );

    // Down: containers and the network go, the named volume stays.
    c.ok(1, &["down"]);
    assert_eq!(env.ok(&["ps", "-aq"]).trim(), "", "down left containers");
    assert!(
        !env.ok(&["network", "ls"]).contains("gcrcp_backend"),
        "down left the network"
    );
    assert!(env.ok(&["volume", "ls", "-q"]).contains("gcrcp_dbdata"));
    assert!(
        http_get(c.port, "/").is_none(),
        "web still answers after down"
    );

    // Up again: the first run's record is still in the database, beside the second's.
    c.ok(2, &["up", "-d"]);
    let data = wait_for(c.port, "/cgi-bin/data", &["worker-1", "worker-2"]);
    assert_eq!(
        data.lines().filter(|l| *l == "worker-1").count(),
        1,
        "{data}"
    );

    // Down -v: nothing is left.
    c.ok(2, &["down", "-v"]);
    assert_eq!(env.ok(&["ps", "-aq"]).trim(), "");
    assert!(!env.ok(&["network", "ls"]).contains("gcrcp_"));
    assert!(
        !env.ok(&["volume", "ls", "-q"]).contains("gcrcp_"),
        "down -v left the volume"
    );
}

#[test]
fn docker_network_connect_and_disconnect() {
    if !need_root("docker_network_connect_and_disconnect")
        || !need_tools("docker_network_connect_and_disconnect", &["docker"])
    {
        return;
    }
    let env = Env::new();
    let svc = Service::start(&env, &sock_host(env.root.path()), &[]);
    let third = std::process::id() % 200 + 20;
    let sub = format!("10.232.{third}.0/24");
    let ip = format!("10.232.{third}.77");
    svc.ok(&[
        "network", "create", "--subnet", &sub, "--label", "team=a", "cnet",
    ]);
    svc.ok(&["network", "create", "other"]);
    let ls = svc.ok(&[
        "network",
        "ls",
        "--filter",
        "label=team=a",
        "--format",
        "{{.Name}}",
    ]);
    assert_eq!(ls.trim(), "cnet");

    // A created container on the default bridge leaves it; then it joins cnet with an
    // alias and an address of its choice, which becomes its first network.
    svc.ok(&[
        "create", "--name", "srv", IMAGE, "httpd", "-f", "-p", "8080", "-h", "/etc",
    ]);
    svc.fails(
        &["network", "disconnect", "cnet", "srv"],
        "not connected to network cnet",
    );
    svc.ok(&["network", "disconnect", "bridge", "srv"]);
    svc.fails(
        &["network", "connect", "--ip", "10.9.9.9", "cnet", "srv"],
        "not a container address of network cnet",
    );
    svc.ok(&[
        "network", "connect", "--alias", "files", "--ip", &ip, "cnet", "srv",
    ]);
    svc.fails(
        &["network", "connect", "cnet", "srv"],
        "already exists in network cnet",
    );
    let aliases = svc.ok(&[
        "inspect",
        "--format",
        "{{json .NetworkSettings.Networks.cnet.Aliases}}",
        "srv",
    ]);
    assert_eq!(aliases.trim(), "[\"files\"]");
    svc.ok(&["start", "srv"]);
    let got = svc.ok(&[
        "inspect",
        "--format",
        "{{.NetworkSettings.IPAddress}}",
        "srv",
    ]);
    assert_eq!(got.trim(), ip);
    // Running on a user network, its aliases end with its short id (dockerd's shape).
    let id = svc.ok(&["inspect", "--format", "{{.Id}}", "srv"]);
    let aliases = svc.ok(&[
        "inspect",
        "--format",
        "{{json .NetworkSettings.Networks.cnet.Aliases}}",
        "srv",
    ]);
    assert!(aliases.contains(&id.trim()[..12]), "{aliases}");
    // Docker's network events: the container an attribute of the network's. (The CLI
    // sends `--until 0s` as whole seconds: an event of this second shows from the next.)
    let want = format!("connect {} cnet", id.trim());
    let mut events = String::new();
    let seen = common::eventually(5, || {
        events = svc.ok(&[
            "events",
            "--since",
            "0",
            "--until",
            "0s",
            "--filter",
            "type=network",
            "--filter",
            "network=cnet",
            "--format",
            "{{.Action}} {{.Actor.Attributes.container}} {{.Actor.Attributes.name}}",
        ]);
        events.lines().any(|l| l == want)
    });
    assert!(seen, "{events}");
    // The container's own config change is not shown as a container action (dockerd has
    // none such); the network's event above is Docker's.
    let ctr = svc.ok(&[
        "events",
        "--since",
        "0",
        "--until",
        "0s",
        "--filter",
        "type=container",
        "--format",
        "{{.Action}}",
    ]);
    assert!(!ctr.lines().any(|l| l == "connect"), "{ctr}");

    // A peer reaches it by its alias.
    let out = svc.ok(&[
        "run", "--rm", "--network", "cnet", IMAGE, "sh", "-c",
        "for i in 1 2 3 4 5 6 7 8 9 10; do wget -qO- http://files:8080/hostname && break; sleep 0.2; done",
    ]);
    assert!(!out.trim().is_empty(), "nothing served by the alias");

    // Running: a second network is a second interface at once, with a container that is
    // only on that network in reach by name; disconnect takes it away at once.
    svc.ok(&[
        "run",
        "-d",
        "--name",
        "bonly",
        "--network",
        "other",
        IMAGE,
        "httpd",
        "-f",
        "-p",
        "8080",
        "-h",
        "/etc",
    ]);
    svc.ok(&["network", "connect", "--alias", "second", "other", "srv"]);
    let nets = svc.ok(&[
        "inspect",
        "--format",
        "{{range $k, $v := .NetworkSettings.Networks}}{{$k}}={{$v.IPAddress}} {{end}}",
        "srv",
    ]);
    assert!(
        nets.contains(&format!("cnet={ip}")) && nets.contains("other=10."),
        "{nets}"
    );
    let eth1 = svc.ok(&["exec", "srv", "ip", "-4", "addr", "show", "eth1"]);
    assert!(eth1.contains("inet 10."), "{eth1}");
    let got = svc.ok(&["exec", "srv", "wget", "-qO-", "http://bonly:8080/hostname"]);
    assert!(
        !got.trim().is_empty(),
        "nothing from bonly over the second network"
    );
    let got = svc.ok(&[
        "exec",
        "bonly",
        "wget",
        "-qO-",
        "http://second:8080/hostname",
    ]);
    assert!(
        !got.trim().is_empty(),
        "nothing from srv by its alias on other"
    );
    svc.ok(&["network", "disconnect", "other", "srv"]);
    let out = svc.docker(&["exec", "srv", "ip", "link", "show", "eth1"]);
    assert!(!out.status.success(), "eth1 left: {}", stdout(&out));
    svc.fails(
        &["exec", "srv", "wget", "-qO-", "http://bonly:8080/hostname"],
        "bad address",
    );
    svc.ok(&["rm", "-f", "bonly"]);
    svc.ok(&["network", "disconnect", "cnet", "srv"]);
    let members = svc.ok(&[
        "network",
        "inspect",
        "--format",
        "{{len .Containers}}",
        "cnet",
    ]);
    assert_eq!(members.trim(), "0");
    let out = svc.docker(&[
        "run",
        "--rm",
        "--network",
        "cnet",
        IMAGE,
        "sh",
        "-c",
        "wget -qO- http://files:8080/hostname || echo unreachable",
    ]);
    assert!(stdout(&out).contains("unreachable"), "{}", stdout(&out));
    svc.fails(
        &["network", "disconnect", "cnet", "srv"],
        "not connected to network cnet",
    );
    svc.fails(
        &["network", "connect", "nonet", "srv"],
        "network nonet not found",
    );
    svc.fails(
        &["network", "connect", "cnet", "nosuch"],
        "No such container",
    );

    // `--network-alias` at run: the container's own hosts line has it; the default bridge
    // refuses it, as Docker does.
    let hosts = svc.ok(&[
        "run",
        "--rm",
        "--network",
        "cnet",
        "--network-alias",
        "solo",
        IMAGE,
        "cat",
        "/etc/hosts",
    ]);
    assert!(hosts.contains(" solo"), "{hosts}");
    svc.fails(
        &["run", "--rm", "--network-alias", "solo", IMAGE, "true"],
        "user-defined networks",
    );
    env.fails(
        &["run", "--rm", "--network-alias", "solo", IMAGE, "true"],
        "supported only on user-defined networks",
    );

    // The gcr CLI: the same verbs on a stopped container.
    svc.ok(&["stop", "-t", "1", "srv"]);
    env.ok(&["network", "connect", "--alias", "again", "other", "srv"]);
    let net = env.ok(&["inspect", "--format", "{{.HostConfig.NetworkMode}}", "srv"]);
    assert_eq!(net.trim(), "other");
    env.ok(&["network", "disconnect", "other", "srv"]);
    env.ok(&["rm", "srv"]);
    svc.ok(&["network", "rm", "cnet", "other"]);
}
