//! Networking end to end (root): user networks with name resolution, published ports on
//! 127.0.0.1 (fixed and random), refusal of a taken host port, and no leaked veth, lease,
//! firewall rule or proxy after 100 run/rm cycles. Only 127.0.0.1 and addresses inside
//! namespaces gcr created are contacted. Bridges and rules the tests create are removed
//! by a guard even when a test fails.

mod common;
mod netdns;
mod netipv6;
mod netmacvlan;
mod netmulti;

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::time::Duration;

use common::*;

/// Removes the store's containers, user networks, then its bridges and firewall rules.
struct NetGuard<'a>(&'a Env, Vec<String>);

impl Drop for NetGuard<'_> {
    fn drop(&mut self) {
        if let Ok(out) = self.0.cmd(&["ps", "-aq"]).output() {
            for id in stdout(&out).split_whitespace() {
                let _ = self.0.cmd(&["rm", "-f", id]).output();
            }
        }
        for n in &self.1 {
            let _ = self.0.cmd(&["network", "rm", n]).output();
        }
        if let Ok(out) = self.0.cmd(&["network", "__teardown"]).output() {
            if !out.status.success() {
                eprintln!("network teardown failed: {}", stderr(&out));
            }
        }
    }
}

fn inspect(env: &Env, net: &str) -> serde_json::Value {
    let out = env.ok(&["network", "inspect", net]);
    let v: serde_json::Value = serde_json::from_str(&out).expect("inspect json");
    v[0].clone()
}

/// `gcr inspect` of container `c`, parsed.
fn inspect_ctr(env: &Env, c: &str) -> serde_json::Value {
    let out = env.ok(&["inspect", c]);
    let v: serde_json::Value = serde_json::from_str(&out).expect("inspect json");
    v[0].clone()
}

/// A free TCP port on 127.0.0.1 (bound, read, released).
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

/// GET / from 127.0.0.1:port, retrying while the server starts.
fn http_get(port: u16) -> Option<String> {
    http_get_at("127.0.0.1", port)
}

/// A GET of `/` at `host:port` (loopback of either family), retried for a while.
fn http_get_at(host: &str, port: u16) -> Option<String> {
    let mut body = None;
    eventually(10, || {
        let Ok(mut c) = TcpStream::connect((host, port)) else {
            return false;
        };
        let _ = c.set_read_timeout(Some(Duration::from_secs(5)));
        if c.write_all(b"GET / HTTP/1.0\r\n\r\n").is_err() {
            return false;
        }
        let mut s = String::new();
        if c.read_to_string(&mut s).is_ok() && s.contains("200") {
            body = Some(s);
            return true;
        }
        false
    });
    body
}

const HTTPD: &str =
    "mkdir -p /www && echo hello-gcr > /www/index.html && exec httpd -f -p 8080 -h /www";

#[test]
fn user_network_containers_reach_each_other_by_name() {
    if !need_root("user_network_containers_reach_each_other_by_name") {
        return;
    }
    let env = Env::new();
    let _g = NetGuard(&env, vec!["gcrtestnet".into()]);
    let sub = format!("10.231.{}.0/24", std::process::id() % 200 + 20);
    env.ok(&["network", "create", "--subnet", &sub, "gcrtestnet"]);
    let ls = env.ok(&["network", "ls"]);
    assert!(ls.contains("gcrtestnet") && ls.contains(&sub), "{ls}");
    env.ok(&[
        "run",
        "-d",
        "--name",
        "srv",
        "--network",
        "gcrtestnet",
        "--add-host",
        "extra.test:10.1.2.3",
        IMAGE,
        "sh",
        "-c",
        HTTPD,
    ]);
    env.ok(&[
        "run",
        "-d",
        "--name",
        "peer",
        "--network",
        "gcrtestnet",
        IMAGE,
        "sleep",
        "60",
    ]);
    let info = inspect(&env, "gcrtestnet");
    assert_eq!(
        info["containers"].as_array().map(|a| a.len()),
        Some(2),
        "{info}"
    );
    // The client fetches from the server by name, and pings the other container by name.
    let out = env.ok(&[
        "run", "--rm", "--network", "gcrtestnet", IMAGE, "sh", "-c",
        "for i in 1 2 3 4 5 6 7 8 9 10; do wget -qO- http://srv:8080/ && break; sleep 0.2; done; ping -c1 -W2 peer >/dev/null && echo ping-ok",
    ]);
    assert!(out.contains("hello-gcr"), "wget by name failed: {out}");
    assert!(out.contains("ping-ok"), "ping by name failed: {out}");
    // The first container learnt about the second after it started (hosts kept current).
    let hosts = env.ok(&["exec", "srv", "cat", "/etc/hosts"]);
    assert!(
        hosts.contains("\tpeer") || hosts.contains(" peer"),
        "{hosts}"
    );
    // Its --add-host line survives the rewrite (compose's extra_hosts).
    assert!(hosts.contains("10.1.2.3\textra.test"), "{hosts}");
    // A network in use cannot be removed.
    let out = env.gcr(&["network", "rm", "gcrtestnet"]);
    assert!(
        !out.status.success() && stderr(&out).contains("used by"),
        "{}",
        stderr(&out)
    );
    env.ok(&["rm", "-f", "srv", "peer"]);
    let hosts_gone = inspect(&env, "gcrtestnet");
    assert_eq!(
        hosts_gone["containers"].as_array().map(|a| a.len()),
        Some(0)
    );
    env.ok(&["network", "rm", "gcrtestnet"]);
    assert!(!env
        .gcr(&["network", "inspect", "gcrtestnet"])
        .status
        .success());
}

