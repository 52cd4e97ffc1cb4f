//! The host-wide registry of gcr bridges, `/run/gcr-net/<bridge>` holding the owning store's
//! root, the subnet and (a dual-stack network's) the IPv6 subnet, a line each. Bridge names and subnets are host-wide while each store has its own
//! database, so this is how a store avoids another store's subnet, and how the bridge and
//! firewall rules of a store that was deleted (a test's temporary store, say) are taken
//! off the host: the next provisioning finds its root gone and removes them. `/run` is
//! cleared on reboot, as are the bridges.

use std::path::Path;

use gcr_net::netlink::Socket;
use gcr_net::{firewall, link, Subnet, Subnet6};

const DIR: &str = "/run/gcr-net";

/// Registers `bridge` as belonging to the store at `root`, on `subnet` (and `subnet6`).
pub(crate) fn record(bridge: &str, root: &Path, subnet: &Subnet, subnet6: Option<&Subnet6>) {
    let _ = std::fs::create_dir_all(DIR);
    let six = subnet6.map(|s| format!("{s}\n")).unwrap_or_default();
    let _ = std::fs::write(
        Path::new(DIR).join(bridge),
        format!("{}\n{subnet}\n{six}", root.display()),
    );
}

/// One registered bridge: its name, its store's root, its subnets.
struct Entry {
    bridge: String,
    root: String,
    subnet: Option<Subnet>,
    subnet6: Option<Subnet6>,
}

pub(crate) fn forget(bridge: &str) {
    let _ = std::fs::remove_file(Path::new(DIR).join(bridge));
}

fn entries() -> Vec<Entry> {
    let Ok(d) = std::fs::read_dir(DIR) else {
        return Vec::new();
    };
    d.filter_map(|e| e.ok())
        .filter_map(|e| {
            let bridge = e.file_name().to_string_lossy().into_owned();
            let text = std::fs::read_to_string(e.path()).ok()?;
            let mut l = text.lines();
            let root = l.next()?.to_string();
            let subnet = l.next().and_then(|s| Subnet::parse(s).ok());
            let subnet6 = l.next().and_then(|s| Subnet6::parse(s).ok());
            Some(Entry {
                bridge,
                root,
                subnet,
                subnet6,
            })
        })
        .collect()
}

/// Subnets of every registered bridge (of any store).
pub(crate) fn subnets() -> Vec<Subnet> {
    entries().into_iter().filter_map(|e| e.subnet).collect()
}

/// IPv6 subnets of every registered bridge (of any store).
pub(crate) fn subnets6() -> Vec<Subnet6> {
    entries().into_iter().filter_map(|e| e.subnet6).collect()
}

/// Removes bridges, firewall rules and entries of stores that no longer exist. Call with
/// the host lock held.
pub(crate) fn collect_orphans() {
    for e in entries() {
        if Path::new(&e.root).join("gcr.db").exists() || !link::valid_name(&e.bridge) {
            continue;
        }
        if let Ok(mut s) = Socket::open() {
            let _ = link::delete(&mut s, &e.bridge);
        }
        if let Some(sn) = e.subnet {
            firewall::remove(&e.bridge, &sn, e.subnet6.as_ref());
        }
        forget(&e.bridge);
    }
}
