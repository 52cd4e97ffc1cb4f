//! IPv4 subnets: parsing `a.b.c.d/n`, host addresses by offset (for IPAM), overlap tests,
//! and the host's own routed prefixes (so a new network never shadows a host route).

use std::net::Ipv4Addr;

use crate::NetError;

/// An IPv4 network, stored normalized (host bits cleared).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Subnet {
    pub net: Ipv4Addr,
    pub prefix: u8,
}

impl Subnet {
    /// Parses `10.88.0.0/16`; host bits must be zero and the prefix between 8 and 30.
    pub fn parse(s: &str) -> Result<Subnet, NetError> {
        Subnet::parse_as(s, 30, "subnet", "10.90.0.0/24")
    }

    /// Parses an address range `a.b.c.d/n` (`--ip-range`): host bits zero, prefix /8 to /32.
    pub fn parse_range(s: &str) -> Result<Subnet, NetError> {
        Subnet::parse_as(s, 32, "IP range", "10.90.0.128/25")
    }

    /// `a.b.c.d/n` with a prefix from 8 to `max` and no host bits; errors name it `what`.
    fn parse_as(s: &str, max: u8, what: &str, example: &str) -> Result<Subnet, NetError> {
        let bad = || {
            NetError::Invalid(format!(
                "invalid {what} '{s}'; give an IPv4 network such as {example}"
            ))
        };
        let (a, p) = s.split_once('/').ok_or_else(bad)?;
        let ip: Ipv4Addr = a.parse().map_err(|_| bad())?;
        let prefix: u8 = p.parse().map_err(|_| bad())?;
        if !(8..=max).contains(&prefix) {
            return Err(NetError::Invalid(format!(
                "{what} '{s}' has prefix /{prefix}; use a prefix between /8 and /{max}"
            )));
        }
        let sn = Subnet { net: ip, prefix };
        if sn.normalized().net != ip {
            return Err(NetError::Invalid(format!(
                "{what} '{s}' has host bits set; use {}",
                sn.normalized()
            )));
        }
        Ok(sn)
    }

    /// Whether `inner` lies wholly inside this network.
    pub fn covers(&self, inner: &Subnet) -> bool {
        inner.prefix >= self.prefix && self.contains(inner.net)
    }

    fn mask(&self) -> u32 {
        if self.prefix == 0 {
            0
        } else {
            u32::MAX << (32 - self.prefix as u32)
        }
    }

    fn normalized(&self) -> Subnet {
        Subnet {
            net: Ipv4Addr::from(u32::from(self.net) & self.mask()),
            prefix: self.prefix,
        }
    }

    pub fn contains(&self, ip: Ipv4Addr) -> bool {
        u32::from(ip) & self.mask() == u32::from(self.net)
    }

    /// Whether the two networks share any address.
    pub fn overlaps(&self, other: &Subnet) -> bool {
        let m = self.mask() & other.mask();
        u32::from(self.net) & m == u32::from(other.net) & m
    }

    /// Number of usable host offsets (1 ..= size-2).
    pub fn hosts(&self) -> u32 {
        (1u32 << (32 - self.prefix as u32)) - 2
    }

    /// The address at host offset `n` (1 = the gateway).
    pub fn host(&self, n: u32) -> Ipv4Addr {
        Ipv4Addr::from(u32::from(self.net) + n)
    }

    /// Host offset of `ip` within this subnet.
    pub fn offset(&self, ip: Ipv4Addr) -> u32 {
        u32::from(ip) - u32::from(self.net)
    }

    pub fn gateway(&self) -> Ipv4Addr {
        self.host(1)
    }
}

impl std::fmt::Display for Subnet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.net, self.prefix)
    }
}

/// Prefixes the host routes (main table, from /proc/net/route), default route excluded.
pub fn host_routes() -> Vec<Subnet> {
    let text = std::fs::read_to_string("/proc/net/route").unwrap_or_default();
    parse_proc_route(&text)
}

fn parse_proc_route(text: &str) -> Vec<Subnet> {
    let mut out = Vec::new();
    for line in text.lines().skip(1) {
        let f: Vec<&str> = line.split_whitespace().collect();
        if f.len() < 8 {
            continue;
        }
        let (Ok(dst), Ok(mask)) = (u32::from_str_radix(f[1], 16), u32::from_str_radix(f[7], 16))
        else {
            continue;
        };
        // The file prints network-order addresses as native integers: native bytes = octets.
        if mask == 0 {
            continue;
        }
        out.push(Subnet {
            net: Ipv4Addr::from(dst.to_ne_bytes()),
            prefix: mask.count_ones() as u8,
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_may_be_narrow_and_lie_inside_a_subnet() {
        let sn = Subnet::parse("10.7.0.0/16").unwrap();
        let r = Subnet::parse_range("10.7.3.128/25").unwrap();
        assert!(sn.covers(&r));
        assert!(sn.covers(&Subnet::parse_range("10.7.3.4/32").unwrap()));
        assert!(!sn.covers(&Subnet::parse_range("10.8.0.0/24").unwrap()));
        assert!(
            !r.covers(&sn),
            "a wider network is not inside a narrower one"
        );
        assert!(
            Subnet::parse("10.7.3.4/32").is_err(),
            "a subnet stops at /30"
        );
        let e = Subnet::parse_range("10.7.3.129/25")
            .unwrap_err()
            .to_string();
        assert!(e.contains("IP range") && e.contains("10.7.3.128/25"), "{e}");
    }

    #[test]
    fn parses_and_checks_subnets() {
        let s = Subnet::parse("10.88.0.0/16").unwrap();
        assert_eq!(s.gateway(), Ipv4Addr::new(10, 88, 0, 1));
        assert_eq!(s.hosts(), 65534);
        assert!(s.contains(Ipv4Addr::new(10, 88, 255, 254)));
        assert!(!s.contains(Ipv4Addr::new(10, 89, 0, 1)));
        assert_eq!(s.offset(Ipv4Addr::new(10, 88, 1, 2)), 258);
        assert!(Subnet::parse("10.88.0.1/16").is_err());
        assert!(Subnet::parse("10.88.0.0/31").is_err());
        assert!(Subnet::parse("nonsense").is_err());
        let small = Subnet::parse("10.88.4.0/24").unwrap();
        assert!(s.overlaps(&small) && small.overlaps(&s));
        assert!(!small.overlaps(&Subnet::parse("10.88.5.0/24").unwrap()));
    }

    #[test]
    fn reads_proc_net_route() {
        let text = "Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\n\
                    eth0\t00000000\t010200C0\t0003\t0\t0\t0\t00000000\n\
                    eth0\t000200C0\t00000000\t0001\t0\t0\t0\t00FFFFFF\n";
        let r = parse_proc_route(text);
        assert_eq!(r, vec![Subnet::parse("192.0.2.0/24").unwrap()]);
    }
}
