//! The kernel path for published ports reached from the host itself, as Docker sets up
//! with its userland proxy turned off: one nftables table per container
//! (`ip gcr_p_<id12>`) whose `output` NAT chain sends connections to the published
//! address straight to the container, and whose `postrouting` chain masquerades the ones
//! that came from 127.0.0.0/8. Loopback-sourced packets may only leave through the bridge
//! with `route_localnet` on it; the table's `guard` chain drops what that would otherwise
//! let in (packets from the bridge to 127.0.0.0/8, CVE-2020-8558).
//!
//! The port proxy still holds every published port (a port taken is refused at start) and
//! serves other hosts; with this table in place, local clients never go through it.

use std::net::Ipv4Addr;

/// One published port as the kernel path needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Forward {
    /// "tcp" or "udp".
    pub proto: &'static str,
    /// The published host address; 0.0.0.0 means every local address.
    pub host_ip: Ipv4Addr,
    pub host_port: u16,
    pub container_port: u16,
}

/// The table of container `id`.
pub fn table_name(id: &str) -> String {
    format!("gcr_p_{}", &id[..12.min(id.len())])
}

fn script(id: &str, bridge: &str, ip: Ipv4Addr, fwd: &[Forward]) -> String {
    let t = table_name(id);
    let mut rules = String::new();
    for f in fwd {
        let dst = if f.host_ip.is_unspecified() {
            "fib daddr type local".to_string()
        } else {
            format!("ip daddr {}", f.host_ip)
        };
        rules.push_str(&format!(
            "\t\t{dst} {} dport {} dnat to {ip}:{}\n",
            f.proto, f.host_port, f.container_port
        ));
    }
    format!(
        "table ip {t} {{}}\nflush table ip {t}\ntable ip {t} {{\n\
         \tchain output {{ type nat hook output priority -100; policy accept;\n{rules}\t}}\n\
         \tchain postrouting {{ type nat hook postrouting priority srcnat; policy accept;\n\
         \t\tip saddr 127.0.0.0/8 ip daddr {ip} masquerade\n\t}}\n\
         \tchain guard {{ type filter hook prerouting priority raw; policy accept;\n\
         \t\tiifname \"{bridge}\" ip daddr 127.0.0.0/8 drop\n\t}}\n}}\n"
    )
}

/// Installs the kernel path for container `id` at `ip` behind `bridge`. Returns false
/// (and leaves nothing) when nftables is missing or refuses; the proxy then carries all
/// traffic.
pub fn install(id: &str, bridge: &str, ip: Ipv4Addr, fwd: &[Forward]) -> bool {
    if fwd.is_empty() {
        return false;
    }
    if !crate::firewall::nft_load(&script(id, bridge, ip, fwd)) {
        remove(id);
        return false;
    }
    let p = format!("/proc/sys/net/ipv4/conf/{bridge}/route_localnet");
    if std::fs::write(&p, "1").is_err() {
        // Without it loopback clients cannot be forwarded; the proxy serves them.
        remove(id);
        return false;
    }
    true
}

/// Removes container `id`'s table (absent is fine).
pub fn remove(id: &str) {
    crate::firewall::nft_delete_table(&table_name(id));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn script_forwards_each_port_and_guards_loopback() {
        let fwd = [
            Forward {
                proto: "tcp",
                host_ip: Ipv4Addr::LOCALHOST,
                host_port: 8080,
                container_port: 80,
            },
            Forward {
                proto: "udp",
                host_ip: Ipv4Addr::UNSPECIFIED,
                host_port: 5353,
                container_port: 53,
            },
        ];
        let s = script(
            "0123456789abcdef",
            "gcr0",
            Ipv4Addr::new(10, 88, 0, 2),
            &fwd,
        );
        assert!(s.contains("table ip gcr_p_0123456789ab {"), "{s}");
        assert!(s.contains("ip daddr 127.0.0.1 tcp dport 8080 dnat to 10.88.0.2:80"));
        assert!(s.contains("fib daddr type local udp dport 5353 dnat to 10.88.0.2:53"));
        assert!(s.contains("ip saddr 127.0.0.0/8 ip daddr 10.88.0.2 masquerade"));
        assert!(s.contains("iifname \"gcr0\" ip daddr 127.0.0.0/8 drop"));
        assert_eq!(table_name("abc"), "gcr_p_abc");
    }
}
