//! Address allocation on a bridge network: an endpoint's IPv4 lease (round robin over
//! the network's range, or the `--ip` asked for) and, on a dual-stack network, its IPv6
//! address, in one `BEGIN IMMEDIATE` transaction with the endpoint's row.
//! `UNIQUE(network, ip)` makes a double IPv4 allocation impossible even across processes.

use std::collections::HashSet;
use std::net::{Ipv4Addr, Ipv6Addr};

use rusqlite::{params, Connection};

use super::db::{Endpoint, NetRow};
use crate::EngineError;

impl NetRow {
    /// The host offsets a lease without `--ip` may take: `lo..=hi`, the range's (or the
    /// subnet's) addresses, but the gateway's offset.
    pub(crate) fn leasable(&self) -> (u32, u32, u32) {
        let (lo, hi) = match &self.ip_range {
            Some(r) => {
                let lo = self.subnet.offset(r.net);
                (lo, lo + (1u32 << (32 - r.prefix as u32)) - 1)
            }
            None => (1, self.subnet.hosts()),
        };
        let gw = self.subnet.offset(self.gateway());
        (lo.max(1), hi.min(self.subnet.hosts()), gw)
    }
}

/// Leases the next free address of `net` to `ep` (whose `ip` is filled in) inside one
/// `BEGIN IMMEDIATE` transaction (the caller's). Leases of containers that no longer exist
/// (a crash between start and cleanup) and of build steps whose build is gone are
/// reclaimed first.
pub fn lease(conn: &Connection, net: &NetRow, ep: &mut Endpoint) -> Result<(), EngineError> {
    conn.execute(
        "DELETE FROM net_endpoints WHERE container NOT IN (SELECT id FROM containers) \
         AND container NOT LIKE 'build:%'",
        [],
    )?;
    // Build steps' leases go with their building process.
    let stale: Vec<String> = {
        let mut st =
            conn.prepare("SELECT container FROM net_endpoints WHERE container LIKE 'build:%'")?;
        let owners = st.query_map([], |r| r.get::<_, String>(0))?;
        owners
            .filter_map(Result::ok)
            .filter(|o| super::step::stale_owner(o))
            .collect()
    };
    for o in stale {
        conn.execute("DELETE FROM net_endpoints WHERE container = ?1", [&o])?;
    }
    let next: i64 = conn.query_row(
        "SELECT next_host FROM networks WHERE name = ?1",
        [&net.name],
        |r| r.get(0),
    )?;
    // The addresses in use, both families in one read.
    let mut used = HashSet::new();
    let mut used6 = HashSet::new();
    {
        let mut st = conn.prepare("SELECT ip, ip6 FROM net_endpoints WHERE network = ?1")?;
        let rows = st.query_map([&net.name], |r| {
            Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?))
        })?;
        for row in rows {
            let (ip, ip6) = row?;
            if let Ok(a) = ip.parse::<Ipv4Addr>() {
                if net.subnet.contains(a) {
                    used.insert(net.subnet.offset(a));
                }
            }
            if let Ok(a) = ip6.parse::<Ipv6Addr>() {
                used6.insert(a);
            }
        }
    }
    let pick = if ep.ip.is_unspecified() {
        // Round robin from `next_host` over the leasable offsets (a /16 has 65,534: no
        // list of them is made on a container's start).
        let (lo, hi, gw) = net.leasable();
        let span = (hi + 1).saturating_sub(lo);
        let start = (next.clamp(lo as i64, hi as i64) as u32).saturating_sub(lo);
        (0..span)
            .map(|i| lo + (start + i) % span)
            .find(|o| *o != gw && !used.contains(o))
            .ok_or_else(|| {
                EngineError::Conflict(format!(
                    "network {} has no free address left in {}; remove containers or create a larger network",
                    net.name,
                    net.ip_range.unwrap_or(net.subnet)
                ))
            })?
    } else {
        // `--ip`: that address or nothing.
        let o = wanted_offset(net, ep.ip)?;
        if used.contains(&o) {
            return Err(EngineError::Conflict(format!(
                "address {} is already in use on network {}; choose another --ip or leave it out",
                ep.ip, net.name
            )));
        }
        o
    };
    ep.ip = net.subnet.host(pick);
    ep.ip6 = lease6(net, used6, ep.ip6, pick)?;
    conn.execute(
        "INSERT INTO net_endpoints (container, network, ip, names, veth, ifname, ip6) \
         VALUES (?1,?2,?3,?4,?5,?6,?7)",
        params![
            ep.container,
            ep.network,
            ep.ip.to_string(),
            ep.names,
            ep.veth,
            ep.ifname,
            ep.ip6.map(|a| a.to_string()).unwrap_or_default()
        ],
    )?;
    conn.execute(
        "UPDATE networks SET next_host = ?2 WHERE name = ?1",
        params![net.name, pick as i64 + 1],
    )?;
    Ok(())
}