#[test]
fn published_port_reachable_on_loopback_and_conflict_refused() {
    if !need_root("published_port_reachable_on_loopback_and_conflict_refused") {
        return;
    }
    let env = Env::new();
    let _g = NetGuard(&env, vec![]);
    let port = free_port();
    let map = format!("127.0.0.1:{port}:8080");
    let id = env.ok(&[
        "run", "-d", "--name", "web", "-p", &map, IMAGE, "sh", "-c", HTTPD,
    ]);
    let body = http_get(port).expect("no answer through the published port");
    assert!(body.contains("hello-gcr"), "{body}");
    let ports = env.ok(&["port", "web"]);
    assert_eq!(ports.trim(), format!("8080/tcp -> 127.0.0.1:{port}"));
    // `port C PORT[/proto]`: only its host address; an unpublished port is exit 1.
    assert_eq!(
        env.ok(&["port", "web", "8080"]).trim(),
        format!("127.0.0.1:{port}")
    );
    assert_eq!(
        env.ok(&["port", "web", "8080/tcp"]).trim(),
        format!("127.0.0.1:{port}")
    );
    // ps shows it in PORTS (all containers' endpoints are read in one query).
    env.ok(&["create", "--name", "idle", IMAGE, "true"]);
    let rows = env.ok(&["ps", "-a", "--format", "{{.Names}} {{.Ports}}"]);
    assert!(
        rows.lines()
            .any(|l| l == format!("web 127.0.0.1:{port}->8080/tcp")),
        "{rows}"
    );
    assert!(rows.lines().any(|l| l.trim() == "idle"), "{rows}");
    let out = env.gcr(&["port", "web", "9/udp"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("no public port '9/udp'"),
        "{}",
        stderr(&out)
    );
    // Local clients take the kernel path (nftables DNAT): with the proxy stopped, the port
    // still answers; the container's table goes with the container.
    let table = format!("gcr_p_{}", &id.trim()[..12]);
    let root = env.root.path().to_string_lossy().into_owned();
    let proxy = proxy_pids(&root);
    assert_eq!(proxy.len(), 1, "one proxy per container");
    // SAFETY: stopping and resuming the proxy process this test's gcr started.
    unsafe { libc::kill(proxy[0], libc::SIGSTOP) };
    let body = http_get(port);
    // SAFETY: as above.
    unsafe { libc::kill(proxy[0], libc::SIGCONT) };
    assert!(
        body.is_some_and(|b| b.contains("hello-gcr")),
        "no answer with the proxy stopped: the kernel path is missing"
    );
    assert!(nft_table_exists(&table), "table {table} missing");
    // The same host port again is refused at start, with a clear message.
    let out = env.gcr(&["run", "--rm", "-p", &map, IMAGE, "true"]);
    assert_eq!(out.status.code(), Some(125));
    assert!(stderr(&out).contains("already in use"), "{}", stderr(&out));
    // A port held by someone else is refused too.
    let held = TcpListener::bind("127.0.0.1:0").unwrap();
    let hp = held.local_addr().unwrap().port();
    let out = env.gcr(&[
        "run",
        "--rm",
        "-p",
        &format!("127.0.0.1:{hp}:80"),
        IMAGE,
        "true",
    ]);
    assert!(
        stderr(&out).contains(&format!("127.0.0.1:{hp}/tcp is already in use")),
        "{}",
        stderr(&out)
    );
    env.ok(&["rm", "-f", "web"]);
    assert!(!nft_table_exists(&table), "table {table} left after rm");
}

fn nft_table_exists(table: &str) -> bool {
    std::process::Command::new("nft")
        .args(["list", "table", "ip", table])
        .output()
        .is_ok_and(|o| o.status.success())
}

fn proxy_pids(root: &str) -> Vec<i32> {
    std::fs::read_dir("/proc")
        .map(|d| {
            d.filter_map(|e| e.ok())
                .filter_map(|e| {
                    let pid: i32 = e.file_name().to_str()?.parse().ok()?;
                    let c = std::fs::read(e.path().join("cmdline")).ok()?;
                    let c = String::from_utf8_lossy(&c).replace('\0', " ");
                    (c.contains("__proxy") && c.contains(root)).then_some(pid)
                })
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn random_host_port_shown_by_port() {
    if !need_root("random_host_port_shown_by_port") {
        return;
    }
    let env = Env::new();
    let _g = NetGuard(&env, vec![]);
    env.ok(&[
        "run", "-d", "--name", "rnd", "-p", "8080", IMAGE, "sh", "-c", HTTPD,
    ]);
    let ports = env.ok(&["port", "rnd"]);
    let lines: Vec<&str> = ports.lines().collect();
    let line = lines[0];
    assert!(line.starts_with("8080/tcp -> 0.0.0.0:"), "{ports}");
    let port: u16 = line
        .rsplit(':')
        .next()
        .unwrap()
        .parse()
        .expect("a port number");
    assert!(port > 0);
    let body = http_get(port).expect("no answer through the random port");
    assert!(body.contains("hello-gcr"));
    // Without an address the port is IPv6's too (the same port on [::]), where the host
    // has IPv6: reached over ::1 through the proxy, shown by port, ps and inspect.
    let ipv6 = std::net::TcpListener::bind("[::1]:0").is_ok();
    if !ipv6 {
        eprintln!("this host has no IPv6 loopback: the IPv6 side is not checked");
        assert_eq!(lines.len(), 1, "{ports}");
        return;
    }
    assert_eq!(
        lines.get(1).copied(),
        Some(format!("8080/tcp -> [::]:{port}").as_str()),
        "{ports}"
    );
    let body = http_get_at("::1", port).expect("no answer over IPv6");
    assert!(body.contains("hello-gcr"));
    let ps = env.ok(&["ps", "--format", "{{.Ports}}"]);
    assert_eq!(
        ps.trim(),
        format!("0.0.0.0:{port}->8080/tcp, [::]:{port}->8080/tcp")
    );
    let ns = env.ok(&["inspect", "-f", "{{json .NetworkSettings.Ports}}", "rnd"]);
    assert!(
        ns.contains(&format!(r#"{{"HostIp":"::","HostPort":"{port}"}}"#)),
        "{ns}"
    );
    // An explicit address binds that family only; an IPv6 one is given in brackets.
    let p6 = free_port();
    env.ok(&[
        "run",
        "-d",
        "--name",
        "six",
        "-p",
        &format!("[::1]:{p6}:8080"),
        "-p",
        "127.0.0.1::8080",
        IMAGE,
        "sh",
        "-c",
        HTTPD,
    ]);
    let ports = env.ok(&["port", "six"]);
    assert_eq!(ports.lines().count(), 2, "{ports}");
    assert!(
        ports.contains(&format!("8080/tcp -> [::1]:{p6}")),
        "{ports}"
    );
    assert!(ports.contains("8080/tcp -> 127.0.0.1:"), "{ports}");
    let body = http_get_at("::1", p6).expect("no answer at [::1]");
    assert!(body.contains("hello-gcr"));
    env.fails(
        &["run", "--rm", "-p", "[127.0.0.1]:1:2", IMAGE, "true"],
        "IPv6",
    );
}

#[test]
fn port_ranges_publish_each_port() {
    if !need_root("port_ranges_publish_each_port") {
        return;
    }
    let env = Env::new();
    let _g = NetGuard(&env, vec![]);
    // Two free neighbouring ports on 127.0.0.1.
    let base = (0..200)
        .map(|_| free_port())
        .find(|p| *p < u16::MAX && TcpListener::bind(("127.0.0.1", p + 1)).is_ok())
        .expect("two free neighbouring ports");
    let spec = format!("127.0.0.1:{base}-{}:8080-8081", base + 1);
    env.ok(&[
        "run",
        "-d",
        "--name",
        "rng",
        "-p",
        &spec,
        IMAGE,
        "sh",
        "-c",
        "mkdir -p /a /b && echo from-a > /a/index.html && echo from-b > /b/index.html && \
         httpd -p 8080 -h /a && exec httpd -f -p 8081 -h /b",
    ]);
    let ports = env.ok(&["port", "rng"]);
    assert!(
        ports.contains(&format!("8080/tcp -> 127.0.0.1:{base}"))
            && ports.contains(&format!("8081/tcp -> 127.0.0.1:{}", base + 1)),
        "{ports}"
    );
    assert!(http_get(base).expect("first port").contains("from-a"));
    assert!(http_get(base + 1).expect("second port").contains("from-b"));
    // Ranges of different sizes are refused by name, before anything is made.
    let o = env.gcr(&[
        "run",
        "-d",
        "--name",
        "bad",
        "-p",
        "9000-9002:80",
        IMAGE,
        "true",
    ]);
    assert!(
        !o.status.success() && stderr(&o).contains("differ in number"),
        "{}",
        stderr(&o)
    );
    assert!(!env
        .ok(&["ps", "-a", "--format", "{{.Names}}"])
        .contains("bad"));
}

#[test]
fn links_name_the_linked_container() {
    if !need_root("links_name_the_linked_container") {
        return;
    }
    let env = Env::new();
    let _g = NetGuard(&env, vec!["lnnet".into()]);
    // On the default bridge: the target's address under its alias, name and short id.
    env.ok(&["run", "-d", "--name", "lndb", IMAGE, "sleep", "120"]);
    let db = inspect_ctr(&env, "lndb");
    let db_ip = db["NetworkSettings"]["IPAddress"]
        .as_str()
        .unwrap()
        .to_string();
    let short = db["Id"].as_str().unwrap()[..12].to_string();
    let out = env.ok(&[
        "run",
        "--rm",
        "--link",
        "lndb:database",
        IMAGE,
        "sh",
        "-c",
        "grep database /etc/hosts; ping -c1 -W2 database >/dev/null && echo ping-ok",
    ]);
    assert!(
        out.contains(&format!("{db_ip}\tdatabase {short} lndb")) && out.contains("ping-ok"),
        "{out}"
    );
    env.ok(&["create", "--name", "lnweb", "--link", "lndb", IMAGE, "true"]);
    assert_eq!(
        inspect_ctr(&env, "lnweb")["HostConfig"]["Links"],
        serde_json::json!(["/lndb:/lnweb/lndb"])
    );
    // A link to nothing, or to a container that does not run, is refused by name.
    let o = env.gcr(&["create", "--link", "nosuchctr", IMAGE, "true"]);
    assert!(
        !o.status.success() && stderr(&o).contains("no such container nosuchctr"),
        "{}",
        stderr(&o)
    );
    env.ok(&["stop", "-t", "0", "lndb"]);
    let o = env.gcr(&["start", "lnweb"]);
    assert!(
        !o.status.success() && stderr(&o).contains("not running"),
        "{}",
        stderr(&o)
    );
    // On a user network the alias is a name this container resolves, through /etc/hosts
    // and the embedded DNS server.
    env.ok(&["network", "create", "lnnet"]);
    env.ok(&[
        "run",
        "-d",
        "--name",
        "lncache",
        "--network",
        "lnnet",
        IMAGE,
        "sleep",
        "120",
    ]);
    let ip = inspect_ctr(&env, "lncache")["NetworkSettings"]["Networks"]["lnnet"]["IPAddress"]
        .as_str()
        .unwrap()
        .to_string();
    let out = env.ok(&[
        "run",
        "--rm",
        "--network",
        "lnnet",
        "--link",
        "lncache:kv",
        "--dns",
        "127.0.0.1",
        IMAGE,
        "nslookup",
        "kv",
    ]);
    assert!(out.contains(&ip), "{out}");
}

fn links_named(prefix: &str) -> Vec<String> {
    std::fs::read_dir("/sys/class/net")
        .map(|d| {
            d.filter_map(|e| e.ok())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| n.starts_with(prefix))
                .collect()
        })
        .unwrap_or_default()
}

fn nft_rule_count(table: &str) -> usize {
    let out = std::process::Command::new("nft")
        .args(["-a", "list", "table", "ip", table])
        .output();
    out.map(|o| {
        String::from_utf8_lossy(&o.stdout)
            .lines()
            .filter(|l| l.contains("# handle") && !l.contains("chain") && !l.contains("table"))
            .count()
    })
    .unwrap_or(0)
}

#[test]
fn no_leaks_after_100_run_rm_cycles_with_published_ports() {
    if !need_root("no_leaks_after_100_run_rm_cycles_with_published_ports") {
        return;
    }
    let env = Env::new();
    let _g = NetGuard(&env, vec![]);
    let root = env.root.path().to_string_lossy().into_owned();
    env.ok(&["run", "--rm", IMAGE, "true"]);
    let bridge = inspect(&env, "bridge")["bridge"]
        .as_str()
        .unwrap()
        .to_string();
    let table = format!("gcr_{}", bridge.replace(['-', '.'], "_"));
    let rules_before = nft_rule_count(&table);
    let mut ids = Vec::new();
    for i in 0..100 {
        let name = format!("cyc{i}");
        let out = env.gcr(&[
            "run",
            "--name",
            &name,
            "-p",
            "127.0.0.1::8080",
            IMAGE,
            "true",
        ]);
        assert!(out.status.success(), "cycle {i}: {}", stderr(&out));
        ids.push(env.ok(&["inspect", "--type", "container", &name]));
        env.ok(&["rm", &name]);
    }
    // Veth pairs go with their namespaces, which the kernel frees asynchronously.
    let mine = |l: &String| ids.iter().any(|j| j.contains(&l[2..]));
    assert!(
        eventually(10, || !links_named("gv").iter().any(mine)),
        "veth pairs left: {:?}",
        links_named("gv")
    );
    let info = inspect(&env, "bridge");
    assert_eq!(
        info["containers"].as_array().map(|a| a.len()),
        Some(0),
        "leases left: {info}"
    );
    assert_eq!(proxy_pids(&root).len(), 0, "port proxies left");
    let tables = std::process::Command::new("nft")
        .args(["list", "tables"])
        .output()
        .map(|o| stdout(&o))
        .unwrap_or_default();
    let left: Vec<&str> = tables
        .lines()
        .filter_map(|l| l.split("gcr_p_").nth(1))
        .filter(|short| ids.iter().any(|j| j.contains(short.trim())))
        .collect();
    assert!(left.is_empty(), "port tables left: {left:?}");
    assert_eq!(nft_rule_count(&table), rules_before, "firewall rules grew");
}

#[test]
fn concurrent_runs_get_distinct_addresses() {
    if !need_root("concurrent_runs_get_distinct_addresses") {
        return;
    }
    let env = Env::new();
    let _g = NetGuard(&env, vec!["gcrconc".into()]);
    let sub = format!("10.232.{}.0/24", std::process::id() % 200 + 20);
    env.ok(&["network", "create", "--subnet", &sub, "gcrconc"]);
    let children: Vec<_> = (0..12)
        .map(|i| {
            env.cmd(&[
                "run",
                "-d",
                "--name",
                &format!("par{i}"),
                "--network",
                "gcrconc",
                IMAGE,
                "sleep",
                "30",
            ])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("spawn gcr run")
        })
        .collect();
    for c in children {
        let out = c.wait_with_output().unwrap();
        assert!(out.status.success(), "{}", stderr(&out));
    }
    let info = inspect(&env, "gcrconc");
    let mut ips: Vec<String> = info["containers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["ip"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(ips.len(), 12, "{info}");
    ips.sort();
    ips.dedup();
    assert_eq!(ips.len(), 12, "an address was leased twice: {info}");
    // Each container really has its leased address.
    let ip0 = info["containers"][0]["ip"].as_str().unwrap().to_string();
    let name0 = info["containers"][0]["name"].as_str().unwrap().to_string();
    let addr = env.ok(&["exec", &name0, "ip", "-4", "-o", "addr", "show", "eth0"]);
    assert!(addr.contains(&format!("{ip0}/24")), "{addr}");
}

#[test]
fn driver_options_shape_the_network() {
    if !need_root("driver_options_shape_the_network") {
        return;
    }
    let env = Env::new();
    let _g = NetGuard(&env, vec!["gcroptnet".into(), "gcroptbad".into()]);
    // A bridge name of this test's own (the pid keeps parallel runs apart).
    let bridge = format!("gcrto{}", std::process::id() % 100_000);
    let port = free_port();
    env.ok(&[
        "network",
        "create",
        "-o",
        &format!("com.docker.network.bridge.name={bridge}"),
        "-o",
        "com.docker.network.driver.mtu=1400",
        "-o",
        "com.docker.network.bridge.enable_icc=false",
        "-o",
        "com.docker.network.bridge.enable_ip_masquerade=false",
        "-o",
        "com.docker.network.bridge.host_binding_ipv4=127.0.0.1",
        "gcroptnet",
    ]);
    let sys = |f: &str| std::fs::read_to_string(format!("/sys/class/net/{bridge}/{f}"));
    assert_eq!(sys("mtu").unwrap().trim(), "1400", "the bridge's MTU");
    let n = inspect(&env, "gcroptnet");
    assert_eq!(n["options"]["com.docker.network.driver.mtu"], "1400", "{n}");
    assert_eq!(n["bridge"], serde_json::json!(bridge), "{n}");
    // No masquerade rule (where nftables carries the rules).
    if n["firewall"] == "nftables" {
        let t = std::process::Command::new("nft")
            .args(["list", "table", "ip", &format!("gcr_{bridge}")])
            .output()
            .unwrap();
        assert!(t.status.success(), "{}", stderr(&t));
        assert!(!stdout(&t).contains("masquerade"), "{}", stdout(&t));
    }
    env.ok(&[
        "run",
        "-d",
        "--name",
        "opta",
        "--network",
        "gcroptnet",
        IMAGE,
        "sleep",
        "60",
    ]);
    env.ok(&[
        "run",
        "-d",
        "--name",
        "optb",
        "--network",
        "gcroptnet",
        "-p",
        &format!("{port}:8080"),
        IMAGE,
        "sh",
        "-c",
        HTTPD,
    ]);
    // Both ends of each veth have the MTU; the containers are kept apart (icc off) but
    // reach their gateway, the host.
    let probe = env.ok(&[
        "exec",
        "opta",
        "sh",
        "-c",
        "cat /sys/class/net/eth0/mtu; \
         if ping -c1 -W1 optb >/dev/null; then echo reach; else echo apart; fi; \
         gw=$(ip route | awk '/default/ {print $3}'); \
         if ping -c1 -W1 \"$gw\" >/dev/null; then echo gateway; fi",
    ]);
    assert_eq!(probe, "1400\napart\ngateway\n");
    // host_binding_ipv4: `-p PORT:8080` binds 127.0.0.1 only.
    assert_eq!(
        env.ok(&["port", "optb", "8080"]).trim(),
        format!("127.0.0.1:{port}")
    );
    assert!(http_get(port).is_some_and(|b| b.contains("hello-gcr")));
    // Bad options make nothing: one sentence naming the option and the fix.
    for (opt, says) in [
        ("com.docker.network.driver.mtu=9", "from 68 to 65535"),
        (
            "com.docker.network.bridge.inhibit_ipv4=true",
            "not supported",
        ),
        (
            &format!("com.docker.network.bridge.name={bridge}") as &str,
            "exists on this host",
        ),
    ] {
        let o = env.gcr(&["network", "create", "-o", opt, "gcroptbad"]);
        assert!(!o.status.success(), "{opt}");
        assert!(stderr(&o).contains(says), "{opt}: {}", stderr(&o));
    }
    assert!(!env.ok(&["network", "ls"]).contains("gcroptbad"));
    env.ok(&["rm", "-f", "opta", "optb"]);
    env.ok(&["network", "rm", "gcroptnet"]);
    assert!(sys("mtu").is_err(), "bridge {bridge} left after rm");
}
