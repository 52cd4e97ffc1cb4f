//! Read-only views of containers: `ps` rows, `inspect` documents, `top`, `stats`, and
//! `exec` into a running container.

use serde_json::{json, Value};

use super::record::{self, Record, State};
use crate::logs::rfc3339_nanos;
use crate::{Engine, EngineError};

/// One `ps` row.
#[derive(Debug, Clone, serde::Serialize)]
pub struct PsRow {
    #[serde(rename = "ID")]
    pub id: String,
    #[serde(rename = "Image")]
    pub image: String,
    #[serde(rename = "Command")]
    pub command: String,
    #[serde(rename = "CreatedAt")]
    pub created_at: String,
    #[serde(rename = "RunningFor")]
    pub running_for: String,
    #[serde(rename = "Status")]
    pub status: String,
    #[serde(rename = "State")]
    pub state: String,
    #[serde(rename = "Names")]
    pub names: String,
    #[serde(rename = "Ports")]
    pub ports: String,
    /// The container's DNA (see `dna.rs`), filled by [`Engine::ps_with_dna`].
    #[serde(rename = "Dna", skip_serializing_if = "Option::is_none")]
    pub dna: Option<String>,
    /// `0B (virtual 4.3MB)`, filled by `ps --size`.
    #[serde(rename = "Size", skip_serializing_if = "Option::is_none")]
    pub size: Option<String>,
}

fn now() -> i64 {
    record::now_ns() / 1_000_000_000
}

fn rfc3339(secs: i64) -> String {
    let s = rfc3339_nanos(secs * 1_000_000_000);
    format!("{}Z", &s[..19])
}

/// Docker's status column: `Up 3 seconds`, `Exited (0) 2 minutes ago`, `Created`.
pub fn status_text(r: &Record) -> String {
    let base =
        gcr_core::lifecycle::status_text(r.state, r.exit_code, r.started_at, r.finished_at, now());
    match (&r.extra.health, r.state) {
        (Some(h), State::Running) if h.status == "starting" => format!("{base} (health: starting)"),
        (Some(h), State::Running) => format!("{base} ({})", h.status),
        _ => base,
    }
}

impl Engine {
    /// `Config.ExposedPorts`: the image's, `--expose`'s and the published container ports,
    /// as Docker's `{"80/tcp": {}}`.
    fn exposed_ports_view(&self, r: &Record) -> Value {
        let m: serde_json::Map<String, Value> = super::filter::image_exposed(self, &r.image_id)
            .into_iter()
            .chain(super::filter::own_exposed(r))
            .map(|(port, proto)| (format!("{port}/{}", proto.as_str()), json!({})))
            .collect();
        Value::Object(m)
    }

    /// The containers `ps [-a]` lists, newest first, states reconciled: every one, or
    /// (`all` false) the running, paused and stopping ones.
    pub fn containers(&self, all: bool) -> Result<Vec<Record>, EngineError> {
        let records = record::list(self.store()?.conn())?;
        let mut out = Vec::with_capacity(records.len());
        let ids: std::collections::HashSet<&str> = records.iter().map(|r| r.id.as_str()).collect();
        if super::orphans::unnamed_dirs(self.root(), &ids) {
            // A killed run's directory: the housekeeper sweeps it (or lingers until it can).
            self.wake_reaper();
        }
        for r in records {
            let r = match self.reconcile(r) {
                Ok(r) => r,
                Err(EngineError::NotFound(_)) => continue,
                Err(e) => return Err(e),
            };
            let live = matches!(r.state, State::Running | State::Paused | State::Stopping);
            if all || live {
                out.push(r);
            }
        }
        Ok(out)
    }

    /// `gcr ps [-a]`: [`Engine::containers`] with each one's table row.
    pub fn ps(&self, all: bool) -> Result<Vec<(Record, PsRow)>, EngineError> {
        let records = self.containers(all)?;
        let mut out = Vec::with_capacity(records.len());
        let mut ports = self.ports_texts();
        for r in records {
            let mut command = r.config.resolved.args.join(" ");
            if command.len() > 20 {
                let mut cut = 19;
                while !command.is_char_boundary(cut) {
                    cut -= 1;
                }
                command = format!("{}…", &command[..cut]);
            }
            let row = PsRow {
                id: r.id[..12].to_string(),
                image: r.image_ref.clone(),
                command: format!("\"{command}\""),
                created_at: rfc3339(r.created_at),
                running_for: gcr_core::lifecycle::humanize_ago(now() - r.created_at),
                status: status_text(&r),
                state: r.state.to_string(),
                names: r.name.clone(),
                ports: ports.remove(&r.id).unwrap_or_default(),
                dna: None,
                size: None,
            };
            out.push((r, row));
        }
        Ok(out)
    }

