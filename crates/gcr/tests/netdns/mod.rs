//! The embedded DNS server of user networks (root): `nameserver 127.0.0.11` in the
//! resolv.conf of a container on a user network, members and aliases answered there (and a
//! member that joins later), reverse lookups, other names forwarded to the `--dns` server
//! (a fake one of this test on a loopback address of the host: the server runs in the
//! host's namespace), none forwarded from an internal network, the default bridge left as
//! it was, and the server gone with its container. Only loopback and addresses inside the
//! test's networks are contacted.

use super::*;
use std::net::UdpSocket;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

/// A DNS server on `127.53.X.Y:53` that answers every query with one A record, 192.0.2.7;
/// its address and the number of queries it got.
fn fake_upstream() -> (String, Arc<AtomicUsize>) {
    let tag = std::process::id();
    let ip = format!("127.53.{}.{}", (tag >> 8) % 250 + 1, tag % 250 + 1);
    let sock = UdpSocket::bind((ip.as_str(), 53)).expect("binding the fake upstream server");
    let seen = Arc::new(AtomicUsize::new(0));
    let count = seen.clone();
    std::thread::spawn(move || {
        let mut buf = [0u8; 1500];
        while let Ok((n, from)) = sock.recv_from(&mut buf) {
            count.fetch_add(1, Ordering::SeqCst);
            if let Some(reply) = a_record(&buf[..n], [192, 0, 2, 7]) {
                let _ = sock.send_to(&reply, from);
            }
        }
    });
    (ip, seen)
}

/// The reply to a one-question query: its header and question, then one A record `ip`
/// for an A query (none for another type), by hand (RFC 1035 4.1).
fn a_record(q: &[u8], ip: [u8; 4]) -> Option<Vec<u8>> {
    let mut i = 12;
    while *q.get(i)? != 0 {
        i += usize::from(q[i]) + 1;
    }
    let end = i + 5;
    let is_a = q.get(i + 1..i + 3)? == [0, 1];
    let mut r = q.get(..end)?.to_vec();
    r[2] = 0x81; // response, recursion desired
    r[3] = 0x80; // recursion available, NOERROR
    r[6..12].copy_from_slice(&[0, u8::from(is_a), 0, 0, 0, 0]);
    if is_a {
        r.extend_from_slice(&[0xc0, 12, 0, 1, 0, 1, 0, 0, 0, 30, 0, 4]);
        r.extend_from_slice(&ip);
    }
    Some(r)
}

/// `nslookup NAME` inside a new container on `net` (with `extra` flags): its output.
fn lookup(env: &Env, net: &str, extra: &[&str], name: &str) -> String {
    let mut args = vec!["run", "--rm", "--network", net];
    args.extend_from_slice(extra);
    args.extend_from_slice(&[IMAGE, "nslookup", name]);
    let o = env.gcr(&args);
    format!("{}{}", stdout(&o), stderr(&o))
}

fn ip_on(env: &Env, c: &str, net: &str) -> String {
    inspect_ctr(env, c)["NetworkSettings"]["Networks"][net]["IPAddress"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

/// Pids of `gcr __proxy` processes serving container `id`.
fn helpers_of(id: &str) -> Vec<u32> {
    std::fs::read_dir("/proc")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let pid: u32 = e.file_name().to_str()?.parse().ok()?;
            let cmd = std::fs::read(e.path().join("cmdline")).ok()?;
            let cmd = String::from_utf8_lossy(&cmd).replace('\0', " ");
            (cmd.contains("__proxy") && cmd.contains(id)).then_some(pid)
        })
        .collect()
}

