//! One query, one decision: answered from the table (A, AAAA and PTR of the names the
//! container may reach), passed on to the upstream servers, or answered with an error.
//! Input comes from inside the container and is hostile by assumption: anything that does
//! not decode gets FORMERR (or nothing, when it is not even a query), and no reply is ever
//! made to a message that is itself a response (no loops between resolvers).

use std::net::IpAddr;

use hickory_proto::op::{Message, MessageType, OpCode, ResponseCode};
use hickory_proto::rr::rdata::{A, AAAA, PTR};
use hickory_proto::rr::{DNSClass, Name, RData, Record, RecordType};

use super::table::{key, Table};

/// Time to live of local answers, in seconds (Docker's embedded server says 600).
pub const TTL: u32 = 600;

/// What to do with one query.
#[derive(Debug, PartialEq, Eq)]
pub enum Reply {
    /// Send these bytes back.
    Local(Vec<u8>),
    /// Not a name of the table: ask the upstream servers.
    Forward,
    /// Say nothing (not a query at all).
    Drop,
}

/// Over which transport a query came: it bounds the reply (512 bytes over UDP unless the
/// query's EDNS allows more, up to 4096; 65535 over TCP).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    Udp,
    Tcp,
}

/// The decision for `query` with `table`.
pub fn answer(query: &[u8], table: &Table, via: Transport) -> Reply {
    if query.len() < 12 || query[2] & 0x80 != 0 {
        return Reply::Drop;
    }
    let id = u16::from_be_bytes([query[0], query[1]]);
    let Ok(q) = Message::from_vec(query) else {
        return error(id, OpCode::Query, ResponseCode::FormErr);
    };
    if q.metadata.message_type != MessageType::Query {
        return Reply::Drop;
    }
    if q.metadata.op_code != OpCode::Query {
        return error(id, q.metadata.op_code, ResponseCode::NotImp);
    }
    let [question] = q.queries.as_slice() else {
        return error(id, OpCode::Query, ResponseCode::FormErr);
    };
    if question.query_class() != DNSClass::IN {
        return Reply::Forward;
    }
    let name = question.name().to_ascii();
    let qtype = question.query_type();
    let records: Vec<Record> = if qtype == RecordType::PTR {
        match reverse(question.name()).and_then(|ip| table.name_of(ip)) {
            Some(target) => match Name::from_ascii(format!("{target}.")) {
                Ok(t) => vec![Record::from_rdata(
                    question.name().clone(),
                    TTL,
                    RData::PTR(PTR(t)),
                )],
                Err(_) => return Reply::Forward,
            },
            None => return Reply::Forward,
        }
    } else {
        let Some(addrs) = table.addresses(&key(&name)) else {
            return Reply::Forward;
        };
        // A known name with no address of the asked type is "no data", not "no such name".
        addrs
            .into_iter()
            .filter_map(|ip| match (ip, qtype) {
                (IpAddr::V4(v4), RecordType::A) => Some(RData::A(A(v4))),
                (IpAddr::V6(v6), RecordType::AAAA) => Some(RData::AAAA(AAAA(v6))),
                _ => None,
            })
            .map(|rd| Record::from_rdata(question.name().clone(), TTL, rd))
            .collect()
    };
    let mut m = Message::response(id, OpCode::Query);
    m.metadata.authoritative = true;
    m.metadata.recursion_desired = q.metadata.recursion_desired;
    m.metadata.recursion_available = true;
    m.add_query(question.clone());
    m.add_answers(records);
    let limit = match via {
        Transport::Tcp => usize::from(u16::MAX),
        Transport::Udp => q
            .edns
            .as_ref()
            .map_or(512, |e| usize::from(e.max_payload()).clamp(512, 4096)),
    };
    match m.to_vec() {
        Ok(bytes) if bytes.len() <= limit => Reply::Local(bytes),
        // Too big for this transport: the client asks again over TCP.
        Ok(_) => m.truncate().to_vec().map_or(Reply::Drop, Reply::Local),
        Err(_) => error(id, OpCode::Query, ResponseCode::ServFail),
    }
}

/// An error reply with no question (all a malformed query allows).
pub fn error(id: u16, op: OpCode, code: ResponseCode) -> Reply {
    let mut m = Message::error_msg(id, op, code);
    m.metadata.recursion_available = true;
    m.to_vec().map_or(Reply::Drop, Reply::Local)
}

/// SERVFAIL for `query` (the upstream servers did not answer, or none may be asked),
/// keeping its question when it has one.
pub fn servfail(query: &[u8]) -> Option<Vec<u8>> {
    if query.len() < 12 {
        return None;
    }
    let id = u16::from_be_bytes([query[0], query[1]]);
    let mut m = Message::error_msg(id, OpCode::Query, ResponseCode::ServFail);
    m.metadata.recursion_available = true;
    if let Ok(q) = Message::from_vec(query) {
        m.metadata.recursion_desired = q.metadata.recursion_desired;
        m.add_queries(q.queries);
    }
    m.to_vec().ok()
}

/// The address an `in-addr.arpa` or `ip6.arpa` name stands for, when it names a whole one.
fn reverse(name: &Name) -> Option<IpAddr> {
    let net = name.parse_arpa_name().ok()?;
    let full = match net.addr() {
        IpAddr::V4(_) => 32,
        IpAddr::V6(_) => 128,
    };
    (net.prefix_len() == full).then(|| net.addr())
}

#[cfg(test)]
mod tests {
    use super::*;
    use hickory_proto::op::{Edns, Query};

    fn table() -> Table {
        Table::parse("10.9.0.2\tabc web\nfd00:9::2\tabc web\n10.9.0.3\tdb\n")
    }

