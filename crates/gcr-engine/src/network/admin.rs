//! `gcr network create|ls|rm|inspect`: user-defined networks (bridge, macvlan, ipvlan)
//! and the predefined `bridge`, `host` and `none`.

use std::collections::BTreeMap;

use serde::Serialize;

use super::db::{self, NetRow};
use super::setup::{self, net_err, DEFAULT};
use crate::container::record;
use crate::{names, Engine, EngineError};

/// A container attached to a network.
#[derive(Debug, Clone, Serialize)]
pub struct Member {
    pub id: String,
    pub name: String,
    pub ip: String,
    /// Its IPv6 address on a dual-stack network (else empty).
    #[serde(skip_serializing_if = "String::is_empty")]
    pub ip6: String,
    /// Its endpoint (the host end of its veth pair) and hardware address.
    pub endpoint: String,
    pub mac: String,
}

/// A network as listed and inspected.
#[derive(Debug, Clone, Serialize)]
pub struct NetworkInfo {
    pub name: String,
    pub id: String,
    pub driver: String,
    /// Host bridge interface (empty for host/none).
    pub bridge: String,
    pub subnet: String,
    pub gateway: String,
    pub created: i64,
    /// Firewall mechanism carrying masquerade rules: nftables, iptables or none.
    pub firewall: String,
    pub labels: BTreeMap<String, String>,
    /// `--internal`: nothing forwarded in or out, no default route for its members.
    pub internal: bool,
    /// `--ip-range` (empty: the whole subnet).
    #[serde(skip_serializing_if = "String::is_empty")]
    pub ip_range: String,
    /// Driver options as given (`-o KEY=VALUE`).
    pub options: BTreeMap<String, String>,
    /// `--ipv6`: a dual-stack network.
    pub ipv6: bool,
    /// Its IPv6 subnet and gateway (empty on IPv4-only networks).
    #[serde(skip_serializing_if = "String::is_empty")]
    pub subnet6: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub gateway6: String,
    pub containers: Vec<Member>,
}

/// What `network create` asks for.
#[derive(Debug, Clone, Default)]
pub struct NetworkCreate {
    /// `--subnet CIDR` (default: a free /16).
    pub subnet: Option<String>,
    pub labels: BTreeMap<String, String>,
    pub internal: bool,
    /// `--gateway IP`: the bridge's address, inside the subnet (default: its first).
    pub gateway: Option<String>,
    /// `--ip-range CIDR`: where addresses without `--ip` are leased, inside the subnet.
    pub ip_range: Option<String>,
    /// `-o KEY=VALUE`: Docker's bridge driver options (see [`super::options`]).
    pub options: BTreeMap<String, String>,
    /// `--ipv6`: a dual-stack network (IPv4 and IPv6).
    pub ipv6: bool,
    /// An IPv6 `--subnet` (default with `--ipv6`: a free unique local /64).
    pub subnet6: Option<String>,
    /// An IPv6 `--gateway` (inside the IPv6 subnet; default: its first address).
    pub gateway6: Option<String>,
    /// `-d`: bridge (default), macvlan or ipvlan.
    pub driver: Option<String>,
}

impl NetworkCreate {
    /// Takes one IPAM config of network `name` (a `--subnet`, `--gateway` or `--ip-range`
    /// flag, or one entry of the API's `IPAM.Config`) into the IPv4 or the IPv6 fields by
    /// its address family. A network has one subnet of each family.
    pub fn add_ipam(
        &mut self,
        name: &str,
        subnet: Option<&str>,
        gateway: Option<&str>,
        ip_range: Option<&str>,
    ) -> Result<(), EngineError> {
        let v6 = subnet
            .or(gateway)
            .or(ip_range)
            .is_some_and(|a| a.contains(':'));
        let twice = |what: &str| {
            EngineError::Usage(format!(
                "network {name}: more than one {what}; a gcr network has one IPv4 and one IPv6 subnet, give one of each at most"
            ))
        };
        let set = |slot: &mut Option<String>, v: Option<&str>, what: &str| {
            match (slot.as_ref(), v) {
                (Some(_), Some(_)) => return Err(twice(what)),
                (None, Some(v)) => *slot = Some(v.to_string()),
                _ => {}
            }
            Ok(())
        };
        if v6 {
            if let Some(r) = ip_range {
                return Err(EngineError::Usage(format!(
                    "network {name}: --ip-range {r} is IPv6; gcr leases IPv6 addresses from the whole IPv6 subnet, leave it out"
                )));
            }
            set(&mut self.subnet6, subnet, "IPv6 subnet")?;
            set(&mut self.gateway6, gateway, "IPv6 gateway")
        } else {
            set(&mut self.subnet, subnet, "IPv4 subnet")?;
            set(&mut self.gateway, gateway, "IPv4 gateway")?;
            set(&mut self.ip_range, ip_range, "IPv4 range")
        }
    }

