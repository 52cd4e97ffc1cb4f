//! Text of a container's `/etc/resolv.conf` (the host's resolvers minus loopback ones, which
//! mean nothing inside another namespace; on a user network the embedded server at
//! 127.0.0.11, which forwards to the host's resolvers, loopback ones included) and
//! `/etc/hosts`.

use std::net::{IpAddr, SocketAddr};

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

/// The words of resolv.conf `text`'s `key` lines (`nameserver`, `search`, `options`).
pub fn words<'a>(text: &'a str, key: &str) -> Vec<&'a str> {
    text.lines()
        .filter_map(|l| {
            let mut w = l.split_whitespace();
            (w.next() == Some(key)).then_some(w)
        })
        .flatten()
        .collect()
}

/// The servers the embedded DNS server forwards to: `flags` (`--dns`) when given, else the
/// nameservers of the host's resolv.conf text `host` (loopback ones included: the server
/// runs in the host's namespace), else systemd-resolved's upstream list. Port 53.
pub fn upstreams(flags: &[String], host: &str) -> Vec<SocketAddr> {
    let parse = |ws: Vec<&str>| -> Vec<SocketAddr> {
        ws.into_iter()
            .filter_map(|w| w.parse::<IpAddr>().ok())
            .map(|ip| SocketAddr::new(ip, 53))
            .collect()
    };
    if !flags.is_empty() {
        return parse(flags.iter().map(String::as_str).collect());
    }
    let found = parse(words(host, "nameserver"));
    if !found.is_empty() {
        return found;
    }
    let systemd = std::fs::read_to_string("/run/systemd/resolve/resolv.conf").unwrap_or_default();
    parse(words(&systemd, "nameserver"))
}

/// The resolv.conf of a container served by the embedded DNS server: `nameserver
/// 127.0.0.11`, `search` and `options` as given (Docker's `ndots:0` unless one is), and a
/// comment saying where other names go.
pub fn embedded_resolv_conf(search: &[&str], options: &[&str], upstreams: &[SocketAddr]) -> String {
    let mut s = format!("nameserver {}\n", crate::dns::ADDRESS);
    if !search.is_empty() {
        s.push_str(&format!("search {}\n", search.join(" ")));
    }
    let mut opts: Vec<&str> = options.to_vec();
    if !opts.iter().any(|o| o.starts_with("ndots:")) {
        opts.insert(0, "ndots:0");
    }
    s.push_str(&format!("options {}\n", opts.join(" ")));
    let ups: Vec<String> = upstreams.iter().map(|u| u.ip().to_string()).collect();
    if ups.is_empty() {
        s.push_str("# gcr's embedded DNS server: names outside the container's networks are not resolved\n");
    } else {
        s.push_str(&format!(
            "# gcr's embedded DNS server; other names go to: {}\n",
            ups.join(" ")
        ));
    }
    s
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

    #[test]
    fn embedded_resolv_conf_points_at_the_server() {
        let t = "search corp.example\nnameserver 127.0.0.53\noptions edns0 ndots:2\n";
        assert_eq!(words(t, "options"), vec!["edns0", "ndots:2"]);
        let ups = upstreams(&["192.0.2.1".into(), "not-an-ip".into(), "::1".into()], t);
        assert_eq!(
            ups,
            vec!["192.0.2.1:53".parse().unwrap(), "[::1]:53".parse().unwrap()]
        );
        let text = embedded_resolv_conf(&words(t, "search"), &words(t, "options"), &ups);
        assert!(
            text.starts_with("nameserver 127.0.0.11\nsearch corp.example\noptions edns0 ndots:2\n"),
            "{text}"
        );
        assert!(text.ends_with("go to: 192.0.2.1 ::1\n"), "{text}");
        assert_eq!(upstreams(&[], t), vec!["127.0.0.53:53".parse().unwrap()]);
        let text = embedded_resolv_conf(&[], &["edns0"], &[]);
        assert!(
            text.starts_with("nameserver 127.0.0.11\noptions ndots:0 edns0\n# "),
            "{text}"
        );
        assert!(text.contains("not resolved"));
    }
}
