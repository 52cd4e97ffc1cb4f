//! Forwarding, outbound masquerade and a guard dropping bridge packets to 127.0.0.0/8
//! (needed once `route_localnet` is on for published ports) for a bridge network, installed
//! once per network:
//! one nftables table `ip gcr_<bridge>` (removed whole), or iptables rules tagged with a
//! comment when nft is missing or refuses. Hosts that allow neither still get container-to-
//! container and host-to-container traffic.

use std::io::Write;
use std::process::{Command, Stdio};

use crate::Subnet;

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
                format!("\t\tip saddr {subnet} oifname != \"{bridge}\" masquerade\n")
            } else {
                String::new()
            },
            format!(
                "\t\tiifname \"{bridge}\" accept\n\
                 \t\toifname \"{bridge}\" ct state established,related accept\n"
            ),
        )
    };
    format!(
        "table ip {t} {{}}\nflush table ip {t}\ntable ip {t} {{\n\
         \tchain postrouting {{ type nat hook postrouting priority srcnat; policy accept;\n\
         {nat}\t}}\n\
         \tchain forward {{ type filter hook forward priority filter; policy accept;\n\
         {forward}\t}}\n\
         \tchain guard {{ type filter hook prerouting priority raw; policy accept;\n\
         \t\tiifname \"{bridge}\" ip daddr 127.0.0.0/8 drop\n\t}}\n}}\n"
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

fn iptables_rule(bridge: &str, subnet: &Subnet) -> Vec<String> {
    [
        "-t",
        "nat",
        "POSTROUTING",
        "-s",
        &subnet.to_string(),
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
    run_quiet(
        Command::new("nft").args(["delete", "table", "ip", name]),
        None,
    );
}

fn iptables(op: &str, bridge: &str, subnet: &Subnet) -> bool {
    let mut args = iptables_rule(bridge, subnet);
    args.insert(2, op.to_string());
    run_quiet(Command::new("iptables").args(&args), None)
}

/// An internal network's iptables rule `which` (0: out of the bridge, 1: into it), with
/// `op` (`-C`, `-I`, `-D`).
fn iptables_isolate(op: &str, bridge: &str, which: usize) -> bool {
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
    run_quiet(Command::new("iptables").args(args), None)
}

/// Installs forwarding and masquerade for a network, or (`internal`) its isolation;
/// idempotent.
pub fn install(bridge: &str, subnet: &Subnet, p: Policy) -> Backend {
    if !p.internal {
        enable_forwarding();
    }
    if nft_load(&nft_script(bridge, subnet, p)) {
        return Backend::Nft;
    }
    if p.internal {
        let ok =
            (0..2).all(|w| iptables_isolate("-C", bridge, w) || iptables_isolate("-I", bridge, w));
        return if ok { Backend::Iptables } else { Backend::None };
    }
    if !p.masquerade || iptables("-C", bridge, subnet) || iptables("-A", bridge, subnet) {
        return Backend::Iptables;
    }
    Backend::None
}

/// Removes what [`install`] added for this network (both kinds, ignoring absence).
pub fn remove(bridge: &str, subnet: &Subnet) {
    nft_delete_table(&table_name(bridge));
    while iptables("-D", bridge, subnet) {}
    for w in 0..2 {
        while iptables_isolate("-D", bridge, w) {}
    }
}

/// Whether the nft table of `bridge` exists (for leak checks).
pub fn nft_table_exists(bridge: &str) -> bool {
    run_quiet(
        Command::new("nft").args(["list", "table", "ip", &table_name(bridge)]),
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
