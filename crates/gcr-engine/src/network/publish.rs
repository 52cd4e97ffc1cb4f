//! Published ports: `-p`/`-P` checked at create time, host sockets bound at start (so a
//! taken port fails the start with a clear message), and the per-container proxy process
//! (`gcr __proxy`) that relays them to the container's address. A port given without an
//! address is bound on both families, as Docker's: IPv4's 0.0.0.0 and, where the host has
//! IPv6, `[::]` (IPv6 only) on the same port; the proxy relays IPv6 clients to the
//! container's IPv4 address. Also the texts `gcr port` and `ps` show.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV6, TcpListener, UdpSocket};
use std::os::fd::{AsRawFd, OwnedFd};
use std::process::{Command, Stdio};

use gcr_net::{PortSpec, Proto};

use super::db;
use super::setup::net_err;
use crate::container::config::RunOptions;
use crate::container::procfs;
use crate::container::record::Record;
use crate::{Engine, EngineError};

/// Docker's `HostConfig.PortBindings` of `-p` values: `{"80/tcp": [{"HostIp": "127.0.0.1",
/// "HostPort": "8080"}]}`, an address or port not given as `""` (a value that does not
/// parse, which create refuses, is left out).
pub(crate) fn bindings(publish: &[String]) -> serde_json::Value {
    let specs = publish
        .iter()
        .filter_map(|p| PortSpec::parse_all(p).ok())
        .flatten();
    port_map(specs, |s| {
        let given = |yes: bool, v: String| if yes { v } else { String::new() };
        (
            s.host_ip.map(|ip| ip.to_string()).unwrap_or_default(),
            given(s.host_port != 0, s.host_port.to_string()),
        )
    })
}

/// Docker's map of ports to their bindings, `{"80/tcp": [{"HostIp", "HostPort"}]}`, each
/// binding's address and port as `show` writes them (`inspect`'s `PortBindings` and
/// `NetworkSettings.Ports`).
pub(crate) fn port_map(
    specs: impl IntoIterator<Item = PortSpec>,
    show: impl Fn(&PortSpec) -> (String, String),
) -> serde_json::Value {
    let mut out = serde_json::Map::new();
    for s in specs {
        let (ip, port) = show(&s);
        let key = format!("{}/{}", s.container_port, s.proto.as_str());
        let list = out
            .entry(key)
            .or_insert_with(|| serde_json::Value::Array(Vec::new()));
        if let serde_json::Value::Array(l) = list {
            l.push(serde_json::json!({ "HostIp": ip, "HostPort": port }));
        }
    }
    serde_json::Value::Object(out)
}

/// `--expose` values (`80`, `53/udp`, `8000-8002/tcp`) as `PORT/PROTO` keys, one per port.
pub(crate) fn expose_keys(given: &[String]) -> Result<Vec<String>, EngineError> {
    let mut out: Vec<String> = Vec::new();
    for e in given {
        if e.contains(':') {
            return Err(EngineError::Usage(format!(
                "invalid --expose '{e}': give container ports only (PORT[-PORT][/tcp|udp]); publish with -p"
            )));
        }
        for s in PortSpec::parse_all(e).map_err(net_err)? {
            let key = format!("{}/{}", s.container_port, s.proto.as_str());
            if !out.contains(&key) {
                out.push(key);
            }
        }
    }
    Ok(out)
}

/// The ports to publish: `-p` values, then (with `-P`) each exposed port (the image's and
/// `--expose`'s) not already given.
pub(crate) fn wanted(
    opts: &RunOptions,
    image_config: &serde_json::Value,
) -> Result<Vec<PortSpec>, EngineError> {
    let mut out: Vec<PortSpec> = Vec::new();
    for p in &opts.publish {
        out.extend(PortSpec::parse_all(p).map_err(net_err)?);
    }
    if opts.publish_all {
        let image = image_config
            .pointer("/config/ExposedPorts")
            .and_then(|v| v.as_object())
            .into_iter()
            .flat_map(|m| m.keys());
        for key in image.chain(&opts.expose) {
            let s = PortSpec::exposed(key).map_err(net_err)?;
            if !out
                .iter()
                .any(|o| o.container_port == s.container_port && o.proto == s.proto)
            {
                out.push(s);
            }
        }
    }
    for (i, a) in out.iter().enumerate() {
        if a.host_port == 0 {
            continue;
        }
        if out[..i]
            .iter()
            .any(|b| b.host_port == a.host_port && b.proto == a.proto && b.host_ip == a.host_ip)
        {
            return Err(EngineError::Usage(format!(
                "host port {}/{} is published twice; give each -p its own host port",
                a.host_port,
                a.proto.as_str()
            )));
        }
    }
    Ok(out)
}

