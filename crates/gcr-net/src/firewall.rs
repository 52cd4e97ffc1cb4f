//! Forwarding, outbound masquerade and a guard dropping bridge packets to 127.0.0.0/8
//! (needed once `route_localnet` is on for published ports) for a bridge network, installed
//! once per network:
//! one nftables table `ip gcr_<bridge>` (removed whole), or iptables rules tagged with a
//! comment when nft is missing or refuses. A dual-stack network has the same forwarding and
//! masquerade for its IPv6 subnet in a table `ip6 gcr_<bridge>` (or ip6tables rules).
//! Hosts that allow neither still get container-to-container and host-to-container traffic.

use std::io::Write;
use std::process::{Command, Stdio};

use crate::{Subnet, Subnet6};

/// Which mechanism carries a network's rules.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Nft,
    Iptables,
    None,
}

impl Backend {
    pub fn as_str(&self) -> &'static str {
        match self {
            Backend::Nft => "nftables",
            Backend::Iptables => "iptables",
            Backend::None => "none",
        }
    }
}

/// The nftables table of bridge `bridge`.
pub fn table_name(bridge: &str) -> String {
    format!("gcr_{}", bridge.replace(['-', '.'], "_"))
}

/// Turns on IPv4 forwarding when it is off and the host lets us; returns whether it is on.
pub fn enable_forwarding() -> bool {
    const P: &str = "/proc/sys/net/ipv4/ip_forward";
    if std::fs::read_to_string(P).is_ok_and(|v| v.trim() == "1") {
        return true;
    }
    std::fs::write(P, "1").is_ok()
}

/// Turns on IPv6 forwarding when it is off and the host lets us; returns whether it is on.
/// (Routes the host learned from router advertisements need `accept_ra=2` once it
/// forwards, as with Docker and Podman; static routes are unaffected.)
pub fn enable_forwarding6() -> bool {
    const P: &str = "/proc/sys/net/ipv6/conf/all/forwarding";
    if std::fs::read_to_string(P).is_ok_and(|v| v.trim() == "1") {
        return true;
    }
    std::fs::write(P, "1").is_ok()
}

/// What a network's rules allow.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Policy {
    /// `--internal`: nothing forwarded into or out of the bridge, nothing masqueraded.
    pub internal: bool,
    /// Outbound traffic leaves with the host's address (Docker's
    /// `com.docker.network.bridge.enable_ip_masquerade`, default true).
    pub masquerade: bool,
}

impl Default for Policy {
    fn default() -> Policy {
        Policy {
            internal: false,
            masquerade: true,
        }
    }
}

fn nft_script(bridge: &str, subnet: &Subnet, p: Policy) -> String {
    family_script("ip", bridge, &subnet.to_string(), p)
}

/// The IPv6 table of a dual-stack network: forwarding and masquerade as for IPv4 (no
/// loopback guard: `route_localnet` is IPv4's).
fn nft_script6(bridge: &str, subnet: &Subnet6, p: Policy) -> String {
    family_script("ip6", bridge, &subnet.to_string(), p)
}

/// A network's table in nftables family `fam` (`ip` or `ip6`) for source `subnet`.
fn family_script(fam: &str, bridge: &str, subnet: &str, p: Policy) -> String {
    let t = table_name(bridge);
    let masquerade = p.masquerade && !p.internal;
    // An internal network (`--internal`) reaches nothing beyond its bridge and is reached
    // from nowhere but the host: nothing is forwarded into or out of it, nothing masqueraded.
    let (nat, forward) = if p.internal {
        (
            String::new(),
            format!(
                "\t\tiifname \"{bridge}\" oifname != \"{bridge}\" drop\n\
                 \t\toifname \"{bridge}\" iifname != \"{bridge}\" drop\n"
            ),
        )
    } else {
        (
            if masquerade {
                format!("\t\t{fam} saddr {subnet} oifname != \"{bridge}\" masquerade\n")
            } else {
                String::new()
            },
            format!(
                "\t\tiifname \"{bridge}\" accept\n\
                 \t\toifname \"{bridge}\" ct state established,related accept\n"
            ),
        )
    };
    let guard = if fam == "ip" {
        format!(
            "\tchain guard {{ type filter hook prerouting priority raw; policy accept;\n\
             \t\tiifname \"{bridge}\" ip daddr 127.0.0.0/8 drop\n\t}}\n"
        )
    } else {
        String::new()
    };
    format!(
        "table {fam} {t} {{}}\nflush table {fam} {t}\ntable {fam} {t} {{\n\
         \tchain postrouting {{ type nat hook postrouting priority srcnat; policy accept;\n\
         {nat}\t}}\n\
         \tchain forward {{ type filter hook forward priority filter; policy accept;\n\
         {forward}\t}}\n\
         {guard}}}\n"
    )
}

