//! Dual-stack networks through `gcr system service` (issue 20): the stock docker CLI's
//! `network create --ipv6 --subnet V4 --subnet V6`, `run --ip6`, `network connect --ip6`
//! and the inspect fields it reads; docker-py's `networks.create(enable_ipv6=True, ipam=…)`;
//! docker-compose's `enable_ipv6` network; the docker CLI's `network create -d macvlan -o
//! parent=IF` and a container on it. Every response is checked against Docker's swagger by
//! the service guard. Only addresses inside the test's networks are contacted.

mod common;

use std::process::{Command, Stdio};

use common::servers::need_tools;
use common::service::{docker_py, sock_host, Service};
use common::{need_root, stderr, stdout, Env, IMAGE};

/// An IPv6 /64 and an IPv4 /24 of this test process (`n` tells a test's networks apart).
fn subnets(n: u32) -> (String, String) {
    let tag = std::process::id() % 60_000 + 1000;
    (
        format!("fd00:{tag:x}:{n}::"),
        format!("10.236.{}.", (tag + n) % 200 + 20),
    )
}

#[test]
fn docker_cli_makes_dual_stack_networks() {
    if !need_root("docker_cli_makes_dual_stack_networks")
        || !need_tools("docker_cli_makes_dual_stack_networks", &["docker"])
    {
        return;
    }
    let env = Env::new();
    let svc = Service::start(&env, &sock_host(env.root.path()), &[]);
    let (p6, p4) = subnets(1);
    let (sub6, sub4) = (format!("{p6}/64"), format!("{p4}0/24"));
    svc.ok(&[
        "network",
        "create",
        "--ipv6",
        "--subnet",
        &sub4,
        "--subnet",
        &sub6,
        "--gateway",
        &format!("{p6}fe"),
        "dual",
    ]);
    let shape = svc.ok(&[
        "network",
        "inspect",
        "--format",
        "{{.EnableIPv6}} {{range .IPAM.Config}}{{.Subnet}}/{{.Gateway}} {{end}}",
        "dual",
    ]);
    assert_eq!(
        shape.trim(),
        format!("true {sub4}/{p4}1 {sub6}/{p6}fe"),
        "{shape}"
    );
    // A container with an address of its choice and one leased.
    let mine = format!("{p6}42");
    svc.ok(&[
        "run",
        "-d",
        "--name",
        "six",
        "--network",
        "dual",
        "--ip6",
        &mine,
        IMAGE,
        "sleep",
        "60",
    ]);
    let got = svc.ok(&[
        "inspect",
        "--format",
        "{{.NetworkSettings.Networks.dual.GlobalIPv6Address}}/{{.NetworkSettings.Networks.dual.GlobalIPv6PrefixLen}} {{.NetworkSettings.Networks.dual.IPv6Gateway}} {{.NetworkSettings.Networks.dual.IPAMConfig.IPv6Address}}",
        "six",
    ]);
    assert_eq!(got.trim(), format!("{mine}/64 {p6}fe {mine}"));
    // The network's members with Docker's addresses (their prefix lengths).
    let members = svc.ok(&[
        "network",
        "inspect",
        "--format",
        "{{range .Containers}}{{.Name}} {{.IPv4Address}} {{.IPv6Address}} {{.MacAddress}}{{end}}",
        "dual",
    ]);
    let f: Vec<&str> = members.split_whitespace().collect();
    assert_eq!(f.len(), 4, "{members}");
    assert_eq!(f[0], "six", "{members}");
    assert!(f[1].starts_with(&p4) && f[1].ends_with("/24"), "{members}");
    assert_eq!(f[2], format!("{mine}/64"), "{members}");
    assert!(f[3].starts_with("02:42:"), "{members}");
    let probe = svc.ok(&[
        "run",
        "--rm",
        "--network",
        "dual",
        IMAGE,
        "sh",
        "-c",
        &format!(
            "ip -6 route | grep -q 'default via {p6}fe' && echo route; \
             ping -6 -c1 -W2 six >/dev/null && echo six; \
             ping -c1 -W2 {p6}fe >/dev/null && echo gateway"
        ),
    ]);
    assert_eq!(probe, "route\nsix\ngateway\n");
    // A container of an IPv4 network joins live, with an address of its choice.
    svc.ok(&["network", "create", "four"]);
    svc.ok(&[
        "run",
        "-d",
        "--name",
        "late",
        "--network",
        "four",
        IMAGE,
        "sleep",
        "60",
    ]);
    let late = format!("{p6}43");
    svc.ok(&["network", "connect", "--ip6", &late, "dual", "late"]);
    let eth1 = svc.ok(&[
        "exec",
        "late",
        "sh",
        "-c",
        "ip -6 addr show eth1 | grep global",
    ]);
    assert!(eth1.contains(&format!("{late}/64")), "{eth1}");
    // Refusals in Docker's words where the CLI checks, gcr's where the service does.
    svc.fails(
        &[
            "run",
            "--rm",
            "--network",
            "four",
            "--ip6",
            &format!("{p6}44"),
            IMAGE,
            "true",
        ],
        "leave out --ip6 or create the network with --ipv6",
    );
    svc.fails(
        &[
            "run",
            "--rm",
            "--network",
            "dual",
            "--ip6",
            &mine,
            IMAGE,
            "true",
        ],
        "already in use",
    );
    svc.fails(
        &[
            "network",
            "create",
            "--subnet",
            &format!("{}/64", subnets(2).0),
            "v4only",
        ],
        "add --ipv6",
    );
    let ls = svc.ok(&["network", "ls", "--format", "{{.Name}} {{.IPv6}}"]);
    assert!(
        ls.contains("dual true") && ls.contains("four false"),
        "{ls}"
    );
    svc.ok(&["rm", "-f", "six", "late"]);
    svc.ok(&["network", "rm", "dual", "four"]);
}