/// Binds the host side of each port; returns the actual specs (random ports resolved, an
/// address given to each: a port without one is bound on 0.0.0.0 and, best effort, on
/// `[::]` with the same port).
pub(crate) fn bind_all(specs: &[PortSpec]) -> Result<Vec<(PortSpec, OwnedFd)>, EngineError> {
    let mut out = Vec::with_capacity(specs.len() * 2);
    for s in specs {
        let ip = s.host_ip.unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED));
        let (fd, port) = bind_one(s, ip, s.host_port)?;
        let actual = PortSpec {
            host_ip: Some(ip),
            host_port: port,
            ..*s
        };
        out.push((actual, fd));
        if s.host_ip.is_none() {
            // A host without IPv6, or an IPv6 listener of someone else on the port: the
            // IPv4 side stands alone (Docker's dual binding is best effort too).
            let any6 = IpAddr::V6(Ipv6Addr::UNSPECIFIED);
            if let Ok((fd, _)) = bind_one(s, any6, port) {
                let v6 = PortSpec {
                    host_ip: Some(any6),
                    ..actual
                };
                out.push((v6, fd));
            }
        }
    }
    Ok(out)
}

/// Binds `ip:port` for `s`'s protocol (an IPv6 socket takes IPv6 only); the socket and its
/// port.
fn bind_one(s: &PortSpec, ip: IpAddr, port: u16) -> Result<(OwnedFd, u16), EngineError> {
    let addr = SocketAddr::new(ip, port);
    let shown = gcr_net::ports::host_port_text(Some(ip), port);
    let taken = |e: std::io::Error| {
        if e.kind() == std::io::ErrorKind::AddrInUse {
            EngineError::Conflict(format!(
                "host port {shown}/{} is already in use; choose another host port (-p OTHER:{}) or stop what holds it",
                s.proto.as_str(),
                s.container_port
            ))
        } else {
            EngineError::Io(format!("binding host port {shown}/{}", s.proto.as_str()), e)
        }
    };
    let fd: OwnedFd = match (ip, s.proto) {
        (IpAddr::V4(_), Proto::Tcp) => TcpListener::bind(addr).map_err(taken)?.into(),
        (IpAddr::V4(_), Proto::Udp) => UdpSocket::bind(addr).map_err(taken)?.into(),
        (IpAddr::V6(a), proto) => {
            bind_v6(SocketAddrV6::new(a, port, 0, 0), proto).map_err(|e| taken(e.into()))?
        }
    };
    let local = match s.proto {
        Proto::Tcp => TcpListener::from(fd.try_clone().map_err(taken)?).local_addr(),
        Proto::Udp => UdpSocket::from(fd.try_clone().map_err(taken)?).local_addr(),
    };
    Ok((fd, local.map(|a| a.port()).unwrap_or(port)))
}

/// An IPv6-only socket bound at `addr` (listening, for TCP).
fn bind_v6(addr: SocketAddrV6, proto: Proto) -> rustix::io::Result<OwnedFd> {
    use rustix::net::{sockopt, AddressFamily, SocketFlags, SocketType};
    let kind = match proto {
        Proto::Tcp => SocketType::STREAM,
        Proto::Udp => SocketType::DGRAM,
    };
    let fd = rustix::net::socket_with(AddressFamily::INET6, kind, SocketFlags::CLOEXEC, None)?;
    sockopt::set_ipv6_v6only(&fd, true)?;
    if proto == Proto::Tcp {
        // As std's TcpListener::bind: a port in TIME_WAIT can be bound again.
        sockopt::set_socket_reuseaddr(&fd, true)?;
    }
    rustix::net::bind(&fd, &addr)?;
    if proto == Proto::Tcp {
        rustix::net::listen(&fd, 128)?;
    }
    Ok(fd)
}

fn join(specs: &[PortSpec]) -> String {
    specs
        .iter()
        .map(|s| s.to_string())
        .collect::<Vec<_>>()
        .join(";")
}

/// Parses a stored `;`-separated port list.
pub(crate) fn split(s: &str) -> Vec<PortSpec> {
    s.split(';')
        .filter(|p| !p.is_empty())
        .filter_map(|p| PortSpec::parse(p).ok())
        .collect()
}

impl Engine {
    /// Starts the proxy for `bound` (relaying to `ip`) and `dns` (the container's embedded
    /// DNS server), records ports and pid.
    pub(crate) fn start_proxy(
        &self,
        id: &str,
        ip: Ipv4Addr,
        bound: Vec<(PortSpec, OwnedFd)>,
        dns: Option<gcr_net::dns::Resolver>,
    ) -> Result<(), EngineError> {
        let mut args = vec![
            "__proxy".to_string(),
            "--root".into(),
            self.root().to_string_lossy().into_owned(),
            id.to_string(),
            std::process::id().to_string(),
        ];
        let mut inherit = Vec::new();
        let dups = (|| {
            for (s, fd) in &bound {
                let d = inheritable(fd, &mut inherit)?;
                args.push(format!(
                    "{d}:{}:{}:{}",
                    s.proto.as_str(),
                    ip,
                    s.container_port
                ));
            }
            if let Some(r) = &dns {
                args.push(format!("dns-udp={}", inheritable(&r.udp, &mut inherit)?));
                args.push(format!("dns-tcp={}", inheritable(&r.tcp, &mut inherit)?));
                args.push(format!("dns-hosts={}", r.hosts.display()));
                args.extend(r.upstreams.iter().map(|u| format!("dns-up={u}")));
            }
            Ok::<_, EngineError>(())
        })();
        let out = dups.and_then(|()| {
            Command::new(self_exe())
                .args(&args)
                .stdin(Stdio::null())
                .stderr(Stdio::null())
                .output()
                .map_err(|e| EngineError::Io("starting the port proxy".into(), e))
        });
        for d in inherit {
            // SAFETY: closing the duplicates made by `inheritable`, owned by nobody else.
            unsafe { libc::close(d) };
        }
        let out = out?;
        let pid: i32 = String::from_utf8_lossy(&out.stdout)
            .trim()
            .parse()
            .unwrap_or(0);
        if pid <= 0 {
            return Err(EngineError::Internal(format!(
                "the port proxy of container {id} did not start; check that {} runs",
                self_exe()
            )));
        }
        let specs: Vec<PortSpec> = bound.iter().map(|(s, _)| *s).collect();
        db::set_ports(self.store()?.conn(), id, &join(&specs), pid)
    }

