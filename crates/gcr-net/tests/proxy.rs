//! The port proxy on loopback: TCP bytes both ways with half-close, and UDP datagrams with
//! replies routed back to the right client.

use std::io::{Read, Write};
use std::net::{SocketAddrV4, TcpListener, TcpStream, UdpSocket};
use std::time::Duration;

use gcr_net::proxy::{spawn_relay, Relay};
use gcr_net::Proto;

fn v4(a: std::net::SocketAddr) -> SocketAddrV4 {
    match a {
        std::net::SocketAddr::V4(v) => v,
        std::net::SocketAddr::V6(_) => panic!("ipv6"),
    }
}

#[test]
fn tcp_relay_copies_both_ways() {
    let backend = TcpListener::bind("127.0.0.1:0").unwrap();
    let target = v4(backend.local_addr().unwrap());
    std::thread::spawn(move || {
        let (mut c, _) = backend.accept().unwrap();
        let mut buf = Vec::new();
        c.read_to_end(&mut buf).unwrap();
        c.write_all(&buf).unwrap();
    });
    let front = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = front.local_addr().unwrap().port();
    spawn_relay(Relay {
        listener: front.into(),
        proto: Proto::Tcp,
        target,
    })
    .unwrap();
    let mut c = TcpStream::connect(("127.0.0.1", port)).unwrap();
    let data: Vec<u8> = (0..3_000_000u32).map(|i| (i % 251) as u8).collect();
    let w = {
        let mut c2 = c.try_clone().unwrap();
        let d = data.clone();
        std::thread::spawn(move || {
            c2.write_all(&d).unwrap();
            c2.shutdown(std::net::Shutdown::Write).unwrap();
        })
    };
    let mut back = Vec::new();
    c.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    c.read_to_end(&mut back).unwrap();
    w.join().unwrap();
    assert_eq!(back.len(), data.len());
    assert!(back == data, "relayed bytes differ");
}

#[test]
fn udp_relay_answers_each_client() {
    let backend = UdpSocket::bind("127.0.0.1:0").unwrap();
    let target = v4(backend.local_addr().unwrap());
    std::thread::spawn(move || {
        let mut buf = [0u8; 1500];
        loop {
            let (n, from) = backend.recv_from(&mut buf).unwrap();
            let mut reply = b"echo:".to_vec();
            reply.extend_from_slice(&buf[..n]);
            backend.send_to(&reply, from).unwrap();
        }
    });
    let front = UdpSocket::bind("127.0.0.1:0").unwrap();
    let port = front.local_addr().unwrap().port();
    spawn_relay(Relay {
        listener: front.into(),
        proto: Proto::Udp,
        target,
    })
    .unwrap();
    for who in ["a", "b"] {
        let c = UdpSocket::bind("127.0.0.1:0").unwrap();
        c.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        c.send_to(who.as_bytes(), ("127.0.0.1", port)).unwrap();
        let mut buf = [0u8; 64];
        let (n, _) = c.recv_from(&mut buf).unwrap();
        assert_eq!(&buf[..n], format!("echo:{who}").as_bytes());
    }
}