const PY: &str = r#"
import sys, docker
from docker.types import IPAMConfig, IPAMPool
c = docker.DockerClient(base_url=sys.argv[1])
p6, p4, img = sys.argv[2], sys.argv[3], sys.argv[4]
ipam = IPAMConfig(pool_configs=[IPAMPool(subnet=p4 + "0/24"), IPAMPool(subnet=p6 + "/64")])
n = c.networks.create("pydual", driver="bridge", enable_ipv6=True, ipam=ipam)
n.reload()
assert n.attrs["EnableIPv6"] is True, n.attrs
subnets = [x["Subnet"] for x in n.attrs["IPAM"]["Config"]]
assert subnets == [p4 + "0/24", p6 + "/64"], subnets
out = c.containers.run(img, ["sh", "-c", "ip -6 addr show eth0 | grep -c 'scope global'"],
                       network="pydual", remove=True)
print(out.decode().strip())
n.remove()
"#;

#[test]
fn docker_py_creates_a_dual_stack_network() {
    if !need_root("docker_py_creates_a_dual_stack_network") {
        return;
    }
    let Some(python) = docker_py("docker_py_creates_a_dual_stack_network") else {
        return;
    };
    let env = Env::new();
    let svc = Service::start(&env, &sock_host(env.root.path()), &[]);
    let (p6, p4) = subnets(3);
    let o = Command::new(python)
        .args(["-c", PY, &svc.host, &p6, &p4, IMAGE])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(o.status.success(), "{}{}", stdout(&o), stderr(&o));
    assert_eq!(stdout(&o).trim(), "1", "one global IPv6 address on eth0");
}

