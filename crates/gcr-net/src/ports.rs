//! Published port specifications: `-p [ip:][hostPort:]containerPort[/tcp|udp]` (an IPv6
//! address in brackets, `[::1]:8080:80`) and image `ExposedPorts` keys (`80/tcp`).

use std::fmt;
use std::net::IpAddr;

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

/// One published port. `host_port` 0 means "any free port"; `host_ip` None means no
/// address was given: every address of both families, as Docker publishes (an explicit
/// `0.0.0.0` is IPv4's only, `[::]` IPv6's only).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PortSpec {
    pub host_ip: Option<IpAddr>,
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
fn split(s: &str) -> Result<(Option<IpAddr>, &str, &str, Proto), NetError> {
    let (body, pr) = match s.rsplit_once('/') {
        Some((b, p)) => (b, proto(p, s)?),
        None => (s, Proto::Tcp),
    };
    let bad = || {
        NetError::Invalid(format!(
            "invalid port mapping '{s}'; use [ip:]hostPort:containerPort[/tcp|udp], an IPv6 address in brackets"
        ))
    };
    // An IPv6 address is bracketed: `[::1]:8080:80`.
    let (ip, rest) = match body.strip_prefix('[') {
        Some(b) => {
            let (ip, rest) = b.split_once("]:").ok_or_else(bad)?;
            (Some(ip), Some(rest))
        }
        None => (None, None),
    };
    let parts: Vec<&str> = rest.unwrap_or(body).split(':').collect();
    let (ip, host, ctr) = match (ip, parts.as_slice()) {
        (None, [c]) => (None, "", *c),
        (None, [h, c]) => (None, *h, *c),
        (None, [ip, h, c]) => (Some(*ip), *h, *c),
        (Some(ip), [h, c]) => (Some(ip), *h, *c),
        _ => return Err(bad()),
    };
    let host_ip = match ip {
        None | Some("") => None,
        Some(a) => Some(a.parse::<IpAddr>().map_err(|_| {
            NetError::Invalid(format!(
                "invalid host address '{a}' in '{s}'; give an address such as 127.0.0.1 or [::1]"
            ))
        })?),
    };
    if rest.is_some() && !matches!(host_ip, Some(IpAddr::V6(_))) {
        return Err(NetError::Invalid(format!(
            "invalid host address in '{s}'; brackets hold an IPv6 address such as [::1]"
        )));
    }
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
            host_ip: None,
            host_port: 0,
            container_port: port(p, key)?,
            proto: pr,
        })
    }
}

/// `ip:host:container/proto` (`[ip]` for IPv6, nothing for no address), which
/// [`PortSpec::parse`] reads back.
impl fmt::Display for PortSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let host = match self.host_port {
            0 => String::new(),
            p => p.to_string(),
        };
        let ip = match self.host_ip {
            None => String::new(),
            Some(IpAddr::V4(a)) => a.to_string(),
            Some(IpAddr::V6(a)) => format!("[{a}]"),
        };
        write!(
            f,
            "{ip}:{host}:{}/{}",
            self.container_port,
            self.proto.as_str()
        )
    }
}

/// `ip:port` as Docker prints a binding (`0.0.0.0:8080`, `[::]:8080`).
pub fn host_port_text(ip: Option<IpAddr>, port: u16) -> String {
    match ip {
        Some(IpAddr::V6(a)) => format!("[{a}]:{port}"),
        Some(IpAddr::V4(a)) => format!("{a}:{port}"),
        None => format!("0.0.0.0:{port}"),
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
        assert_eq!(p.host_ip, None);
        assert_eq!(PortSpec::parse(&p.to_string()).unwrap(), p);
        let p = PortSpec::parse("127.0.0.1:53:5353/udp").unwrap();
        assert_eq!(p.host_ip, Some(std::net::Ipv4Addr::LOCALHOST.into()));
        assert_eq!(PortSpec::parse(&p.to_string()).unwrap(), p);
        let p = PortSpec::parse("0.0.0.0:8080:80").unwrap();
        assert_eq!(p.host_ip, Some(std::net::Ipv4Addr::UNSPECIFIED.into()));
        let p = PortSpec::parse("[::1]:8080:80/udp").unwrap();
        assert_eq!(p.host_ip, Some(std::net::Ipv6Addr::LOCALHOST.into()));
        assert_eq!((p.host_port, p.container_port), (8080, 80));
        assert_eq!(p.to_string(), "[::1]:8080:80/udp");
        assert_eq!(PortSpec::parse(&p.to_string()).unwrap(), p);
        let p = PortSpec::parse("[::]::80").unwrap();
        assert_eq!((p.host_port, p.container_port), (0, 80));
        assert_eq!(host_port_text(p.host_ip, 8080), "[::]:8080");
        let p = PortSpec::parse("127.0.0.1:53:5353/udp").unwrap();
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
            "::1:8080:80",
            "[::1]:80",
            "[127.0.0.1]:8080:80",
            "[::1:8080:80",
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
            .all(|p| p.proto == Proto::Udp
                && p.host_ip == Some(std::net::Ipv4Addr::LOCALHOST.into())));
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
