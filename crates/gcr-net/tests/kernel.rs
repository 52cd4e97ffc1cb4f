//! Real-kernel test (root): a bridge, a namespace wired to it (dual stack), and TCP over
//! IPv4 and IPv6 from the host to a listener inside the namespace; a second interface on a second bridge added to the
//! existing namespace. Cleans up the bridges even on failure.

use std::io::{Read, Write};
use std::net::{Ipv4Addr, Ipv6Addr, TcpListener, TcpStream};
use std::os::fd::{AsFd, AsRawFd};

use gcr_net::netlink::Socket;
use gcr_net::netns::{self, Endpoint};
use gcr_net::{link, Subnet, Subnet6};

fn need_root() -> bool {
    // SAFETY: geteuid has no arguments.
    if unsafe { libc::geteuid() } == 0 {
        return true;
    }
    assert!(
        std::env::var("CI").as_deref() != Ok("true"),
        "needs root under CI=true"
    );
    eprintln!("skipped: needs root");
    false
}

struct BridgeGuard(String);

impl Drop for BridgeGuard {
    fn drop(&mut self) {
        if let Ok(mut s) = Socket::open() {
            let _ = link::delete(&mut s, &self.0);
        }
    }
}

#[test]
fn namespace_on_bridge_is_reachable_over_both_families() {
    if !need_root() {
        return;
    }
    let br = format!("gcrt{}", std::process::id() % 100000);
    let _g = BridgeGuard(br.clone());
    let sub = Subnet::parse("10.213.7.0/24").unwrap();
    let mut s = Socket::open().unwrap();
    link::create_bridge(&mut s, &br, Some(1450)).unwrap();
    let bi = link::index(&br).unwrap();
    link::add_addr(&mut s, bi, sub.gateway(), sub.prefix).unwrap();
    let sub6 = Subnet6::parse("fd00:213:7::/64").unwrap();
    link::add_addr6(&mut s, bi, sub6.gateway(), sub6.prefix).unwrap();
    let ip = sub.host(2);
    let ip6 = sub6.host(2);
    let t = std::time::Instant::now();
    let ns = netns::create_attached(
        &mut s,
        &Endpoint {
            host_if: format!("{br}v"),
            bridge: bi,
            peer_if: "eth0".into(),
            ip,
            prefix: sub.prefix,
            gateway: sub.gateway(),
            default_route: true,
            mtu: Some(1450),
            isolated: true,
            v6: Some(netns::V6 {
                ip: ip6,
                prefix: sub6.prefix,
                gateway: sub6.gateway(),
            }),
            sub: None,
            mac: link::mac_for(ip),
        },
    )
    .unwrap();
    eprintln!("netns + veth + config: {:?}", t.elapsed());
    assert!(link::index(&format!("{br}v")).is_some());
    // The network's MTU on the bridge and the host end; the host end an isolated port.
    let sys = |p: String| std::fs::read_to_string(p).unwrap().trim().to_string();
    assert_eq!(sys(format!("/sys/class/net/{br}/mtu")), "1450");
    assert_eq!(sys(format!("/sys/class/net/{br}v/mtu")), "1450");
    assert_eq!(sys(format!("/sys/class/net/{br}v/brport/isolated")), "1");
    // A listener inside the namespace, from a thread that joined it.
    let nsfd = ns.as_raw_fd();
    let (tx, rx) = std::sync::mpsc::channel();
    let h = std::thread::spawn(move || {
        // SAFETY: setns on this helper thread with a valid namespace descriptor.
        assert_eq!(unsafe { libc::setns(nsfd, libc::CLONE_NEWNET) }, 0);
        // Both families: an IPv6 socket that takes IPv4 too.
        let l = TcpListener::bind((Ipv6Addr::UNSPECIFIED, 7777)).unwrap();
        tx.send(()).unwrap();
        for _ in 0..2 {
            let (mut c, _) = l.accept().unwrap();
            c.write_all(b"hello").unwrap();
        }
    });
    rx.recv().unwrap();
    // The IPv6 address is usable at once (no duplicate address detection).
    for addr in [std::net::IpAddr::from(ip), ip6.into()] {
        let mut c = TcpStream::connect((addr, 7777)).unwrap();
        let mut buf = String::new();
        c.read_to_string(&mut buf).unwrap();
        assert_eq!(buf, "hello", "{addr}");
    }
    h.join().unwrap();
    drop(ns);
    link::delete(&mut s, &format!("{br}v")).unwrap();
    assert!(link::index(&format!("{br}v")).is_none());
}

