//! Host interfaces a test makes for itself and removes when done.

#![allow(dead_code)]

use super::stderr;

pub fn ip(args: &[&str]) -> std::process::Output {
    std::process::Command::new("ip")
        .args(args)
        .output()
        .expect("ip")
}

/// A parent interface for macvlan and ipvlan networks: one end of a veth pair of this test
/// (`tag` tells a process's pairs apart), up, with address `addr` (the host routes its
/// subnet). The pair is removed on drop.
pub struct Parent(pub String);

impl Parent {
    pub fn new(tag: &str, addr: &str) -> Parent {
        let name = format!("gcrpa{}{tag}", std::process::id() % 100_000);
        let peer = format!("{name}p");
        let ok = |args: &[&str]| {
            let o = ip(args);
            assert!(o.status.success(), "ip {args:?}: {}", stderr(&o));
        };
        let _ = ip(&["link", "del", &name]);
        ok(&["link", "add", &name, "type", "veth", "peer", "name", &peer]);
        let p = Parent(name);
        ok(&["addr", "add", addr, "dev", &p.0]);
        ok(&["link", "set", &p.0, "up"]);
        ok(&["link", "set", &peer, "up"]);
        p
    }
}

impl Drop for Parent {
    fn drop(&mut self) {
        let _ = ip(&["link", "del", &self.0]);
    }
}
