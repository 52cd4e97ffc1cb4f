//! Network drivers and their options (`network create -d DRIVER -o KEY=VALUE`, a compose
//! file's `driver` and `driver_opts`). Docker's bridge options: the bridge's name, the MTU
//! of the bridge and its veths, whether containers reach each other (icc) and whether
//! outbound traffic is masqueraded, and the host address published ports bind to by
//! default. The macvlan and ipvlan drivers' options: the parent interface and the mode.
//! Checked once at create; the network keeps them as given (inspect shows them) and reads
//! them back from there.

use std::collections::BTreeMap;
use std::net::Ipv4Addr;

use crate::EngineError;

pub const BRIDGE_NAME: &str = "com.docker.network.bridge.name";
pub const MTU: &str = "com.docker.network.driver.mtu";
pub const ICC: &str = "com.docker.network.bridge.enable_icc";
pub const MASQUERADE: &str = "com.docker.network.bridge.enable_ip_masquerade";
pub const HOST_IP: &str = "com.docker.network.bridge.host_binding_ipv4";

pub const PARENT: &str = "parent";
pub const MACVLAN_MODE: &str = "macvlan_mode";
pub const IPVLAN_MODE: &str = "ipvlan_mode";

/// A network's driver.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Driver {
    /// A Linux bridge of gcr's, veth pairs, NAT and published ports.
    #[default]
    Bridge,
    /// Sub-interfaces of a host interface (`parent`), each with its own MAC: containers
    /// sit on the parent's network as hosts of their own.
    Macvlan,
    /// Sub-interfaces of `parent` sharing its MAC.
    Ipvlan,
}

impl Driver {
    /// The driver named `d` (empty: bridge), or a usage error naming the ones there are.
    pub fn parse(network: &str, d: &str) -> Result<Driver, EngineError> {
        match d {
            "" | "bridge" => Ok(Driver::Bridge),
            "macvlan" => Ok(Driver::Macvlan),
            "ipvlan" => Ok(Driver::Ipvlan),
            other => Err(EngineError::Usage(format!(
                "network {network}: driver {other} is not available; use bridge, macvlan or ipvlan"
            ))),
        }
    }

    /// A stored network's driver (anything unknown reads as bridge, gcr's only driver once).
    pub fn of(d: &str) -> Driver {
        Driver::parse("", d).unwrap_or(Driver::Bridge)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Driver::Bridge => "bridge",
            Driver::Macvlan => "macvlan",
            Driver::Ipvlan => "ipvlan",
        }
    }

    /// The option keys this driver takes.
    fn known(self) -> &'static [&'static str] {
        match self {
            Driver::Bridge => &[BRIDGE_NAME, MTU, ICC, MASQUERADE, HOST_IP],
            Driver::Macvlan => &[PARENT, MACVLAN_MODE, MTU],
            Driver::Ipvlan => &[PARENT, IPVLAN_MODE, MTU],
        }
    }
}

/// The options of a network, parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DriverOptions {
    pub bridge_name: Option<String>,
    pub mtu: Option<u32>,
    pub icc: bool,
    pub masquerade: bool,
    /// Where `-p PORT:PORT` without an address binds (None: every address).
    pub host_ip: Option<Ipv4Addr>,
    /// The host interface a macvlan or ipvlan network hangs off.
    pub parent: Option<String>,
    /// The kernel's sub-interface mode: macvlan's `IFLA_MACVLAN_MODE` (bridge: 4) or
    /// ipvlan's `IFLA_IPVLAN_MODE` (l2: 0).
    pub macvlan_mode: u32,
    pub ipvlan_mode: u16,
}

impl Default for DriverOptions {
    fn default() -> DriverOptions {
        DriverOptions {
            bridge_name: None,
            mtu: None,
            icc: true,
            masquerade: true,
            host_ip: None,
            parent: None,
            macvlan_mode: 4,
            ipvlan_mode: 0,
        }
    }
}

impl DriverOptions {
    /// Checks the options of network `name` with `driver`: an unknown key or a bad value is
    /// a usage error naming it and the fix; macvlan and ipvlan need their parent.
    pub fn parse(
        name: &str,
        driver: Driver,
        o: &BTreeMap<String, String>,
    ) -> Result<DriverOptions, EngineError> {
        let mut d = DriverOptions::default();
        for (k, v) in o {
            let known = driver.known().contains(&k.as_str());
            let set = if known { d.set(k, v) } else { Err(None) };
            set.map_err(|fix| match fix {
                None => EngineError::Usage(format!(
                    "network {name}: driver option {k} is not supported by gcr's {} networks; use {}",
                    driver.as_str(),
                    driver.known().join(", ")
                )),
                Some(fix) => {
                    EngineError::Usage(format!("network {name}: invalid option {k}={v}: {fix}"))
                }
            })?;
        }
        if driver != Driver::Bridge && d.parent.is_none() {
            return Err(EngineError::Usage(format!(
                "network {name}: the {} driver needs its parent interface; add -o parent=INTERFACE (a host interface such as eth0)",
                driver.as_str()
            )));
        }
        Ok(d)
    }

    /// The options of a stored network (checked when it was made; a value that no longer
    /// reads counts as absent).
    pub fn of(o: &BTreeMap<String, String>) -> DriverOptions {
        let mut d = DriverOptions::default();
        for (k, v) in o {
            let _ = d.set(k, v);
        }
        d
    }

