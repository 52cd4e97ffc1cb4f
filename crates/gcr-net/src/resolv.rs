//! Text of a container's `/etc/resolv.conf` (the host's resolvers minus loopback ones, which
//! mean nothing inside another namespace) and `/etc/hosts`.

use std::net::IpAddr;

/// Filters resolv.conf text: `nameserver` lines with loopback addresses are left out.
pub fn without_loopback(text: &str) -> String {
    let mut out = String::new();
    for line in text.lines() {
        let mut f = line.split_whitespace();
        if f.next() == Some("nameserver") {
            if let Some(Ok(ip)) = f.next().map(|a| a.parse::<IpAddr>()) {
                if ip.is_loopback() {
                    continue;
                }
            }
        }
        out.push_str(line);
        out.push('\n');
    }
    out
}

fn has_nameserver(text: &str) -> bool {
    text.lines()
        .any(|l| l.split_whitespace().next() == Some("nameserver"))
}

/// The resolv.conf a container on a bridge network gets. When the host only has a local
/// stub resolver, systemd-resolved's upstream list is used; with no usable resolver the
/// file has no nameserver (names then only resolve through /etc/hosts).
pub fn container_resolv_conf() -> String {
    let host = std::fs::read_to_string("/etc/resolv.conf").unwrap_or_default();
    let filtered = without_loopback(&host);
    if has_nameserver(&filtered) {
        return filtered;
    }
    if let Ok(up) = std::fs::read_to_string("/run/systemd/resolve/resolv.conf") {
        let up = without_loopback(&up);
        if has_nameserver(&up) {
            return up;
        }
    }
    filtered
}

/// `/etc/hosts`: localhost lines, the container itself (each of its addresses: IPv4, and
/// IPv6 on a dual-stack network), then the other members of its network (name resolution
/// on user-defined networks).
pub fn hosts_file(own: &[IpAddr], own_names: &[&str], peers: &[(IpAddr, String)]) -> String {
    let mut s = String::from(
        "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n\
         fe00::0\tip6-localnet\nff00::0\tip6-mcastprefix\nff02::1\tip6-allnodes\n\
         ff02::2\tip6-allrouters\n",
    );
    let names = own_names.join(" ");
    if own.is_empty() {
        s.push_str(&format!("127.0.1.1\t{names}\n"));
    }
    for ip in own {
        s.push_str(&format!("{ip}\t{names}\n"));
    }
    for (ip, name) in peers {
        s.push_str(&format!("{ip}\t{name}\n"));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn drops_loopback_resolvers_only() {
        let t = "search example\nnameserver 127.0.0.53\nnameserver ::1\nnameserver 192.0.2.53\noptions edns0\n";
        let out = without_loopback(t);
        assert_eq!(
            out,
            "search example\nnameserver 192.0.2.53\noptions edns0\n"
        );
        assert!(!has_nameserver(&without_loopback("nameserver 127.0.0.1\n")));
    }

    #[test]
    fn hosts_lists_self_and_peers() {
        let h = hosts_file(
            &["10.88.0.2".parse().unwrap(), "fd00:7::2".parse().unwrap()],
            &["abc", "web"],
            &[("10.88.0.3".parse().unwrap(), "db".into())],
        );
        assert!(h.starts_with("127.0.0.1\tlocalhost\n"));
        assert!(
            h.contains("10.88.0.2\tabc web\nfd00:7::2\tabc web\n"),
            "{h}"
        );
        assert!(h.ends_with("10.88.0.3\tdb\n"));
        assert!(hosts_file(&[], &["abc"], &[]).ends_with("127.0.1.1\tabc\n"));
    }
}