    /// `gcr ps --format json`: [`Engine::ps`] with each row's DNA (signers verified once
    /// per image manifest). A container whose DNA cannot be computed (its image was
    /// removed) has none.
    pub fn ps_with_dna(&self, all: bool) -> Result<Vec<(Record, PsRow)>, EngineError> {
        let mut rows = self.ps(all)?;
        let mut cache = super::dna::DnaCache::default();
        for (r, row) in &mut rows {
            row.dna = self.dna_of(r, &mut cache).ok().map(|d| d.dna);
        }
        Ok(rows)
    }

    /// `gcr inspect CONTAINER`: a Docker-shaped document.
    pub fn inspect_container(&self, key: &str) -> Result<Value, EngineError> {
        Ok(self.inspect_record(&self.container(key)?))
    }

    /// [`Engine::inspect_container`] of a record in hand.
    pub fn inspect_record(&self, r: &Record) -> Value {
        let c = &r.config;
        let opt_time = |t: Option<i64>| {
            t.map(rfc3339)
                .unwrap_or_else(|| "0001-01-01T00:00:00Z".into())
        };
        let labels: serde_json::Map<String, Value> = c
            .resolved
            .labels
            .iter()
            .map(|(k, v)| (k.clone(), Value::String(v.clone())))
            .collect();
        let health = r.extra.health.as_ref().map(|h| {
            json!({
                "Status": h.status,
                "FailingStreak": h.failing_streak,
                "Log": h.log.iter().map(|l| json!({
                    "Start": rfc3339_nanos(l.start_ns),
                    "End": rfc3339_nanos(l.end_ns),
                    "ExitCode": l.exit_code,
                    "Output": l.output,
                })).collect::<Vec<_>>(),
            })
        });
        let mut doc = json!({
            "Id": r.id,
            "Name": format!("/{}", r.name),
            "Created": rfc3339(r.created_at),
            "Path": c.resolved.args.first(),
            "Args": c.resolved.args.get(1..).unwrap_or_default(),
            "Image": r.image_id,
            "State": {
                "Status": r.state,
                "Running": matches!(r.state, State::Running | State::Paused | State::Stopping),
                "Paused": r.state == State::Paused,
                "OOMKilled": r.oom_killed,
                "Pid": r.pid.unwrap_or(0),
                "ExitCode": r.exit_code.unwrap_or(0),
                "StartedAt": opt_time(r.started_at),
                "FinishedAt": opt_time(r.finished_at),
                "Health": health,
                "Restarting": false,
                "Dead": false,
                "Error": "",
            },
            "RestartCount": r.restart_count,
            "LogPath": if r.config.opts.keeps_log() {
                self.container_dir(&r.id).join("container.log")
            } else {
                Default::default()
            },
            "ResolvConfPath": self.container_run_dir(&r.id).join("resolv.conf"),
            "HostnamePath": self.container_run_dir(&r.id).join("hostname"),
            "HostsPath": self.container_run_dir(&r.id).join("hosts"),
            "Driver": "overlay",
            "Platform": "linux",
            "MountLabel": "",
            "ProcessLabel": "",
            "AppArmorProfile": "",
            "Config": {
                "Hostname": c.resolved.hostname,
                "User": format!("{}:{}", c.resolved.uid, c.resolved.gid),
                "Env": c.resolved.env,
                "Cmd": c.opts.cmd,
                "Image": r.image_ref,
                "WorkingDir": c.resolved.cwd,
                "Entrypoint": c.opts.entrypoint,
                "Tty": c.opts.tty,
                "OpenStdin": c.opts.interactive,
                "ExposedPorts": self.exposed_ports_view(r),
                "Labels": labels,
                "StopSignal": gcr_core::units::signal_name(c.resolved.stop_signal),
                "StopTimeout": c.resolved.stop_timeout,
                "Domainname": c.opts.domainname.as_deref().unwrap_or(""),
                "MacAddress": c.opts.mac_address.as_deref().unwrap_or(""),
            },
            "HostConfig": host_config(&c.opts, &c.resolved.network, &r.name),
            "NetworkSettings": self.network_settings(r),
            "Mounts": self.mounts_view(r),
            "GraphDriver": {
                "Name": "overlay",
                "Data": {
                    "LowerDir": c.resolved.lowers.join(":"),
                    "UpperDir": self.container_dir(&r.id).join("upper"),
                    "WorkDir": self.container_dir(&r.id).join("work"),
                }
            },
        });
        if let (Some(cfg), Some(h)) = (doc["Config"].as_object_mut(), &c.resolved.health) {
            cfg.insert("Healthcheck".into(), healthcheck(h));
        }
        doc
    }

