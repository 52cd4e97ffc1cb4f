//! `POST /containers/create`: Docker's `Config` + `HostConfig` body mapped onto the engine's
//! run options (the flags `gcr create` takes), checked as the CLI checks its flags. Fields
//! gcr has no equivalent for are ignored, as Docker ignores unknown ones.

use gcr_engine::container::config::{NetworkJoin, RunOptions};
use serde_json::{Map, Value};

use crate::errors::HttpError;

pub(crate) fn bad(msg: String) -> HttpError {
    HttpError::bad_request(msg)
}

pub(crate) fn field<'a>(o: &'a Map<String, Value>, k: &str) -> Option<&'a Value> {
    o.get(k).filter(|v| !v.is_null())
}

/// Docker's `Ulimits` (`[{"Name":"nofile","Soft":1024,"Hard":2048}]`, as in HostConfig
/// and the build's `ulimits`) as `--ulimit` flags, each checked.
pub(crate) fn ulimit_flags(v: &Value) -> Result<Vec<String>, HttpError> {
    let mut out = Vec::new();
    for u in v.as_array().into_iter().flatten() {
        let n = u.get("Name").and_then(Value::as_str).unwrap_or("");
        let soft = u.get("Soft").and_then(Value::as_i64).unwrap_or(0);
        let hard = u.get("Hard").and_then(Value::as_i64).unwrap_or(soft);
        let flag = format!("{n}={soft}:{hard}");
        gcr_engine::container::config::parse_ulimit(&flag).map_err(bad)?;
        out.push(flag);
    }
    Ok(out)
}

pub(crate) fn string(o: &Map<String, Value>, k: &str) -> Result<Option<String>, HttpError> {
    match field(o, k) {
        None => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(v) => Err(bad(format!("invalid {k} {v}: expected a string"))),
    }
}

pub(crate) fn boolean(o: &Map<String, Value>, k: &str) -> Result<bool, HttpError> {
    match field(o, k) {
        None => Ok(false),
        Some(Value::Bool(b)) => Ok(*b),
        Some(v) => Err(bad(format!("invalid {k} {v}: expected true or false"))),
    }
}

pub(crate) fn int(o: &Map<String, Value>, k: &str) -> Result<Option<i64>, HttpError> {
    match field(o, k) {
        None => Ok(None),
        Some(v) => v
            .as_i64()
            .map(Some)
            .ok_or_else(|| bad(format!("invalid {k} {v}: expected an integer"))),
    }
}

/// A list of strings; Docker's "strslice" fields (Cmd, Entrypoint) also take one string.
fn strings(o: &Map<String, Value>, k: &str) -> Result<Option<Vec<String>>, HttpError> {
    match field(o, k) {
        None => Ok(None),
        Some(Value::String(s)) => Ok(Some(vec![s.clone()])),
        Some(Value::Array(a)) => a
            .iter()
            .map(|x| {
                x.as_str()
                    .map(str::to_string)
                    .ok_or_else(|| bad(format!("invalid {k}: {x} is not a string")))
            })
            .collect::<Result<Vec<_>, _>>()
            .map(Some),
        Some(v) => Err(bad(format!("invalid {k} {v}: expected a list of strings"))),
    }
}

/// `{"k": "v"}` as `k=v` (labels, sysctls) or with another separator.
fn pairs(o: &Map<String, Value>, k: &str, sep: &str) -> Result<Vec<String>, HttpError> {
    match field(o, k) {
        None => Ok(Vec::new()),
        Some(Value::Object(m)) => m
            .iter()
            .map(|(a, b)| match b {
                Value::String(s) => Ok(format!("{a}{sep}{s}")),
                v => Err(bad(format!(
                    "invalid {k} value for '{a}': {v} is not a string"
                ))),
            })
            .collect(),
        Some(v) => Err(bad(format!(
            "invalid {k} {v}: expected an object of strings"
        ))),
    }
}

pub(crate) fn object<'a>(
    o: &'a Map<String, Value>,
    k: &str,
) -> Result<Option<&'a Map<String, Value>>, HttpError> {
    match field(o, k) {
        None => Ok(None),
        Some(Value::Object(m)) => Ok(Some(m)),
        Some(v) => Err(bad(format!("invalid {k} {v}: expected an object"))),
    }
}