#[test]
fn user_networks_resolve_names_at_127_0_0_11() {
    if !need_root("user_networks_resolve_names_at_127_0_0_11") {
        return;
    }
    let env = Env::new();
    let _g = NetGuard(&env, vec!["dnsnet".into(), "dnsint".into()]);
    let (upstream, seen) = fake_upstream();
    let dns = ["--dns", upstream.as_str()];
    env.ok(&["network", "create", "dnsnet"]);
    env.ok(&["network", "create", "--internal", "dnsint"]);
    env.ok(&[
        "run",
        "-d",
        "--name",
        "web",
        "--network",
        "dnsnet",
        "--network-alias",
        "www",
        IMAGE,
        "sleep",
        "120",
    ]);
    let web_ip = ip_on(&env, "web", "dnsnet");
    assert!(!web_ip.is_empty());

    // resolv.conf names the embedded server; --dns is where it forwards.
    let conf = env.ok(&[
        "run",
        "--rm",
        "--network",
        "dnsnet",
        dns[0],
        dns[1],
        IMAGE,
        "cat",
        "/etc/resolv.conf",
    ]);
    assert!(conf.starts_with("nameserver 127.0.0.11\n"), "{conf}");
    assert!(
        conf.contains("ndots:0") && conf.contains(&upstream),
        "{conf}"
    );
    let plain = env.ok(&["run", "--rm", IMAGE, "cat", "/etc/resolv.conf"]);
    assert!(
        !plain.contains("127.0.0.11"),
        "the default bridge keeps the host's resolvers: {plain}"
    );

    // Members and aliases are answered by the server, not by /etc/hosts; also qualified
    // by their network, as Docker's server answers NAME.NETWORK.
    for name in ["web", "www", "WEB.", "web.dnsnet", "www.dnsnet"] {
        let out = lookup(&env, "dnsnet", &dns, name);
        assert!(
            out.contains("127.0.0.11") && out.contains(&web_ip),
            "{name}: {out}"
        );
    }
    assert_eq!(seen.load(Ordering::SeqCst), 0, "members never go upstream");
    // A reverse lookup of a member gives its name (its hostname comes first).
    let host = inspect_ctr(&env, "web")["Config"]["Hostname"]
        .as_str()
        .unwrap()
        .to_string();
    let out = lookup(&env, "dnsnet", &dns, &web_ip);
    assert!(out.contains(&host), "{out}");

    // Other names go to the --dns server, from the host's namespace.
    let out = lookup(&env, "dnsnet", &dns, "elsewhere.test");
    assert!(out.contains("192.0.2.7"), "{out}");
    assert!(seen.load(Ordering::SeqCst) > 0);

    // A member that joins later is found by a running container.
    env.ok(&[
        "run",
        "-d",
        "--name",
        "db",
        "--network",
        "dnsnet",
        IMAGE,
        "sleep",
        "120",
    ]);
    let db_ip = ip_on(&env, "db", "dnsnet");
    let out = env.ok(&["exec", "web", "nslookup", "db", "127.0.0.11"]);
    assert!(out.contains(&db_ip), "{out}");
    // A container's own name qualified by its network is answered too.
    let out = env.ok(&["exec", "web", "nslookup", "web.dnsnet", "127.0.0.11"]);
    assert!(out.contains(&web_ip), "{out}");

    // An internal network forwards nothing: members resolve, outside names fail.
    env.ok(&[
        "run",
        "-d",
        "--name",
        "inner",
        "--network",
        "dnsint",
        IMAGE,
        "sleep",
        "120",
    ]);
    let before = seen.load(Ordering::SeqCst);
    let out = lookup(&env, "dnsint", &dns, "inner");
    assert!(out.contains(&ip_on(&env, "inner", "dnsint")), "{out}");
    let out = lookup(&env, "dnsint", &dns, "elsewhere.test");
    assert!(!out.contains("192.0.2.7"), "{out}");
    assert_eq!(seen.load(Ordering::SeqCst), before, "nothing forwarded");
    let conf = env.ok(&[
        "run",
        "--rm",
        "--network",
        "dnsint",
        IMAGE,
        "cat",
        "/etc/resolv.conf",
    ]);
    assert!(conf.contains("not resolved"), "{conf}");

    // The server goes with its container.
    let id = inspect_ctr(&env, "web")["Id"].as_str().unwrap().to_string();
    assert_eq!(helpers_of(&id).len(), 1, "one helper serves web");
    env.ok(&["rm", "-f", "web"]);
    assert!(
        eventually(5, || helpers_of(&id).is_empty()),
        "web's DNS server outlived it"
    );
}
