//! macvlan and ipvlan networks (root), on a parent interface the test makes (one end of a
//! veth pair of its own, removed afterwards): containers get a sub-interface of the parent
//! (no veth, no bridge of gcr's), Docker's MAC, their address on the parent's own subnet (which the host routes: allowed
//! here, refused for a bridge network), reach each other and resolve each other by name
//! through the embedded DNS server, join and leave such a network live; the refusals
//! (no parent, a parent that does not exist, an unknown driver, published ports, ipvlan on
//! a kernel without it). Traffic stays between the test's namespaces.

use super::*;
use common::links::{ip, Parent};

/// The host's `ip -d link show IFNAME` inside container `c`'s network namespace (BusyBox's
/// ip has no -d).
fn link_of(env: &Env, c: &str, ifname: &str) -> String {
    let pid = inspect_ctr(env, c)["State"]["Pid"]
        .as_i64()
        .unwrap_or(0)
        .to_string();
    let o = std::process::Command::new("nsenter")
        .args(["-t", &pid, "-n", "ip", "-d", "link", "show", ifname])
        .output()
        .expect("nsenter");
    format!("{}{}", stdout(&o), stderr(&o))
}

fn sh(env: &Env, c: &str, script: &str) -> String {
    let o = env.gcr(&["exec", c, "sh", "-c", script]);
    format!("{}{}", stdout(&o), stderr(&o))
}

