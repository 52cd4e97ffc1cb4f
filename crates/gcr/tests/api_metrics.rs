//! `GET /metrics` of `gcr system service` (issue 20): containers run through the docker CLI
//! (one burning CPU under a memory limit, one with a health check, one that exits and is
//! restarted by its policy), the exposition fetched over the unix socket is checked by
//! `promtool check metrics` and its values against what was set. The service is killed and
//! the store cleaned up by guards, even when an assertion fails.

mod common;

use std::collections::HashMap;
use std::io::Write;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::servers::need_tools;
use common::service::Service;
use common::{need_root, stderr, stdout, Env, IMAGE};

impl Service {
    fn get(&self, path: &str) -> (String, String) {
        let o = Command::new("curl")
            .args(["-sS", "-i", "--max-time", "20", "--unix-socket"])
            .arg(self.socket())
            .arg(format!("http://gcr{path}"))
            .output()
            .expect("run curl");
        assert!(o.status.success(), "curl {path}: {}", stderr(&o));
        let text = stdout(&o);
        let (head, body) = text.split_once("\r\n\r\n").expect("an HTTP answer");
        (head.to_string(), body.to_string())
    }
}

/// The samples of an exposition: `name{labels}` -> value.
fn samples(text: &str) -> HashMap<String, f64> {
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .map(|l| {
            let (k, v) = l.rsplit_once(' ').expect("a sample line");
            (k.to_string(), v.parse::<f64>().expect("a number"))
        })
        .collect()
}

/// The value of family `name` for the container named `cname` (any other labels).
fn of(s: &HashMap<String, f64>, name: &str, cname: &str, extra: &str) -> Option<f64> {
    let want = format!("name=\"{cname}\"");
    s.iter()
        .find(|(k, _)| {
            k.starts_with(&format!("{name}{{")) && k.contains(&want) && k.contains(extra)
        })
        .map(|(_, v)| *v)
}

