//! The network tables (made by the store's schema, version 4, endpoints re-keyed in 12):
//! `networks` (one row per bridge network, with its IPAM cursor) and `net_endpoints` (one
//! row per attached container and network: its address lease, veth, interface name, and
//! on its first interface the published ports and proxy). Leases are made by
//! [`super::ipam`].

use std::collections::BTreeMap;
use std::net::{Ipv4Addr, Ipv6Addr};

use gcr_net::{Subnet, Subnet6};
use rusqlite::{params, Connection, OptionalExtension};

use crate::container::record;
use crate::EngineError;

/// One network of a driver of gcr's (bridge, macvlan, ipvlan).
#[derive(Debug, Clone)]
pub struct NetRow {
    pub name: String,
    pub id: String,
    pub driver: String,
    pub bridge: String,
    pub subnet: Subnet,
    pub created: i64,
    pub firewall: String,
    /// `--label`s (schema version 11).
    pub labels: BTreeMap<String, String>,
    /// `--internal` (schema version 13): nothing forwarded in or out, no default route.
    pub internal: bool,
    /// `--gateway` (schema version 14); None: the subnet's first address.
    pub own_gateway: Option<Ipv4Addr>,
    /// `--ip-range` (schema version 14): where addresses are leased; None: the subnet.
    pub ip_range: Option<Subnet>,
    /// Driver options as given (schema version 16), see [`super::options`].
    pub options: BTreeMap<String, String>,
    /// The IPv6 subnet of a dual-stack network (`--ipv6`, schema version 17).
    pub subnet6: Option<Subnet6>,
    /// Its `--gateway` (an IPv6 one); None: the IPv6 subnet's first address.
    pub own_gateway6: Option<Ipv6Addr>,
}

impl NetRow {
    /// The driver options, parsed.
    pub fn opts(&self) -> super::options::DriverOptions {
        super::options::DriverOptions::of(&self.options)
    }

    /// The network's driver.
    pub fn driver(&self) -> super::options::Driver {
        super::options::Driver::of(&self.driver)
    }

    /// A macvlan or ipvlan network's parent interface (None on a bridge network).
    pub fn parent(&self) -> Option<String> {
        (self.driver() != super::options::Driver::Bridge)
            .then(|| self.opts().parent)
            .flatten()
    }

    /// How a macvlan or ipvlan network's interfaces hang off their parent.
    pub fn sub_kind(&self) -> Option<gcr_net::link::SubKind> {
        let o = self.opts();
        match self.driver() {
            super::options::Driver::Bridge => None,
            super::options::Driver::Macvlan => {
                Some(gcr_net::link::SubKind::Macvlan(o.macvlan_mode))
            }
            super::options::Driver::Ipvlan => Some(gcr_net::link::SubKind::Ipvlan(o.ipvlan_mode)),
        }
    }

    /// The bridge's address, the containers' gateway.
    pub fn gateway(&self) -> Ipv4Addr {
        self.own_gateway.unwrap_or(self.subnet.gateway())
    }

    /// The bridge's IPv6 address, the containers' IPv6 gateway (dual-stack networks).
    pub fn gateway6(&self) -> Option<Ipv6Addr> {
        self.subnet6
            .map(|s| self.own_gateway6.unwrap_or(s.gateway()))
    }

    /// The IPv6 side of endpoint `ep` on this network (address, prefix, gateway), when both
    /// have one: how it is wired, and what inspect shows.
    pub fn v6_of(&self, ep: &Endpoint) -> Option<gcr_net::netns::V6> {
        Some(gcr_net::netns::V6 {
            ip: ep.ip6?,
            prefix: self.subnet6?.prefix,
            gateway: self.gateway6()?,
        })
    }
}

/// One container's attachment to one network.
#[derive(Debug, Clone)]
pub struct Endpoint {
    pub container: String,
    pub network: String,
    pub ip: Ipv4Addr,
    pub names: String,
    pub veth: String,
    /// Published ports, `;`-separated `hostIp:hostPort:containerPort/proto`.
    pub ports: String,
    pub proxy_pid: i32,
    /// The interface inside the container: `eth0`, `eth1`, ...
    pub ifname: String,
    /// The IPv6 address on a dual-stack network (schema version 17); before a lease, the
    /// one asked for (`--ip6`), if any.
    pub ip6: Option<Ipv6Addr>,
}

impl Endpoint {
    /// Its addresses, IPv4 first.
    pub fn ips(&self) -> Vec<std::net::IpAddr> {
        std::iter::once(self.ip.into())
            .chain(self.ip6.map(Into::into))
            .collect()
    }
}

const NET_COLS: &str = "name, id, driver, bridge, subnet, created, firewall, labels, internal, \
     gateway, ip_range, options, subnet6, gateway6";