    fn query(name: &str, t: RecordType) -> Vec<u8> {
        let mut m = Message::new(0x4242, MessageType::Query, OpCode::Query);
        m.metadata.recursion_desired = true;
        m.add_query(Query::query(Name::from_ascii(name).unwrap(), t));
        m.to_vec().unwrap()
    }

    fn local(r: Reply) -> Message {
        match r {
            Reply::Local(b) => Message::from_vec(&b).unwrap(),
            other => panic!("not answered here: {other:?}"),
        }
    }

    #[test]
    fn names_of_the_table_get_their_addresses() {
        let m = local(answer(
            &query("WEB.", RecordType::A),
            &table(),
            Transport::Udp,
        ));
        assert_eq!(m.metadata.id, 0x4242);
        assert_eq!(m.metadata.message_type, MessageType::Response);
        assert_eq!(m.metadata.response_code, ResponseCode::NoError);
        assert!(m.metadata.recursion_desired && m.metadata.authoritative);
        assert_eq!(m.queries.len(), 1);
        let ips: Vec<_> = m.answers.iter().map(|r| r.data.clone()).collect();
        assert_eq!(ips, vec![RData::A(A("10.9.0.2".parse().unwrap()))]);
        assert_eq!(m.answers[0].ttl, TTL);
        let m = local(answer(
            &query("web", RecordType::AAAA),
            &table(),
            Transport::Udp,
        ));
        assert_eq!(m.answers.len(), 1);
        // db has no IPv6 address: no data, not "no such name".
        let m = local(answer(
            &query("db", RecordType::AAAA),
            &table(),
            Transport::Udp,
        ));
        assert_eq!(
            (m.metadata.response_code, m.answers.len()),
            (ResponseCode::NoError, 0)
        );
        let m = local(answer(
            &query("db", RecordType::MX),
            &table(),
            Transport::Udp,
        ));
        assert!(m.answers.is_empty());
    }

    #[test]
    fn reverse_lookups_of_members_are_answered() {
        let m = local(answer(
            &query("3.0.9.10.in-addr.arpa.", RecordType::PTR),
            &table(),
            Transport::Udp,
        ));
        assert_eq!(
            m.answers[0].data,
            RData::PTR(PTR(Name::from_ascii("db.").unwrap()))
        );
        let v6 = "2.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.9.0.0.0.0.0.d.f.ip6.arpa.";
        let m = local(answer(
            &query(v6, RecordType::PTR),
            &table(),
            Transport::Udp,
        ));
        assert_eq!(
            m.answers[0].data,
            RData::PTR(PTR(Name::from_ascii("abc.").unwrap()))
        );
        assert_eq!(
            answer(
                &query("9.0.9.10.in-addr.arpa.", RecordType::PTR),
                &table(),
                Transport::Udp
            ),
            Reply::Forward
        );
    }

    #[test]
    fn other_names_go_upstream_and_junk_gets_errors() {
        assert_eq!(
            answer(
                &query("example.org.", RecordType::A),
                &table(),
                Transport::Udp
            ),
            Reply::Forward
        );
        // Responses are never answered; short junk is dropped.
        let mut resp = query("web", RecordType::A);
        resp[2] |= 0x80;
        assert_eq!(answer(&resp, &table(), Transport::Udp), Reply::Drop);
        assert_eq!(answer(b"\x00\x01", &table(), Transport::Udp), Reply::Drop);
        // A header with counts that lie: FORMERR with the same id.
        let mut bad = query("web", RecordType::A);
        bad[5] = 9;
        let m = local(answer(&bad, &table(), Transport::Udp));
        assert_eq!(
            (m.metadata.id, m.metadata.response_code),
            (0x4242, ResponseCode::FormErr)
        );
        // Two questions, and another opcode.
        let mut two = Message::new(7, MessageType::Query, OpCode::Query);
        two.add_query(Query::query(
            Name::from_ascii("web").unwrap(),
            RecordType::A,
        ));
        two.add_query(Query::query(Name::from_ascii("db").unwrap(), RecordType::A));
        let m = local(answer(&two.to_vec().unwrap(), &table(), Transport::Udp));
        assert_eq!(m.metadata.response_code, ResponseCode::FormErr);
        let upd = Message::new(8, MessageType::Query, OpCode::Update);
        let m = local(answer(&upd.to_vec().unwrap(), &table(), Transport::Udp));
        assert_eq!(m.metadata.response_code, ResponseCode::NotImp);
        let s = Message::from_vec(&servfail(&query("x.org", RecordType::A)).unwrap()).unwrap();
        assert_eq!(
            (s.metadata.response_code, s.queries.len()),
            (ResponseCode::ServFail, 1)
        );
    }

    #[test]
    fn replies_too_big_for_udp_are_truncated() {
        let many: String = (2..120).map(|i| format!("10.9.1.{i} big\n")).collect();
        let t = Table::parse(&many);
        let m = local(answer(&query("big", RecordType::A), &t, Transport::Udp));
        assert!(m.metadata.truncation && m.answers.is_empty());
        let m = local(answer(&query("big", RecordType::A), &t, Transport::Tcp));
        assert_eq!(m.answers.len(), 118);
        // EDNS raises the UDP limit.
        let mut q = Message::new(9, MessageType::Query, OpCode::Query);
        q.add_query(Query::query(
            Name::from_ascii("big").unwrap(),
            RecordType::A,
        ));
        let mut e = Edns::new();
        e.set_max_payload(4096);
        q.set_edns(e);
        let m = local(answer(&q.to_vec().unwrap(), &t, Transport::Udp));
        assert_eq!(m.answers.len(), 118);
    }
}
