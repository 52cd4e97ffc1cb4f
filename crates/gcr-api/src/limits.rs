//! The resource limits and restart policy that `POST /containers/create`'s `HostConfig` and
//! `POST /containers/{id}/update` share, as the engine's [`UpdateRequest`]. Docker's client
//! sends every field, unset ones as 0, "" or null: those are "not set". Update fields gcr
//! cannot apply are refused by name when set (never ignored).

use gcr_engine::container::admin::UpdateRequest;
use gcr_engine::container::config::RestartPolicy;
use serde_json::{Map, Value};

use gcr_engine::container::tuning::{parse_device_rate, DeviceRate, RateKind, Tuning};

use crate::create::{bad, boolean, field, int, object, string};
use crate::errors::HttpError;

/// Memory, swap, CPUs (NanoCpus, or CpuQuota over CpuPeriod), shares, cpusets, pids and
/// the restart policy, checked as the CLI checks its flags.
pub(crate) fn limits(h: &Map<String, Value>) -> Result<UpdateRequest, HttpError> {
    let mut u = UpdateRequest::default();
    if let Some(rp) = object(h, "RestartPolicy")? {
        let name = string(rp, "Name")?.unwrap_or_default();
        if !name.is_empty() {
            let max = int(rp, "MaximumRetryCount")?.unwrap_or(0);
            let spec = match (name.as_str(), max) {
                ("on-failure", n) if n > 0 => format!("on-failure:{n}"),
                (n, _) => n.to_string(),
            };
            u.restart = Some(RestartPolicy::parse(&spec).ok_or_else(|| {
                bad(format!(
                    "invalid restart policy '{name}': use no, always, unless-stopped or on-failure"
                ))
            })?);
        }
    }
    if let Some(m) = int(h, "Memory")?.filter(|m| *m > 0) {
        if m < 6 * 1024 * 1024 {
            return Err(bad("Minimum memory limit allowed is 6MB".into()));
        }
        u.memory = Some(m as u64);
    }
    u.memory_swap = int(h, "MemorySwap")?.filter(|m| *m != 0);
    let ncpu = std::thread::available_parallelism().map_or(1, |c| c.get()) as i64;
    let nano = match (int(h, "NanoCpus")?, int(h, "CpuQuota")?) {
        (Some(n), _) if n != 0 => Some(n),
        (_, Some(q)) if q > 0 => {
            let period = int(h, "CpuPeriod")?.filter(|p| *p > 0).unwrap_or(100_000);
            Some(q * 1_000_000_000 / period)
        }
        _ => None,
    };
    if let Some(n) = nano {
        if n < 10_000_000 || n > ncpu * 1_000_000_000 {
            return Err(bad(format!(
                "range of CPUs is from 0.01 to {ncpu}.00, as there are only {ncpu} CPUs available"
            )));
        }
        u.cpus = Some(n as f64 / 1e9);
    }
    u.cpu_shares = int(h, "CpuShares")?.filter(|s| *s > 0).map(|s| s as u64);
    for (k, cpus) in [("CpusetCpus", true), ("CpusetMems", false)] {
        let Some(v) = string(h, k)?.filter(|v| !v.is_empty()) else {
            continue;
        };
        gcr_engine::container::config::check_cpuset(k, &v, cpus).map_err(bad)?;
        match cpus {
            true => u.cpuset_cpus = Some(v),
            false => u.cpuset_mems = Some(v),
        }
    }
    u.pids_limit = int(h, "PidsLimit")?.filter(|p| *p != 0);
    Ok(u)
}

