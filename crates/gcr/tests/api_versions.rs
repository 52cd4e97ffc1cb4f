//! API versions older than 1.41 (issue 20): an old client gets the shapes dockerd gives
//! it — the docker CLI pinned to 1.24 (DOCKER_API_VERSION) runs, lists and removes as it
//! does against dockerd; raw requests at /v1.24…/v1.40 get the fields and behaviours of
//! their version (info, create's AutoRemove, networks' Containers, wait without a
//! condition, build without aux, update without PidsLimit, stats without one-shot,
//! images' legacy `filter=`); versions outside 1.24–1.41 are refused as dockerd refuses
//! them.

mod common;

use std::path::Path;
use std::process::Command;

use common::servers::need_tools;
use common::service::{sock_host, Service};
use common::{need_root, stdout, Env, IMAGE};
use serde_json::Value;

/// `curl` on the service's socket: (status, content type, body).
fn curl(sock: &Path, method: &str, path: &str, body: Option<&str>) -> (u16, String, String) {
    let mut c = Command::new("curl");
    c.args([
        "-s",
        "-o",
        "-",
        "-w",
        "\n%{http_code} %{content_type}",
        "-X",
        method,
    ])
    .arg("--unix-socket")
    .arg(sock)
    .arg(format!("http://gcr{path}"));
    if let Some(b) = body {
        c.args(["-H", "Content-Type: application/json", "--data-binary", b]);
    }
    let out = stdout(&c.output().expect("curl"));
    let (body, tail) = out.rsplit_once('\n').unwrap_or(("", &out));
    let (code, ctype) = tail.split_once(' ').unwrap_or((tail, ""));
    (
        code.parse().unwrap_or(0),
        ctype.to_string(),
        body.to_string(),
    )
}

fn json_of(path: &str, r: &(u16, String, String)) -> Value {
    assert_eq!(r.0, 200, "{path}: {}", r.2);
    serde_json::from_str(&r.2).unwrap_or_else(|e| panic!("{path}: {e}: {}", r.2))
}