fn net_from(row: &rusqlite::Row<'_>) -> rusqlite::Result<NetRow> {
    let subnet: String = row.get(4)?;
    Ok(NetRow {
        name: row.get(0)?,
        id: row.get(1)?,
        driver: row.get(2)?,
        bridge: row.get(3)?,
        subnet: Subnet::parse(&subnet).unwrap_or(Subnet {
            net: Ipv4Addr::new(10, 88, 0, 0),
            prefix: 16,
        }),
        created: row.get(5)?,
        firewall: row.get(6)?,
        labels: serde_json::from_str(&row.get::<_, String>(7)?).unwrap_or_default(),
        internal: row.get(8)?,
        own_gateway: row.get::<_, String>(9)?.parse().ok(),
        ip_range: Some(row.get::<_, String>(10)?)
            .filter(|r| !r.is_empty())
            .and_then(|r| Subnet::parse_range(&r).ok()),
        options: serde_json::from_str(&row.get::<_, String>(11)?).unwrap_or_default(),
        subnet6: Subnet6::parse(&row.get::<_, String>(12)?).ok(),
        own_gateway6: row.get::<_, String>(13)?.parse().ok(),
    })
}

/// A network by exact name, or by full or unambiguous id prefix.
pub fn find_network(conn: &Connection, key: &str) -> Result<Option<NetRow>, EngineError> {
    // Cached statements: a container list looks up each container's endpoint and network.
    let sql = format!("SELECT {NET_COLS} FROM networks WHERE name = ?1");
    if let Some(n) = conn
        .prepare_cached(&sql)?
        .query_row([key], net_from)
        .optional()?
    {
        return Ok(Some(n));
    }
    if key.len() < 3 || !key.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Ok(None);
    }
    let sql = format!("SELECT {NET_COLS} FROM networks WHERE id LIKE ?1 || '%'");
    let mut st = conn.prepare(&sql)?;
    let rows: Vec<NetRow> = st.query_map([key], net_from)?.collect::<Result<_, _>>()?;
    match rows.len() {
        0 => Ok(None),
        1 => Ok(rows.into_iter().next()),
        _ => Err(EngineError::Usage(format!(
            "network id prefix {key} is ambiguous; give more characters"
        ))),
    }
}

pub fn list_networks(conn: &Connection) -> Result<Vec<NetRow>, EngineError> {
    let sql = format!("SELECT {NET_COLS} FROM networks ORDER BY created, name");
    let mut st = conn.prepare_cached(&sql)?;
    let rows = st.query_map([], net_from)?.collect::<Result<_, _>>()?;
    Ok(rows)
}

/// Inserts a network with its `create` event (in the caller's transaction).
pub fn insert_network(conn: &Connection, n: &NetRow) -> Result<(), EngineError> {
    record::event_with(
        conn,
        ("network", &n.id, &n.name),
        (None, Some("created")),
        "create",
        &serde_json::json!({ "type": n.driver }),
    )?;
    conn.execute(
        "INSERT INTO networks (name, id, driver, bridge, subnet, created, firewall, labels, \
         internal, gateway, ip_range, options, subnet6, gateway6) \
         VALUES (?1,?2,?3,?4,?5,?6,?7,?8,?9,?10,?11,?12,?13,?14)",
        params![
            n.name,
            n.id,
            n.driver,
            n.bridge,
            n.subnet.to_string(),
            n.created,
            n.firewall,
            serde_json::to_string(&n.labels).unwrap_or_else(|_| "{}".into()),
            n.internal,
            n.own_gateway.map(|g| g.to_string()).unwrap_or_default(),
            n.ip_range.map(|r| r.to_string()).unwrap_or_default(),
            serde_json::to_string(&n.options).unwrap_or_else(|_| "{}".into()),
            n.subnet6.map(|s| s.to_string()).unwrap_or_default(),
            n.own_gateway6.map(|g| g.to_string()).unwrap_or_default()
        ],
    )?;
    Ok(())
}

pub fn set_firewall(conn: &Connection, name: &str, fw: &str) -> Result<(), EngineError> {
    conn.execute(
        "UPDATE networks SET firewall = ?2 WHERE name = ?1",
        params![name, fw],
    )?;
    Ok(())
}

/// Deletes a network's row with its `destroy` event.
pub fn delete_network(conn: &Connection, name: &str) -> Result<(), EngineError> {
    record::atomically(conn, || {
        let gone: Option<(String, String)> = conn
            .prepare_cached("DELETE FROM networks WHERE name = ?1 RETURNING id, driver")?
            .query_row([name], |r| Ok((r.get(0)?, r.get(1)?)))
            .optional()?;
        if let Some((id, driver)) = gone {
            record::event_with(
                conn,
                ("network", &id, name),
                (Some("created"), None),
                "destroy",
                &serde_json::json!({ "type": driver }),
            )?;
        }
        Ok(())
    })
}