#[test]
fn metrics_exposition() {
    if !need_root("metrics_exposition")
        || !need_tools("metrics_exposition", &["docker", "curl", "promtool"])
    {
        return;
    }
    let env = Env::new();
    let svc = Service::on_socket(&env);
    let limit: u64 = 48 << 20;
    svc.ok(&[
        "run",
        "-d",
        "--name",
        "burner",
        "-m",
        &limit.to_string(),
        IMAGE,
        "sh",
        "-c",
        "while :; do :; done",
    ]);
    svc.ok(&[
        "run",
        "-d",
        "--name",
        "checked",
        "--health-cmd",
        "true",
        "--health-interval",
        "1s",
        IMAGE,
        "sleep",
        "60",
    ]);
    svc.ok(&[
        "run",
        "-d",
        "--name",
        "flaky",
        "--restart",
        "on-failure:2",
        IMAGE,
        "sh",
        "-c",
        "sleep 0.2; exit 1",
    ]);

    // Wait until the policy gave up on flaky and checked is healthy (the burner burns).
    let deadline = Instant::now() + Duration::from_secs(30);
    let (head, body) = loop {
        let (head, body) = svc.get("/metrics");
        let s = samples(&body);
        let settled = of(&s, "gcr_container_restarts_total", "flaky", "") == Some(2.0)
            && of(&s, "gcr_container_running", "flaky", "") == Some(0.0)
            && of(
                &s,
                "gcr_container_health_status",
                "checked",
                "state=\"healthy\"",
            ) == Some(1.0)
            && of(&s, "gcr_container_cpu_seconds_total", "burner", "").is_some_and(|v| v > 0.2);
        if settled {
            break (head, body);
        }
        assert!(Instant::now() < deadline, "metrics never settled:\n{body}");
        std::thread::sleep(Duration::from_millis(250));
    };
    let head = head.to_ascii_lowercase();
    assert!(head.starts_with("http/1.1 200"), "{head}");
    assert!(
        head.contains("content-type: text/plain; version=0.0.4"),
        "{head}"
    );

    // promtool's parser and linter accept it.
    let mut p = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run promtool");
    p.stdin.take().unwrap().write_all(body.as_bytes()).unwrap();
    let o = p.wait_with_output().unwrap();
    assert!(
        o.status.success(),
        "promtool check metrics: {}{}\n{body}",
        stdout(&o),
        stderr(&o)
    );

    let s = samples(&body);
    for name in ["burner", "checked", "flaky"] {
        assert!(
            body.contains(&format!("name=\"{name}\"")),
            "{name}:\n{body}"
        );
    }
    assert_eq!(
        of(&s, "gcr_container_memory_limit_bytes", "burner", ""),
        Some(limit as f64),
        "{body}"
    );
    assert_eq!(
        of(&s, "gcr_container_memory_limit_bytes", "checked", ""),
        None,
        "no limit, no series:\n{body}"
    );
    assert!(of(&s, "gcr_container_memory_usage_bytes", "burner", "").unwrap() > 0.0);
    assert!(of(&s, "gcr_container_pids", "burner", "").unwrap() >= 1.0);
    assert_eq!(of(&s, "gcr_container_running", "burner", ""), Some(1.0));
    assert_eq!(
        of(&s, "gcr_container_cpu_seconds_total", "flaky", ""),
        None,
        "an exited container has no cgroup figures:\n{body}"
    );
    assert_eq!(
        of(
            &s,
            "gcr_container_health_status",
            "checked",
            "state=\"unhealthy\""
        ),
        Some(0.0)
    );
    for (k, v) in &s {
        if k.contains("_total") || k.contains("_bucket") || k.contains("_count") {
            assert!(*v >= 0.0, "{k} {v}");
        }
    }
    // Three creates through the API then starts: the histogram counted them; the ledger
    // holds at least their create and start events.
    assert!(
        s["gcr_container_start_latency_seconds_count"] >= 3.0,
        "{body}"
    );
    assert!(s["gcr_container_start_latency_seconds_bucket{le=\"+Inf\"}"] >= 3.0);
    assert!(s["gcr_ledger_entries_total"] >= 6.0, "{body}");

    // Network bytes of a container that sent some (pings to its own bridge's gateway),
    // read twice: the second time from the process's net/dev file the service holds.
    svc.ok(&[
        "run",
        "-d",
        "--name",
        "talker",
        IMAGE,
        "sh",
        "-c",
        "ping -c 2 -W 1 $(ip route | awk '/default/ {print $3}'); sleep 60",
    ]);
    let deadline = Instant::now() + Duration::from_secs(15);
    let sent = loop {
        let (_, body) = svc.get("/metrics");
        let s = samples(&body);
        match of(
            &s,
            "gcr_container_network_transmit_bytes_total",
            "talker",
            "",
        ) {
            Some(v) if v > 0.0 => break v,
            _ => {}
        }
        assert!(Instant::now() < deadline, "talker sent nothing:\n{body}");
        std::thread::sleep(Duration::from_millis(250));
    };
    let (_, body) = svc.get("/metrics");
    let again = of(
        &samples(&body),
        "gcr_container_network_transmit_bytes_total",
        "talker",
        "",
    );
    assert!(again.is_some_and(|v| v >= sent), "{sent} then {again:?}");

    // The service holds each running group's files open between requests: a changed
    // limit shows at once, and a container restarted (its group made anew) keeps its
    // figures, on this request and the next.
    let bigger: u64 = 64 << 20;
    svc.ok(&["update", "-m", &bigger.to_string(), "burner"]);
    svc.ok(&["restart", "-t", "0", "checked"]);
    for _ in 0..2 {
        let (_, body) = svc.get("/metrics");
        let s = samples(&body);
        assert_eq!(
            of(&s, "gcr_container_memory_limit_bytes", "burner", ""),
            Some(bigger as f64),
            "{body}"
        );
        assert_eq!(of(&s, "gcr_container_running", "checked", ""), Some(1.0));
        assert!(
            of(&s, "gcr_container_pids", "checked", "").is_some_and(|v| v >= 1.0),
            "{body}"
        );
    }

    // The versioned path serves it too, and Docker's routes still work.
    let (vhead, vbody) = svc.get("/v1.41/metrics");
    assert!(vhead.starts_with("HTTP/1.1 200"), "{vhead}");
    assert!(vbody.contains("gcr_container_running{"), "{vbody}");
    assert!(svc.ok(&["ps", "--format", "{{.Names}}"]).contains("burner"));
}