/// Nanoseconds as a duration the engine reads (`1500ms`).
fn duration(o: &Map<String, Value>, k: &str) -> Result<Option<String>, HttpError> {
    Ok(int(o, k)?
        .filter(|n| *n > 0)
        .map(|n| format!("{}ms", n / 1_000_000)))
}

/// The run options of a create body; `name` from the query.
pub fn options(body: &Value, name: Option<&str>) -> Result<RunOptions, HttpError> {
    let empty = Map::new();
    let c = match body {
        Value::Object(m) => m,
        Value::Null => &empty,
        _ => return Err(bad("invalid create body: expected a JSON object".into())),
    };
    let image = string(c, "Image")?
        .filter(|s| !s.is_empty())
        .ok_or_else(|| bad("config error: no image given (Image is empty)".into()))?;
    let mut o = RunOptions {
        image,
        name: name
            .map(|n| n.trim_start_matches('/').to_string())
            .filter(|n| !n.is_empty()),
        ..Default::default()
    };
    o.cmd = strings(c, "Cmd")?.unwrap_or_default();
    if let Some(ep) = strings(c, "Entrypoint")? {
        match ep.split_first() {
            // `[]` or `[""]`: no entrypoint.
            None => o.entrypoint = Some(String::new()),
            Some((first, rest)) => {
                o.entrypoint = Some(first.clone());
                let mut cmd = rest.to_vec();
                cmd.append(&mut o.cmd);
                o.cmd = cmd;
            }
        }
    }
    o.env = strings(c, "Env")?.unwrap_or_default();
    o.workdir = string(c, "WorkingDir")?.filter(|s| !s.is_empty());
    o.user = string(c, "User")?.filter(|s| !s.is_empty());
    o.hostname = string(c, "Hostname")?.filter(|s| !s.is_empty());
    o.domainname = string(c, "Domainname")?.filter(|s| !s.is_empty());
    o.mac_address = string(c, "MacAddress")?.filter(|s| !s.is_empty());
    if let Some(ports) = object(c, "ExposedPorts")? {
        o.expose = ports.keys().cloned().collect();
    }
    o.tty = boolean(c, "Tty")?;
    o.interactive = boolean(c, "OpenStdin")?;
    o.labels = pairs(c, "Labels", "=")?;
    o.stop_signal = string(c, "StopSignal")?.filter(|s| !s.is_empty());
    o.stop_timeout = int(c, "StopTimeout")?.map(|t| t.clamp(0, u32::MAX as i64) as u32);
    if let Some(h) = object(c, "Healthcheck")? {
        health(h, &mut o)?;
    }
    if let Some(h) = object(c, "HostConfig")? {
        host_config(h, &mut o)?;
    }
    if let Some(n) = object(c, "NetworkingConfig")? {
        endpoint(n, &mut o)?;
    }
    Ok(o)
}

