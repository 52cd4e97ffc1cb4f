//! Network, volume and port commands, and the hidden port proxy and DNS server (`__proxy`).

use crate::filters::Filters;
use clap::Subcommand;
use gcr_engine::network::admin::NetworkInfo;
use gcr_engine::volumes::admin::VolumeInfo;
use gcr_engine::Engine;

use crate::cli::Cmd;
use crate::out::{errln, outln, Report};
use crate::render;
use crate::template::Output;
use crate::Failure;

#[derive(Subcommand, Debug)]
pub enum NetworkCmd {
    /// Create a bridge network.
    Create {
        /// Subnet in CIDR form, e.g. 10.90.0.0/24 (default: a free /16 in 10.98-10.127 or
        /// 10.160-10.199); with --ipv6 also an IPv6 one, e.g. fd00:90::/64 (default: a free
        /// unique local /64). Once per address family.
        #[arg(long)]
        subnet: Vec<String>,
        /// A label, KEY=VALUE (repeatable).
        #[arg(long, value_name = "KEY=VALUE")]
        label: Vec<String>,
        /// Restrict external access: nothing is forwarded into or out of the network, and
        /// its containers get no default route through it (the host still reaches them).
        #[arg(long)]
        internal: bool,
        /// The bridge's address, the containers' gateway (inside the --subnet of its
        /// address family; default: its first address). Once per address family.
        #[arg(long, value_name = "IP")]
        gateway: Vec<String>,
        /// Lease container addresses from this IPv4 range only (inside --subnet; --ip may
        /// still pick any address of the subnet).
        #[arg(long = "ip-range", value_name = "CIDR")]
        ip_range: Vec<String>,
        /// Enable IPv6: containers get an IPv6 address and route besides their IPv4 ones.
        #[arg(long)]
        ipv6: bool,
        /// A driver option, KEY=VALUE (repeatable). bridge: com.docker.network.bridge.name,
        /// com.docker.network.driver.mtu, com.docker.network.bridge.enable_icc,
        /// com.docker.network.bridge.enable_ip_masquerade,
        /// com.docker.network.bridge.host_binding_ipv4; macvlan: parent=IF,
        /// macvlan_mode=bridge|private|vepa|passthru; ipvlan: parent=IF, ipvlan_mode=l2|l3.
        #[arg(short = 'o', long = "opt", value_name = "KEY=VALUE")]
        opt: Vec<String>,
        /// bridge (gcr's own bridge, NAT, published ports), or macvlan / ipvlan: containers
        /// as hosts of the parent interface's network (-o parent=IF).
        #[arg(short = 'd', long, default_value = "bridge")]
        driver: String,
        name: String,
    },
    /// Connect a container that is not running to a network (it has one network: a container
    /// on another one is disconnected from it first).
    Connect {
        /// Another name the container answers to on the network (repeatable).
        #[arg(long, value_name = "NAME")]
        alias: Vec<String>,
        /// The IPv4 address to lease (inside the network's subnet).
        #[arg(long, value_name = "IPV4")]
        ip: Option<String>,
        /// The IPv6 address to lease (inside a dual-stack network's IPv6 subnet).
        #[arg(long, value_name = "IPV6")]
        ip6: Option<String>,
        network: String,
        container: String,
    },
    /// Remove the user networks no container uses.
    Prune {
        /// Accepted for Docker's sake (gcr asks nothing).
        #[arg(short, long)]
        force: bool,
        /// Only what matches: until=DURATION|TIMESTAMP, label=KEY[=VALUE],
        /// label!=KEY[=VALUE] (repeatable; all must hold).
        #[arg(long, value_name = "FILTER")]
        filter: Vec<String>,
    },
    /// Disconnect a container from its network (it keeps loopback only).
    Disconnect {
        /// Accepted for Docker's sake (the disconnect is always done).
        #[arg(short, long)]
        force: bool,
        network: String,
        container: String,
    },
    /// List networks.
    #[command(alias = "list")]
    Ls {
        #[arg(short, long)]
        quiet: bool,
        /// Only matching networks: name=, id=, driver=, type=builtin|custom (repeatable).
        #[arg(short, long = "filter", value_name = "KEY=VALUE")]
        filter: Vec<String>,
        /// table, json, or a Go template (`{{.Name}}`, `table {{.Name}}\t{{.Driver}}`).
        #[arg(long, default_value = "table")]
        format: String,
    },
    /// Remove networks no container uses.
    #[command(alias = "remove")]
    Rm {
        #[arg(required = true)]
        names: Vec<String>,
    },
    /// Show networks in detail (JSON).
    Inspect {
        #[arg(required = true)]
        names: Vec<String>,
        /// A Go template applied to each (`{{.Name}}`, `{{json .Containers}}`).
        #[arg(short, long)]
        format: Option<String>,
    },
    /// Take this store's bridges, firewall rules and run-dir tmpfs off the host (they return on next use).
    #[command(name = "__teardown", hide = true)]
    Teardown,
}

