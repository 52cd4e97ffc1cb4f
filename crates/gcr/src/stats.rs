//! `gcr stats`: Docker's columns (CPU %, MEM USAGE / LIMIT, MEM %, NET I/O, BLOCK I/O,
//! PIDS), redrawn every second until interrupted (on a terminal in place, else one table
//! after another), or printed once with `--no-stream`. CPU % is the CPU time used over
//! the wall time between two samples (100% = one CPU), as Docker computes it.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use gcr_engine::Engine;

use crate::cli::Format;
use crate::out::outln;
use crate::render::table_out;
use crate::Failure;

fn size(b: u64) -> String {
    gcr_engine::units::format_size_binary(b)
}

/// `gcr stats [--no-stream] [CONTAINER…]`.
pub fn run(
    engine: &Engine,
    names: &[String],
    no_stream: bool,
    format: Format,
) -> Result<i32, Failure> {
    use std::io::IsTerminal;
    let tty = std::io::stdout().is_terminal();
    // Last CPU sample per container: (cpu ns, when).
    let mut last: HashMap<String, (u64, Instant)> = HashMap::new();
    let mut first = true;
    loop {
        let ids: Vec<String> = if names.is_empty() {
            engine.ps(false)?.into_iter().map(|(r, _)| r.id).collect()
        } else {
            names.to_vec()
        };
        // The first CPU % needs two samples: take one, wait a little.
        if first {
            for n in &ids {
                if let Ok((r, s, _)) = engine.stats(n) {
                    last.insert(r.id, (s.cpu_usage_ns, Instant::now()));
                }
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        let mut rows = Vec::new();
        for n in &ids {
            let (r, s, io) = match engine.stats(n) {
                Ok(x) => x,
                // Named containers must exist; a listed one may have stopped meanwhile.
                Err(e) if !names.is_empty() => return Err(e.into()),
                Err(_) => continue,
            };
            let now = Instant::now();
            let cpu = last
                .get(&r.id)
                .map(|(ns, t)| {
                    let wall = now.duration_since(*t).as_nanos().max(1) as f64;
                    s.cpu_usage_ns.saturating_sub(*ns) as f64 * 100.0 / wall
                })
                .unwrap_or(0.0);
            last.insert(r.id.clone(), (s.cpu_usage_ns, now));
            let limit = s.memory_limit.unwrap_or(0);
            let mem_pct = if limit > 0 {
                s.memory_usage as f64 * 100.0 / limit as f64
            } else {
                0.0
            };
            if format == Format::Json {
                outln!(
                    "{}",
                    serde_json::json!({
                        "ID": &r.id[..12], "Name": r.name, "CPUPerc": format!("{cpu:.2}%"),
                        "MemUsage": s.memory_usage, "MemLimit": s.memory_limit,
                        "MemPerc": format!("{mem_pct:.2}%"), "CPUNanos": s.cpu_usage_ns,
                        "NetInput": io.net_rx, "NetOutput": io.net_tx,
                        "BlockRead": io.block_read, "BlockWrite": io.block_write,
                        "PIDs": s.pids_current,
                    })
                )?;
                continue;
            }
            rows.push(vec![
                r.id[..12].to_string(),
                r.name.clone(),
                format!("{cpu:.2}%"),
                format!(
                    "{} / {}",
                    size(s.memory_usage),
                    if limit > 0 {
                        size(limit)
                    } else {
                        "unlimited".into()
                    }
                ),
                format!("{mem_pct:.2}%"),
                format!("{} / {}", size(io.net_rx), size(io.net_tx)),
                format!("{} / {}", size(io.block_read), size(io.block_write)),
                s.pids_current.to_string(),
            ]);
        }
        if format == Format::Table {
            if tty && !no_stream {
                // Redrawn in place, as docker stats does.
                outln!("\x1b[2J\x1b[H")?;
            }
            table_out(
                &[
                    "CONTAINER ID",
                    "NAME",
                    "CPU %",
                    "MEM USAGE / LIMIT",
                    "MEM %",
                    "NET I/O",
                    "BLOCK I/O",
                    "PIDS",
                ],
                &rows,
            )?;
        }
        crate::out::flush()?;
        if no_stream {
            return Ok(0);
        }
        first = false;
        for _ in 0..10 {
            if crate::out::reader_gone() {
                return Ok(0);
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}