/// `NetworkingConfig.EndpointsConfig`: the aliases and address on each network. The one
/// of `HostConfig.NetworkMode` (or, without it, the first) is the container's first
/// network; the others are joined after it, as `network connect` would (API 1.44).
fn endpoint(n: &Map<String, Value>, o: &mut RunOptions) -> Result<(), HttpError> {
    let Some(eps) = object(n, "EndpointsConfig")? else {
        return Ok(());
    };
    let is_default = |n: &str| n == "bridge" || n == "default";
    if o.network.is_none() {
        if let Some(first) = eps.keys().find(|k| !is_default(k)) {
            if !eps.keys().any(|k| is_default(k)) {
                o.network = Some(first.clone());
            }
        }
    }
    let mode = o.network.clone().unwrap_or_else(|| "bridge".into());
    for (name, ep) in eps {
        let ep = match ep {
            Value::Object(m) => Some(m),
            Value::Null => None,
            v => {
                return Err(bad(format!(
                    "invalid EndpointsConfig.{name} {v}: expected an object"
                )))
            }
        };
        let aliases = match ep {
            Some(ep) => strings(ep, "Aliases")?.unwrap_or_default(),
            None => Vec::new(),
        };
        // An endpoint's legacy links (docker-compose's `links:`) are the container's.
        for l in ep
            .map(|ep| strings(ep, "Links"))
            .transpose()?
            .flatten()
            .unwrap_or_default()
        {
            if !o.links.contains(&l) {
                o.links.push(l);
            }
        }
        let (ip, ip6) = match ep.map(|ep| object(ep, "IPAMConfig")).transpose()?.flatten() {
            Some(ipam) => (
                string(ipam, "IPv4Address")?.filter(|s| !s.is_empty()),
                string(ipam, "IPv6Address")?.filter(|s| !s.is_empty()),
            ),
            None => (None, None),
        };
        if *name == mode || (is_default(name) && is_default(&mode)) {
            // API 1.44 puts the first interface's MacAddress here.
            if let Some(m) = ep.map(|ep| string(ep, "MacAddress")).transpose()?.flatten() {
                o.mac_address = Some(m).filter(|m| !m.is_empty()).or(o.mac_address.take());
            }
            o.network_aliases = aliases;
            o.ip = ip;
            o.ip6 = ip6;
        } else {
            o.extra_networks.push(NetworkJoin {
                name: name.clone(),
                aliases,
                ip,
                ip6,
            });
        }
    }
    Ok(())
}

fn health(h: &Map<String, Value>, o: &mut RunOptions) -> Result<(), HttpError> {
    let test = strings(h, "Test")?.unwrap_or_default();
    match test.split_first() {
        None => {}
        Some((k, _)) if k == "NONE" => o.no_healthcheck = true,
        Some((k, rest)) if k == "CMD-SHELL" && !rest.is_empty() => {
            o.health_cmd = Some(rest.join(" "))
        }
        Some((k, rest)) if k == "CMD" && !rest.is_empty() => {
            let quoted: Vec<String> = rest
                .iter()
                .map(|a| format!("'{}'", a.replace('\'', r"'\''")))
                .collect();
            o.health_cmd = Some(quoted.join(" "));
        }
        Some(_) => {
            return Err(bad(format!(
                "invalid Healthcheck.Test {test:?}: use [\"CMD-SHELL\", cmd], [\"CMD\", args...] or [\"NONE\"]"
            )))
        }
    }
    o.health_interval = duration(h, "Interval")?;
    o.health_timeout = duration(h, "Timeout")?;
    o.health_start_period = duration(h, "StartPeriod")?;
    o.health_start_interval = duration(h, "StartInterval")?;
    o.health_retries = int(h, "Retries")?
        .filter(|r| *r > 0)
        .map(|r| r.min(u32::MAX as i64) as u32);
    Ok(())
}

