//! A container on two networks (root): a running container connected to a second user
//! network gets `eth1` with an address in that subnet, resolves and reaches (through
//! `eth1`) a container that is only on that network; disconnect takes `eth1`, the name and
//! the reachability away. Connect and disconnect of created containers, `run --network a
//! --network b`, and the refusals. Only addresses inside the test's networks are contacted.

use super::*;

/// Two user networks `mna`, `mnb` with /24 subnets of this test process.
fn two_networks(env: &Env) -> (String, String) {
    let third = std::process::id() % 200 + 20;
    let (a, b) = (
        format!("10.233.{third}.0/24"),
        format!("10.234.{third}.0/24"),
    );
    env.ok(&["network", "create", "--subnet", &a, "mna"]);
    env.ok(&["network", "create", "--subnet", &b, "mnb"]);
    (
        a.trim_end_matches("0/24").to_string(),
        b.trim_end_matches("0/24").to_string(),
    )
}

#[test]
fn running_container_gets_and_loses_a_second_interface() {
    if !need_root("running_container_gets_and_loses_a_second_interface") {
        return;
    }
    let env = Env::new();
    let _g = NetGuard(&env, vec!["mna".into(), "mnb".into()]);
    let (_pa, pb) = two_networks(&env);
    env.ok(&[
        "run",
        "-d",
        "--name",
        "onlyb",
        "--network",
        "mnb",
        IMAGE,
        "sh",
        "-c",
        HTTPD,
    ]);
    env.ok(&[
        "run",
        "-d",
        "--name",
        "web",
        "--network",
        "mna",
        IMAGE,
        "sleep",
        "300",
    ]);
    let b_ip = inspect_ctr(&env, "onlyb")["NetworkSettings"]["IPAddress"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(b_ip.starts_with(&pb), "{b_ip}");
    // Before: no eth1, and the name onlyb means nothing to web.
    let out = env.gcr(&["exec", "web", "ip", "-4", "addr", "show", "eth1"]);
    assert!(
        !out.status.success(),
        "eth1 before connect: {}",
        stdout(&out)
    );
    env.fails(
        &["exec", "web", "ping", "-c1", "-W1", "onlyb"],
        "bad address",
    );

    env.ok(&["network", "connect", "--alias", "front", "mnb", "web"]);
    let addr = env.ok(&["exec", "web", "ip", "-4", "addr", "show", "eth1"]);
    assert!(addr.contains(&format!("inet {pb}")), "{addr}");
    let eth0 = env.ok(&["exec", "web", "ip", "-4", "addr", "show", "eth0"]);
    assert!(eth0.contains("inet 10.233."), "{eth0}");
    // web reaches onlyb by name, through eth1 (the subnet's own route).
    let route = env.ok(&["exec", "web", "ip", "route", "get", &b_ip]);
    assert!(route.contains("dev eth1"), "{route}");
    let got = env.ok(&[
        "exec",
        "web",
        "sh",
        "-c",
        "ping -c1 -W2 onlyb >/dev/null && wget -qO- http://onlyb:8080/",
    ]);
    assert!(got.contains("hello-gcr"), "{got}");
    // And onlyb resolves web by its name and its alias on mnb.
    let hosts = env.ok(&["exec", "onlyb", "cat", "/etc/hosts"]);
    assert!(hosts.contains(" web") || hosts.contains("\tweb"), "{hosts}");
    assert!(hosts.contains(" front"), "{hosts}");
    env.ok(&["exec", "onlyb", "ping", "-c1", "-W2", "front"]);
    // inspect lists both networks; the first keeps the top-level address.
    let v = inspect_ctr(&env, "web");
    let nets = &v["NetworkSettings"]["Networks"];
    assert!(
        nets["mna"]["IPAddress"]
            .as_str()
            .unwrap()
            .starts_with("10.233."),
        "{nets}"
    );
    let on_b = nets["mnb"]["IPAddress"].as_str().unwrap();
    assert!(on_b.starts_with(&pb), "{nets}");
    assert_eq!(nets["mnb"]["Gateway"], format!("{pb}1"));
    assert!(
        nets["mnb"]["MacAddress"]
            .as_str()
            .unwrap()
            .starts_with("02:42:"),
        "{nets}"
    );
    assert!(
        nets["mnb"]["Aliases"].to_string().contains("front"),
        "{nets}"
    );
    let members = inspect(&env, "mnb");
    assert_eq!(
        members["containers"].as_array().map(|a| a.len()),
        Some(2),
        "{members}"
    );
    // Connecting twice, or to host, is refused; nothing changes.
    env.fails(
        &["network", "connect", "mnb", "web"],
        "already exists in network mnb",
    );
    env.fails(&["network", "connect", "host", "web"], "host");

    env.ok(&["network", "disconnect", "mnb", "web"]);
    let out = env.gcr(&["exec", "web", "ip", "link", "show", "eth1"]);
    assert!(
        !out.status.success(),
        "eth1 after disconnect: {}",
        stdout(&out)
    );
    env.fails(
        &["exec", "web", "ping", "-c1", "-W1", "onlyb"],
        "bad address",
    );
    let route = env.ok(&["exec", "web", "ip", "route", "get", &b_ip]);
    assert!(!route.contains("eth1"), "{route}");
    let hosts = env.ok(&["exec", "onlyb", "cat", "/etc/hosts"]);
    assert!(!hosts.contains("front"), "{hosts}");
    assert_eq!(
        inspect(&env, "mnb")["containers"]
            .as_array()
            .map(|a| a.len()),
        Some(1)
    );
    env.fails(
        &["network", "disconnect", "mnb", "web"],
        "not connected to network mnb",
    );
    // eth0 is untouched.
    env.ok(&["exec", "web", "ip", "-4", "addr", "show", "eth0"]);
    // Stop and start: the remaining network only; no leftover host veth.
    env.ok(&["rm", "-f", "web", "onlyb"]);
    assert_eq!(
        inspect(&env, "mnb")["containers"]
            .as_array()
            .map(|a| a.len()),
        Some(0)
    );
    env.ok(&["network", "rm", "mna", "mnb"]);
}

#[test]
fn leaving_the_first_network_moves_the_default_route() {
    if !need_root("leaving_the_first_network_moves_the_default_route") {
        return;
    }
    let env = Env::new();
    let _g = NetGuard(&env, vec!["mna".into(), "mnb".into()]);
    let (pa, pb) = two_networks(&env);
    env.ok(&[
        "run",
        "-d",
        "--name",
        "two",
        "--network",
        "mna",
        IMAGE,
        "sleep",
        "300",
    ]);
    env.ok(&["network", "connect", "mnb", "two"]);
    let routes = env.ok(&["exec", "two", "ip", "route"]);
    assert!(
        routes.contains(&format!("default via {pa}1 dev eth0")),
        "{routes}"
    );
    // Leaving the first network: the default route goes through the next one, at once.
    env.ok(&["network", "disconnect", "mna", "two"]);
    let routes = env.ok(&["exec", "two", "ip", "route"]);
    assert!(
        routes.contains(&format!("default via {pb}1 dev eth1")),
        "{routes}"
    );
    assert!(!routes.contains("eth0"), "{routes}");
    let v = inspect_ctr(&env, "two");
    assert!(
        v["NetworkSettings"]["IPAddress"]
            .as_str()
            .unwrap()
            .starts_with(&pb),
        "{v}"
    );
    // Leaving the last: loopback only, no default route.
    env.ok(&["network", "disconnect", "mnb", "two"]);
    let routes = env.ok(&["exec", "two", "ip", "route"]);
    assert!(!routes.contains("default"), "{routes}");
    env.ok(&["rm", "-f", "two"]);
    env.ok(&["network", "rm", "mna", "mnb"]);
}

#[test]
fn an_internal_network_keeps_to_itself() {
    if !need_root("an_internal_network_keeps_to_itself") {
        return;
    }
    let env = Env::new();
    let _g = NetGuard(&env, vec!["mni".into(), "mnb".into()]);
    let third = std::process::id() % 200 + 20;
    let pi = format!("10.235.{third}.");
    env.ok(&[
        "network",
        "create",
        "--internal",
        "--subnet",
        &format!("{pi}0/24"),
        "mni",
    ]);
    let pb = format!("10.236.{third}.");
    env.ok(&["network", "create", "--subnet", &format!("{pb}0/24"), "mnb"]);
    let net = inspect(&env, "mni");
    assert_eq!(net["internal"], true, "{net}");
    assert_eq!(inspect(&env, "mnb")["internal"], false);
    env.ok(&[
        "run",
        "-d",
        "--name",
        "ia",
        "--network",
        "mni",
        IMAGE,
        "sleep",
        "300",
    ]);
    env.ok(&[
        "run",
        "-d",
        "--name",
        "ib",
        "--network",
        "mni",
        IMAGE,
        "sleep",
        "300",
    ]);
    // Its members reach each other by name; no default route leads out of it.
    env.ok(&["exec", "ia", "ping", "-c1", "-W2", "ib"]);
    let routes = env.ok(&["exec", "ia", "ip", "route"]);
    assert!(!routes.contains("default"), "{routes}");
    assert!(routes.contains(&format!("{pi}0/24 dev eth0")), "{routes}");
    // The host reaches them (its own bridge address, nothing forwarded).
    let ia = inspect_ctr(&env, "ia")["NetworkSettings"]["IPAddress"]
        .as_str()
        .unwrap()
        .to_string();
    let ping = std::process::Command::new("busybox")
        .args(["ping", "-c1", "-W2", &ia])
        .output()
        .unwrap();
    assert!(ping.status.success(), "the host cannot reach {ia}");
    // Nothing is forwarded into or out of its bridge, nothing masqueraded.
    if net["firewall"] == "nftables" {
        let bridge = net["bridge"].as_str().unwrap();
        let table = std::process::Command::new("nft")
            .args([
                "list",
                "table",
                "ip",
                &format!("gcr_{}", bridge.replace(['-', '.'], "_")),
            ])
            .output()
            .unwrap();
        let t = stdout(&table);
        assert!(
            t.contains(&format!(
                "iifname \"{bridge}\" oifname != \"{bridge}\" drop"
            )),
            "{t}"
        );
        assert!(!t.contains("masquerade"), "{t}");
    }
    // On an internal network and another: the default route goes through the other one.
    env.ok(&[
        "run",
        "-d",
        "--name",
        "both",
        "--network",
        "mni",
        "--network",
        "mnb",
        IMAGE,
        "sleep",
        "300",
    ]);
    let routes = env.ok(&["exec", "both", "ip", "route"]);
    assert!(
        routes.contains(&format!("default via {pb}1 dev eth1")),
        "{routes}"
    );
    env.ok(&["rm", "-f", "ia", "ib", "both"]);
    env.ok(&["network", "rm", "mni", "mnb"]);
}

#[test]
fn a_network_with_its_own_gateway_and_range() {
    if !need_root("a_network_with_its_own_gateway_and_range") {
        return;
    }
    let env = Env::new();
    let _g = NetGuard(&env, vec!["mng".into()]);
    let third = std::process::id() % 200 + 20;
    let p = format!("10.237.{third}.");
    let subnet = format!("{p}0/24");
    // Refused before anything is made: outside the subnet, or without one.
    env.fails(
        &[
            "network",
            "create",
            "--subnet",
            &subnet,
            "--gateway",
            "10.1.1.1",
            "mng",
        ],
        "is not a host address of subnet",
    );
    env.fails(
        &[
            "network",
            "create",
            "--ip-range",
            &format!("{p}128/28"),
            "mng",
        ],
        "needs --subnet",
    );
    env.fails(
        &[
            "network",
            "create",
            "--subnet",
            &subnet,
            "--ip-range",
            "10.9.9.0/28",
            "mng",
        ],
        "is not inside subnet",
    );
    assert!(!env.ok(&["network", "ls"]).contains("mng"));
    env.ok(&[
        "network",
        "create",
        "--subnet",
        &subnet,
        "--gateway",
        &format!("{p}254"),
        "--ip-range",
        &format!("{p}128/28"),
        "mng",
    ]);
    let net = inspect(&env, "mng");
    assert_eq!(net["gateway"], format!("{p}254"), "{net}");
    assert_eq!(net["ip_range"], format!("{p}128/28"), "{net}");
    env.ok(&[
        "run",
        "-d",
        "--name",
        "g1",
        "--network",
        "mng",
        IMAGE,
        "sleep",
        "300",
    ]);
    let ip = inspect_ctr(&env, "g1")["NetworkSettings"]["IPAddress"]
        .as_str()
        .unwrap()
        .to_string();
    let last: u32 = ip.rsplit('.').next().unwrap().parse().unwrap();
    assert!((128..144).contains(&last), "{ip} is outside the range");
    let routes = env.ok(&["exec", "g1", "ip", "route"]);
    assert!(routes.contains(&format!("default via {p}254")), "{routes}");
    env.ok(&["exec", "g1", "ping", "-c1", "-W2", &format!("{p}254")]);
    // --ip takes any address of the subnet but the gateway's.
    env.ok(&[
        "run",
        "-d",
        "--name",
        "g2",
        "--network",
        "mng",
        "--ip",
        &format!("{p}5"),
        IMAGE,
        "sleep",
        "300",
    ]);
    env.fails(
        &[
            "run",
            "-d",
            "--network",
            "mng",
            "--ip",
            &format!("{p}254"),
            IMAGE,
            "true",
        ],
        "is not a container address",
    );
    env.ok(&["exec", "g2", "ping", "-c1", "-W2", "g1"]);
    env.ok(&["rm", "-f", "g1", "g2"]);
    env.ok(&["network", "rm", "mng"]);
}

#[test]
fn created_containers_and_run_with_two_networks() {
    if !need_root("created_containers_and_run_with_two_networks") {
        return;
    }
    let env = Env::new();
    let _g = NetGuard(&env, vec!["mna".into(), "mnb".into()]);
    let (pa, pb) = two_networks(&env);
    // Created, then connected to a second network: both interfaces at start.
    env.ok(&[
        "create",
        "--name",
        "c1",
        "--network",
        "mna",
        IMAGE,
        "sleep",
        "300",
    ]);
    env.ok(&["network", "connect", "mnb", "c1"]);
    env.ok(&["start", "c1"]);
    let a = env.ok(&["exec", "c1", "ip", "-4", "addr"]);
    assert!(
        a.contains(&format!("inet {pa}")) && a.contains(&format!("inet {pb}")),
        "{a}"
    );
    let route = env.ok(&["exec", "c1", "ip", "route"]);
    assert!(
        route.contains(&format!("default via {pa}1 dev eth0")),
        "{route}"
    );
    // run --network a --network b.
    env.ok(&[
        "run",
        "-d",
        "--name",
        "c2",
        "--network",
        "mnb",
        "--network",
        "mna",
        IMAGE,
        "sleep",
        "300",
    ]);
    let a = env.ok(&["exec", "c2", "ip", "-4", "addr", "show", "eth1"]);
    assert!(a.contains(&format!("inet {pa}")), "{a}");
    // c2 reaches c1 by name on either network.
    env.ok(&["exec", "c2", "ping", "-c1", "-W2", "c1"]);
    // Stopped: disconnecting the first network makes the second the first.
    env.ok(&["stop", "-t", "1", "c2"]);
    env.ok(&["network", "disconnect", "mnb", "c2"]);
    let mode = env.ok(&["inspect", "--format", "{{.HostConfig.NetworkMode}}", "c2"]);
    assert_eq!(mode.trim(), "mna");
    env.ok(&["start", "c2"]);
    let a = env.ok(&["exec", "c2", "ip", "-4", "addr", "show", "eth0"]);
    assert!(a.contains(&format!("inet {pa}")), "{a}");
    // Refusals: a network given twice, host with another, a network in use.
    env.fails(
        &[
            "run",
            "--rm",
            "--network",
            "mna",
            "--network",
            "mna",
            IMAGE,
            "true",
        ],
        "given twice",
    );
    env.fails(
        &[
            "run",
            "--rm",
            "--network",
            "host",
            "--network",
            "mna",
            IMAGE,
            "true",
        ],
        "cannot join other networks",
    );
    env.fails(&["network", "rm", "mnb"], "used by");
    env.ok(&["rm", "-f", "c1", "c2"]);
    env.ok(&["network", "rm", "mna", "mnb"]);
}