    /// The checked shape of network `name` on `subnet`.
    fn shape(
        &self,
        name: &str,
        subnet: Option<&gcr_net::Subnet>,
    ) -> Result<setup::Shape, EngineError> {
        let need_subnet = |flag: &str| {
            EngineError::Usage(format!(
                "network {name}: {flag} needs --subnet; give the subnet it belongs to"
            ))
        };
        let gateway = match &self.gateway {
            None => None,
            Some(g) => {
                let sn = subnet.ok_or_else(|| need_subnet("--gateway"))?;
                let ip: std::net::Ipv4Addr = g.parse().map_err(|_| {
                    EngineError::Usage(format!("invalid --gateway '{g}': give an IPv4 address"))
                })?;
                let inside = sn.contains(ip) && (1..=sn.hosts()).contains(&sn.offset(ip));
                if !inside {
                    return Err(EngineError::Usage(format!(
                        "--gateway {ip} is not a host address of subnet {sn}; choose one inside it"
                    )));
                }
                Some(ip)
            }
        };
        let ip_range = match &self.ip_range {
            None => None,
            Some(r) => {
                let sn = subnet.ok_or_else(|| need_subnet("--ip-range"))?;
                let range = gcr_net::Subnet::parse_range(r).map_err(net_err)?;
                if !sn.covers(&range) {
                    return Err(EngineError::Usage(format!(
                        "--ip-range {range} is not inside subnet {sn}; choose a range inside it"
                    )));
                }
                Some(range)
            }
        };
        let driver = super::options::Driver::parse(name, self.driver.as_deref().unwrap_or(""))?;
        let opts = super::options::DriverOptions::parse(name, driver, &self.options)?;
        if let Some(p) = &opts.parent {
            let Some(idx) = gcr_net::link::index(p) else {
                return Err(EngineError::Usage(format!(
                    "network {name}: parent interface {p} does not exist on this host; name one that 'ip link' lists"
                )));
            };
            probe(name, driver, &opts, idx)?;
        }
        let (subnet6, gateway6) = self.shape6(name)?;
        Ok(setup::Shape {
            driver,
            internal: self.internal,
            gateway,
            ip_range,
            options: self.options.clone(),
            ipv6: self.ipv6,
            subnet6,
            gateway6,
        })
    }

    /// The checked IPv6 subnet and gateway of network `name`.
    fn shape6(
        &self,
        name: &str,
    ) -> Result<(Option<gcr_net::Subnet6>, Option<std::net::Ipv6Addr>), EngineError> {
        if !self.ipv6 {
            if let Some(s) = self.subnet6.as_ref().or(self.gateway6.as_ref()) {
                return Err(EngineError::Usage(format!(
                    "network {name}: {s} is IPv6 but the network is IPv4 only; add --ipv6"
                )));
            }
            return Ok((None, None));
        }
        let subnet6 = self
            .subnet6
            .as_deref()
            .map(gcr_net::Subnet6::parse)
            .transpose()
            .map_err(net_err)?;
        let gateway6 = match &self.gateway6 {
            None => None,
            Some(g) => {
                let sn = subnet6.ok_or_else(|| {
                    EngineError::Usage(format!(
                        "network {name}: an IPv6 --gateway needs an IPv6 --subnet; give the subnet it belongs to"
                    ))
                })?;
                let ip: std::net::Ipv6Addr = g.parse().map_err(|_| {
                    EngineError::Usage(format!("invalid --gateway '{g}': give an IPv6 address"))
                })?;
                if !sn.is_host(ip) {
                    return Err(EngineError::Usage(format!(
                        "--gateway {ip} is not a host address of subnet {sn}; choose one inside it"
                    )));
                }
                Some(ip)
            }
        };
        Ok((subnet6, gateway6))
    }
}