fn host_config(h: &Map<String, Value>, o: &mut RunOptions) -> Result<(), HttpError> {
    o.volumes = strings(h, "Binds")?.unwrap_or_default();
    o.volumes_from = strings(h, "VolumesFrom")?.unwrap_or_default();
    // The range is the engine's to check, as for the CLI's flag.
    o.oom_score_adj = int(h, "OomScoreAdj")?
        .filter(|a| *a != 0)
        .map(|a| i32::try_from(a).unwrap_or(if a < 0 { i32::MIN } else { i32::MAX }));
    if let Some(pb) = object(h, "PortBindings")? {
        for (port, binds) in pb {
            let port = if port.contains('/') {
                port.clone()
            } else {
                format!("{port}/tcp")
            };
            let list = binds.as_array().cloned().unwrap_or_default();
            if list.is_empty() {
                o.publish.push(port.clone());
            }
            for b in list {
                let ip = b.get("HostIp").and_then(Value::as_str).unwrap_or("");
                let hp = b.get("HostPort").and_then(Value::as_str).unwrap_or("");
                o.publish.push(match (ip.is_empty(), hp.is_empty()) {
                    (true, true) => port.clone(),
                    (true, false) => format!("{hp}:{port}"),
                    // An IPv6 address in brackets, as -p takes it.
                    (false, _) if ip.contains(':') => format!("[{ip}]:{hp}:{port}"),
                    (false, _) => format!("{ip}:{hp}:{port}"),
                });
            }
        }
    }
    o.publish_all = boolean(h, "PublishAllPorts")?;
    let l = crate::limits::limits(h)?;
    if let Some(r) = l.restart {
        o.restart = r;
    }
    o.memory = l.memory;
    o.memory_swap = l.memory_swap;
    o.cpus = l.cpus;
    o.cpu_shares = l.cpu_shares;
    o.cpuset_cpus = l.cpuset_cpus;
    o.cpuset_mems = l.cpuset_mems;
    o.pids_limit = l.pids_limit;
    o.tuning = crate::limits::tuning(h)?;
    o.cgroup_parent = string(h, "CgroupParent")?.filter(|p| !p.is_empty());
    o.cap_add = strings(h, "CapAdd")?.unwrap_or_default();
    o.cap_drop = strings(h, "CapDrop")?.unwrap_or_default();
    o.network = string(h, "NetworkMode")?.filter(|n| !n.is_empty() && n != "default");
    o.rm = boolean(h, "AutoRemove")?;
    o.init = boolean(h, "Init")?;
    o.privileged = boolean(h, "Privileged")?;
    o.read_only = boolean(h, "ReadonlyRootfs")?;
    o.security_opt = strings(h, "SecurityOpt")?.unwrap_or_default();
    o.tmpfs = pairs(h, "Tmpfs", ":")?
        .into_iter()
        .map(|t| t.trim_end_matches(':').to_string())
        .collect();
    o.dns = strings(h, "Dns")?.unwrap_or_default();
    for d in &o.dns {
        if d.parse::<std::net::IpAddr>().is_err() {
            return Err(bad(format!(
                "invalid Dns '{d}': use the IP address of a name server"
            )));
        }
    }
    o.dns_search = strings(h, "DnsSearch")?.unwrap_or_default();
    o.dns_options = strings(h, "DnsOptions")?.unwrap_or_default();
    o.add_hosts = strings(h, "ExtraHosts")?.unwrap_or_default();
    o.links = strings(h, "Links")?.unwrap_or_default();
    for a in &o.add_hosts {
        if gcr_engine::network::parse_add_host(a).is_none() {
            return Err(bad(format!("invalid ExtraHosts '{a}': use NAME:IP")));
        }
    }
    o.shm_size = int(h, "ShmSize")?.filter(|s| *s > 0).map(|s| s as u64);
    o.group_add = strings(h, "GroupAdd")?.unwrap_or_default();
    o.sysctls = pairs(h, "Sysctls", "=")?;
    o.pid = string(h, "PidMode")?.filter(|s| !s.is_empty());
    o.ipc = string(h, "IpcMode")?.filter(|s| !s.is_empty() && s != "private" && s != "shareable");
    o.uts = string(h, "UTSMode")?.filter(|s| !s.is_empty());
    o.userns = string(h, "UsernsMode")?.filter(|s| !s.is_empty());
    for d in field(h, "Devices")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let host = d.get("PathOnHost").and_then(Value::as_str).unwrap_or("");
        let cont = d
            .get("PathInContainer")
            .and_then(Value::as_str)
            .unwrap_or(host);
        let perms = d
            .get("CgroupPermissions")
            .and_then(Value::as_str)
            .unwrap_or("rwm");
        o.devices.push(format!("{host}:{cont}:{perms}"));
    }
    if let Some(u) = field(h, "Ulimits") {
        o.ulimits = ulimit_flags(u)?;
    }
    for m in field(h, "Mounts")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let kind = m.get("Type").and_then(Value::as_str).unwrap_or("volume");
        let mut spec = format!("type={kind}");
        if let Some(s) = m
            .get("Source")
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
        {
            spec.push_str(&format!(",source={s}"));
        }
        let t = m.get("Target").and_then(Value::as_str).unwrap_or("");
        spec.push_str(&format!(",target={t}"));
        if m.get("ReadOnly").and_then(Value::as_bool) == Some(true) {
            spec.push_str(",readonly");
        }
        o.mounts.push(spec);
    }
    if let Some(lc) = object(h, "LogConfig")? {
        o.log_opts = pairs(lc, "Config", "=")?;
        // Checked by the engine with the other options.
        o.log_driver = string(lc, "Type")?.filter(|t| !t.is_empty() && t != "json-file");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use gcr_engine::container::config::RestartPolicy;
    use serde_json::json;

    #[test]
    fn maps_docker_fields() {
        let body = json!({
            "Image": "busybox", "Cmd": ["sh", "-c", "exit 3"], "Entrypoint": ["/bin/env", "-i"],
            "Env": ["A=1"], "Tty": true, "Labels": {"k": "v"},
            "HostConfig": {
                "Binds": ["/tmp:/data:ro"], "AutoRemove": true, "Memory": 67108864,
                "NanoCpus": 500000000, "PortBindings": {"80/tcp": [{"HostIp": "", "HostPort": "8080"}]},
                "RestartPolicy": {"Name": "on-failure", "MaximumRetryCount": 2},
                "CapAdd": ["NET_ADMIN"], "NetworkMode": "default", "Init": true
            }
        });
        let o = options(&body, Some("/web")).unwrap();
        assert_eq!(o.name.as_deref(), Some("web"));
        assert_eq!(o.entrypoint.as_deref(), Some("/bin/env"));
        assert_eq!(o.cmd, ["-i", "sh", "-c", "exit 3"]);
        assert_eq!(o.labels, ["k=v"]);
        assert!(o.tty && o.rm && o.init);
        assert_eq!(o.volumes, ["/tmp:/data:ro"]);
        assert_eq!(o.memory, Some(64 << 20));
        assert_eq!(o.cpus, Some(0.5));
        assert_eq!(o.publish, ["8080:80/tcp"]);
        assert_eq!(o.restart, RestartPolicy::OnFailure(2));
        assert_eq!(o.network, None);
    }

    #[test]
    fn maps_the_endpoint_config() {
        let body = json!({
            "Image": "busybox",
            "HostConfig": { "NetworkMode": "p_back" },
            "NetworkingConfig": { "EndpointsConfig": { "p_back": {
                "Aliases": ["db", "database"], "IPAMConfig": { "IPv4Address": "10.5.0.9" }
            } } }
        });
        let o = options(&body, None).unwrap();
        assert_eq!(o.network.as_deref(), Some("p_back"));
        assert_eq!(o.network_aliases, ["db", "database"]);
        assert_eq!(o.ip.as_deref(), Some("10.5.0.9"));
        // No NetworkMode: the one endpoint names the network.
        let body = json!({"Image": "x", "NetworkingConfig": {"EndpointsConfig": {"app": {"Aliases": ["a"]}}}});
        assert_eq!(
            options(&body, None).unwrap().network.as_deref(),
            Some("app")
        );
        // A second network is joined after the first.
        let body = json!({
            "Image": "x", "HostConfig": { "NetworkMode": "b" },
            "NetworkingConfig": { "EndpointsConfig": { "a": {"Aliases": ["x"]}, "b": {} } }
        });
        let o = options(&body, None).unwrap();
        assert_eq!(o.network.as_deref(), Some("b"));
        assert_eq!(o.extra_networks.len(), 1);
        assert_eq!(
            (
                o.extra_networks[0].name.as_str(),
                &o.extra_networks[0].aliases
            ),
            ("a", &vec!["x".to_string()])
        );
    }

    #[test]
    fn refuses_bad_bodies() {
        assert!(options(&json!({}), None).is_err());
        assert!(options(&json!([1]), None).is_err());
        assert!(options(&json!({"Image": 3}), None).is_err());
        assert!(options(&json!({"Image": "x", "Cmd": [1]}), None).is_err());
        assert!(options(&json!({"Image": "x", "HostConfig": {"Memory": 10}}), None).is_err());
        assert!(options(
            &json!({"Image": "x", "HostConfig": {"RestartPolicy": {"Name": "sometimes"}}}),
            None
        )
        .is_err());
        assert_eq!(
            options(&json!({"Image": "x", "Entrypoint": []}), None)
                .unwrap()
                .entrypoint
                .as_deref(),
            Some("")
        );
    }
}