fn run_quiet(cmd: &mut Command, stdin: Option<&str>) -> bool {
    cmd.stdout(Stdio::null()).stderr(Stdio::null());
    cmd.stdin(if stdin.is_some() {
        Stdio::piped()
    } else {
        Stdio::null()
    });
    let Ok(mut child) = cmd.spawn() else {
        return false;
    };
    if let (Some(text), Some(mut i)) = (stdin, child.stdin.take()) {
        let _ = i.write_all(text.as_bytes());
    }
    child.wait().is_ok_and(|s| s.success())
}

fn iptables_rule(bridge: &str, subnet: &str) -> Vec<String> {
    [
        "-t",
        "nat",
        "POSTROUTING",
        "-s",
        subnet,
        "!",
        "-o",
        bridge,
        "-j",
        "MASQUERADE",
        "-m",
        "comment",
        "--comment",
        &format!("gcr:{bridge}"),
    ]
    .iter()
    .map(|s| s.to_string())
    .collect()
}

/// Loads an nft script (a whole `table ip NAME` definition); false when nft is missing or
/// refuses it.
pub(crate) fn nft_load(script: &str) -> bool {
    run_quiet(Command::new("nft").args(["-f", "-"]), Some(script))
}

/// Deletes `table ip NAME` (absent is fine).
pub(crate) fn nft_delete_table(name: &str) {
    nft_delete(name, "ip");
}

/// Deletes `table FAMILY NAME` (absent is fine).
fn nft_delete(name: &str, family: &str) {
    run_quiet(
        Command::new("nft").args(["delete", "table", family, name]),
        None,
    );
}

/// The masquerade rule of `subnet` with `op`, by `bin` (`iptables` or `ip6tables`).
fn iptables(bin: &str, op: &str, bridge: &str, subnet: &str) -> bool {
    let mut args = iptables_rule(bridge, subnet);
    args.insert(2, op.to_string());
    run_quiet(Command::new(bin).args(&args), None)
}

/// An internal network's rule `which` (0: out of the bridge, 1: into it), with `op`
/// (`-C`, `-I`, `-D`), by `bin` (`iptables` or `ip6tables`).
fn iptables_isolate(bin: &str, op: &str, bridge: &str, which: usize) -> bool {
    let (a, b) = if which == 0 {
        ("-i", "-o")
    } else {
        ("-o", "-i")
    };
    let comment = format!("gcr:{bridge}");
    let args = [
        op,
        "FORWARD",
        a,
        bridge,
        "!",
        b,
        bridge,
        "-j",
        "DROP",
        "-m",
        "comment",
        "--comment",
        &comment,
    ];
    run_quiet(Command::new(bin).args(args), None)
}

/// Installs forwarding and masquerade for a network (and its IPv6 subnet `subnet6`), or
/// (`internal`) its isolation; idempotent. The backend is the IPv4 side's.
pub fn install(bridge: &str, subnet: &Subnet, subnet6: Option<&Subnet6>, p: Policy) -> Backend {
    if let Some(s6) = subnet6 {
        if !p.internal {
            enable_forwarding6();
        }
        if !nft_load(&nft_script6(bridge, s6, p)) {
            fallback("ip6tables", bridge, &s6.to_string(), p);
        }
    }
    if !p.internal {
        enable_forwarding();
    }
    if nft_load(&nft_script(bridge, subnet, p)) {
        return Backend::Nft;
    }
    fallback("iptables", bridge, &subnet.to_string(), p)
}

