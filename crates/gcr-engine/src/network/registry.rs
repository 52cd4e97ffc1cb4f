//! The host-wide registry of gcr bridges, `/run/gcr-net/<bridge>` holding the owning store's
//! root and the subnet. Bridge names and subnets are host-wide while each store has its own
//! database, so this is how a store avoids another store's subnet, and how the bridge and
//! firewall rules of a store that was deleted (a test's temporary store, say) are taken
//! off the host: the next provisioning finds its root gone and removes them. `/run` is
//! cleared on reboot, as are the bridges.

use std::path::Path;

use gcr_net::netlink::Socket;
use gcr_net::{firewall, link, Subnet};

const DIR: &str = "/run/gcr-net";

/// Registers `bridge` as belonging to the store at `root`, on `subnet`.
pub(crate) fn record(bridge: &str, root: &Path, subnet: &Subnet) {
    let _ = std::fs::create_dir_all(DIR);
    let _ = std::fs::write(
        Path::new(DIR).join(bridge),
        format!("{}\n{subnet}\n", root.display()),
    );
}

pub(crate) fn forget(bridge: &str) {
    let _ = std::fs::remove_file(Path::new(DIR).join(bridge));
}

fn entries() -> Vec<(String, String, Option<Subnet>)> {
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
            Some((bridge, root, subnet))
        })
        .collect()
}

/// Subnets of every registered bridge (of any store).
pub(crate) fn subnets() -> Vec<Subnet> {
    entries().into_iter().filter_map(|(_, _, s)| s).collect()
}

/// Removes bridges, firewall rules and entries of stores that no longer exist. Call with
/// the host lock held.
pub(crate) fn collect_orphans() {
    for (bridge, root, subnet) in entries() {
        if Path::new(&root).join("gcr.db").exists() || !link::valid_name(&bridge) {
            continue;
        }
        if let Ok(mut s) = Socket::open() {
            let _ = link::delete(&mut s, &bridge);
        }
        if let Some(sn) = subnet {
            firewall::remove(&bridge, &sn, None);
        }
        forget(&bridge);
    }
}
