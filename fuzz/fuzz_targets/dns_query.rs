//! Fuzz target: arbitrary datagrams sent to the embedded DNS server (what a container can
//! send to 127.0.0.11). Answering must never panic; a local reply carries the query's id,
//! is a response and fits the transport; a message that is itself a response is never
//! answered.
#![no_main]

use gcr_net::dns::answer::{answer, Reply, Transport};
use gcr_net::dns::table::Table;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let table = Table::parse("10.9.0.2\tabc web\nfd00:9::2\tabc web\n10.9.0.3\tdb\n");
    for via in [Transport::Udp, Transport::Tcp] {
        match answer(data, &table, via) {
            Reply::Local(r) => {
                assert!(r.len() >= 12 && r[..2] == data[..2], "reply id");
                assert!(r[2] & 0x80 != 0, "a reply is a response");
                assert!(via == Transport::Tcp || r.len() <= 4096, "fits UDP");
            }
            Reply::Drop => {}
            Reply::Forward => assert!(data[2] & 0x80 == 0),
        }
        if data.len() >= 12 && data[2] & 0x80 != 0 {
            assert_eq!(answer(data, &table, via), Reply::Drop);
        }
    }
});
