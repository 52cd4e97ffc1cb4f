//! Published port specifications: `-p [ip:][hostPort:]containerPort[/tcp|udp]` and image
//! `ExposedPorts` keys (`80/tcp`).

use std::fmt;
use std::net::Ipv4Addr;

use crate::NetError;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Proto {
    Tcp,
    Udp,
}

impl Proto {
    pub fn as_str(&self) -> &'static str {
        match self {
            Proto::Tcp => "tcp",
            Proto::Udp => "udp",
        }
    }
}

/// One published port. `host_port` 0 means "any free port".
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PortSpec {
    pub host_ip: Ipv4Addr,
    pub host_port: u16,
    pub container_port: u16,
    pub proto: Proto,
}

fn port(s: &str, whole: &str) -> Result<u16, NetError> {
    match s.parse::<u16>() {
        Ok(p) if p > 0 => Ok(p),
        _ => Err(NetError::Invalid(format!(
            "invalid port '{s}' in '{whole}'; ports are numbers from 1 to 65535"
        ))),
    }
}

fn proto(s: &str, whole: &str) -> Result<Proto, NetError> {
    match s {
        "tcp" => Ok(Proto::Tcp),
        "udp" => Ok(Proto::Udp),
        _ => Err(NetError::Invalid(format!(
            "invalid protocol '{s}' in '{whole}'; use tcp or udp"
        ))),
    }
}

/// The most ports one `-p` range publishes.
pub const MAX_RANGE: u32 = 1000;

/// A `-p` value cut into its address, host part, container part and protocol.
fn split(s: &str) -> Result<(Ipv4Addr, &str, &str, Proto), NetError> {
    let (body, pr) = match s.rsplit_once('/') {
        Some((b, p)) => (b, proto(p, s)?),
        None => (s, Proto::Tcp),
    };
    let parts: Vec<&str> = body.split(':').collect();
    let (ip, host, ctr) = match parts.as_slice() {
        [c] => (None, "", *c),
        [h, c] => (None, *h, *c),
        [ip, h, c] => (Some(*ip), *h, *c),
        _ => {
            return Err(NetError::Invalid(format!(
                "invalid port mapping '{s}'; use [ip:]hostPort:containerPort[/tcp|udp]"
            )))
        }
    };
    let host_ip = match ip {
        None | Some("") => Ipv4Addr::UNSPECIFIED,
        Some(a) => a.parse().map_err(|_| {
            NetError::Invalid(format!(
                "invalid host address '{a}' in '{s}'; give an IPv4 address such as 127.0.0.1"
            ))
        })?,
    };
    Ok((host_ip, host, ctr, pr))
}

/// `a-b` (or one port `a`) of `-p` value `whole`: its first and last port.
fn range(r: &str, whole: &str) -> Result<(u16, u16), NetError> {
    let (a, b) = match r.split_once('-') {
        Some((a, b)) => (port(a, whole)?, port(b, whole)?),
        None => {
            let p = port(r, whole)?;
            (p, p)
        }
    };
    if a > b || u32::from(b - a) >= MAX_RANGE {
        return Err(NetError::Invalid(format!(
            "invalid port range '{r}' in '{whole}'; give FIRST-LAST with FIRST <= LAST, {MAX_RANGE} ports at most"
        )));
    }
    Ok((a, b))
}

impl PortSpec {
    /// Parses a `-p` value of one port.
    pub fn parse(s: &str) -> Result<PortSpec, NetError> {
        let (host_ip, host, ctr, pr) = split(s)?;
        if host.contains('-') || ctr.contains('-') {
            return Err(NetError::Invalid(format!(
                "'{s}' is a port range; publish one port here"
            )));
        }
        Ok(PortSpec {
            host_ip,
            host_port: if host.is_empty() { 0 } else { port(host, s)? },
            container_port: port(ctr, s)?,
            proto: pr,
        })
    }

