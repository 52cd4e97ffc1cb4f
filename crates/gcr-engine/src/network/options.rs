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
        let bad = |k: &str, v: &str, fix: &str| {
            EngineError::Usage(format!("network {name}: invalid option {k}={v}: {fix}"))
        };
        let boolean = |k: &str, v: &str| match v {
            "true" | "1" => Ok(true),
            "false" | "0" => Ok(false),
            _ => Err(bad(k, v, "give true or false")),
        };
        let mut d = DriverOptions::default();
        for (k, v) in o {
            match k.as_str() {
                BRIDGE_NAME => {
                    if !gcr_net::link::valid_name(v) {
                        return Err(bad(
                            k,
                            v,
                            "an interface name is 1 to 15 letters, digits, '-', '_' or '.'",
                        ));
                    }
                    d.bridge_name = Some(v.clone());
                }
                MTU => {
                    let mtu = v
                        .parse::<u32>()
                        .ok()
                        .filter(|m| (68..=65535).contains(m))
                        .ok_or_else(|| bad(k, v, "give an MTU from 68 to 65535"))?;
                    d.mtu = Some(mtu);
                }
                ICC => d.icc = boolean(k, v)?,
                MASQUERADE => d.masquerade = boolean(k, v)?,
                HOST_IP => {
                    d.host_ip = Some(
                        v.parse()
                            .map_err(|_| bad(k, v, "give an IPv4 address of this host"))?,
                    )
                }
                _ => {
                    return Err(EngineError::Usage(format!(
                        "network {name}: driver option {k} is not supported by gcr's bridge networks; use {}",
                        KNOWN.join(", ")
                    )))
                }
            }
        }
        Ok(d)
    }

    /// The options of a stored network (checked when it was made; a value that no longer
    /// parses counts as absent).
    pub fn of(o: &BTreeMap<String, String>) -> DriverOptions {
        DriverOptions::parse("", o).unwrap_or_else(|_| {
            let mut d = DriverOptions::default();
            for (k, v) in o {
                let one = BTreeMap::from([(k.clone(), v.clone())]);
                if let Ok(x) = DriverOptions::parse("", &one) {
                    match k.as_str() {
                        BRIDGE_NAME => d.bridge_name = x.bridge_name,
                        MTU => d.mtu = x.mtu,
                        ICC => d.icc = x.icc,
                        MASQUERADE => d.masquerade = x.masquerade,
                        _ => d.host_ip = x.host_ip,
                    }
                }
            }
            d
        })
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