#[derive(Subcommand, Debug)]
pub enum VolumeCmd {
    /// Create a volume (a random name when none is given).
    Create {
        /// A label, KEY=VALUE (repeatable).
        #[arg(long, value_name = "KEY=VALUE")]
        label: Vec<String>,
        name: Option<String>,
    },
    /// List volumes.
    #[command(alias = "list")]
    Ls {
        #[arg(short, long)]
        quiet: bool,
        /// Only matching volumes: name=, label=, dangling=true|false, driver=local.
        #[arg(short, long = "filter", value_name = "KEY=VALUE")]
        filter: Vec<String>,
        /// table, json, or a Go template (`{{.Name}}`, `table {{.Name}}\t{{.Driver}}`).
        #[arg(long, default_value = "table")]
        format: String,
    },
    /// Remove volumes no container uses.
    #[command(alias = "remove")]
    Rm {
        #[arg(required = true)]
        names: Vec<String>,
    },
    /// Show volumes in detail (JSON).
    Inspect {
        #[arg(required = true)]
        names: Vec<String>,
        /// A Go template applied to each (`{{.Name}}`, `{{json .Containers}}`).
        #[arg(short, long)]
        format: Option<String>,
    },
    /// Remove unused anonymous volumes (with --all, every unused volume).
    Prune {
        #[arg(short, long)]
        all: bool,
        #[arg(short, long)]
        force: bool,
        /// Only what matches: label=KEY[=VALUE], label!=KEY[=VALUE] (repeatable).
        #[arg(long, value_name = "FILTER")]
        filter: Vec<String>,
    },
}

fn json<T: serde::Serialize>(v: &T) -> Result<(), Failure> {
    let s = serde_json::to_string_pretty(v).map_err(|e| Failure::new(1, e.to_string()))?;
    outln!("{s}")
}

/// Runs `f` for each name; prints errors and returns 1 if any failed.
fn each(names: &[String], mut f: impl FnMut(&str) -> Result<(), gcr_engine::EngineError>) -> i32 {
    let mut code = 0;
    for n in names {
        if let Err(e) = f(n) {
            errln!("Error: {e}");
            code = 1;
        }
    }
    code
}

/// `ls`: one id per line (`-q`), JSON, or a table.
/// A network's or volume's JSON with Docker's field names added (`Name` beside `name`,
/// `ID` beside `id`), so Docker's templates find them.
fn docker_keys<T: serde::Serialize>(x: &T) -> serde_json::Value {
    let mut v = serde_json::to_value(x).unwrap_or_default();
    if let Some(o) = v.as_object_mut() {
        let extra: Vec<(String, serde_json::Value)> = o
            .iter()
            .map(|(k, v)| {
                let up = match k.as_str() {
                    "id" => "ID".to_string(),
                    k => {
                        let mut c = k.chars();
                        c.next()
                            .map(|f| f.to_uppercase().chain(c).collect())
                            .unwrap_or_default()
                    }
                };
                (up, v.clone())
            })
            .collect();
        o.extend(extra);
    }
    v
}

fn listing<T: serde::Serialize>(
    list: &[T],
    quiet: bool,
    format: &str,
    id: impl Fn(&T) -> &str,
    table: impl Fn(&[T]) -> Result<(), Failure>,
) -> Result<i32, Failure> {
    if quiet {
        for x in list {
            outln!("{}", id(x))?;
        }
        return Ok(0);
    }
    match Output::parse(format)? {
        Output::Json => json(&list)?,
        Output::Table => table(list)?,
        Output::Template(t) => {
            let items: Vec<serde_json::Value> = list.iter().map(docker_keys).collect();
            t.print(&items)?;
        }
    }
    Ok(0)
}

