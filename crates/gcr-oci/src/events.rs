//! `events`: the container's cgroup figures as runc's `{"type":"stats","id","data"}`
//! document (`--stats`: one, then exit), or a stream of them every interval plus an
//! `{"type":"oom"}` event each time the kernel OOM killer kills in the group, until the
//! container stops.
//!
//! The JSON follows runc's `types.Stats` with Go's `omitempty` rules: zero counters of
//! `omitempty` fields are left out, the others are always there. `cpuset` and
//! `network_interfaces` are not read (null/absent); `hugetlb` and `intel_rdt` are empty.

use std::time::{Duration, Instant};

use gcr_runtime::cgroups::{BlkioEntry, DetailedStats, MemoryEntry};
use serde_json::{json, Map, Value};

use crate::{cgroup, Oci, OciError};

/// Inserts `v` under `k` unless it is zero (Go's `omitempty` for numbers).
fn put_nz(m: &mut Map<String, Value>, k: &str, v: u64) {
    if v != 0 {
        m.insert(k.into(), v.into());
    }
}

fn put_list(m: &mut Map<String, Value>, k: &str, v: &[u64]) {
    if !v.is_empty() {
        m.insert(k.into(), json!(v));
    }
}

fn entry(e: Option<&MemoryEntry>) -> Value {
    let d = MemoryEntry::default();
    let e = e.unwrap_or(&d);
    let mut m = Map::new();
    m.insert("limit".into(), e.limit.into());
    put_nz(&mut m, "usage", e.usage);
    put_nz(&mut m, "max", e.max);
    m.insert("failcnt".into(), e.failcnt.into());
    Value::Object(m)
}

fn blkio_list(v: &[BlkioEntry]) -> Value {
    v.iter()
        .map(|e| {
            let mut m = Map::new();
            put_nz(&mut m, "major", e.major);
            put_nz(&mut m, "minor", e.minor);
            if !e.op.is_empty() {
                m.insert("op".into(), e.op.clone().into());
            }
            put_nz(&mut m, "value", e.value);
            Value::Object(m)
        })
        .collect()
}

/// runc's `data` object of a stats event.
pub fn stats_json(s: &DetailedStats) -> Value {
    let mut usage = Map::new();
    put_nz(&mut usage, "total", s.cpu.total);
    put_list(&mut usage, "percpu", &s.cpu.percpu);
    put_list(&mut usage, "percpu_kernel", &s.cpu.percpu_kernel);
    put_list(&mut usage, "percpu_user", &s.cpu.percpu_user);
    usage.insert("kernel".into(), s.cpu.kernel.into());
    usage.insert("user".into(), s.cpu.user.into());
    let mut throttling = Map::new();
    put_nz(&mut throttling, "periods", s.cpu.periods);
    put_nz(&mut throttling, "throttledPeriods", s.cpu.throttled_periods);
    put_nz(&mut throttling, "throttledTime", s.cpu.throttled_time);
    let m = &s.memory;
    let mut memory = Map::new();
    put_nz(&mut memory, "cache", m.cache);
    memory.insert("usage".into(), entry(Some(&m.usage)));
    memory.insert("swap".into(), entry(m.swap.as_ref()));
    memory.insert("kernel".into(), entry(m.kernel.as_ref()));
    memory.insert("kernelTCP".into(), entry(m.kernel_tcp.as_ref()));
    if !m.raw.is_empty() {
        let raw: Map<String, Value> = m
            .raw
            .iter()
            .map(|(k, v)| (k.clone(), (*v).into()))
            .collect();
        memory.insert("raw".into(), Value::Object(raw));
    }
    let mut pids = Map::new();
    put_nz(&mut pids, "current", s.pids.current);
    put_nz(&mut pids, "limit", s.pids.limit.unwrap_or(0));
    let mut blkio = Map::new();
    if !s.blkio.service_bytes.is_empty() {
        blkio.insert(
            "ioServiceBytesRecursive".into(),
            blkio_list(&s.blkio.service_bytes),
        );
    }
    if !s.blkio.serviced.is_empty() {
        blkio.insert("ioServicedRecursive".into(), blkio_list(&s.blkio.serviced));
    }
    json!({
        "cpu": {"usage": usage, "throttling": throttling},
        "memory": memory,
        "pids": pids,
        "blkio": blkio,
        "hugetlb": {},
        "intel_rdt": {},
        "network_interfaces": null,
    })
}

impl Oci {
    /// `events --stats`: one stats event of a live container.
    pub fn stats(&self, id: &str) -> Result<Value, OciError> {
        let st = self.live(id, "it has no figures (container not running)")?;
        let s = cgroup::open(&st.cgroup)?
            .detailed_stats()
            .map_err(|e| OciError::Cgroup(e.to_string()))?;
        Ok(json!({"type": "stats", "id": id, "data": stats_json(&s)}))
    }

    /// `events`: a stats event every `interval` and an oom event per OOM kill, each given
    /// to `emit`, until the container stops (then Ok).
    pub fn events(
        &self,
        id: &str,
        interval: Duration,
        mut emit: impl FnMut(&Value) -> Result<(), OciError>,
    ) -> Result<(), OciError> {
        if interval.is_zero() {
            return Err(OciError::Invalid(
                "--interval must be more than zero".into(),
            ));
        }
        let st = self.live(id, "it has no figures (container not running)")?;
        let cg = cgroup::open(&st.cgroup)?;
        let mut ooms = cg.oom_kills();
        // OOM kills and the end are noticed within this step, stats come each interval.
        let step = interval.min(Duration::from_millis(100));
        let mut next = Instant::now() + interval;
        loop {
            // Liveness first: kills counted before the end are read after it is seen.
            let alive = st.alive();
            let kills = cg.oom_kills();
            for _ in ooms..kills {
                emit(&json!({"type": "oom", "id": id}))?;
            }
            ooms = ooms.max(kills);
            if !alive {
                return Ok(());
            }
            if Instant::now() >= next {
                next += interval;
                // A group torn down under us (the container just ended) ends the stream
                // at the liveness check above.
                if let Ok(s) = cg.detailed_stats() {
                    emit(&json!({"type": "stats", "id": id, "data": stats_json(&s)}))?;
                }
            }
            std::thread::sleep(step);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stats_json_follows_runc_omitempty() {
        let mut s = DetailedStats::default();
        s.pids.current = 3;
        s.memory.usage.usage = 10;
        s.memory.usage.limit = 20;
        let v = stats_json(&s);
        assert_eq!(v["pids"], json!({"current": 3}));
        assert_eq!(v["cpu"]["usage"], json!({"kernel": 0, "user": 0}));
        assert_eq!(v["cpu"]["throttling"], json!({}));
        assert_eq!(
            v["memory"]["usage"],
            json!({"limit": 20, "usage": 10, "failcnt": 0})
        );
        assert_eq!(v["memory"]["kernel"], json!({"limit": 0, "failcnt": 0}));
        assert!(v["memory"].get("raw").is_none());
        assert!(v["network_interfaces"].is_null());
        assert_eq!(v["blkio"], json!({}));
    }
}
