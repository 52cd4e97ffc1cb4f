//! Real-kernel test (root): a bridge, a namespace wired to it, and TCP from the host to a
//! listener inside the namespace. Cleans up the bridge even on failure.

use std::io::{Read, Write};
use std::net::{Ipv4Addr, TcpListener, TcpStream};
use std::os::fd::AsRawFd;

use gcr_net::netlink::Socket;
use gcr_net::netns::{self, Endpoint};
use gcr_net::{link, Subnet};

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
fn namespace_on_bridge_is_reachable() {
    if !need_root() {
        return;
    }
    let br = format!("gcrt{}", std::process::id() % 100000);
    let _g = BridgeGuard(br.clone());
    let sub = Subnet::parse("10.213.7.0/24").unwrap();
    let mut s = Socket::open().unwrap();
    link::create_bridge(&mut s, &br).unwrap();
    let bi = link::index(&br).unwrap();
    link::add_addr(&mut s, bi, sub.gateway(), sub.prefix).unwrap();
    let ip = sub.host(2);
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
        },
    )
    .unwrap();
    eprintln!("netns + veth + config: {:?}", t.elapsed());
    assert!(link::index(&format!("{br}v")).is_some());
    // A listener inside the namespace, from a thread that joined it.
    let nsfd = ns.as_raw_fd();
    let (tx, rx) = std::sync::mpsc::channel();
    let h = std::thread::spawn(move || {
        // SAFETY: setns on this helper thread with a valid namespace descriptor.
        assert_eq!(unsafe { libc::setns(nsfd, libc::CLONE_NEWNET) }, 0);
        let l = TcpListener::bind((Ipv4Addr::UNSPECIFIED, 7777)).unwrap();
        tx.send(()).unwrap();
        let (mut c, _) = l.accept().unwrap();
        c.write_all(b"hello").unwrap();
    });
    rx.recv().unwrap();
    let mut c = TcpStream::connect((ip, 7777)).unwrap();
    let mut buf = String::new();
    c.read_to_string(&mut buf).unwrap();
    assert_eq!(buf, "hello");
    h.join().unwrap();
    drop(ns);
    link::delete(&mut s, &format!("{br}v")).unwrap();
    assert!(link::index(&format!("{br}v")).is_none());
}
