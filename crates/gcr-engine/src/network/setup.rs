//! Bridge networks on the host: the default `bridge` network (created on first use), the
//! choice of a free bridge name and a subnet that shadows no host route, and bringing a
//! network's bridge and firewall rules up when missing (first use, or after a reboot).

use gcr_net::netlink::Socket;
use gcr_net::{firewall, link, Subnet, Subnet6};
use rusqlite::Connection;

use super::db::{self, NetRow};
use super::registry;
use crate::{names, Engine, EngineError};

/// Name of the default network.
pub const DEFAULT: &str = "bridge";

pub(crate) fn net_err(e: gcr_net::NetError) -> EngineError {
    match e {
        gcr_net::NetError::Invalid(m) => EngineError::Usage(m),
        other => EngineError::Internal(other.to_string()),
    }
}

pub(crate) fn now() -> i64 {
    crate::container::record::now_ns() / 1_000_000_000
}

/// A /16 in 10.98.0.0-10.127.255.255 or 10.160.0.0-10.199.255.255 used by no gcr network
/// (of any store on this host) and no host route. 10.88.0.0/16 is left to podman.
pub(crate) fn free_subnet(conn: &Connection) -> Result<Subnet, EngineError> {
    let taken: Vec<Subnet> = db::list_networks(conn)?
        .into_iter()
        .map(|n| n.subnet)
        .chain(gcr_net::addr::host_routes())
        .chain(registry::subnets())
        .collect();
    for b in (98u8..128).chain(160..200) {
        let cand = Subnet {
            net: std::net::Ipv4Addr::new(10, b, 0, 0),
            prefix: 16,
        };
        if !taken.iter().any(|t| t.overlaps(&cand)) {
            return Ok(cand);
        }
    }
    Err(EngineError::Conflict(
        "no free /16 left in 10.98-10.127 and 10.160-10.199; create the network with --subnet"
            .into(),
    ))
}

/// Whether `subnet` clashes with another network of this store or (`with_host`: a bridge
/// network, routed by the host) a host route.
pub(crate) fn subnet_clash(
    conn: &Connection,
    subnet: &Subnet,
    with_host: bool,
) -> Result<Option<String>, EngineError> {
    for n in db::list_networks(conn)? {
        if n.subnet.overlaps(subnet) {
            return Ok(Some(format!("network {} ({})", n.name, n.subnet)));
        }
    }
    if !with_host {
        // A macvlan or ipvlan network is on its parent's own subnet, which the host routes.
        return Ok(None);
    }
    for r in gcr_net::addr::host_routes() {
        if r.overlaps(subnet) {
            return Ok(Some(format!("a host route to {r}")));
        }
    }
    for r in registry::subnets() {
        if r.overlaps(subnet) {
            return Ok(Some(format!("another gcr store's network {r}")));
        }
    }
    Ok(None)
}

/// A unique local /64 for a network created with `--ipv6` and no IPv6 subnet: its global
/// id from the network's random id `id` (RFC 4193's random global id), the first subnet
/// id that no network of this store and no host route uses.
pub(crate) fn free_subnet6(conn: &Connection, id: &str) -> Result<Subnet6, EngineError> {
    let mut seed = [0u8; 5];
    for (i, b) in seed.iter_mut().enumerate() {
        *b = id
            .get(2 * i..2 * i + 2)
            .and_then(|h| u8::from_str_radix(h, 16).ok())
            .unwrap_or(0);
    }
    let taken: Vec<Subnet6> = db::list_networks(conn)?
        .into_iter()
        .filter_map(|n| n.subnet6)
        .chain(gcr_net::addr6::host_routes6())
        .chain(registry::subnets6())
        .collect();
    (0..=u16::MAX)
        .map(|n| Subnet6::unique_local(&seed, n))
        .find(|c| !taken.iter().any(|t| t.overlaps(c)))
        .ok_or_else(|| {
            EngineError::Conflict(
                "no free IPv6 /64 left; create the network with an IPv6 --subnet".into(),
            )
        })
}

/// Whether IPv6 `subnet` clashes with another network of this store or a host route.
pub(crate) fn subnet6_clash(
    conn: &Connection,
    subnet: &Subnet6,
) -> Result<Option<String>, EngineError> {
    for n in db::list_networks(conn)? {
        if let Some(s) = n.subnet6.filter(|s| s.overlaps(subnet)) {
            return Ok(Some(format!("network {} ({s})", n.name)));
        }
    }
    if let Some(r) = registry::subnets6()
        .into_iter()
        .find(|r| r.overlaps(subnet))
    {
        return Ok(Some(format!("another gcr store's network {r}")));
    }
    Ok(gcr_net::addr6::host_routes6()
        .into_iter()
        .find(|r| r.overlaps(subnet))
        .map(|r| format!("a host route to {r}")))
}