/// `rm`: removes each name and prints it; 1 when any failed.
fn remove_each<R>(
    names: &[String],
    mut rm: impl FnMut(&str) -> Result<R, gcr_engine::EngineError>,
) -> Result<i32, Failure> {
    let mut report = Report::default();
    let code = each(names, |n| {
        rm(n)?;
        report.line(format_args!("{n}"));
        Ok(())
    });
    report.finish(code)
}

/// `inspect`: a JSON array of what each name gives; 1 when any failed.
fn inspect_each<T: serde::Serialize>(
    names: &[String],
    format: Option<&str>,
    mut get: impl FnMut(&str) -> Result<T, gcr_engine::EngineError>,
) -> Result<i32, Failure> {
    let tmpl = match format.map(Output::parse).transpose()? {
        Some(Output::Template(t)) => Some(t),
        _ => None,
    };
    let mut out = Vec::new();
    let code = each(names, |n| {
        out.push(get(n)?);
        Ok(())
    });
    match tmpl {
        Some(t) => {
            for x in &out {
                outln!("{}", t.render(&docker_keys(x))?)?;
            }
        }
        None => json(&out)?,
    }
    Ok(code)
}

pub fn dispatch(e: &Engine, c: Cmd) -> Result<i32, Failure> {
    match c {
        Cmd::Network { cmd } => network(e, cmd),
        Cmd::Volume { cmd } => volume(e, cmd),
        Cmd::Port {
            container,
            private_port,
        } => {
            let ports = e.ports(&container)?;
            let Some(want) = private_port else {
                for (c, h) in ports {
                    outln!("{c} -> {h}")?;
                }
                return Ok(0);
            };
            let want = if want.contains('/') {
                want
            } else {
                format!("{want}/tcp")
            };
            let hosts: Vec<String> = ports
                .into_iter()
                .filter(|(c, _)| *c == want)
                .map(|(_, h)| h)
                .collect();
            if hosts.is_empty() {
                return Err(Failure::new(
                    1,
                    format!("no public port '{want}' published for {container}"),
                ));
            }
            for h in hosts {
                outln!("{h}")?;
            }
            Ok(0)
        }
        _ => Err(Failure::new(2, "not a network or volume command".into())),
    }
}

/// `--label KEY=VALUE` flags as a map (`KEY` alone: an empty value, as Docker).
fn labels(flags: &[String]) -> Result<std::collections::BTreeMap<String, String>, Failure> {
    key_values("--label", flags)
}

/// `FLAG KEY=VALUE` flags as a map (`KEY` alone: an empty value, as Docker).
fn key_values(
    flag: &str,
    flags: &[String],
) -> Result<std::collections::BTreeMap<String, String>, Failure> {
    flags
        .iter()
        .map(|l| {
            let (k, v) = l.split_once('=').unwrap_or((l, ""));
            if k.is_empty() {
                return Err(Failure::new(
                    2,
                    format!("invalid {flag} '{l}': use KEY=VALUE"),
                ));
            }
            Ok((k.to_string(), v.to_string()))
        })
        .collect()
}

fn pairs(m: &std::collections::BTreeMap<String, String>) -> Vec<(String, String)> {
    m.iter().map(|(k, v)| (k.clone(), v.clone())).collect()
}