const EP_COLS: &str = "container, network, ip, names, veth, ports, proxy_pid, ifname, ip6";

fn ep_from(row: &rusqlite::Row<'_>) -> rusqlite::Result<Endpoint> {
    let ip: String = row.get(2)?;
    Ok(Endpoint {
        container: row.get(0)?,
        network: row.get(1)?,
        ip: ip.parse().unwrap_or(Ipv4Addr::UNSPECIFIED),
        names: row.get(3)?,
        veth: row.get(4)?,
        ports: row.get(5)?,
        proxy_pid: row.get(6)?,
        ifname: row.get(7)?,
        ip6: row.get::<_, String>(8)?.parse().ok(),
    })
}

/// Orders interface names `eth0 < eth1 < ... < eth10`.
const BY_IFNAME: &str = "ORDER BY length(ifname), ifname";

/// The first endpoint of a container (its lowest interface: the one published ports
/// forward to); `None` also when the tables were never created.
pub fn endpoint(conn: &Connection, container: &str) -> Option<Endpoint> {
    let sql =
        format!("SELECT {EP_COLS} FROM net_endpoints WHERE container = ?1 {BY_IFNAME} LIMIT 1");
    conn.prepare_cached(&sql)
        .ok()?
        .query_row([container], ep_from)
        .optional()
        .ok()?
}

/// Every endpoint of a container, first interface first.
pub fn endpoints_of(conn: &Connection, container: &str) -> Vec<Endpoint> {
    let sql = format!("SELECT {EP_COLS} FROM net_endpoints WHERE container = ?1 {BY_IFNAME}");
    let Ok(mut st) = conn.prepare_cached(&sql) else {
        return Vec::new();
    };
    st.query_map([container], ep_from)
        .map(|it| it.filter_map(Result::ok).collect())
        .unwrap_or_default()
}

/// Every endpoint of the containers that have one on `network` (theirs on other networks
/// too): what their hosts files are made of.
pub fn endpoints_of_members(
    conn: &Connection,
    network: &str,
) -> Result<Vec<Endpoint>, EngineError> {
    let sql = format!(
        "SELECT {EP_COLS} FROM net_endpoints WHERE container IN \
         (SELECT container FROM net_endpoints WHERE network = ?1) ORDER BY ip"
    );
    let mut st = conn.prepare_cached(&sql)?;
    let rows = st
        .query_map([network], ep_from)?
        .collect::<Result<_, _>>()?;
    Ok(rows)
}

pub fn endpoints_on(conn: &Connection, network: &str) -> Result<Vec<Endpoint>, EngineError> {
    let sql = format!("SELECT {EP_COLS} FROM net_endpoints WHERE network = ?1 ORDER BY ip");
    let mut st = conn.prepare(&sql)?;
    let rows = st
        .query_map([network], ep_from)?
        .collect::<Result<_, _>>()?;
    Ok(rows)
}

pub fn all_endpoints(conn: &Connection) -> Vec<Endpoint> {
    let sql = format!("SELECT {EP_COLS} FROM net_endpoints");
    let Ok(mut st) = conn.prepare_cached(&sql) else {
        return Vec::new();
    };
    st.query_map([], ep_from)
        .map(|it| it.filter_map(Result::ok).collect())
        .unwrap_or_default()
}

/// The names a container's endpoint on `network` answers to (after a rename).
pub fn set_names(
    conn: &Connection,
    container: &str,
    network: &str,
    names: &str,
) -> Result<(), EngineError> {
    conn.execute(
        "UPDATE net_endpoints SET names = ?3 WHERE container = ?1 AND network = ?2",
        params![container, network, names],
    )?;
    Ok(())
}

/// Removes a container's endpoint on one network.
pub fn delete_endpoint_on(
    conn: &Connection,
    container: &str,
    network: &str,
) -> Result<(), EngineError> {
    conn.execute(
        "DELETE FROM net_endpoints WHERE container = ?1 AND network = ?2",
        [container, network],
    )?;
    Ok(())
}

/// Removes every endpoint of a container (or of a build step's owner).
pub fn delete_endpoint(conn: &Connection, container: &str) -> Result<(), EngineError> {
    conn.execute(
        "DELETE FROM net_endpoints WHERE container = ?1",
        [container],
    )?;
    Ok(())
}

pub fn set_ports(
    conn: &Connection,
    container: &str,
    ports: &str,
    pid: i32,
) -> Result<(), EngineError> {
    conn.execute(
        "UPDATE net_endpoints SET ports = ?2, proxy_pid = ?3 WHERE container = ?1 AND ifname = 'eth0'",
        params![container, ports, pid],
    )?;
    Ok(())
}