/// Serves one "hello" on `port` inside namespace `nsfd`; returns once it listens.
fn serve_once(nsfd: i32, port: u16) -> std::thread::JoinHandle<()> {
    let (tx, rx) = std::sync::mpsc::channel();
    let h = std::thread::spawn(move || {
        // SAFETY: setns on this helper thread with a valid namespace descriptor.
        assert_eq!(unsafe { libc::setns(nsfd, libc::CLONE_NEWNET) }, 0);
        let l = TcpListener::bind((Ipv4Addr::UNSPECIFIED, port)).unwrap();
        tx.send(()).unwrap();
        let (mut c, _) = l.accept().unwrap();
        c.write_all(b"hello").unwrap();
    });
    rx.recv().unwrap();
    h
}

#[test]
fn second_interface_joins_an_existing_namespace() {
    if !need_root() {
        return;
    }
    let (br1, br2) = (
        format!("gcrm{}", std::process::id() % 100000),
        format!("gcrn{}", std::process::id() % 100000),
    );
    let _g1 = BridgeGuard(br1.clone());
    let _g2 = BridgeGuard(br2.clone());
    let mut s = Socket::open().unwrap();
    let mut wire = |br: &str, sub: &Subnet| {
        link::create_bridge(&mut s, br, None).unwrap();
        let bi = link::index(br).unwrap();
        link::add_addr(&mut s, bi, sub.gateway(), sub.prefix).unwrap();
        bi
    };
    let (sub1, sub2) = (
        Subnet::parse("10.213.8.0/24").unwrap(),
        Subnet::parse("10.213.9.0/24").unwrap(),
    );
    let (b1, b2) = (wire(&br1, &sub1), wire(&br2, &sub2));
    let ep = |br: &str, bi: u32, sub: &Subnet, ifname: &str, first: bool| Endpoint {
        host_if: format!("{br}v"),
        bridge: bi,
        peer_if: ifname.into(),
        ip: sub.host(2),
        prefix: sub.prefix,
        gateway: sub.gateway(),
        default_route: first,
        mtu: None,
        isolated: false,
        v6: None,
        sub: None,
        mac: link::mac_for(sub.host(2)),
    };
    let ns = netns::create_attached(&mut s, &ep(&br1, b1, &sub1, "eth0", true)).unwrap();
    netns::attach_existing(&mut s, ns.as_fd(), &ep(&br2, b2, &sub2, "eth1", false)).unwrap();
    assert!(link::index(&format!("{br2}v")).is_some());
    // Reachable from the host on the second bridge's subnet.
    let h = serve_once(ns.as_raw_fd(), 7778);
    let mut c = TcpStream::connect((sub2.host(2), 7778)).unwrap();
    let mut buf = String::new();
    c.read_to_string(&mut buf).unwrap();
    assert_eq!(buf, "hello");
    h.join().unwrap();
    // An interface name the namespace has is refused, and no half-made pair is left.
    let mut dup = ep(&br2, b2, &sub2, "eth0", false);
    dup.host_if = format!("{br2}w");
    assert!(netns::attach_existing(&mut s, ns.as_fd(), &dup).is_err());
    assert!(link::index(&format!("{br2}w")).is_none());
    assert!(link::index(&format!("{br2}v")).is_some());
    assert_eq!(
        link::mac_text(link::mac_for(sub2.host(2))),
        "02:42:0a:d5:09:02"
    );
    // Deleting the host end takes the interface away.
    link::delete(&mut s, &format!("{br2}v")).unwrap();
    drop(ns);
    let _ = link::delete(&mut s, &format!("{br1}v"));
}