    /// A running (or paused) container and its cgroup, for `top` and `stats`.
    pub(crate) fn live_cgroup(
        &self,
        key: &str,
    ) -> Result<(Record, gcr_runtime::cgroups::Cgroup), EngineError> {
        let r = self.container(key)?;
        if !matches!(r.state, State::Running | State::Paused) {
            return Err(EngineError::Conflict(format!(
                "container {} is not running",
                r.name
            )));
        }
        let cg = self.cgroup(&r.id)?;
        Ok((r, cg))
    }

    /// `gcr stats` figures for one container: its cgroup's, with its network and block I/O.
    pub fn stats(
        &self,
        key: &str,
    ) -> Result<(Record, gcr_runtime::cgroups::Stats, Io), EngineError> {
        let (r, cg) = self.live_cgroup(key)?;
        let s = cg
            .stats()
            .map_err(|e| EngineError::Internal(e.to_string()))?;
        let io = live_io(r.pid, &cg);
        Ok((r, s, io))
    }
}

/// What [`live_io`] asks of a group: opened by path or held open.
pub(crate) trait GroupIo {
    fn block_io(&self) -> gcr_runtime::cgroups::BlkioStats;
    fn procs(&self) -> Vec<i32>;
    /// The text of `/proc/PID/<name>` of one of its processes (empty when unreadable).
    fn proc_text(&self, pid: i32, name: &'static str) -> String;
}

impl GroupIo for gcr_runtime::cgroups::Cgroup {
    fn block_io(&self) -> gcr_runtime::cgroups::BlkioStats {
        gcr_runtime::cgroups::Cgroup::block_io(self)
    }
    fn procs(&self) -> Vec<i32> {
        gcr_runtime::cgroups::Cgroup::procs(self)
    }
    fn proc_text(&self, pid: i32, name: &'static str) -> String {
        std::fs::File::open(format!("/proc/{pid}/{name}"))
            .and_then(|f| gcr_runtime::cgroups::slurp(f, 1024))
            .unwrap_or_default()
    }
}

impl GroupIo for gcr_runtime::cgroups::Held {
    fn block_io(&self) -> gcr_runtime::cgroups::BlkioStats {
        gcr_runtime::cgroups::Held::block_io(self)
    }
    fn procs(&self) -> Vec<i32> {
        gcr_runtime::cgroups::Held::procs(self)
    }
    fn proc_text(&self, pid: i32, name: &'static str) -> String {
        gcr_runtime::cgroups::Held::proc_text(self, pid, name).unwrap_or_default()
    }
}

/// The network (of process `pid`'s namespace) and block I/O of a running container in
/// cgroup `cg`.
pub(crate) fn live_io(pid: Option<i32>, cg: &impl GroupIo) -> Io {
    let mut io = Io::default();
    if let Some(pid) = pid {
        (io.net_rx, io.net_tx) = net_bytes(&cg.proc_text(pid, "net/dev"));
    }
    // v2 counts the group's block I/O in io.stat; v1 hosts give gcr no blkio group,
    // so the processes' own counters are summed there.
    let blk = cg.block_io().service_bytes;
    if blk.is_empty() {
        for p in cg.procs() {
            let (r, w) = proc_io(&cg.proc_text(p, "io"));
            io.block_read += r;
            io.block_write += w;
        }
    } else {
        for e in blk {
            match e.op.as_str() {
                "Read" | "read" => io.block_read += e.value,
                "Write" | "write" => io.block_write += e.value,
                _ => {}
            }
        }
    }
    io
}

/// A container's network and block I/O, in bytes.
#[derive(Debug, Default, Clone, Copy)]
pub struct Io {
    pub net_rx: u64,
    pub net_tx: u64,
    pub block_read: u64,
    pub block_write: u64,
}

/// Received and sent bytes of every interface but `lo`, from a `/proc/PID/net/dev` text.
fn net_bytes(text: &str) -> (u64, u64) {
    text.lines()
        .skip(2)
        .filter_map(|l| l.split_once(':'))
        .filter(|(name, _)| name.trim() != "lo")
        .map(|(_, rest)| {
            let f: Vec<u64> = rest
                .split_whitespace()
                .filter_map(|x| x.parse().ok())
                .collect();
            (
                f.first().copied().unwrap_or(0),
                f.get(8).copied().unwrap_or(0),
            )
        })
        .fold((0, 0), |(a, b), (x, y)| (a + x, b + y))
}

/// `read_bytes` and `write_bytes` of a `/proc/PID/io` text.
fn proc_io(text: &str) -> (u64, u64) {
    let field = |k: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(k))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(0)
    };
    (field("read_bytes:"), field("write_bytes:"))
}