/// The IPv6 address of a new endpoint on `net` (None when the network has no IPv6
/// subnet): `want` (`--ip6`) when free, else the IPv4 lease's host offset `offset4` in the
/// IPv6 subnet (so `10.7.0.5` goes with `fd00:7::5`), else the lowest free one; `used`:
/// the network's IPv6 addresses in use, read by [`lease`] in its transaction.
fn lease6(
    net: &NetRow,
    mut used: HashSet<Ipv6Addr>,
    want: Option<Ipv6Addr>,
    offset4: u32,
) -> Result<Option<Ipv6Addr>, EngineError> {
    let Some(sn) = net.subnet6 else {
        return Ok(None);
    };
    used.extend(net.gateway6());
    if let Some(ip) = want {
        wanted_ip6(net, ip)?;
        if used.contains(&ip) {
            return Err(EngineError::Conflict(format!(
                "address {ip} is already in use on network {}; choose another --ip6 or leave it out",
                net.name
            )));
        }
        return Ok(Some(ip));
    }
    let mine = sn.host(offset4 as u64);
    if offset4 as u64 <= sn.last_host() && !used.contains(&mine) {
        return Ok(Some(mine));
    }
    // Endpoints are at most a few thousand: the first free offset is near the start.
    (2..=sn.last_host())
        .map(|o| sn.host(o))
        .find(|a| !used.contains(a))
        .map(Some)
        .ok_or_else(|| {
            EngineError::Conflict(format!(
                "network {} has no free IPv6 address left in {sn}; remove containers or create a larger network",
                net.name
            ))
        })
}

/// Why a container cannot have IPv6 address `ip` on `net`, if it cannot.
pub fn wanted_ip6(net: &NetRow, ip: Ipv6Addr) -> Result<(), EngineError> {
    let Some(sn) = net.subnet6 else {
        return Err(EngineError::Usage(format!(
            "network {} has no IPv6 subnet; leave out --ip6 or create the network with --ipv6",
            net.name
        )));
    };
    if !sn.is_host(ip) || Some(ip) == net.gateway6() {
        return Err(EngineError::Usage(format!(
            "address {ip} is not a container address of network {} ({sn}, gateway {}); choose one inside the subnet",
            net.name,
            net.gateway6().map(|g| g.to_string()).unwrap_or_default()
        )));
    }
    Ok(())
}

/// The host offset of `ip` in `net`'s subnet, or why a container cannot have it.
pub fn wanted_offset(net: &NetRow, ip: Ipv4Addr) -> Result<u32, EngineError> {
    let o = net.subnet.contains(ip).then(|| net.subnet.offset(ip));
    let gw = net.subnet.offset(net.gateway());
    match o {
        Some(o) if (1..=net.subnet.hosts()).contains(&o) && o != gw => Ok(o),
        _ => Err(EngineError::Usage(format!(
            "address {ip} is not a container address of network {} ({}, gateway {}); choose one inside the subnet",
            net.name,
            net.subnet,
            net.gateway()
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use gcr_net::{Subnet, Subnet6};
    use std::collections::BTreeMap;

    #[test]
    fn wanted_addresses_must_be_container_addresses_of_the_subnet() {
        let net = NetRow {
            name: "app".into(),
            id: "0".repeat(64),
            driver: "bridge".into(),
            bridge: "gcr-x".into(),
            subnet: Subnet::parse("10.7.0.0/24").unwrap(),
            created: 0,
            firewall: String::new(),
            labels: BTreeMap::new(),
            internal: false,
            own_gateway: None,
            ip_range: None,
            options: BTreeMap::new(),
            subnet6: Some(Subnet6::parse("fd00:7::/64").unwrap()),
            own_gateway6: None,
        };
        assert!(wanted_ip6(&net, "fd00:7::2".parse().unwrap()).is_ok());
        for bad in ["fd00:7::", "fd00:7::1", "fd00:8::2"] {
            let err = wanted_ip6(&net, bad.parse().unwrap()).unwrap_err();
            assert!(err.to_string().contains("not a container address"), "{err}");
        }
        assert_eq!(net.gateway6(), Some("fd00:7::1".parse().unwrap()));
        assert_eq!(wanted_offset(&net, Ipv4Addr::new(10, 7, 0, 2)).unwrap(), 2);
        assert_eq!(
            wanted_offset(&net, Ipv4Addr::new(10, 7, 0, 254)).unwrap(),
            254
        );
        for bad in [[10, 7, 0, 0], [10, 7, 0, 1], [10, 7, 0, 255], [10, 8, 0, 5]] {
            let err = wanted_offset(&net, Ipv4Addr::from(bad)).unwrap_err();
            assert!(err.to_string().contains("not a container address"), "{err}");
        }
    }
}