/// The rules of [`install`] by `bin` (`iptables` or `ip6tables`) where nft refused them.
fn fallback(bin: &str, bridge: &str, subnet: &str, p: Policy) -> Backend {
    if p.internal {
        let ok = (0..2).all(|w| {
            iptables_isolate(bin, "-C", bridge, w) || iptables_isolate(bin, "-I", bridge, w)
        });
        return if ok { Backend::Iptables } else { Backend::None };
    }
    if !p.masquerade || iptables(bin, "-C", bridge, subnet) || iptables(bin, "-A", bridge, subnet) {
        return Backend::Iptables;
    }
    Backend::None
}

/// Removes what [`install`] added for this network (both kinds and both families,
/// ignoring absence).
pub fn remove(bridge: &str, subnet: &Subnet, subnet6: Option<&Subnet6>) {
    let t = table_name(bridge);
    nft_delete(&t, "ip");
    nft_delete(&t, "ip6");
    let subnets = std::iter::once(("iptables", subnet.to_string()))
        .chain(subnet6.map(|s| ("ip6tables", s.to_string())));
    for (bin, sn) in subnets {
        while iptables(bin, "-D", bridge, &sn) {}
        for w in 0..2 {
            while iptables_isolate(bin, "-D", bridge, w) {}
        }
    }
}

/// Whether the nft table of `bridge` in `family` (`ip`, `ip6`) exists (for leak checks).
pub fn nft_table_exists(bridge: &str, family: &str) -> bool {
    run_quiet(
        Command::new("nft").args(["list", "table", family, &table_name(bridge)]),
        None,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_internal_network_forwards_nothing_and_masquerades_nothing() {
        let internal = Policy {
            internal: true,
            ..Policy::default()
        };
        let s = nft_script("gcr3", &Subnet::parse("10.90.0.0/24").unwrap(), internal);
        assert!(!s.contains("masquerade"), "{s}");
        assert!(
            s.contains("iifname \"gcr3\" oifname != \"gcr3\" drop"),
            "{s}"
        );
        assert!(
            s.contains("oifname \"gcr3\" iifname != \"gcr3\" drop"),
            "{s}"
        );
        assert!(!s.contains("established"), "{s}");
    }

    #[test]
    fn nft_script_names_bridge_and_subnet() {
        let s = nft_script(
            "gcr0",
            &Subnet::parse("10.88.0.0/16").unwrap(),
            Policy::default(),
        );
        assert!(s.contains("table ip gcr_gcr0"));
        assert!(s.contains("ip saddr 10.88.0.0/16 oifname != \"gcr0\" masquerade"));
        // route_localnet (set for published ports) must never let the bridge reach 127/8.
        assert!(s.contains("iifname \"gcr0\" ip daddr 127.0.0.0/8 drop"));
        assert_eq!(table_name("a-b.c"), "gcr_a_b_c");
    }

    #[test]
    fn the_ipv6_table_forwards_and_masquerades_its_subnet() {
        let sn = Subnet6::parse("fd00:5::/64").unwrap();
        let s = nft_script6("br-6", &sn, Policy::default());
        assert!(s.starts_with("table ip6 gcr_br_6 {}\n"), "{s}");
        assert!(
            s.contains("ip6 saddr fd00:5::/64 oifname != \"br-6\" masquerade"),
            "{s}"
        );
        assert!(s.contains("iifname \"br-6\" accept"), "{s}");
        assert!(!s.contains("127.0.0.0/8"), "{s}");
        let internal = Policy {
            internal: true,
            ..Policy::default()
        };
        let s = nft_script6("br-6", &sn, internal);
        assert!(!s.contains("masquerade") && s.contains("drop"), "{s}");
    }

    #[test]
    fn without_masquerade_traffic_leaves_unchanged() {
        let sn = Subnet::parse("10.91.0.0/24").unwrap();
        let p = Policy {
            masquerade: false,
            ..Policy::default()
        };
        let s = nft_script("br-x", &sn, p);
        assert!(!s.contains("masquerade"), "{s}");
        assert!(s.contains("iifname \"br-x\" accept"), "{s}");
    }
}