/// `MemoryReservation`, `MemorySwappiness`, `OomKillDisable` and the `Blkio*` fields, as
/// `run`'s flags (Docker's unset values: 0, -1, null, empty lists).
pub(crate) fn tuning(h: &Map<String, Value>) -> Result<Tuning, HttpError> {
    let swappiness = match int(h, "MemorySwappiness")? {
        None | Some(-1) => None,
        Some(s) if (0..=100).contains(&s) => Some(s as u64),
        Some(s) => {
            return Err(bad(format!(
                "invalid MemorySwappiness {s}: the valid memory swappiness range is 0-100"
            )))
        }
    };
    let weight = match int(h, "BlkioWeight")? {
        None | Some(0) => None,
        Some(w) if (10..=1000).contains(&w) => Some(w as u16),
        Some(w) => {
            return Err(bad(format!(
                "invalid BlkioWeight {w}: the range of blkio weight is from 10 to 1000"
            )))
        }
    };
    let devices = |k: &str, key: &str, kind: RateKind| -> Result<Vec<DeviceRate>, HttpError> {
        let Some(v) = field(h, k) else {
            return Ok(Vec::new());
        };
        let list = v
            .as_array()
            .ok_or_else(|| bad(format!("invalid {k} {v}: expected a list")))?;
        list.iter()
            .map(|d| {
                let path = d.get("Path").and_then(Value::as_str).unwrap_or("");
                let n = d.get(key).and_then(Value::as_u64).ok_or_else(|| {
                    bad(format!(
                        "invalid {k} entry {d}: {key} must be a non-negative integer"
                    ))
                })?;
                parse_device_rate(k, &format!("{path}:{n}"), kind).map_err(bad)
            })
            .collect()
    };
    Ok(Tuning {
        memory_reservation: int(h, "MemoryReservation")?
            .filter(|r| *r > 0)
            .map(|r| r as u64),
        memory_swappiness: swappiness,
        oom_kill_disable: boolean(h, "OomKillDisable")?,
        blkio_weight: weight,
        blkio_weight_device: devices("BlkioWeightDevice", "Weight", RateKind::Weight)?,
        device_read_bps: devices("BlkioDeviceReadBps", "Rate", RateKind::Ops)?,
        device_write_bps: devices("BlkioDeviceWriteBps", "Rate", RateKind::Ops)?,
        device_read_iops: devices("BlkioDeviceReadIOps", "Rate", RateKind::Ops)?,
        device_write_iops: devices("BlkioDeviceWriteIOps", "Rate", RateKind::Ops)?,
    })
}

/// The body of `POST /containers/{id}/update`.
pub(crate) fn update(body: &Value) -> Result<UpdateRequest, HttpError> {
    let h = body
        .as_object()
        .ok_or_else(|| bad("the update body must be a JSON object".into()))?;
    let set = |v: &Value| match v {
        Value::Null | Value::Bool(false) => false,
        Value::Number(n) => n.as_i64() != Some(0) && n.as_i64() != Some(-1),
        Value::String(s) => !s.is_empty(),
        Value::Array(a) => !a.is_empty(),
        _ => true,
    };
    for k in [
        "BlkioWeightDevice",
        "BlkioDeviceReadBps",
        "BlkioDeviceWriteBps",
        "BlkioDeviceReadIOps",
        "BlkioDeviceWriteIOps",
        "CpuRealtimePeriod",
        "CpuRealtimeRuntime",
        "KernelMemory",
        "KernelMemoryTCP",
        "MemorySwappiness",
        "OomKillDisable",
        "Devices",
        "DeviceCgroupRules",
        "Ulimits",
        "CgroupParent",
    ] {
        if field(h, k).is_some_and(set) {
            return Err(bad(format!(
                "{k} cannot be updated by gcr; it updates Memory, MemorySwap, MemoryReservation, NanoCpus, CpuQuota, CpuPeriod, CpuShares, CpusetCpus, CpusetMems, PidsLimit, BlkioWeight and RestartPolicy"
            )));
        }
    }
    let mut u = limits(h)?;
    let t = tuning(h)?;
    u.memory_reservation = t.memory_reservation;
    u.blkio_weight = t.blkio_weight;
    Ok(u)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn docker_clients_zeroes_are_unset_and_what_is_set_is_checked() {
        // What `docker update --cpus 0.5 -m 64m C` sends (abridged).
        let u = update(
            &json!({"BlkioWeight": 0, "CpuShares": 0, "Memory": 67108864,
            "NanoCpus": 500000000, "CpusetCpus": "", "MemorySwappiness": null,
            "Devices": null, "OomKillDisable": null, "PidsLimit": null,
            "RestartPolicy": {"Name": "", "MaximumRetryCount": 0}}),
        )
        .unwrap();
        assert_eq!(u.memory, Some(64 << 20));
        assert_eq!(u.cpus, Some(0.5));
        assert!(u.cpu_shares.is_none() && u.cpuset_cpus.is_none() && u.restart.is_none());
        let u = update(&json!({"CpuQuota": 25000, "CpuPeriod": 50000,
            "RestartPolicy": {"Name": "on-failure", "MaximumRetryCount": 3}}))
        .unwrap();
        assert_eq!(u.cpus, Some(0.5));
        assert_eq!(u.restart, Some(RestartPolicy::OnFailure(3)));
        let e = update(&json!({"KernelMemory": 1000})).unwrap_err();
        assert!(e.to_string().contains("KernelMemory"), "{e}");
        assert!(update(&json!({"Memory": 1000})).is_err());
        assert!(update(&json!({"CpusetCpus": "0-4095"})).is_err());
        assert!(update(&json!([])).is_err());
    }
}
