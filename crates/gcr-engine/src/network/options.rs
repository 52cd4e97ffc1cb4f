//! Docker's bridge driver options (`network create -o KEY=VALUE`, a compose file's
//! `driver_opts`): the bridge's name, the MTU of the bridge and its veths, whether
//! containers reach each other (icc) and whether outbound traffic is masqueraded, and the
//! host address published ports bind to by default. Checked once at create; the network
//! keeps them as given (inspect shows them) and reads them back from there.

use std::collections::BTreeMap;
use std::net::Ipv4Addr;

use crate::EngineError;

pub const BRIDGE_NAME: &str = "com.docker.network.bridge.name";
pub const MTU: &str = "com.docker.network.driver.mtu";
pub const ICC: &str = "com.docker.network.bridge.enable_icc";
pub const MASQUERADE: &str = "com.docker.network.bridge.enable_ip_masquerade";
pub const HOST_IP: &str = "com.docker.network.bridge.host_binding_ipv4";

const KNOWN: &[&str] = &[BRIDGE_NAME, MTU, ICC, MASQUERADE, HOST_IP];

/// The options of a network, parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DriverOptions {
    pub bridge_name: Option<String>,
    pub mtu: Option<u32>,
    pub icc: bool,
    pub masquerade: bool,
    /// Where `-p PORT:PORT` without an address binds (None: every address).
    pub host_ip: Option<Ipv4Addr>,
}

impl Default for DriverOptions {
    fn default() -> DriverOptions {
        DriverOptions {
            bridge_name: None,
            mtu: None,
            icc: true,
            masquerade: true,
            host_ip: None,
        }
    }
}

impl DriverOptions {
    /// Checks the options of network `name`: an unknown key or a bad value is a usage error
    /// naming it and the fix.
    pub fn parse(name: &str, o: &BTreeMap<String, String>) -> Result<DriverOptions, EngineError> {
        let mut d = DriverOptions::default();
        for (k, v) in o {
            d.set(k, v).map_err(|fix| match fix {
                None => EngineError::Usage(format!(
                    "network {name}: driver option {k} is not supported by gcr's bridge networks; use {}",
                    KNOWN.join(", ")
                )),
                Some(fix) => {
                    EngineError::Usage(format!("network {name}: invalid option {k}={v}: {fix}"))
                }
            })?;
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
            DriverOptions::parse("n", &BTreeMap::new()).unwrap(),
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
            let e = DriverOptions::parse("web", &opts(&[(k, v)]))
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
}
