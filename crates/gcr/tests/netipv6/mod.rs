//! Dual-stack networks (root): `network create --ipv6` with an IPv6 subnet of the test's
//! own (and one made up, a unique local /64), containers with an IPv4 and an IPv6 address
//! and default route, names resolving to both in /etc/hosts, IPv6 reachability between
//! members and to the gateway, `--ip6` on run and on a live `network connect`, Docker's
//! inspect fields, an `ip6` nftables table that goes with the network, and the refusals.
//! Only addresses inside the test's networks are contacted.

use super::*;

fn nft_has(family: &str, table: &str) -> bool {
    std::process::Command::new("nft")
        .args(["list", "table", family, table])
        .output()
        .is_ok_and(|o| o.status.success())
}

#[test]
fn dual_stack_networks_give_containers_ipv6() {
    if !need_root("dual_stack_networks_give_containers_ipv6") {
        return;
    }
    let env = Env::new();
    let _g = NetGuard(
        &env,
        vec![
            "v6net".into(),
            "v6auto".into(),
            "v6four".into(),
            "v6bad".into(),
        ],
    );
    // Subnets of this test process: fd00:<pid>:: and 10.235.<pid>.0.
    let tag = std::process::id() % 60_000 + 1000;
    let sub6 = format!("fd00:{tag:x}:6::/64");
    let sub4 = format!("10.235.{}.0/24", tag % 200 + 20);
    env.ok(&[
        "network", "create", "--ipv6", "--subnet", &sub4, "--subnet", &sub6, "v6net",
    ]);
    let n = inspect(&env, "v6net");
    assert_eq!(n["ipv6"], true, "{n}");
    assert_eq!(n["subnet6"], sub6.as_str(), "{n}");
    let gw6 = format!("fd00:{tag:x}:6::1");
    assert_eq!(n["gateway6"], gw6.as_str(), "{n}");
    let bridge = n["bridge"].as_str().unwrap().to_string();
    let table = format!("gcr_{}", bridge.replace(['-', '.'], "_"));
    if n["firewall"] == "nftables" {
        assert!(nft_has("ip6", &table), "table ip6 {table} missing");
    }
    let ip6b = format!("fd00:{tag:x}:6::77");
    env.ok(&[
        "run",
        "-d",
        "--name",
        "v6a",
        "--network",
        "v6net",
        IMAGE,
        "sleep",
        "60",
    ]);
    env.ok(&[
        "run",
        "-d",
        "--name",
        "v6b",
        "--network",
        "v6net",
        "--ip6",
        &ip6b,
        IMAGE,
        "sleep",
        "60",
    ]);
    // Docker's fields: the address, its prefix, the gateway, and --ip6 under IPAMConfig.
    let b = inspect_ctr(&env, "v6b");
    let ns = &b["NetworkSettings"];
    assert_eq!(ns["GlobalIPv6Address"], ip6b.as_str(), "{ns}");
    assert_eq!(ns["GlobalIPv6PrefixLen"], 64, "{ns}");
    assert_eq!(ns["IPv6Gateway"], gw6.as_str(), "{ns}");
    let ep = &ns["Networks"]["v6net"];
    assert_eq!(ep["GlobalIPv6Address"], ip6b.as_str(), "{ep}");
    assert_eq!(ep["IPAMConfig"]["IPv6Address"], ip6b.as_str(), "{ep}");
    let a6 = inspect_ctr(&env, "v6a")["NetworkSettings"]["GlobalIPv6Address"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(a6.starts_with(&format!("fd00:{tag:x}:6::")), "{a6}");
    // Inside: the address on eth0, the IPv6 default route, both names in /etc/hosts, and
    // IPv6 reachability of a member (by name and address) and of the gateway.
    let probe = env.ok(&[
        "exec",
        "v6a",
        "sh",
        "-c",
        &format!(
            "ip -6 addr show eth0 | grep -q '{a6}/64' && echo addr; \
             ip -6 route | grep -q 'default via {gw6}' && echo route; \
             grep -q '^{ip6b}\tv6b' /etc/hosts || grep -q '^{ip6b}\t.* v6b' /etc/hosts && echo hosts; \
             ping -6 -c1 -W2 v6b >/dev/null && echo name; \
             ping -c1 -W2 {ip6b} >/dev/null && echo member; \
             ping -c1 -W2 {gw6} >/dev/null && echo gateway; \
             cat /proc/sys/net/ipv6/conf/eth0/accept_ra"
        ),
    ]);
    // No router advertisements taken, inside (another member could send one) or on the
    // bridge.
    assert_eq!(probe, "addr\nroute\nhosts\nname\nmember\ngateway\n0\n");
    let ra = std::fs::read_to_string(format!("/proc/sys/net/ipv6/conf/{bridge}/accept_ra"));
    assert_eq!(ra.unwrap().trim(), "0");
    // A container on an IPv4 network joins the dual-stack one live with --ip6 (eth1).
    env.ok(&["network", "create", "v6four"]);
    env.ok(&[
        "run",
        "-d",
        "--name",
        "v6c",
        "--network",
        "v6four",
        IMAGE,
        "sleep",
        "60",
    ]);
    let ip6c = format!("fd00:{tag:x}:6::99");
    env.ok(&["network", "connect", "--ip6", &ip6c, "v6net", "v6c"]);
    let probe = env.ok(&[
        "exec",
        "v6c",
        "sh",
        "-c",
        &format!(
            "ip -6 addr show eth1 | grep -q '{ip6c}/64' && echo addr; \
             ping -6 -c1 -W2 v6a >/dev/null && echo reach"
        ),
    ]);
    assert_eq!(probe, "addr\nreach\n");
    // Leaving its first network makes the dual-stack one first: both default routes move.
    env.ok(&["network", "disconnect", "v6four", "v6c"]);
    let routes = env.ok(&["exec", "v6c", "sh", "-c", "ip route; ip -6 route"]);
    assert!(
        routes.contains(&format!("default via {gw6} dev eth1")),
        "{routes}"
    );
    assert!(routes.contains("default via 10.235."), "{routes}");
    // Refusals: one sentence naming the fix, nothing made.
    for (args, says) in [
        (
            vec![
                "run",
                "--rm",
                "--network",
                "v6four",
                "--ip6",
                "fd00::5",
                IMAGE,
                "true",
            ],
            "--ipv6",
        ),
        (
            vec![
                "run",
                "--rm",
                "--network",
                "v6net",
                "--ip6",
                &ip6b,
                IMAGE,
                "true",
            ],
            "already in use",
        ),
        (
            vec![
                "run",
                "--rm",
                "--network",
                "v6net",
                "--ip6",
                "fd01::5",
                IMAGE,
                "true",
            ],
            "choose one inside",
        ),
        (
            vec![
                "run",
                "--rm",
                "--network",
                "v6net",
                "--ip6",
                "nope",
                IMAGE,
                "true",
            ],
            "IPv6 address",
        ),
        (
            vec!["network", "create", "--subnet", "fd01::/64", "v6bad"],
            "add --ipv6",
        ),
        (
            vec!["network", "create", "--ipv6", "--subnet", &sub6, "v6bad"],
            "overlaps network v6net",
        ),
        (
            vec![
                "network",
                "create",
                "--ipv6",
                "--subnet",
                "fd01::/64",
                "--subnet",
                "fd02::/64",
                "v6bad",
            ],
            "one of each",
        ),
        (
            vec![
                "network",
                "create",
                "--ipv6",
                "--subnet",
                "fe80::/64",
                "v6bad",
            ],
            "not a unicast network",
        ),
    ] {
        let o = env.gcr(&args);
        assert!(!o.status.success(), "{args:?}");
        assert!(stderr(&o).contains(says), "{args:?}: {}", stderr(&o));
    }
    assert!(!env.ok(&["network", "ls"]).contains("v6bad"));
    // --ipv6 alone: a unique local /64 of its own.
    env.ok(&["network", "create", "--ipv6", "v6auto"]);
    let auto = inspect(&env, "v6auto");
    let s = auto["subnet6"].as_str().unwrap();
    assert!(s.starts_with("fd") && s.ends_with("::/64"), "{auto}");
    env.ok(&["rm", "-f", "v6a", "v6b", "v6c"]);
    env.ok(&["network", "rm", "v6net", "v6auto", "v6four"]);
    assert!(!nft_has("ip6", &table), "table ip6 {table} left after rm");
    assert!(
        !std::path::Path::new(&format!("/sys/class/net/{bridge}")).exists(),
        "bridge {bridge} left after rm"
    );
}