#[test]
fn old_clients_get_their_versions_shapes() {
    if !need_root("old_clients_get_their_versions_shapes")
        || !need_tools(
            "old_clients_get_their_versions_shapes",
            &["docker", "curl", "tar"],
        )
    {
        return;
    }
    let env = Env::new();
    let host = sock_host(env.root.path());
    let svc = Service::start(&env, &host, &[]);
    let sock = svc.socket();
    let get = |p: &str| json_of(p, &curl(&sock, "GET", p, None));

    // Outside 1.24–1.41: dockerd's refusals (text before 1.24, JSON after).
    let (code, ctype, body) = curl(&sock, "GET", "/v1.12/_ping", None);
    assert_eq!(code, 400);
    assert!(ctype.starts_with("text/plain"), "{ctype}");
    assert!(body.starts_with("client version 1.12 is too old"), "{body}");
    let (code, _, body) = curl(&sock, "GET", "/v1.99/_ping", None);
    assert_eq!(code, 400);
    let v: Value = serde_json::from_str(&body).unwrap();
    assert!(v["message"].as_str().unwrap().contains("too new"), "{body}");

    // info: ExecutionDriver and bare security option names before 1.25.
    let old = get("/v1.24/info");
    assert_eq!(old["ExecutionDriver"], "<not supported>");
    assert_eq!(old["SecurityOptions"], serde_json::json!(["seccomp"]));
    let new = get("/v1.41/info");
    assert!(new.get("ExecutionDriver").is_none(), "{new}");
    assert!(new["SecurityOptions"][0]
        .as_str()
        .unwrap()
        .starts_with("name="));

    // The docker CLI pinned to 1.24: --rm is the client's job (dockerd ignores AutoRemove
    // before 1.25), wait has no condition, images NAME is the legacy filter.
    let old_cli = |args: &[&str]| {
        let mut c = svc.docker_cmd(args);
        c.env("DOCKER_API_VERSION", "1.24");
        c.output().expect("docker")
    };
    let o = old_cli(&["version", "--format", "{{.Client.APIVersion}}"]);
    assert_eq!(stdout(&o).trim(), "1.24");
    let o = old_cli(&[
        "run",
        "--rm",
        "--name",
        "old-rm",
        IMAGE,
        "sh",
        "-c",
        "echo hi; exit 3",
    ]);
    assert_eq!(o.status.code(), Some(3), "{o:?}");
    assert_eq!(stdout(&o), "hi\n");
    assert!(common::eventually(10, || svc
        .ok(&["ps", "-aq", "--filter", "name=old-rm"])
        .trim()
        .is_empty()));
    let o = old_cli(&[
        "images",
        "--format",
        "{{.Repository}}:{{.Tag}}",
        "test/busybox",
    ]);
    assert_eq!(stdout(&o).trim(), IMAGE, "{o:?}");
    let o = old_cli(&["images", "--format", "{{.Repository}}", "no/such"]);
    assert_eq!(stdout(&o).trim(), "", "{o:?}");

    // create before 1.25: AutoRemove is not kept.
    let body = format!(
        r#"{{"Image": "{IMAGE}", "Cmd": ["sh", "-c", "exit 4"], "HostConfig": {{"AutoRemove": true}}}}"#
    );
    let (code, _, out) = curl(
        &sock,
        "POST",
        "/v1.24/containers/create?name=old-ar",
        Some(&body),
    );
    assert_eq!(code, 201, "{out}");
    assert_eq!(
        get("/v1.24/containers/old-ar/json")["HostConfig"]["AutoRemove"],
        false
    );
    let (code, _, out) = curl(
        &sock,
        "POST",
        "/v1.41/containers/create?name=new-ar",
        Some(&body),
    );
    assert_eq!(code, 201, "{out}");
    assert_eq!(
        get("/containers/new-ar/json")["HostConfig"]["AutoRemove"],
        true
    );
    svc.ok(&["rm", "new-ar"]);

    // wait before 1.30: the condition is ignored (next-exit of an exited container would
    // wait forever at 1.30+), the answer comes at once with the exit code.
    svc.ok(&["start", "old-ar"]);
    assert_eq!(svc.ok(&["wait", "old-ar"]).trim(), "4");
    let r = curl(
        &sock,
        "POST",
        "/v1.29/containers/old-ar/wait?condition=next-exit",
        None,
    );
    assert_eq!(json_of("wait", &r)["StatusCode"], 4);

    // networks: each network's Containers before 1.28, {} after (the list only).
    svc.ok(&["network", "create", "vnet"]);
    svc.ok(&[
        "run",
        "-d",
        "--name",
        "v-run",
        "--network",
        "vnet",
        IMAGE,
        "sleep",
        "60",
    ]);
    let id = svc
        .ok(&["inspect", "-f", "{{.Id}}", "v-run"])
        .trim()
        .to_string();
    let named = |list: &Value| {
        list.as_array()
            .unwrap()
            .iter()
            .find(|n| n["Name"] == "vnet")
            .cloned()
            .unwrap()
    };
    let old = named(&get("/v1.27/networks"));
    assert!(old["Containers"].get(&id).is_some(), "{old}");
    let new = named(&get("/v1.41/networks"));
    assert_eq!(new["Containers"], serde_json::json!({}), "{new}");

    // update before 1.40: PidsLimit is ignored (the memory limit still applies).
    let upd = r#"{"PidsLimit": 77, "Memory": 100000000, "MemorySwap": -1}"#;
    let (code, _, out) = curl(&sock, "POST", "/v1.39/containers/v-run/update", Some(upd));
    assert_eq!(code, 200, "{out}");
    let hc = &get("/containers/v-run/json")["HostConfig"];
    assert_eq!(hc["Memory"], 100000000, "{hc}");
    assert_ne!(hc["PidsLimit"], 77, "{hc}");
    let (code, _, out) = curl(&sock, "POST", "/v1.40/containers/v-run/update", Some(upd));
    assert_eq!(code, 200, "{out}");
    assert_eq!(get("/containers/v-run/json")["HostConfig"]["PidsLimit"], 77);

    // stats: one-shot (no previous sample) only from 1.41.
    let one = get("/v1.41/containers/v-run/stats?stream=false&one-shot=true");
    assert_eq!(
        one["precpu_stats"]["system_cpu_usage"]
            .as_u64()
            .unwrap_or(0),
        0,
        "{one}"
    );
    let two = get("/v1.40/containers/v-run/stats?stream=false&one-shot=true");
    assert!(
        two["precpu_stats"]["system_cpu_usage"]
            .as_u64()
            .unwrap_or(0)
            > 0,
        "{two}"
    );
    svc.ok(&["rm", "-f", "v-run"]);
    svc.ok(&["network", "rm", "vnet"]);

    // build: the aux line with the image ID from 1.30 on.
    let ctx = env.root.path().join("ctx");
    std::fs::create_dir_all(&ctx).unwrap();
    std::fs::write(ctx.join("Dockerfile"), format!("FROM {IMAGE}\nLABEL v=1\n")).unwrap();
    let tar = env.root.path().join("ctx.tar");
    assert!(Command::new("tar")
        .arg("-cf")
        .arg(&tar)
        .arg("-C")
        .arg(&ctx)
        .arg("Dockerfile")
        .status()
        .unwrap()
        .success());
    let build = |ver: &str| {
        let o = Command::new("curl")
            .args([
                "-s",
                "-X",
                "POST",
                "-H",
                "Content-Type: application/x-tar",
                "--data-binary",
            ])
            .arg(format!("@{}", tar.display()))
            .arg("--unix-socket")
            .arg(&sock)
            .arg(format!("http://gcr/{ver}/build?t=v/built:{}", &ver[3..]))
            .output()
            .unwrap();
        stdout(&o)
    };
    let old = build("v1.29");
    assert!(
        old.contains("Successfully built") && !old.contains("\"aux\""),
        "{old}"
    );
    let new = build("v1.30");
    assert!(new.contains("\"aux\":{\"ID\":\"sha256:"), "{new}");
    svc.ok(&["rm", "old-ar"]);
}