/// Refuses a macvlan or ipvlan network the kernel cannot make (its driver is not built in
/// or loaded, or the parent cannot carry one), by making one interface and deleting it.
fn probe(
    name: &str,
    driver: super::options::Driver,
    o: &super::options::DriverOptions,
    parent: u32,
) -> Result<(), EngineError> {
    let kind = match driver {
        super::options::Driver::Bridge => return Ok(()),
        super::options::Driver::Macvlan => gcr_net::link::SubKind::Macvlan(o.macvlan_mode),
        super::options::Driver::Ipvlan => gcr_net::link::SubKind::Ipvlan(o.ipvlan_mode),
    };
    let mut s = gcr_net::netlink::Socket::open()
        .map_err(|e| EngineError::Io("opening a netlink socket".into(), e))?;
    let d = driver.as_str();
    let p = o.parent.as_deref().unwrap_or("");
    gcr_net::link::probe_sub(&mut s, parent, kind).map_err(|e| match e.raw_os_error() {
        Some(libc::EOPNOTSUPP) => EngineError::Refused(format!(
            "network {name}: this kernel has no {d} support (CONFIG_{}); load its module or use another driver",
            d.to_uppercase()
        )),
        _ => EngineError::Refused(format!(
            "network {name}: the kernel refused a {d} interface on {p} ({e}); choose another parent"
        )),
    })
}

fn info(n: &NetRow, members: Vec<Member>) -> NetworkInfo {
    NetworkInfo {
        name: n.name.clone(),
        id: n.id.clone(),
        driver: n.driver.clone(),
        bridge: n.bridge.clone(),
        subnet: n.subnet.to_string(),
        gateway: n.gateway().to_string(),
        created: n.created,
        firewall: n.firewall.clone(),
        labels: n.labels.clone(),
        internal: n.internal,
        ip_range: n.ip_range.map(|r| r.to_string()).unwrap_or_default(),
        options: n.options.clone(),
        ipv6: n.subnet6.is_some(),
        subnet6: n.subnet6.map(|s| s.to_string()).unwrap_or_default(),
        gateway6: n.gateway6().map(|g| g.to_string()).unwrap_or_default(),
        containers: members,
    }
}

fn pseudo(name: &str) -> NetworkInfo {
    NetworkInfo {
        name: name.into(),
        id: name.into(),
        driver: name.into(),
        bridge: String::new(),
        subnet: String::new(),
        gateway: String::new(),
        created: 0,
        firewall: String::new(),
        labels: BTreeMap::new(),
        internal: false,
        ip_range: String::new(),
        options: BTreeMap::new(),
        ipv6: false,
        subnet6: String::new(),
        gateway6: String::new(),
        containers: Vec::new(),
    }
}

impl Engine {
    fn members(&self, network: &str) -> Result<Vec<Member>, EngineError> {
        let conn = self.store()?.conn();
        let mut out = Vec::new();
        for ep in db::endpoints_on(conn, network)? {
            let r = record::find(conn, &ep.container).ok();
            let mac = gcr_net::link::mac_text(super::endpoint_mac(r.as_ref(), &ep));
            out.push(Member {
                name: r.map(|r| r.name).unwrap_or_default(),
                id: ep.container,
                ip: ep.ip.to_string(),
                ip6: ep.ip6.map(|a| a.to_string()).unwrap_or_default(),
                mac,
                endpoint: ep.veth,
            });
        }
        Ok(out)
    }

    /// `gcr network create [--subnet CIDR] NAME`.
    pub fn network_create(
        &self,
        name: &str,
        subnet: Option<&str>,
    ) -> Result<NetworkInfo, EngineError> {
        self.network_create_labeled(name, subnet, &BTreeMap::new())
    }

    /// `gcr network create [--subnet CIDR] [--label K=V]... NAME`.
    pub fn network_create_labeled(
        &self,
        name: &str,
        subnet: Option<&str>,
        labels: &BTreeMap<String, String>,
    ) -> Result<NetworkInfo, EngineError> {
        self.network_create_with(
            name,
            &NetworkCreate {
                subnet: subnet.map(str::to_string),
                labels: labels.clone(),
                ..NetworkCreate::default()
            },
        )
    }

