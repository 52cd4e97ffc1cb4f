//! `GET /containers/{id}/stats?stream=&one-shot=`: the engine's cgroup and I/O figures of
//! a container in Docker's stats shape (`cpu_stats` with the host's `system_cpu_usage`, so
//! the docker CLI computes CPU % as Docker does; `precpu_stats` from the sample before),
//! one sample (one second apart from its predecessor unless `one-shot`) or one a second.

use std::time::Duration;

use bytes::Bytes;
use gcr_engine::EngineError;
use hyper::StatusCode;
use serde_json::{json, Value};
use tokio::sync::mpsc;

use crate::errors::HttpError;
use crate::http::{self, Query, Resp};
use crate::server::Shared;

/// One sample's figures.
#[derive(Clone, Copy, Default)]
struct Sample {
    read_ns: i64,
    cpu_ns: u64,
    system_ns: u64,
    mem: u64,
    mem_limit: Option<u64>,
    pids: u64,
    pids_limit: Option<u64>,
    net: (u64, u64),
    blk: (u64, u64),
}

/// The host's CPU time in nanoseconds (the `cpu` line of /proc/stat, in USER_HZ ticks).
fn system_cpu_ns() -> u64 {
    let text = std::fs::read_to_string("/proc/stat").unwrap_or_default();
    let ticks: u64 = text
        .lines()
        .find(|l| l.starts_with("cpu "))
        .map(|l| {
            l.split_whitespace()
                .skip(1)
                .filter_map(|v| v.parse::<u64>().ok())
                .sum()
        })
        .unwrap_or(0);
    // SAFETY: sysconf has no memory effects.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as u64;
    ticks.saturating_mul(1_000_000_000 / hz)
}

fn host_memory() -> u64 {
    let text = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
    text.lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))
        .and_then(|v| v.split_whitespace().next()?.parse::<u64>().ok())
        .map(|kb| kb * 1024)
        .unwrap_or(0)
}

fn ncpu() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// A sample of container `id`, or None when it is not running (Docker's zero sample).
async fn sample(st: &Shared, id: &str) -> Result<(String, String, Option<Sample>), HttpError> {
    let id = id.to_string();
    st.engine(move |e| match e.stats(&id) {
        Ok((r, s, io)) => Ok((
            r.id,
            r.name,
            Some(Sample {
                read_ns: gcr_engine::container::record::now_ns(),
                cpu_ns: s.cpu_usage_ns,
                system_ns: system_cpu_ns(),
                mem: s.memory_usage,
                mem_limit: s.memory_limit,
                pids: s.pids_current,
                pids_limit: s.pids_limit,
                net: (io.net_rx, io.net_tx),
                blk: (io.block_read, io.block_write),
            }),
        )),
        Err(EngineError::Conflict(_)) => {
            let r = e.container(&id)?;
            Ok((r.id, r.name, None))
        }
        Err(err) => Err(err.into()),
    })
    .await
}

fn cpu(s: &Sample) -> Value {
    json!({
        "cpu_usage": { "total_usage": s.cpu_ns, "usage_in_kernelmode": 0, "usage_in_usermode": 0 },
        "system_cpu_usage": s.system_ns,
        "online_cpus": if s.read_ns == 0 { 0 } else { ncpu() },
        "throttling_data": { "periods": 0, "throttled_periods": 0, "throttled_time": 0 },
    })
}

fn time(ns: i64) -> String {
    if ns == 0 {
        "0001-01-01T00:00:00Z".into()
    } else {
        gcr_engine::logs::rfc3339_nanos(ns)
    }
}

fn doc(id: &str, name: &str, cur: &Sample, pre: &Sample) -> Value {
    let limit = match cur.mem_limit {
        Some(l) => l,
        None if cur.read_ns == 0 => 0,
        None => host_memory(),
    };
    json!({
        "id": id,
        "name": format!("/{name}"),
        "read": time(cur.read_ns),
        "preread": time(pre.read_ns),
        "pids_stats": { "current": cur.pids, "limit": cur.pids_limit },
        "num_procs": 0,
        "cpu_stats": cpu(cur),
        "precpu_stats": cpu(pre),
        "memory_stats": { "usage": cur.mem, "limit": limit, "stats": {} },
        "networks": { "eth0": {
            "rx_bytes": cur.net.0, "tx_bytes": cur.net.1,
            "rx_packets": 0, "tx_packets": 0, "rx_errors": 0, "tx_errors": 0,
            "rx_dropped": 0, "tx_dropped": 0,
        } },
        "blkio_stats": { "io_service_bytes_recursive": [
            { "major": 0, "minor": 0, "op": "read", "value": cur.blk.0 },
            { "major": 0, "minor": 0, "op": "write", "value": cur.blk.1 },
        ] },
    })
}

fn line(v: &Value) -> Bytes {
    let mut b = serde_json::to_vec(v).unwrap_or_default();
    b.push(b'\n');
    Bytes::from(b)
}

/// `GET /containers/{id}/stats`.
pub async fn stats(st: &Shared, id: &str, q: &Query) -> Result<Resp, HttpError> {
    let stream = q.flag("stream", true);
    // dockerd reads `one-shot` from API 1.41 on.
    let one_shot = q.flag("one-shot", false) && !q.version().before(41);
    if one_shot && stream {
        return Err(HttpError::bad_request(
            "cannot have stream=true and one-shot=true",
        ));
    }
    let (cid, name, first) = sample(st, id).await?;
    let zero = Sample::default();
    if !stream {
        let (pre, cur) = match first {
            Some(f) if !one_shot => {
                tokio::time::sleep(Duration::from_secs(1)).await;
                let (_, _, next) = sample(st, &cid).await?;
                (f, next.unwrap_or_default())
            }
            Some(f) => (zero, f),
            None => (zero, zero),
        };
        return Ok(http::json(StatusCode::OK, &doc(&cid, &name, &cur, &pre)));
    }
    let (tx, rx) = mpsc::channel(4);
    let st = st.clone();
    tokio::spawn(async move {
        let mut pre = zero;
        let mut cur = first;
        loop {
            let c = cur.unwrap_or_default();
            if tx.send(line(&doc(&cid, &name, &c, &pre))).await.is_err() || cur.is_none() {
                return;
            }
            pre = c;
            tokio::time::sleep(Duration::from_secs(1)).await;
            cur = match sample(&st, &cid).await {
                Ok((_, _, s)) => s,
                Err(_) => return,
            };
        }
    });
    Ok(http::stream("application/json", rx))
}
