//! `GET /metrics`: the engine's figures ([`gcr_engine::Engine::metrics`]: one read of the
//! store and of each running container's cgroup files) in the Prometheus text exposition
//! format 0.0.4. Every name starts with `gcr_`; container series carry `id`, `name` and
//! `image` labels.

use std::fmt::Write;

use gcr_engine::metrics::{ContainerFigures, EngineFigures};
use gcr_engine::State;
use hyper::StatusCode;

use crate::errors::HttpError;
use crate::http::{self, Resp};
use crate::server::Shared;

/// The exposition format's content type.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// The start latency histogram's bucket bounds, in seconds.
const LATENCY_BUCKETS: [f64; 12] = [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];

/// Docker's health states, each a series of `gcr_container_health_status`.
const HEALTH_STATES: [&str; 3] = ["starting", "healthy", "unhealthy"];

/// `GET /metrics`.
pub async fn metrics(st: &Shared) -> Result<Resp, HttpError> {
    let (cs, eng) = st.engine(|e| Ok(e.metrics()?)).await?;
    Ok(http::body(
        StatusCode::OK,
        CONTENT_TYPE,
        render(&cs, &eng).into_bytes(),
    ))
}

/// A label value escaped as the format wants (backslash, double quote, newline).
fn escape(v: &str) -> String {
    let mut out = String::with_capacity(v.len());
    for c in v.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
    out
}

fn header(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} {kind}");
}

/// What a per-container family reads from a container: None leaves it out.
type Getter = fn(&ContainerFigures) -> Option<f64>;

/// The per-container families: name, type, help, value.
const CONTAINER_FAMILIES: [(&str, &str, &str, Getter); 11] = [
    (
        "gcr_container_cpu_seconds_total",
        "counter",
        "CPU time used by the running container's cgroup, in seconds.",
        |c| live(c, |l| l.stats.cpu_usage_ns as f64 / 1e9),
    ),
    (
        "gcr_container_memory_usage_bytes",
        "gauge",
        "Memory used by the running container, without inactive file cache.",
        |c| live(c, |l| l.stats.memory_usage as f64),
    ),
    (
        "gcr_container_memory_limit_bytes",
        "gauge",
        "The running container's memory limit (no series when it has none).",
        |c| c.live.as_ref()?.stats.memory_limit.map(|v| v as f64),
    ),
    (
        "gcr_container_oom_kills_total",
        "counter",
        "Processes killed by the OOM killer: recorded oom exits plus the running cgroup's kills.",
        |c| Some((c.oom_exits + c.live.as_ref().map_or(0, |l| l.oom_kills)) as f64),
    ),
    (
        "gcr_container_pids",
        "gauge",
        "Tasks in the running container's cgroup.",
        |c| live(c, |l| l.stats.pids_current as f64),
    ),
    (
        "gcr_container_network_receive_bytes_total",
        "counter",
        "Bytes received by the running container's interfaces (lo excluded).",
        |c| live(c, |l| l.io.net_rx as f64),
    ),
    (
        "gcr_container_network_transmit_bytes_total",
        "counter",
        "Bytes sent by the running container's interfaces (lo excluded).",
        |c| live(c, |l| l.io.net_tx as f64),
    ),
    (
        "gcr_container_block_read_bytes_total",
        "counter",
        "Bytes read from block devices by the running container.",
        |c| live(c, |l| l.io.block_read as f64),
    ),
    (
        "gcr_container_block_write_bytes_total",
        "counter",
        "Bytes written to block devices by the running container.",
        |c| live(c, |l| l.io.block_write as f64),
    ),
    (
        "gcr_container_restarts_total",
        "counter",
        "Restarts of the container by its restart policy.",
        |c| Some(c.record.restart_count as f64),
    ),
    (
        "gcr_container_running",
        "gauge",
        "1 when the container runs (or is paused), else 0.",
        |c| {
            Some(
                if matches!(c.record.state, State::Running | State::Paused) {
                    1.0
                } else {
                    0.0
                },
            )
        },
    ),
];

fn live(c: &ContainerFigures, f: fn(&gcr_engine::metrics::Live) -> f64) -> Option<f64> {
    c.live.as_ref().map(f)
}