    /// `gcr network create [--subnet CIDR [--gateway IP] [--ip-range CIDR]] [--label K=V]...
    /// [--internal] NAME`. An internal network forwards nothing into or out of its bridge
    /// (its members reach each other and the host reaches them), and gives its members no
    /// default route.
    pub fn network_create_with(
        &self,
        name: &str,
        o: &NetworkCreate,
    ) -> Result<NetworkInfo, EngineError> {
        let (subnet, labels) = (o.subnet.as_deref(), &o.labels);
        if !names::valid_name(name) {
            return Err(EngineError::Usage(format!(
                "invalid network name '{name}': only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed"
            )));
        }
        if matches!(name, "bridge" | "host" | "none" | "default") {
            return Err(EngineError::Conflict(format!(
                "network {name} is predefined; choose another name"
            )));
        }
        let subnet = subnet
            .map(gcr_net::Subnet::parse)
            .transpose()
            .map_err(net_err)?;
        let shape = o.shape(name, subnet.as_ref())?;
        let _lock = setup::host_lock();
        let n = self.store()?.transaction(|tx| {
            if db::find_network(tx, name)?.is_some() {
                return Err(EngineError::Conflict(format!(
                    "network {name} already exists; remove it first or choose another name"
                )));
            }
            if let Some(s) = &subnet {
                let routed = shape.driver == super::options::Driver::Bridge;
                if let Some(c) = setup::subnet_clash(tx, s, routed)? {
                    return Err(EngineError::Conflict(format!(
                        "subnet {s} overlaps {c}; choose another --subnet"
                    )));
                }
            }
            if let Some(s) = &shape.subnet6 {
                if let Some(c) = setup::subnet6_clash(tx, s)? {
                    return Err(EngineError::Conflict(format!(
                        "IPv6 subnet {s} overlaps {c}; choose another --subnet"
                    )));
                }
            }
            let mut n = setup::provision(tx, self.root(), name, subnet, false, &shape)?;
            n.labels = labels.clone();
            if let Err(e) = db::insert_network(tx, &n) {
                self.bridge_down(&n);
                return Err(e);
            }
            Ok(n)
        })?;
        Ok(info(&n, Vec::new()))
    }

    /// `gcr network ls`: bridge networks (the default one first, once used), then host and
    /// none.
    pub fn network_list(&self) -> Result<Vec<NetworkInfo>, EngineError> {
        let mut out = Vec::new();
        for n in db::list_networks(self.store()?.conn())? {
            let m = self.members(&n.name)?;
            out.push(info(&n, m));
        }
        out.sort_by_key(|n| n.name != DEFAULT);
        out.push(pseudo("host"));
        out.push(pseudo("none"));
        Ok(out)
    }

    /// `gcr network inspect NAME`.
    pub fn network_inspect(&self, key: &str) -> Result<NetworkInfo, EngineError> {
        if matches!(key, "host" | "none") {
            return Ok(pseudo(key));
        }
        let n = db::find_network(self.store()?.conn(), key)?.ok_or_else(|| not_found(key))?;
        let m = self.members(&n.name)?;
        Ok(info(&n, m))
    }

    /// `gcr network rm NAME`: refused while any container (even stopped) uses it.
    pub fn network_remove(&self, key: &str) -> Result<NetworkInfo, EngineError> {
        if matches!(key, "bridge" | "host" | "none" | "default") {
            return Err(EngineError::Conflict(format!(
                "network {key} is predefined and cannot be removed"
            )));
        }
        let n = db::find_network(self.store()?.conn(), key)?.ok_or_else(|| not_found(key))?;
        let users: Vec<String> = record::list(self.store()?.conn())?
            .into_iter()
            .filter(|r| {
                r.config.resolved.network == n.name
                    || r.config
                        .opts
                        .extra_networks
                        .iter()
                        .any(|j| j.name == n.name)
            })
            .map(|r| r.name)
            .collect();
        if !users.is_empty() {
            return Err(EngineError::Conflict(format!(
                "network {} is used by container(s) {}; remove them first",
                n.name,
                users.join(", ")
            )));
        }
        self.bridge_down(&n);
        db::delete_network(self.store()?.conn(), &n.name)?;
        Ok(info(&n, Vec::new()))
    }

    /// `gcr network prune [--filter until=…|label=…|label!=…]`: the user networks no
    /// container uses (and `f` admits); their names.
    pub fn network_prune(&self, f: &crate::prune::PruneFilter) -> Result<Vec<String>, EngineError> {
        let mut gone = Vec::new();
        for n in self.network_list()? {
            let user = !matches!(n.name.as_str(), "bridge" | "host" | "none");
            if user
                && n.containers.is_empty()
                && f.admits(Some(n.created), &n.labels)
                && self.network_remove(&n.name).is_ok()
            {
                gone.push(n.name);
            }
        }
        Ok(gone)
    }

    /// Takes every bridge and firewall rule of this store's networks off the host (they
    /// come back on next use). For tests and resets; refused while containers are attached.
    pub fn network_teardown(&self) -> Result<(), EngineError> {
        let attached = db::all_endpoints(self.store()?.conn());
        if let Some(ep) = attached.first() {
            return Err(EngineError::Conflict(format!(
                "container {} is still attached to network {}; remove it first",
                ep.container, ep.network
            )));
        }
        for n in db::list_networks(self.store()?.conn())? {
            self.bridge_down(&n);
        }
        Ok(())
    }
}

fn not_found(key: &str) -> EngineError {
    EngineError::NotFound(format!("network {key} not found; see 'gcr network ls'"))
}