    /// `gcr port`: `(containerPort/proto, hostIp:hostPort)` pairs of a running container.
    pub fn ports(&self, key: &str) -> Result<Vec<(String, String)>, EngineError> {
        let r = self.container(key)?;
        Ok(self.port_pairs(&r))
    }

    fn port_pairs(&self, r: &Record) -> Vec<(String, String)> {
        self.store()
            .ok()
            .and_then(|s| db::endpoint(s.conn(), &r.id))
            .map_or_else(Vec::new, |ep| pairs(&ep.ports))
    }

    /// The host ports container `r` has bound now (none when it is not running).
    pub(crate) fn published_ports(&self, r: &Record) -> Vec<PortSpec> {
        let Ok(store) = self.store() else {
            return Vec::new();
        };
        db::endpoint(store.conn(), &r.id)
            .map(|ep| split(&ep.ports))
            .unwrap_or_default()
    }

    /// The PORTS column of `ps` for every container with an endpoint, in one query:
    /// `0.0.0.0:8080->80/tcp, ...` by container id (none when not running).
    pub(crate) fn ports_texts(&self) -> std::collections::HashMap<String, String> {
        let Ok(store) = self.store() else {
            return Default::default();
        };
        db::all_endpoints(store.conn())
            .into_iter()
            .filter(|ep| !ep.ports.is_empty())
            .map(|ep| {
                let text = pairs(&ep.ports)
                    .into_iter()
                    .map(|(c, h)| format!("{h}->{c}"))
                    .collect::<Vec<_>>()
                    .join(", ");
                (ep.container, text)
            })
            .collect()
    }
}

/// `(containerPort/proto, hostIp:hostPort)` pairs of an endpoint's published ports.
fn pairs(ports: &str) -> Vec<(String, String)> {
    split(ports)
        .into_iter()
        .map(|s| {
            (
                format!("{}/{}", s.container_port, s.proto.as_str()),
                gcr_net::ports::host_port_text(s.host_ip, s.host_port),
            )
        })
        .collect()
}

/// Kills container `id`'s proxy if `pid` still is that proxy.
pub(crate) fn kill_proxy(pid: i32, id: &str) {
    if pid <= 0 {
        return;
    }
    let cmd = procfs::cmdline(pid);
    if cmd.contains("__proxy") && cmd.contains(id) {
        procfs::signal(pid, libc::SIGKILL);
    }
}

/// A duplicate of `fd` without close-on-exec, which the proxy inherits under its number
/// (recorded in `made`, for the caller to close).
fn inheritable(fd: &OwnedFd, made: &mut Vec<i32>) -> Result<i32, EngineError> {
    // SAFETY: dup of a descriptor we own; the result is checked.
    let d = unsafe { libc::dup(fd.as_raw_fd()) };
    if d < 0 {
        return Err(EngineError::Io(
            "duplicating a socket for the port proxy".into(),
            std::io::Error::last_os_error(),
        ));
    }
    made.push(d);
    Ok(d)
}

/// The gcr binary (the proxy is `gcr __proxy`).
fn self_exe() -> String {
    std::env::var("GCR_BIN").unwrap_or_else(|_| "/proc/self/exe".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn publish_all_adds_exposed_ports_not_given() {
        let opts = RunOptions {
            publish: vec!["127.0.0.1:8080:80".into()],
            publish_all: true,
            ..Default::default()
        };
        let cfg = serde_json::json!({"config": {"ExposedPorts": {"80/tcp": {}, "53/udp": {}}}});
        let w = wanted(&opts, &cfg).unwrap();
        assert_eq!(w.len(), 2);
        assert_eq!((w[0].host_port, w[0].container_port), (8080, 80));
        assert_eq!(
            (w[1].host_port, w[1].container_port, w[1].proto),
            (0, 53, Proto::Udp)
        );
        let twice = RunOptions {
            publish: vec!["8080:80".into(), "8080:81".into()],
            ..Default::default()
        };
        assert!(wanted(&twice, &cfg).is_err());
        assert_eq!(split(&join(&w)), w);
    }
}