    /// Parses a `-p` value, port ranges included (Docker's `8000-8002:8000-8002`,
    /// `127.0.0.1:8000-8002:80-82/udp`, `8000-8002` with random host ports): one spec per
    /// container port, host and container ranges of one size.
    pub fn parse_all(s: &str) -> Result<Vec<PortSpec>, NetError> {
        let (host_ip, host, ctr, pr) = split(s)?;
        let (c0, c1) = range(ctr, s)?;
        let hosts = if host.is_empty() {
            None
        } else {
            Some(range(host, s)?)
        };
        if let Some((h0, h1)) = hosts {
            if h1 - h0 != c1 - c0 {
                return Err(NetError::Invalid(format!(
                    "the host ports {host} and container ports {ctr} of '{s}' differ in number; give ranges of one size (a free port of a host range for one container port is not supported: give one host port)"
                )));
            }
        }
        Ok((c0..=c1)
            .enumerate()
            .map(|(i, c)| PortSpec {
                host_ip,
                // i < MAX_RANGE: the offset fits a port number.
                host_port: hosts.map_or(0, |(h0, _)| h0 + i as u16),
                container_port: c,
                proto: pr,
            })
            .collect())
    }

    /// Parses an image `ExposedPorts` key (`80/tcp`, `53/udp`, `8080`) into a random-host-port spec.
    pub fn exposed(key: &str) -> Result<PortSpec, NetError> {
        let (p, pr) = match key.split_once('/') {
            Some((p, pr)) => (p, proto(pr, key)?),
            None => (key, Proto::Tcp),
        };
        Ok(PortSpec {
            host_ip: Ipv4Addr::UNSPECIFIED,
            host_port: 0,
            container_port: port(p, key)?,
            proto: pr,
        })
    }
}

/// `ip:host:container/proto`, which [`PortSpec::parse`] reads back.
impl fmt::Display for PortSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let host = match self.host_port {
            0 => String::new(),
            p => p.to_string(),
        };
        write!(
            f,
            "{}:{host}:{}/{}",
            self.host_ip,
            self.container_port,
            self.proto.as_str()
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_publish_forms() {
        let p = PortSpec::parse("8080:80").unwrap();
        assert_eq!(
            (p.host_port, p.container_port, p.proto),
            (8080, 80, Proto::Tcp)
        );
        assert_eq!(p.host_ip, Ipv4Addr::UNSPECIFIED);
        let p = PortSpec::parse("127.0.0.1:53:5353/udp").unwrap();
        assert_eq!(p.host_ip, Ipv4Addr::LOCALHOST);
        assert_eq!(
            (p.host_port, p.container_port, p.proto),
            (53, 5353, Proto::Udp)
        );
        let p = PortSpec::parse("80").unwrap();
        assert_eq!((p.host_port, p.container_port), (0, 80));
        let p = PortSpec::parse("127.0.0.1::80").unwrap();
        assert_eq!((p.host_port, p.container_port), (0, 80));
        assert_eq!(PortSpec::parse(&p.to_string()).unwrap(), p);
        for bad in [
            "0",
            "70000",
            "a:b",
            "1:2:3:4",
            "80/sctp",
            "8000-8010:80",
            "x.y:1:2",
        ] {
            assert!(PortSpec::parse(bad).is_err(), "{bad} accepted");
        }
        assert_eq!(PortSpec::exposed("53/udp").unwrap().proto, Proto::Udp);
        assert_eq!(
            PortSpec::parse_all("8080:80").unwrap(),
            vec![PortSpec::parse("8080:80").unwrap()]
        );
        assert!(PortSpec::exposed("http").is_err());
    }

    #[test]
    fn ranges_publish_one_spec_per_port() {
        let v = PortSpec::parse_all("127.0.0.1:8000-8002:9000-9002/udp").unwrap();
        let pairs: Vec<(u16, u16)> = v.iter().map(|p| (p.host_port, p.container_port)).collect();
        assert_eq!(pairs, vec![(8000, 9000), (8001, 9001), (8002, 9002)]);
        assert!(v
            .iter()
            .all(|p| p.proto == Proto::Udp && p.host_ip == Ipv4Addr::LOCALHOST));
        let v = PortSpec::parse_all("7000-7001").unwrap();
        assert_eq!(v.len(), 2);
        assert!(v.iter().all(|p| p.host_port == 0));
        for (bad, says) in [
            ("8000-8002:80", "differ in number"),
            ("8000-8001:80-82", "differ in number"),
            ("9-8:1-2", "FIRST <= LAST"),
            ("1-5000:1-5000", "1000 ports at most"),
            ("0-3:1-4", "1 to 65535"),
        ] {
            let e = PortSpec::parse_all(bad).unwrap_err().to_string();
            assert!(e.contains(says), "{bad}: {e}");
        }
        assert!(PortSpec::parse("8000-8001:80-81")
            .unwrap_err()
            .to_string()
            .contains("range"));
    }
}