fn network(e: &Engine, cmd: NetworkCmd) -> Result<i32, Failure> {
    match cmd {
        NetworkCmd::Create {
            subnet,
            label,
            internal,
            gateway,
            ip_range,
            ipv6,
            opt,
            driver,
            name,
        } => {
            let mut create = gcr_engine::network::admin::NetworkCreate {
                labels: labels(&label)?,
                internal,
                options: key_values("--opt", &opt)?,
                ipv6,
                driver: Some(driver),
                ..Default::default()
            };
            for s in &subnet {
                create.add_ipam(&name, Some(s), None, None)?;
            }
            for g in &gateway {
                create.add_ipam(&name, None, Some(g), None)?;
            }
            for r in &ip_range {
                create.add_ipam(&name, None, None, Some(r))?;
            }
            let n = e.network_create_with(&name, &create)?;
            outln!("{}", n.id)?;
            Ok(0)
        }
        NetworkCmd::Connect {
            alias,
            ip,
            ip6,
            network,
            container,
        } => {
            let req = gcr_engine::network::ConnectRequest {
                aliases: alias,
                ip,
                ip6,
            };
            e.network_connect(&network, &container, &req)?;
            Ok(0)
        }
        NetworkCmd::Disconnect {
            force: _,
            network,
            container,
        } => {
            e.network_disconnect(&network, &container)?;
            Ok(0)
        }
        NetworkCmd::Ls {
            quiet,
            filter,
            format,
        } => {
            let f = Filters::parse(
                &filter,
                &["name", "id", "driver", "type", "label"],
                "network ls",
            )?;
            let list: Vec<NetworkInfo> = e
                .network_list()?
                .into_iter()
                .filter(|n| {
                    let builtin = ["none", "host", "bridge"].contains(&n.name.as_str());
                    f.network(&n.name, &n.id, &n.driver, builtin, &pairs(&n.labels))
                })
                .collect();
            listing(&list, quiet, &format, |n| short(&n.id), net_table)
        }
        NetworkCmd::Rm { names } => remove_each(&names, |n| e.network_remove(n)),
        NetworkCmd::Prune { force: _, filter } => {
            let f = crate::filters::prune_filter(&filter, "network", crate::parity::UNTIL_LABEL)?;
            let gone = e.network_prune(&f)?;
            if !gone.is_empty() {
                outln!("Deleted Networks:")?;
                for n in &gone {
                    outln!("{n}")?;
                }
            }
            Ok(0)
        }
        NetworkCmd::Inspect { names, format } => {
            inspect_each(&names, format.as_deref(), |n| e.network_inspect(n))
        }
        NetworkCmd::Teardown => {
            e.network_teardown()?;
            e.release_run_dir();
            Ok(0)
        }
    }
}

fn short(id: &str) -> &str {
    &id[..12.min(id.len())]
}

fn net_table(list: &[NetworkInfo]) -> Result<(), Failure> {
    let rows: Vec<Vec<String>> = list
        .iter()
        .map(|n| {
            vec![
                short(&n.id).to_string(),
                n.name.clone(),
                n.driver.clone(),
                if n.subnet6.is_empty() {
                    n.subnet.clone()
                } else {
                    format!("{},{}", n.subnet, n.subnet6)
                },
                n.bridge.clone(),
                n.containers.len().to_string(),
            ]
        })
        .collect();
    render::table_out(
        &[
            "NETWORK ID",
            "NAME",
            "DRIVER",
            "SUBNET",
            "BRIDGE",
            "CONTAINERS",
        ],
        &rows,
    )
}

fn vol_table(list: &[VolumeInfo]) -> Result<(), Failure> {
    let rows: Vec<Vec<String>> = list
        .iter()
        .map(|v| vec![v.driver.clone(), v.name.clone()])
        .collect();
    render::table_out(&["DRIVER", "VOLUME NAME"], &rows)
}

fn volume(e: &Engine, cmd: VolumeCmd) -> Result<i32, Failure> {
    match cmd {
        VolumeCmd::Create { label, name } => {
            let v = e.volume_create_labeled(name.as_deref(), &labels(&label)?)?;
            outln!("{}", v.name)?;
            Ok(0)
        }
        VolumeCmd::Ls {
            quiet,
            filter,
            format,
        } => {
            let f = Filters::parse(
                &filter,
                &["name", "label", "dangling", "driver"],
                "volume ls",
            )?;
            let list: Vec<_> = e
                .volume_list()?
                .into_iter()
                .filter(|v| f.volume(&v.name, &pairs(&v.labels), !v.containers.is_empty()))
                .collect();
            listing(&list, quiet, &format, |v| &v.name, vol_table)
        }
        VolumeCmd::Rm { names } => remove_each(&names, |n| e.volume_remove(n)),
        VolumeCmd::Inspect { names, format } => {
            inspect_each(&names, format.as_deref(), |n| e.volume_inspect(n))
        }
        VolumeCmd::Prune {
            all,
            force: _,
            filter,
        } => {
            let f = crate::filters::prune_filter(&filter, "volume", &["label", "label!"])?;
            let gone = e.volume_prune_with(all, &f)?;
            for n in &gone {
                outln!("{n}")?;
            }
            outln!("Total removed: {}", gone.len())?;
            Ok(0)
        }
    }
}