#[test]
fn compose_brings_up_an_enable_ipv6_network() {
    if !need_root("compose_brings_up_an_enable_ipv6_network")
        || !need_tools(
            "compose_brings_up_an_enable_ipv6_network",
            &["docker", "docker-compose"],
        )
    {
        return;
    }
    let env = Env::new();
    let svc = Service::start(&env, &sock_host(env.root.path()), &[]);
    let (p6, p4) = subnets(4);
    let dir = tempfile::tempdir().unwrap();
    let yml = format!(
        "version: \"2.4\"\nservices:\n  app:\n    image: {IMAGE}\n    command: [\"sleep\", \"60\"]\n    \
         networks:\n      front:\n        ipv6_address: \"{p6}10\"\nnetworks:\n  front:\n    \
         enable_ipv6: true\n    ipam:\n      config:\n        - subnet: \"{p4}0/24\"\n        \
         - subnet: \"{p6}/64\"\n"
    );
    std::fs::write(dir.path().join("docker-compose.yml"), yml).unwrap();
    let compose = |args: &[&str]| {
        Command::new("docker-compose")
            .current_dir(dir.path())
            .env_remove("DOCKER_CONTEXT")
            .env("DOCKER_HOST", &svc.host)
            .env("DOCKER_CONFIG", svc.config.path())
            .env("COMPOSE_PROJECT_NAME", "gcrsix")
            .args(["--ansi", "never"])
            .args(args)
            .stdin(Stdio::null())
            .output()
            .expect("run docker-compose")
    };
    let up = compose(&["up", "-d"]);
    assert!(up.status.success(), "{}{}", stdout(&up), stderr(&up));
    let addr = svc.ok(&[
        "exec",
        "gcrsix_app_1",
        "sh",
        "-c",
        "ip -6 addr show eth0 | grep global",
    ]);
    assert!(addr.contains(&format!("{p6}10/64")), "{addr}");
    // A second `up` finds the network as it made it.
    let again = compose(&["up", "-d"]);
    let text = format!("{}{}", stdout(&again), stderr(&again));
    assert!(
        again.status.success() && text.contains("is up-to-date"),
        "{text}"
    );
    let down = compose(&["down"]);
    assert!(down.status.success(), "{}", stderr(&down));
}

#[test]
fn docker_cli_makes_macvlan_networks() {
    if !need_root("docker_cli_makes_macvlan_networks")
        || !need_tools("docker_cli_makes_macvlan_networks", &["docker"])
    {
        return;
    }
    let env = Env::new();
    let (_, p4) = subnets(7);
    let parent = common::links::Parent::new("a", &format!("{p4}1/24"));
    let svc = Service::start(&env, &sock_host(env.root.path()), &[]);
    let o = svc.docker(&["network", "create", "-d", "macvlan", "nolan"]);
    assert!(
        !o.status.success() && stderr(&o).contains("parent=INTERFACE"),
        "{}",
        stderr(&o)
    );
    svc.ok(&[
        "network",
        "create",
        "-d",
        "macvlan",
        "--subnet",
        &format!("{p4}0/24"),
        "-o",
        &format!("parent={}", parent.0),
        "lan",
    ]);
    let shown = svc.ok(&[
        "network",
        "inspect",
        "-f",
        "{{.Driver}} {{.Options.parent}}",
        "lan",
    ]);
    assert_eq!(shown.trim(), format!("macvlan {}", parent.0));
    let ls = svc.ok(&[
        "network",
        "ls",
        "--filter",
        "driver=macvlan",
        "--format",
        "{{.Name}}",
    ]);
    assert_eq!(ls.trim(), "lan");
    let ip = format!("{p4}50");
    let out = svc.ok(&[
        "run",
        "--rm",
        "--network",
        "lan",
        "--ip",
        &ip,
        IMAGE,
        "sh",
        "-c",
        "cat /sys/class/net/eth0/address; ip -4 addr show eth0",
    ]);
    let mac: Vec<String> = ip
        .split('.')
        .map(|o| format!("{:02x}", o.parse::<u8>().unwrap()))
        .collect();
    assert!(
        out.starts_with(&format!("02:42:{}", mac.join(":"))) && out.contains(&format!("{ip}/24")),
        "{out}"
    );
    svc.ok(&["network", "rm", "lan"]);
    drop(svc);
}