/// Docker's `Config.Healthcheck` of a resolved healthcheck: a shell command as
/// `CMD-SHELL`, any other as `CMD`; durations in nanoseconds.
fn healthcheck(h: &super::config::HealthConfig) -> Value {
    let test: Vec<&str> = match h.test.as_slice() {
        [sh, c, cmd] if sh == "/bin/sh" && c == "-c" => vec!["CMD-SHELL", cmd.as_str()],
        t => std::iter::once("CMD")
            .chain(t.iter().map(String::as_str))
            .collect(),
    };
    let mut v = json!({
        "Test": test,
        "Interval": h.interval_ms * 1_000_000,
        "Timeout": h.timeout_ms * 1_000_000,
        "Retries": h.retries,
        "StartPeriod": h.start_period_ms * 1_000_000,
    });
    if h.start_interval_ms > 0 {
        v["StartInterval"] = json!(h.start_interval_ms * 1_000_000);
    }
    v
}

/// Docker's `HostConfig` of a container's run options (`network`: its resolved mode).
fn host_config(o: &super::config::RunOptions, network: &str, name: &str) -> Value {
    let sysctls: serde_json::Map<String, Value> = o
        .sysctls
        .iter()
        .filter_map(|kv| kv.split_once('='))
        .map(|(k, v)| (k.to_string(), Value::String(v.to_string())))
        .collect();
    let mut v = json!({
        "NetworkMode": network,
        "PortBindings": crate::network::publish::bindings(&o.publish),
        "PublishAllPorts": o.publish_all,
        "Privileged": o.privileged,
        "ReadonlyRootfs": o.read_only,
        "CapAdd": o.cap_add,
        "CapDrop": o.cap_drop,
        "SecurityOpt": o.security_opt,
        "Memory": o.memory.unwrap_or(0),
        "NanoCpus": o.cpus.map(|x| (x * 1e9) as i64).unwrap_or(0),
        "PidsLimit": o.pids_limit,
        "CpuShares": o.cpu_shares.unwrap_or(0),
        "CpusetCpus": o.cpuset_cpus.as_deref().unwrap_or(""),
        "CpusetMems": o.cpuset_mems.as_deref().unwrap_or(""),
        "Init": o.init,
        "AutoRemove": o.rm,
        // Docker's shape: the name without its count, which has its own field.
        "RestartPolicy": {
            "Name": o.restart.name().split(':').next().unwrap_or("no"),
            "MaximumRetryCount": match o.restart {
                super::config::RestartPolicy::OnFailure(n) => n,
                _ => 0,
            },
        },
        "Dns": o.dns,
        "DnsSearch": o.dns_search,
        "DnsOptions": o.dns_options,
        "ExtraHosts": o.add_hosts,
        "VolumesFrom": o.volumes_from,
        "OomScoreAdj": o.oom_score_adj.unwrap_or(0),
        "Links": o
            .links
            .iter()
            .filter_map(|l| crate::network::parse_link(l))
            .map(|(n, a)| format!("/{n}:/{name}/{a}"))
            .collect::<Vec<_>>(),
        "GroupAdd": o.group_add,
        "ShmSize": o.shm_size.unwrap_or(64 << 20),
        // Docker's: twice the memory limit when no swap limit is given.
        "MemorySwap": o
            .memory_swap
            .or(o.memory.map(|m| m.saturating_mul(2) as i64))
            .unwrap_or(0),
        "Ulimits": ulimits(&o.ulimits),
        "Sysctls": sysctls,
        "Devices": devices(&o.devices),
        "PidMode": o.pid.as_deref().unwrap_or(""),
        "IpcMode": o.ipc.as_deref().unwrap_or("private"),
        "UTSMode": o.uts.as_deref().unwrap_or(""),
        "UsernsMode": o.userns.as_deref().unwrap_or(""),
        "ContainerIDFile": o.cidfile.as_deref().unwrap_or(""),
    });
    if let Value::Object(m) = &mut v {
        m.extend(tuning(&o.tuning));
        m.insert(
            "CgroupParent".into(),
            json!(o.cgroup_parent.as_deref().unwrap_or("")),
        );
        m.insert("LogConfig".into(), log_config(o));
    }
    v
}