/// Bridge names to try: `gcr0`, `gcr1`, ... for the default network; `gcr-<id8>` first for
/// user networks.
fn bridge_candidates(id: &str, default: bool) -> impl Iterator<Item = String> {
    let first = (!default).then(|| format!("gcr-{}", &id[..8.min(id.len())]));
    first
        .into_iter()
        .chain((0..1000).map(|i| format!("gcr{i}")))
}

/// Serializes network provisioning across every gcr process and store on this host (bridge
/// names and subnets are host-wide); released on drop.
pub(crate) struct HostLock(#[allow(dead_code)] Option<std::fs::File>);

pub(crate) fn host_lock() -> HostLock {
    let f = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open("/run/gcr-net.lock")
        .ok();
    if let Some(f) = &f {
        use std::os::fd::AsRawFd;
        // SAFETY: flock on a descriptor we own; blocks until the lock is ours.
        unsafe { libc::flock(f.as_raw_fd(), libc::LOCK_EX) };
    }
    HostLock(f)
}

fn cannot(what: &str, e: impl std::fmt::Display) -> EngineError {
    EngineError::Internal(format!(
        "cannot {what}: {e}; bridge networks need root (CAP_NET_ADMIN), or use --network none|host"
    ))
}

/// What a network is made with besides its subnet: `--internal`, `--gateway`, `--ip-range`
/// (checked against the subnet by the caller).
#[derive(Debug, Clone, Default)]
pub(crate) struct Shape {
    pub internal: bool,
    pub gateway: Option<std::net::Ipv4Addr>,
    pub ip_range: Option<Subnet>,
    /// The driver options as given (checked), see [`super::options`].
    pub options: std::collections::BTreeMap<String, String>,
    /// `--ipv6`: a dual-stack network, on `subnet6` (None: a free unique local /64).
    pub ipv6: bool,
    pub subnet6: Option<Subnet6>,
    /// Its IPv6 `--gateway` (inside `subnet6`; None: its first address).
    pub gateway6: Option<std::net::Ipv6Addr>,
    /// `-d`: bridge (gcr's own bridge) or macvlan/ipvlan (sub-interfaces of a host one).
    pub driver: super::options::Driver,
}

/// Claims a bridge on the host (creation with EXCL is the atomic claim), gives it the
/// gateway address and installs the firewall rules. Call with the [`HostLock`] held.
pub(crate) fn provision(
    conn: &Connection,
    root: &std::path::Path,
    name: &str,
    subnet: Option<Subnet>,
    default: bool,
    shape: &Shape,
) -> Result<NetRow, EngineError> {
    registry::collect_orphans();
    let id = names::random_id();
    let subnet = match subnet {
        Some(s) => s,
        None => free_subnet(conn)?,
    };
    let subnet6 = match (shape.ipv6, shape.subnet6) {
        (false, _) => None,
        (true, Some(s)) => Some(s),
        (true, None) => Some(free_subnet6(conn, &id)?),
    };
    let row = |driver: &str, bridge: String, firewall: &str| NetRow {
        name: name.into(),
        id: id.clone(),
        driver: driver.into(),
        bridge,
        subnet,
        created: now(),
        firewall: firewall.into(),
        labels: Default::default(),
        internal: shape.internal,
        own_gateway: shape.gateway,
        ip_range: shape.ip_range,
        options: shape.options.clone(),
        subnet6,
        own_gateway6: shape.gateway6,
    };
    if shape.driver != super::options::Driver::Bridge {
        // Nothing on the host until a container starts: its interface hangs off the parent.
        return Ok(row(shape.driver.as_str(), String::new(), "none"));
    }
    let used: Vec<String> = db::list_networks(conn)?
        .into_iter()
        .map(|n| n.bridge)
        .collect();
    let mut host = Socket::open().map_err(|e| cannot("open a netlink socket", e))?;
    let opts = super::options::DriverOptions::of(&shape.options);
    let mut bridge = None;
    if let Some(b) = &opts.bridge_name {
        // A name asked for is that bridge or none: never an interface that exists.
        let taken = || {
            EngineError::Conflict(format!(
                "network {name}: an interface named {b} exists on this host; choose another {}",
                super::options::BRIDGE_NAME
            ))
        };
        if used.contains(b) || link::index(b).is_some() {
            return Err(taken());
        }
        match link::create_bridge(&mut host, b, opts.mtu) {
            Ok(()) => bridge = Some(b.clone()),
            Err(e) if e.raw_os_error() == Some(libc::EEXIST) => return Err(taken()),
            Err(e) => return Err(cannot(&format!("create bridge {b} for network {name}"), e)),
        }
    }
    if bridge.is_none() {
        for b in bridge_candidates(&id, default) {
            if used.contains(&b) || link::index(&b).is_some() {
                continue;
            }
            match link::create_bridge(&mut host, &b, opts.mtu) {
                Ok(()) => {
                    bridge = Some(b);
                    break;
                }
                Err(e) if e.raw_os_error() == Some(libc::EEXIST) => continue,
                Err(e) => return Err(cannot(&format!("create bridge {b} for network {name}"), e)),
            }
        }
    }
    let bridge = bridge.ok_or_else(|| {
        EngineError::Conflict("no free bridge name gcrN left on this host".into())
    })?;
    let n = row("bridge", bridge, "");
    match configure(&mut host, &n) {
        Ok(fw) => {
            registry::record(&n.bridge, root, &n.subnet, n.subnet6.as_ref());
            Ok(NetRow { firewall: fw, ..n })
        }
        Err(e) => {
            let _ = link::delete(&mut host, &n.bridge);
            Err(e)
        }
    }
}

/// Gateway address and firewall rules of an existing bridge; returns the firewall kind.
fn configure(host: &mut Socket, n: &NetRow) -> Result<String, EngineError> {
    let idx = link::index(&n.bridge).ok_or_else(|| {
        EngineError::Internal(format!("bridge {} vanished while being set up", n.bridge))
    })?;
    link::add_addr(host, idx, n.gateway(), n.subnet.prefix)
        .map_err(|e| cannot(&format!("add {} to bridge {}", n.gateway(), n.bridge), e))?;
    // The bridge takes no router advertisements (a container could send one).
    let _ = std::fs::write(
        format!("/proc/sys/net/ipv6/conf/{}/accept_ra", n.bridge),
        "0",
    );
    if let (Some(sn), Some(gw)) = (n.subnet6, n.gateway6()) {
        link::add_addr6(host, idx, gw, sn.prefix).map_err(|e| match e.raw_os_error() {
            Some(libc::EACCES | libc::EAFNOSUPPORT | libc::EADDRNOTAVAIL | libc::EPERM) => {
                EngineError::Refused(format!(
                    "network {}: cannot give bridge {} the IPv6 address {gw} ({e}): IPv6 is disabled on this host (net.ipv6.conf.*.disable_ipv6=1 or ipv6.disable=1); enable it, or recreate the network without --ipv6",
                    n.name, n.bridge
                ))
            }
            _ => cannot(&format!("add {gw} to bridge {}", n.bridge), e),
        })?;
    }
    let opts = n.opts();
    let policy = firewall::Policy {
        internal: n.internal,
        masquerade: opts.masquerade,
    };
    Ok(
        firewall::install(&n.bridge, &n.subnet, n.subnet6.as_ref(), policy)
            .as_str()
            .to_string(),
    )
}

impl Engine {
    /// The default network's row, created (in the database only) on first use.
    pub(crate) fn default_network(&self) -> Result<NetRow, EngineError> {
        let conn = self.store()?.conn();
        if let Some(n) = db::find_network(conn, DEFAULT)? {
            return Ok(n);
        }
        let _lock = host_lock();
        self.store()?.transaction(|tx| {
            if let Some(n) = db::find_network(tx, DEFAULT)? {
                return Ok(n);
            }
            let n = provision(tx, self.root(), DEFAULT, None, true, &Shape::default())?;
            db::insert_network(tx, &n)?;
            Ok::<_, EngineError>(n)
        })
    }

    /// Makes sure the network's bridge exists (it is gone after a reboot) with its gateway
    /// address and firewall rules; returns the bridge's interface index (a macvlan or
    /// ipvlan network's: its parent's, which must exist).
    pub(crate) fn bridge_up(&self, host: &mut Socket, n: &NetRow) -> Result<u32, EngineError> {
        if let Some(parent) = n.parent() {
            return link::index(&parent).ok_or_else(|| {
                EngineError::NotFound(format!(
                    "network {}: its parent interface {parent} is not on this host; bring it back or recreate the network with another -o parent",
                    n.name
                ))
            });
        }
        if let Some(i) = link::index(&n.bridge) {
            return Ok(i);
        }
        let _lock = host_lock();
        match link::create_bridge(host, &n.bridge, n.opts().mtu) {
            Ok(()) => {}
            Err(e) if e.raw_os_error() == Some(libc::EEXIST) => {}
            Err(e) => {
                return Err(cannot(
                    &format!("create bridge {} for network {}", n.bridge, n.name),
                    e,
                ))
            }
        }
        // A bridge left half set up would be taken as ready by the next start.
        let fw = configure(host, n).inspect_err(|_| {
            let _ = link::delete(host, &n.bridge);
        })?;
        registry::record(&n.bridge, self.root(), &n.subnet, n.subnet6.as_ref());
        let _ = db::set_firewall(self.store()?.conn(), &n.name, &fw);
        link::index(&n.bridge).ok_or_else(|| {
            EngineError::Internal(format!("bridge {} vanished while being set up", n.bridge))
        })
    }

    /// Removes a network's bridge and firewall rules from the host (the row stays).
    pub(crate) fn bridge_down(&self, n: &NetRow) {
        if n.bridge.is_empty() {
            return;
        }
        if let Ok(mut s) = Socket::open() {
            let _ = link::delete(&mut s, &n.bridge);
        }
        firewall::remove(&n.bridge, &n.subnet, n.subnet6.as_ref());
        registry::forget(&n.bridge);
    }
}
