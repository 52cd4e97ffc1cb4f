//! docker-compose 1.29 with a service on two networks (root): `web` is on `front` and
//! `back` (an alias `app` on back), `db` only on back, `proxy` only on front. compose
//! creates web on its first network and connects the second before the start; web then
//! reaches db over back and proxy over front, while proxy and db do not know each other's
//! names. Up, a second up, and down leave nothing behind.

use super::*;

const TWO_NETS: &str = r#"version: "2.4"
services:
  db:
    image: test/busybox:1
    command: ["httpd", "-f", "-p", "5432", "-h", "/www"]
    volumes:
      - ./db:/www:ro
    networks: [back]
  proxy:
    image: test/busybox:1
    command: ["httpd", "-f", "-p", "80", "-h", "/www"]
    volumes:
      - ./proxy:/www:ro
    networks: [front]
  web:
    image: test/busybox:1
    command: ["sleep", "100000"]
    networks:
      front:
      back:
        aliases: [app]
    depends_on: [db, proxy]
networks:
  front:
  back:
"#;

/// `docker exec CONTAINER sh -c SCRIPT` through the service, retried for a few seconds
/// (the servers start with the containers): its output once it succeeds.
fn exec_until(svc: &Service, container: &str, script: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let o = svc.docker(&["exec", container, "sh", "-c", script]);
        if o.status.success() {
            return stdout(&o);
        }
        assert!(
            Instant::now() < deadline,
            "{script} in {container} kept failing: {}{}",
            stdout(&o),
            stderr(&o)
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn compose_service_on_two_networks() {
    if !need_root("compose_service_on_two_networks")
        || !need_tools(
            "compose_service_on_two_networks",
            &["docker", "docker-compose"],
        )
    {
        return;
    }
    let env = Env::new();
    let svc = Service::start(&env, &sock_host(env.root.path()), &[]);
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("docker-compose.yml"), TWO_NETS).unwrap();
    for (site, text) in [("db", "from db\n"), ("proxy", "from proxy\n")] {
        std::fs::create_dir_all(dir.path().join(site)).unwrap();
        std::fs::write(dir.path().join(site).join("index.html"), text).unwrap();
    }
    let c = Compose {
        svc: &svc,
        dir: dir.path(),
        project: "gcrmn",
        port: free_port(),
    };
    let out = c.ok(1, &["up", "-d"]);
    assert!(out.contains("gcrmn_web_1"), "{out}");
    let nets = svc.ok(&[
        "inspect",
        "--format",
        "{{range $k, $v := .NetworkSettings.Networks}}{{$k}}={{$v.IPAddress}} {{end}}",
        "gcrmn_web_1",
    ]);
    assert!(
        nets.contains("gcrmn_front=10.") && nets.contains("gcrmn_back=10."),
        "{nets}"
    );
    // web reaches db over back and proxy over front, by their service names.
    let got = exec_until(&svc, "gcrmn_web_1", "wget -qO- http://db:5432/");
    assert_eq!(got, "from db\n");
    let got = exec_until(&svc, "gcrmn_web_1", "wget -qO- http://proxy:80/");
    assert_eq!(got, "from proxy\n");
    let links = svc.ok(&["exec", "gcrmn_web_1", "ip", "-o", "-4", "addr"]);
    assert!(links.contains("eth0") && links.contains("eth1"), "{links}");
    // db knows web by its alias on back; proxy and db share no network.
    exec_until(&svc, "gcrmn_db_1", "ping -c1 -W2 app >/dev/null");
    svc.fails(
        &["exec", "gcrmn_proxy_1", "wget", "-qO-", "http://db:5432/"],
        "bad address",
    );
    // A second up finds everything as configured.
    c.ok(1, &["up", "-d"]);
    let got = exec_until(&svc, "gcrmn_web_1", "wget -qO- http://db:5432/");
    assert_eq!(got, "from db\n");

    c.ok(1, &["down"]);
    assert_eq!(env.ok(&["ps", "-aq"]).trim(), "");
    let ls = env.ok(&["network", "ls"]);
    assert!(!ls.contains("gcrmn_"), "{ls}");
}
