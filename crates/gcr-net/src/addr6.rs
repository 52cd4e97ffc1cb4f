//! IPv6 subnets of dual-stack networks: parsing `fd00:1::/64`, host addresses by offset
//! (for IPAM), overlap tests, the host's own routed prefixes, and unique local prefixes
//! (RFC 4193) made for a network created with `--ipv6` and no IPv6 subnet.

use std::net::Ipv6Addr;

use crate::NetError;

/// An IPv6 network, stored normalized (host bits cleared).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Subnet6 {
    pub net: Ipv6Addr,
    pub prefix: u8,
}

impl Subnet6 {
    /// Parses `fd00:1::/64`; host bits must be zero and the prefix between /8 and /124.
    pub fn parse(s: &str) -> Result<Subnet6, NetError> {
        let bad = || {
            NetError::Invalid(format!(
                "invalid IPv6 subnet '{s}'; give an IPv6 network such as fd00:1::/64"
            ))
        };
        let (a, p) = s.split_once('/').ok_or_else(bad)?;
        let ip: Ipv6Addr = a.parse().map_err(|_| bad())?;
        let prefix: u8 = p.parse().map_err(|_| bad())?;
        if !(8..=124).contains(&prefix) {
            return Err(NetError::Invalid(format!(
                "IPv6 subnet '{s}' has prefix /{prefix}; use a prefix between /8 and /124"
            )));
        }
        let seg0 = ip.segments()[0];
        let special = ip.is_multicast()
            || seg0 & 0xffc0 == 0xfe80
            || ip.to_ipv4_mapped().is_some()
            || u128::from(ip) >> 96 == 0;
        if special {
            return Err(NetError::Invalid(format!(
                "IPv6 subnet '{s}' is not a unicast network (multicast, link-local, loopback or IPv4-mapped); use a global or unique local one such as fd00:1::/64"
            )));
        }
        let sn = Subnet6 { net: ip, prefix };
        let norm = Subnet6 {
            net: Ipv6Addr::from(u128::from(ip) & sn.mask()),
            prefix,
        };
        if norm.net != ip {
            return Err(NetError::Invalid(format!(
                "IPv6 subnet '{s}' has host bits set; use {norm}"
            )));
        }
        Ok(sn)
    }

    fn mask(&self) -> u128 {
        if self.prefix == 0 {
            0
        } else {
            u128::MAX << (128 - self.prefix as u32)
        }
    }

    pub fn contains(&self, ip: Ipv6Addr) -> bool {
        u128::from(ip) & self.mask() == u128::from(self.net)
    }

    /// Whether the two networks share any address.
    pub fn overlaps(&self, other: &Subnet6) -> bool {
        let m = self.mask() & other.mask();
        u128::from(self.net) & m == u128::from(other.net) & m
    }

    /// The highest usable host offset (the subnet's last address; IPv6 has no broadcast),
    /// capped so that offsets fit in a `u64`.
    pub fn last_host(&self) -> u64 {
        let bits = 128 - self.prefix as u32;
        if bits >= 64 {
            u64::MAX
        } else {
            (1u64 << bits) - 1
        }
    }

    /// The address at host offset `n` (1 = the gateway).
    pub fn host(&self, n: u64) -> Ipv6Addr {
        Ipv6Addr::from(u128::from(self.net) | n as u128)
    }

    /// Host offset of `ip` within this subnet (meaningful when it [`contains`](Self::contains) it).
    pub fn offset(&self, ip: Ipv6Addr) -> u64 {
        (u128::from(ip) & !self.mask()) as u64
    }

    /// Whether `ip` is a host address of this subnet (not the subnet-router anycast
    /// address, offset 0), within the offsets [`host`](Self::host) makes.
    pub fn is_host(&self, ip: Ipv6Addr) -> bool {
        let h = u128::from(ip) & !self.mask();
        self.contains(ip) && h != 0 && h <= u64::MAX as u128
    }

    pub fn gateway(&self) -> Ipv6Addr {
        self.host(1)
    }

    /// A unique local /64 (RFC 4193): `fd`, a 40-bit global id taken from `seed` (a
    /// network's random id), and subnet id `n`.
    pub fn unique_local(seed: &[u8; 5], n: u16) -> Subnet6 {
        let mut b = [0u8; 16];
        b[0] = 0xfd;
        b[1..6].copy_from_slice(seed);
        b[6..8].copy_from_slice(&n.to_be_bytes());
        Subnet6 {
            net: Ipv6Addr::from(b),
            prefix: 64,
        }
    }
}

