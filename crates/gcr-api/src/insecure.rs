//! The service's `--insecure-registry` values, as dockerd takes them: a registry host
//! (`HOST[:PORT]`, reached over plain http when a reference names exactly it) or a network
//! in CIDR form (`10.0.0.0/8`, `fd00::/8`: every registry whose address lies in it — an IP
//! literal, or a host name that resolves into it, as dockerd resolves it).

use std::net::{IpAddr, ToSocketAddrs};

/// A checked `--insecure-registry` value: a CIDR normalized (host bits cleared), or the
/// registry host as a reference names it.
pub fn parse(value: &str) -> Result<String, String> {
    if value.contains('/') && !value.contains("://") {
        let (ip, len) = cidr(value).ok_or_else(|| {
            format!("'{value}' is not a network; give ADDRESS/PREFIX such as 10.0.0.0/8")
        })?;
        return Ok(format!("{}/{len}", masked(ip, len)));
    }
    gcr_engine::registry::login_host(value).map_err(|e| e.to_string())
}

/// `a.b.c.d/n` or `x::/n` with the prefix in range for its family.
fn cidr(s: &str) -> Option<(IpAddr, u8)> {
    let (a, p) = s.split_once('/')?;
    let ip: IpAddr = a.parse().ok()?;
    let len: u8 = p.parse().ok()?;
    let max = if ip.is_ipv4() { 32 } else { 128 };
    (len <= max).then_some((ip, len))
}

fn masked(ip: IpAddr, len: u8) -> IpAddr {
    match ip {
        IpAddr::V4(a) => {
            let m = u32::MAX.checked_shl(32 - len as u32).unwrap_or(0);
            IpAddr::V4((u32::from(a) & m).into())
        }
        IpAddr::V6(a) => {
            let m = u128::MAX.checked_shl(128 - len as u32).unwrap_or(0);
            IpAddr::V6((u128::from(a) & m).into())
        }
    }
}

fn inside(ip: IpAddr, (net, len): (IpAddr, u8)) -> bool {
    let ip = match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    };
    ip.is_ipv4() == net.is_ipv4() && masked(ip, len) == masked(net, len)
}

/// The host of registry `registry` (`HOST`, `HOST:PORT`, `[V6]:PORT`), without its port.
fn host_of(registry: &str) -> &str {
    if let Some(rest) = registry.strip_prefix('[') {
        return rest.split(']').next().unwrap_or(rest);
    }
    match registry.rsplit_once(':') {
        Some((h, port)) if !h.contains(':') && port.bytes().all(|b| b.is_ascii_digit()) => h,
        _ => registry,
    }
}

/// Whether `registry` is reached over plain http under `entries` (values [`parse`] made).
/// A host name is resolved only when some entry is a network.
pub fn is_insecure(entries: &[String], registry: &str) -> bool {
    if entries.iter().any(|h| h == registry) {
        return true;
    }
    let nets: Vec<(IpAddr, u8)> = entries.iter().filter_map(|e| cidr(e)).collect();
    if nets.is_empty() {
        return false;
    }
    let host = host_of(registry);
    let ips: Vec<IpAddr> = match host.parse::<IpAddr>() {
        Ok(ip) => vec![ip],
        // Docker Hub is never insecure: no lookup for it.
        Err(_) if registry == "docker.io" => Vec::new(),
        Err(_) => blocking(|| {
            (host, 0)
                .to_socket_addrs()
                .map(|it| it.map(|a| a.ip()).collect())
                .unwrap_or_default()
        }),
    };
    ips.iter().any(|ip| nets.iter().any(|n| inside(*ip, *n)))
}

/// Runs the blocking `f` (a name lookup): on a worker of the service's multi-threaded
/// runtime, that worker's other tasks move to the others meanwhile.
fn blocking<T>(f: impl FnOnce() -> T) -> T {
    match tokio::runtime::Handle::try_current() {
        Ok(h) if h.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread => {
            tokio::task::block_in_place(f)
        }
        _ => f(),
    }
}

/// The networks among `entries` (`RegistryConfig.InsecureRegistryCIDRs`).
pub fn networks(entries: &[String]) -> impl Iterator<Item = &String> {
    entries.iter().filter(|e| cidr(e).is_some())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_and_networks() {
        assert_eq!(parse("10.1.2.3/8").unwrap(), "10.0.0.0/8");
        assert_eq!(parse("fd00:1::5/32").unwrap(), "fd00:1::/32");
        assert_eq!(parse("registry.lan:5000").unwrap(), "registry.lan:5000");
        assert!(parse("10.0.0.0/33").is_err());
        assert!(parse("ten/8").unwrap_err().contains("ADDRESS/PREFIX"));
        let e = vec![
            parse("10.0.0.0/8").unwrap(),
            parse("fd00::/8").unwrap(),
            parse("reg.lan:5000").unwrap(),
        ];
        assert!(is_insecure(&e, "10.9.8.7:5000"));
        assert!(is_insecure(&e, "10.9.8.7"));
        assert!(is_insecure(&e, "[fd12::1]:5000"));
        assert!(is_insecure(&e, "reg.lan:5000"));
        assert!(!is_insecure(&e, "reg.lan:5001"));
        assert!(!is_insecure(&e, "11.0.0.1:5000"));
        assert!(!is_insecure(&e, "[fe80::1]:5000"));
        // A name that resolves into a network (localhost: 127.0.0.1 or ::1).
        let lo = vec![parse("127.0.0.0/8").unwrap(), parse("::1/128").unwrap()];
        assert!(is_insecure(&lo, "localhost:5000"));
        assert!(!is_insecure(&[], "10.9.8.7:5000"));
        assert_eq!(networks(&e).count(), 2);
    }
}