#[test]
fn macvlan_and_ipvlan_networks_put_containers_on_the_parents_network() {
    if !need_root("macvlan_and_ipvlan_networks_put_containers_on_the_parents_network") {
        return;
    }
    let env = Env::new();
    let _g = NetGuard(
        &env,
        vec!["mvnet".into(), "ivnet".into(), "mvbridge".into()],
    );
    let t = std::process::id() % 200 + 20;
    let lan = format!("10.237.{t}.0/24");
    let parent_if = Parent::new("", &format!("10.237.{t}.1/24"));
    let parent = format!("parent={}", parent_if.0);

    // Refusals name the fix and leave nothing.
    for (args, says) in [
        (vec!["-d", "macvlan"], "-o parent=INTERFACE"),
        (
            vec!["-d", "macvlan", "-o", "parent=gcrnosuch0"],
            "does not exist",
        ),
        (vec!["-d", "overlay"], "bridge, macvlan or ipvlan"),
        (
            vec![
                "-d",
                "macvlan",
                "-o",
                &parent,
                "-o",
                "com.docker.network.bridge.enable_icc=false",
            ],
            "not supported by gcr's macvlan",
        ),
    ] {
        let mut a = vec!["network", "create"];
        a.extend(args);
        a.push("mvbad");
        let o = env.gcr(&a);
        assert!(
            !o.status.success() && stderr(&o).contains(says),
            "{a:?}: {}",
            stderr(&o)
        );
    }
    assert!(!env.ok(&["network", "ls"]).contains("mvbad"));
    // The parent's subnet is routed by the host: a bridge network may not take it.
    let o = env.gcr(&["network", "create", "--subnet", &lan, "mvbridge"]);
    assert!(
        !o.status.success() && stderr(&o).contains("host route"),
        "{}",
        stderr(&o)
    );

    env.ok(&[
        "network",
        "create",
        "-d",
        "macvlan",
        "--subnet",
        &lan,
        "--gateway",
        &format!("10.237.{t}.1"),
        "-o",
        &parent,
        "mvnet",
    ]);
    let n = inspect(&env, "mvnet");
    assert_eq!(
        (n["driver"].as_str(), n["bridge"].as_str()),
        (Some("macvlan"), Some("")),
        "{n}"
    );
    let far = format!("10.237.{t}.77");
    env.ok(&[
        "run",
        "-d",
        "--name",
        "m1",
        "--network",
        "mvnet",
        "--dns",
        "127.0.0.1",
        IMAGE,
        "sleep",
        "120",
    ]);
    env.ok(&[
        "run",
        "-d",
        "--name",
        "m2",
        "--network",
        "mvnet",
        "--ip",
        &far,
        IMAGE,
        "sleep",
        "120",
    ]);
    let m1 = inspect_ctr(&env, "m1");
    let id = m1["Id"].as_str().unwrap().to_string();
    let ip1 = m1["NetworkSettings"]["Networks"]["mvnet"]["IPAddress"]
        .as_str()
        .unwrap()
        .to_string();
    let link = link_of(&env, "m1", "eth0");
    assert!(
        link.contains("macvlan") && link.contains("mode bridge"),
        "{link}"
    );
    let octets: Vec<String> = ip1
        .split('.')
        .map(|o| format!("{:02x}", o.parse::<u8>().unwrap()))
        .collect();
    assert!(
        link.contains(&format!("02:42:{}", octets.join(":"))),
        "Docker's MAC: {link}"
    );
    assert!(
        !std::path::Path::new(&format!("/sys/class/net/gv{}", &id[..12])).exists(),
        "no veth on the host"
    );
    // Siblings reach each other on the parent, by address and by name (127.0.0.11).
    let out = sh(
        &env,
        "m1",
        &format!("ping -c1 -W3 {far} >/dev/null && echo ping-ok"),
    );
    assert!(out.contains("ping-ok"), "{out}");
    let out = sh(&env, "m1", "nslookup m2");
    assert!(out.contains(&far), "{out}");
    // Published ports make no sense here.
    let o = env.gcr(&[
        "run",
        "--rm",
        "--network",
        "mvnet",
        "-p",
        "8080:80",
        IMAGE,
        "true",
    ]);
    assert!(
        !o.status.success() && stderr(&o).contains("ports cannot be published on macvlan"),
        "{}",
        stderr(&o)
    );

    // A running container on the default bridge joins and leaves live.
    env.ok(&["run", "-d", "--name", "b1", IMAGE, "sleep", "120"]);
    env.ok(&["network", "connect", "mvnet", "b1"]);
    let out = sh(
        &env,
        "b1",
        &format!("ping -c1 -W3 {far} >/dev/null && echo ping-ok"),
    );
    let link = link_of(&env, "b1", "eth1");
    assert!(
        link.contains("macvlan") && out.contains("ping-ok"),
        "{link}{out}"
    );
    env.ok(&["network", "disconnect", "mvnet", "b1"]);
    let out = sh(&env, "b1", "ip link show eth1 || echo gone");
    assert!(out.contains("gone"), "{out}");

    // ipvlan (l2): the parent's MAC, the same reach; refused by name on a kernel without it.
    let probe = format!("gcrpi{}", std::process::id() % 100_000);
    let has_ipvlan = ip(&[
        "link",
        "add",
        "link",
        &parent_if.0,
        "name",
        &probe,
        "type",
        "ipvlan",
    ])
    .status
    .success();
    let _ = ip(&["link", "del", &probe]);
    let ivnet = [
        "network",
        "create",
        "-d",
        "ipvlan",
        "--subnet",
        &format!("10.238.{t}.0/24"),
        "-o",
        &parent,
        "ivnet",
    ];
    if has_ipvlan {
        env.ok(&ivnet);
        env.ok(&[
            "run",
            "-d",
            "--name",
            "i1",
            "--network",
            "ivnet",
            IMAGE,
            "sleep",
            "120",
        ]);
        env.ok(&[
            "run",
            "-d",
            "--name",
            "i2",
            "--network",
            "ivnet",
            "--ip",
            &format!("10.238.{t}.9"),
            IMAGE,
            "sleep",
            "120",
        ]);
        let out = sh(
            &env,
            "i1",
            &format!("ping -c1 -W3 10.238.{t}.9 >/dev/null && echo ping-ok"),
        );
        let link = link_of(&env, "i1", "eth0");
        assert!(
            link.contains("ipvlan") && out.contains("ping-ok"),
            "{link}{out}"
        );
        env.ok(&["rm", "-f", "i1", "i2"]);
        env.ok(&["network", "rm", "ivnet"]);
    } else {
        let o = env.gcr(&ivnet);
        assert!(
            !o.status.success() && stderr(&o).contains("no ipvlan support"),
            "{}",
            stderr(&o)
        );
        assert!(!env.ok(&["network", "ls"]).contains("ivnet"));
    }
    env.ok(&["rm", "-f", "m1", "m2", "b1"]);
    env.ok(&["network", "rm", "mvnet"]);
}
