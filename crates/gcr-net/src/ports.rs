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

impl PortSpec {
    /// Parses a `-p` value.
    pub fn parse(s: &str) -> Result<PortSpec, NetError> {
        let (body, pr) = match s.rsplit_once('/') {
            Some((b, p)) => (b, proto(p, s)?),
            None => (s, Proto::Tcp),
        };
        if body.contains('-') {
            return Err(NetError::Invalid(format!(
                "port ranges are not supported in '{s}'; publish each port with its own -p"
            )));
        }
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
        Ok(PortSpec {
            host_ip,
            host_port: if host.is_empty() { 0 } else { port(host, s)? },
            container_port: port(ctr, s)?,
            proto: pr,
        })
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
        assert!(PortSpec::exposed("http").is_err());
    }
}