/// Docker's `HostConfig.LogConfig`. `local` is gcr's log (the json-file driver's role and
/// format) with Docker's defaults for local, and shows as what it is: json-file with those
/// options (v1.41's API knows no `local` type).
fn log_config(o: &super::config::RunOptions) -> Value {
    use crate::logfile::LogDriver;
    let mut config: serde_json::Map<String, Value> = o
        .log_opts
        .iter()
        .filter_map(|o| o.split_once('='))
        .map(|(k, v)| (k.to_string(), Value::String(v.to_string())))
        .collect();
    let driver = LogDriver::parse(o.log_driver.as_deref()).unwrap_or(LogDriver::JsonFile);
    if driver == LogDriver::Local {
        for (key, default) in crate::logfile::LOCAL_DEFAULTS {
            config.entry(key).or_insert_with(|| json!(default));
        }
    }
    let name = match driver {
        LogDriver::None => "none",
        _ => "json-file",
    };
    json!({ "Type": name, "Config": config })
}

/// Docker's `HostConfig` fields of the memory and block I/O tuning options.
fn tuning(t: &super::tuning::Tuning) -> serde_json::Map<String, Value> {
    let v = json!({
        "MemoryReservation": t.memory_reservation.unwrap_or(0),
        "OomKillDisable": t.oom_kill_disable,
        "BlkioWeight": t.blkio_weight.unwrap_or(0),
        "BlkioWeightDevice": device_rates(&t.blkio_weight_device, "Weight"),
        "BlkioDeviceReadBps": device_rates(&t.device_read_bps, "Rate"),
        "BlkioDeviceWriteBps": device_rates(&t.device_write_bps, "Rate"),
        "BlkioDeviceReadIOps": device_rates(&t.device_read_iops, "Rate"),
        "BlkioDeviceWriteIOps": device_rates(&t.device_write_iops, "Rate"),
    });
    let mut m = match v {
        Value::Object(m) => m,
        _ => serde_json::Map::new(),
    };
    // Docker's is null when unset, which its own swagger does not accept: left out then.
    if let Some(s) = t.memory_swappiness {
        m.insert("MemorySwappiness".into(), json!(s));
    }
    m
}

/// Docker's `HostConfig.Ulimits` of `--ulimit` values (checked at create): the limit's
/// short name, unlimited as -1.
fn ulimits(given: &[String]) -> Value {
    let n = |v: u64| if v == u64::MAX { -1 } else { v as i64 };
    given
        .iter()
        .filter_map(|u| {
            let (_, soft, hard) = super::config::parse_ulimit(u).ok()?;
            let name = u.split_once('=')?.0;
            Some(json!({ "Name": name, "Soft": n(soft), "Hard": n(hard) }))
        })
        .collect()
}

/// Docker's `HostConfig.Blkio*` lists: `{"Path": …, "Rate"|"Weight": …}`.
fn device_rates(list: &[super::tuning::DeviceRate], key: &str) -> Value {
    list.iter()
        .map(|d| json!({ "Path": d.path, key: d.rate }))
        .collect()
}

/// Docker's `HostConfig.Devices` of `--device` values (checked at create).
fn devices(given: &[String]) -> Value {
    given
        .iter()
        .filter_map(|d| super::config::parse_device(d).ok())
        .map(|(host, ctr, perms)| {
            json!({ "PathOnHost": host, "PathInContainer": ctr, "CgroupPermissions": perms })
        })
        .collect()
}