impl std::fmt::Display for Subnet6 {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.net, self.prefix)
    }
}

/// The IPv6 prefixes the host routes (from /proc/net/ipv6_route): default, link-local,
/// multicast and host (/128) routes left out.
pub fn host_routes6() -> Vec<Subnet6> {
    let text = std::fs::read_to_string("/proc/net/ipv6_route").unwrap_or_default();
    parse_ipv6_route(&text)
}

fn parse_ipv6_route(text: &str) -> Vec<Subnet6> {
    let mut out = Vec::new();
    for line in text.lines() {
        let mut f = line.split_whitespace();
        let (Some(dst), Some(len)) = (f.next(), f.next()) else {
            continue;
        };
        let (Ok(dst), Ok(prefix)) = (u128::from_str_radix(dst, 16), u8::from_str_radix(len, 16))
        else {
            continue;
        };
        let net = Ipv6Addr::from(dst);
        let link_local = net.segments()[0] & 0xffc0 == 0xfe80;
        if prefix == 0 || prefix >= 128 || net.is_multicast() || link_local {
            continue;
        }
        if out
            .iter()
            .any(|s: &Subnet6| s.net == net && s.prefix == prefix)
        {
            continue;
        }
        out.push(Subnet6 { net, prefix });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_checks_ipv6_subnets() {
        let s = Subnet6::parse("fd00:1::/64").unwrap();
        assert_eq!(s.gateway(), "fd00:1::1".parse::<Ipv6Addr>().unwrap());
        assert_eq!(s.host(258), "fd00:1::102".parse::<Ipv6Addr>().unwrap());
        assert_eq!(s.offset("fd00:1::1:2".parse().unwrap()), 0x10002);
        assert!(s.contains("fd00:1::ffff".parse().unwrap()));
        assert!(!s.contains("fd00:2::1".parse().unwrap()));
        assert!(s.is_host("fd00:1::2".parse().unwrap()));
        assert!(
            !s.is_host("fd00:1::".parse().unwrap()),
            "the anycast address"
        );
        assert_eq!(s.last_host(), u64::MAX);
        let small = Subnet6::parse("fd00:1::100/120").unwrap();
        assert_eq!(small.last_host(), 255);
        assert!(s.overlaps(&small) && small.overlaps(&s));
        assert!(!small.overlaps(&Subnet6::parse("fd00:1::200/120").unwrap()));
        let e = Subnet6::parse("fd00:1::1/64").unwrap_err().to_string();
        assert!(e.contains("host bits") && e.contains("fd00:1::/64"), "{e}");
        assert!(Subnet6::parse("10.0.0.0/8").is_err());
        assert!(Subnet6::parse("fd00::/126").is_err());
        assert!(Subnet6::parse("fd00::").is_err());
        for special in ["fe80::/64", "ff00::/8", "::/64", "::ffff:10.0.0.0/120"] {
            let e = Subnet6::parse(special).unwrap_err().to_string();
            assert!(e.contains("not a unicast network"), "{special}: {e}");
        }
    }

    #[test]
    fn unique_local_prefixes_carry_the_seed() {
        let s = Subnet6::unique_local(&[0x12, 0x34, 0x56, 0x78, 0x9a], 3);
        assert_eq!(s.to_string(), "fd12:3456:789a:3::/64");
        assert!(Subnet6::parse(&s.to_string()).is_ok());
    }

    #[test]
    fn reads_proc_net_ipv6_route() {
        let text = "\
fd000000000000000000000000000000 40 00000000000000000000000000000000 00 00000000000000000000000000000000 00000100 00000001 00000000 00000001     eth0
fe800000000000000000000000000000 40 00000000000000000000000000000000 00 00000000000000000000000000000000 00000100 00000001 00000000 00000001     eth0
00000000000000000000000000000000 00 00000000000000000000000000000000 00 fd000000000000000000000000000001 00000400 00000001 00000000 00000003     eth0
fd000000000000000000000000000002 80 00000000000000000000000000000000 00 00000000000000000000000000000000 00000000 00000003 00000000 80200001     eth0
ff000000000000000000000000000000 08 00000000000000000000000000000000 00 00000000000000000000000000000000 00000100 00000004 00000000 00000001     eth0
";
        assert_eq!(
            parse_ipv6_route(text),
            vec![Subnet6::parse("fd00::/64").unwrap()]
        );
    }
}