    /// Sets option `k` to `v`: Err(None) for a key gcr does not know, Err(Some(fix)) for a
    /// bad value.
    fn set(&mut self, k: &str, v: &str) -> Result<(), Option<&'static str>> {
        let boolean = |v: &str| match v {
            "true" | "1" => Ok(true),
            "false" | "0" => Ok(false),
            _ => Err(Some("give true or false")),
        };
        match k {
            BRIDGE_NAME if gcr_net::link::valid_name(v) => self.bridge_name = Some(v.into()),
            BRIDGE_NAME => {
                return Err(Some(
                    "an interface name is 1 to 15 letters, digits, '-', '_' or '.'",
                ))
            }
            MTU => {
                let mtu = v.parse::<u32>().ok().filter(|m| (68..=65535).contains(m));
                self.mtu = Some(mtu.ok_or(Some("give an MTU from 68 to 65535"))?);
            }
            ICC => self.icc = boolean(v)?,
            MASQUERADE => self.masquerade = boolean(v)?,
            HOST_IP => {
                let ip = v
                    .parse()
                    .map_err(|_| Some("give an IPv4 address of this host"));
                self.host_ip = Some(ip?);
            }
            PARENT if gcr_net::link::valid_name(v) => self.parent = Some(v.into()),
            PARENT => {
                return Err(Some(
                    "give a host interface name: 1 to 15 letters, digits, '-', '_' or '.'",
                ))
            }
            MACVLAN_MODE => {
                self.macvlan_mode = match v {
                    "private" => 1,
                    "vepa" => 2,
                    "bridge" => 4,
                    "passthru" => 8,
                    _ => return Err(Some("give bridge, private, vepa or passthru")),
                }
            }
            IPVLAN_MODE => {
                self.ipvlan_mode = match v {
                    "l2" => 0,
                    "l3" => 1,
                    _ => return Err(Some("give l2 or l3")),
                }
            }
            _ => return Err(None),
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opts(kv: &[(&str, &str)]) -> BTreeMap<String, String> {
        kv.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn dockers_bridge_options_parse() {
        let d = DriverOptions::parse(
            "n",
            Driver::Bridge,
            &opts(&[
                (BRIDGE_NAME, "br-web"),
                (MTU, "1400"),
                (ICC, "false"),
                (MASQUERADE, "0"),
                (HOST_IP, "127.0.0.1"),
            ]),
        )
        .unwrap();
        assert_eq!(d.bridge_name.as_deref(), Some("br-web"));
        assert_eq!(d.mtu, Some(1400));
        assert!(!d.icc && !d.masquerade);
        assert_eq!(d.host_ip, Some(Ipv4Addr::LOCALHOST));
        assert_eq!(
            DriverOptions::parse("n", Driver::Bridge, &BTreeMap::new()).unwrap(),
            DriverOptions::default()
        );
    }

    #[test]
    fn bad_options_name_themselves_and_the_fix() {
        for (k, v, says) in [
            (MTU, "9", "from 68 to 65535"),
            (MTU, "big", "from 68 to 65535"),
            (BRIDGE_NAME, "a-name-far-too-long", "1 to 15"),
            (BRIDGE_NAME, "a/b", "1 to 15"),
            (ICC, "maybe", "true or false"),
            (HOST_IP, "::1", "IPv4"),
            (
                "com.docker.network.bridge.inhibit_ipv4",
                "true",
                "not supported",
            ),
        ] {
            let e = DriverOptions::parse("web", Driver::Bridge, &opts(&[(k, v)]))
                .unwrap_err()
                .to_string();
            assert!(
                e.contains("network web") && e.contains(says),
                "{k}={v}: {e}"
            );
        }
    }

    #[test]
    fn stored_options_read_back_leniently() {
        let d = DriverOptions::of(&opts(&[(MTU, "1400"), ("unknown.key", "x")]));
        assert_eq!(d.mtu, Some(1400));
        assert!(d.icc);
    }

    #[test]
    fn macvlan_and_ipvlan_take_their_parent_and_mode() {
        let d = DriverOptions::parse(
            "lan",
            Driver::Macvlan,
            &opts(&[(PARENT, "eth0"), (MACVLAN_MODE, "private")]),
        )
        .unwrap();
        assert_eq!((d.parent.as_deref(), d.macvlan_mode), (Some("eth0"), 1));
        let d = DriverOptions::parse("lan", Driver::Ipvlan, &opts(&[(PARENT, "eth0")])).unwrap();
        assert_eq!(d.ipvlan_mode, 0, "l2 by default");
        for (driver, kv, says) in [
            (Driver::Macvlan, vec![], "add -o parent=INTERFACE"),
            (
                Driver::Macvlan,
                vec![(PARENT, "eth0"), (ICC, "false")],
                "not supported by gcr's macvlan",
            ),
            (
                Driver::Ipvlan,
                vec![(PARENT, "eth0"), (IPVLAN_MODE, "l3s")],
                "l2 or l3",
            ),
            (
                Driver::Macvlan,
                vec![(PARENT, "eth0"), (MACVLAN_MODE, "x")],
                "bridge, private",
            ),
            (
                Driver::Bridge,
                vec![(PARENT, "eth0")],
                "not supported by gcr's bridge",
            ),
        ] {
            let e = DriverOptions::parse("lan", driver, &opts(&kv))
                .unwrap_err()
                .to_string();
            assert!(e.contains("network lan") && e.contains(says), "{e}");
        }
        assert_eq!(Driver::parse("lan", "macvlan").unwrap(), Driver::Macvlan);
        let e = Driver::parse("lan", "overlay").unwrap_err().to_string();
        assert!(e.contains("bridge, macvlan or ipvlan"), "{e}");
    }
}