/// `gcr __proxy [--root ROOT] ID HOLDER ...` (see [`proxy`]), dispatched before the CLI
/// is parsed: it runs at every start that publishes ports or has a DNS server, on the
/// start's path. `--root` only names the store in the process list.
pub fn proxy_main(args: &[String]) -> i32 {
    let args = match args {
        [flag, _root, rest @ ..] if flag == "--root" => rest,
        all => all,
    };
    match proxy(args) {
        Ok(c) => c,
        Err(f) => {
            eprintln!("Error: {}", f.message);
            f.code
        }
    }
}

/// `ID HOLDER [FD:PROTO:IP:PORT...] [dns-udp=FD dns-tcp=FD dns-hosts=PATH
/// [dns-up=ADDR:PORT...]]`: detaches, then relays (and serves the embedded DNS server)
/// until the holder exits. Prints the daemon's pid for the engine.
fn proxy(args: &[String]) -> Result<i32, Failure> {
    let bad = |m: &str| Failure::new(2, format!("__proxy: {m}"));
    let [_id, holder, maps @ ..] = args else {
        return Err(bad("usage: ID HOLDER_PID FD:PROTO:IP:PORT... [dns-udp=FD dns-tcp=FD dns-hosts=PATH dns-up=ADDR...]"));
    };
    let holder: i32 = holder.parse().map_err(|_| bad("bad holder pid"))?;
    let inherited = |fd: &str| -> Result<std::os::fd::OwnedFd, Failure> {
        let fd: i32 = fd.parse().map_err(|_| bad("bad fd"))?;
        if fd < 3 {
            return Err(bad("bad fd"));
        }
        // SAFETY: the engine passed us this descriptor number, inherited for our sole use;
        // each argument names another one and is taken once.
        Ok(unsafe { <std::os::fd::OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(fd) })
    };
    let mut relays = Vec::new();
    let (mut udp, mut tcp, mut hosts, mut ups) = (None, None, None, Vec::new());
    for m in maps {
        if let Some((key, value)) = m.split_once('=') {
            match key {
                "dns-udp" if udp.is_none() => udp = Some(inherited(value)?),
                "dns-tcp" if tcp.is_none() => tcp = Some(inherited(value)?),
                "dns-hosts" => hosts = Some(std::path::PathBuf::from(value)),
                "dns-up" => ups.push(value.parse().map_err(|_| bad("bad upstream server"))?),
                _ => return Err(bad("bad dns argument")),
            }
            continue;
        }
        let f: Vec<&str> = m.split(':').collect();
        let [fd, proto, ip, port] = f.as_slice() else {
            return Err(bad("bad mapping"));
        };
        let proto = match *proto {
            "tcp" => gcr_engine::proxy::Proto::Tcp,
            "udp" => gcr_engine::proxy::Proto::Udp,
            _ => return Err(bad("bad protocol")),
        };
        let target = std::net::SocketAddrV4::new(
            ip.parse().map_err(|_| bad("bad address"))?,
            port.parse().map_err(|_| bad("bad port"))?,
        );
        relays.push(gcr_engine::proxy::Relay {
            listener: inherited(fd)?,
            proto,
            target,
        });
    }
    let dns = match (udp, tcp, hosts) {
        (Some(udp), Some(tcp), Some(hosts)) => Some(gcr_engine::proxy::Resolver {
            udp,
            tcp,
            hosts,
            upstreams: ups,
        }),
        (None, None, None) => None,
        _ => return Err(bad("the dns server needs dns-udp, dns-tcp and dns-hosts")),
    };
    gcr_engine::proxy::daemonize().map_err(|e| Failure::new(1, e.to_string()))?;
    gcr_engine::proxy::serve(relays, dns, holder);
    // The relays are threads of this process: leave at once, without waiting for them.
    std::process::exit(0)
}