/// The whole exposition.
pub fn render(cs: &[ContainerFigures], eng: &EngineFigures) -> String {
    let mut out = String::with_capacity(1024 + cs.len() * 2048);
    let labels: Vec<String> = cs
        .iter()
        .map(|c| {
            format!(
                "id=\"{}\",name=\"{}\",image=\"{}\"",
                escape(&c.record.id),
                escape(&c.record.name),
                escape(&c.record.image_ref)
            )
        })
        .collect();
    for (name, kind, help, get) in CONTAINER_FAMILIES {
        header(&mut out, name, kind, help);
        for (c, l) in cs.iter().zip(&labels) {
            if let Some(v) = get(c) {
                let _ = writeln!(out, "{name}{{{l}}} {v}");
            }
        }
    }
    let name = "gcr_container_health_status";
    header(
        &mut out,
        name,
        "gauge",
        "1 for the container's current health state, 0 for the others (containers with a health check).",
    );
    for (c, l) in cs.iter().zip(&labels) {
        if let Some(h) = &c.record.extra.health {
            for s in HEALTH_STATES {
                let v = u8::from(h.status == s);
                let _ = writeln!(out, "{name}{{{l},state=\"{s}\"}} {v}");
            }
        }
    }
    engine(&mut out, eng);
    out
}

fn engine(out: &mut String, eng: &EngineFigures) {
    let name = "gcr_container_start_latency_seconds";
    header(
        out,
        name,
        "histogram",
        "Time from a container's create event to its start event (foreground runs, stored at once, are not counted).",
    );
    let secs: Vec<f64> = eng
        .start_latencies_ns
        .iter()
        .map(|ns| *ns as f64 / 1e9)
        .collect();
    for le in LATENCY_BUCKETS {
        let n = secs.iter().filter(|s| **s <= le).count();
        let _ = writeln!(out, "{name}_bucket{{le=\"{le}\"}} {n}");
    }
    let _ = writeln!(out, "{name}_bucket{{le=\"+Inf\"}} {}", secs.len());
    let _ = writeln!(out, "{name}_sum {}", secs.iter().sum::<f64>());
    let _ = writeln!(out, "{name}_count {}", secs.len());
    let counters = [
        (
            "gcr_build_cache_hits_total",
            "Build steps served from the build cache (sum over the stored build transcripts).",
            eng.build_cache_hits,
        ),
        (
            "gcr_build_cache_misses_total",
            "Build steps that ran (sum over the stored build transcripts).",
            eng.build_cache_misses,
        ),
        (
            "gcr_pull_bytes_total",
            "Bytes of blobs downloaded by pulls (recorded as image fetch events).",
            eng.pull_bytes,
        ),
        (
            "gcr_ledger_entries_total",
            "Entries of the audit ledger (rows of the events table).",
            eng.ledger_entries,
        ),
        (
            "gcr_policy_denials_total",
            "Operations the policy gate refused (policy deny events).",
            eng.policy_denials,
        ),
    ];
    for (name, help, v) in counters {
        header(out, name, "counter", help);
        let _ = writeln!(out, "{name} {v}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_labels() {
        assert_eq!(escape("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
    }

    #[test]
    fn engine_families() {
        let eng = EngineFigures {
            start_latencies_ns: vec![3_000_000, 200_000_000],
            build_cache_hits: 4,
            build_cache_misses: 1,
            pull_bytes: 1234,
            ledger_entries: 9,
            policy_denials: 2,
        };
        let text = render(&[], &eng);
        assert!(text.contains("gcr_container_start_latency_seconds_bucket{le=\"0.005\"} 1\n"));
        assert!(text.contains("gcr_container_start_latency_seconds_bucket{le=\"0.25\"} 2\n"));
        assert!(text.contains("gcr_container_start_latency_seconds_count 2\n"));
        assert!(text.contains("gcr_pull_bytes_total 1234\n"));
        assert!(text.contains("gcr_build_cache_misses_total 1\n"));
        assert!(text.contains("# TYPE gcr_container_cpu_seconds_total counter\n"));
    }
}
