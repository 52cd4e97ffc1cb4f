//! The server over real loopback sockets, with a fake upstream server.

use super::*;
use hickory_proto::op::{Message, MessageType, OpCode, Query, ResponseCode};
use hickory_proto::rr::rdata::A;
use hickory_proto::rr::{Name, RData, Record, RecordType};

fn query(id: u16, name: &str) -> Vec<u8> {
    let mut m = Message::new(id, MessageType::Query, OpCode::Query);
    m.metadata.recursion_desired = true;
    m.add_query(Query::query(Name::from_ascii(name).unwrap(), RecordType::A));
    m.to_vec().unwrap()
}

/// A server that answers every A query with 192.0.2.7, over UDP and TCP on one port.
fn fake_upstream() -> SocketAddr {
    let u = UdpSocket::bind("127.0.0.1:0").unwrap();
    let addr = u.local_addr().unwrap();
    let t = TcpListener::bind(addr).unwrap();
    let reply = |q: &[u8]| {
        let q = Message::from_vec(q).unwrap();
        let mut m = Message::response(q.metadata.id, OpCode::Query);
        m.add_query(q.queries[0].clone());
        m.add_answer(Record::from_rdata(
            q.queries[0].name().clone(),
            30,
            RData::A(A("192.0.2.7".parse().unwrap())),
        ));
        m.to_vec().unwrap()
    };
    std::thread::spawn(move || {
        let mut buf = [0u8; 1500];
        while let Ok((n, from)) = u.recv_from(&mut buf) {
            let _ = u.send_to(&reply(&buf[..n]), from);
        }
    });
    std::thread::spawn(move || {
        while let Ok((mut c, _)) = t.accept() {
            while let Ok(Some(q)) = read_msg(&mut c) {
                let _ = write_msg(&mut c, &reply(&q));
            }
        }
    });
    addr
}

/// Starts a resolver on loopback with `hosts` text and `upstreams`; its address.
fn resolver(dir: &std::path::Path, hosts: &str, upstreams: Vec<SocketAddr>) -> SocketAddr {
    let p = dir.join("hosts");
    std::fs::write(&p, hosts).unwrap();
    let u = UdpSocket::bind("127.0.0.1:0").unwrap();
    let addr = u.local_addr().unwrap();
    let t = TcpListener::bind(addr).unwrap();
    spawn(Resolver {
        udp: u.into(),
        tcp: t.into(),
        hosts: p,
        upstreams,
    })
    .unwrap();
    addr
}

fn ask_udp(server: SocketAddr, q: &[u8]) -> Message {
    let c = UdpSocket::bind("127.0.0.1:0").unwrap();
    c.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    c.send_to(q, server).unwrap();
    let mut buf = [0u8; 4096];
    let n = c.recv(&mut buf).unwrap();
    Message::from_vec(&buf[..n]).unwrap()
}

fn first_a(m: &Message) -> Option<String> {
    m.answers.iter().find_map(|r| match &r.data {
        RData::A(a) => Some(a.0.to_string()),
        _ => None,
    })
}

#[test]
fn members_are_local_and_other_names_go_upstream_over_udp_and_tcp() {
    let dir = tempdir();
    let up = fake_upstream();
    let dead = UdpSocket::bind("127.0.0.1:0").unwrap(); // never answers
    let server = resolver(
        &dir,
        "10.9.0.2\tweb\n",
        vec![dead.local_addr().unwrap(), up],
    );
    let m = ask_udp(server, &query(1, "web"));
    assert_eq!(
        (m.metadata.id, first_a(&m).as_deref()),
        (1, Some("10.9.0.2"))
    );
    // The silent first server is given up on; the second answers.
    let m = ask_udp(server, &query(2, "example.org."));
    assert_eq!(
        (m.metadata.id, first_a(&m).as_deref()),
        (2, Some("192.0.2.7"))
    );
    // The hosts file changes (a member joins): the next answer follows.
    std::fs::write(dir.join("hosts"), "10.9.0.2\tweb\n10.9.0.5\tdb\n").unwrap();
    let m = ask_udp(server, &query(3, "db"));
    assert_eq!(first_a(&m).as_deref(), Some("10.9.0.5"));
    // TCP: several queries on one connection, local and forwarded.
    let mut c = TcpStream::connect(server).unwrap();
    c.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    for (id, name, want) in [(4, "web", "10.9.0.2"), (5, "x.example.", "192.0.2.7")] {
        write_msg(&mut c, &query(id, name)).unwrap();
        let m = Message::from_vec(&read_msg(&mut c).unwrap().unwrap()).unwrap();
        assert_eq!((m.metadata.id, first_a(&m).as_deref()), (id, Some(want)));
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn without_upstreams_other_names_fail_and_junk_is_answered_or_dropped() {
    let dir = tempdir();
    let server = resolver(&dir, "10.9.0.2\tweb\n", vec![]);
    let m = ask_udp(server, &query(9, "example.org."));
    assert_eq!(
        (m.metadata.id, m.metadata.response_code, m.queries.len()),
        (9, ResponseCode::ServFail, 1)
    );
    let mut bad = query(10, "web");
    bad[5] = 7;
    let m = ask_udp(server, &bad);
    assert_eq!(m.metadata.response_code, ResponseCode::FormErr);
    // A response sent to the server gets nothing back; the server still serves.
    let c = UdpSocket::bind("127.0.0.1:0").unwrap();
    c.set_read_timeout(Some(Duration::from_millis(300)))
        .unwrap();
    let mut resp = query(11, "web");
    resp[2] |= 0x80;
    c.send_to(&resp, server).unwrap();
    assert!(c.recv(&mut [0u8; 512]).is_err());
    assert_eq!(
        first_a(&ask_udp(server, &query(12, "web"))).as_deref(),
        Some("10.9.0.2")
    );
    assert_eq!(m.metadata.message_type, MessageType::Response);
    std::fs::remove_dir_all(&dir).unwrap();
}

fn tempdir() -> std::path::PathBuf {
    use std::sync::atomic::AtomicU32;
    static N: AtomicU32 = AtomicU32::new(0);
    let d = std::env::temp_dir().join(format!(
        "gcr-dns-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::SeqCst)
    ));
    std::fs::create_dir_all(&d).unwrap();
    d
}
