//! The audit ledger's own cost (bench/audit.sh): appends to `events` with the ledger's
//! trigger (actor + RFC 6962 leaf per row) against the same appends with the trigger
//! dropped, and a fast fill of a scratch store with N ledger entries for the verify/prove
//! and size figures. The trigger's SQL functions only exist on a connection opened by the
//! store, hence this helper rather than the sqlite3 CLI.
//!
//! `cargo run --release -p gcr-store --example ledger_bench -- append DIR_A DIR_B [N]`
//! `cargo run --release -p gcr-store --example ledger_bench -- fill DIR N`

use std::path::Path;
use std::time::Instant;

const INSERT: &str =
    "INSERT INTO events (time_ns, kind, object, name, from_state, to_state, cause) \
                      VALUES (?1, 'container', ?2, ?3, 'created', 'running', 'start')";

fn open(dir: &str) -> gcr_store::Store {
    gcr_store::Store::open(Path::new(dir)).expect("open store")
}

/// Appends `n` events, each in its own transaction when `one_tx` is false (what a command
/// does), else all in one (the trigger's CPU cost alone); returns µs per entry.
fn append(store: &gcr_store::Store, n: u64, one_tx: bool) -> f64 {
    let conn = store.conn();
    let id = "4f0c5a1e9d2b7c3a8e6f1d0b9a7c5e3f2d1b0a9c8e7f6d5c4b3a2918f7e6d5c4";
    let t = Instant::now();
    if one_tx {
        conn.execute_batch("BEGIN").expect("begin");
    }
    let mut stmt = conn.prepare_cached(INSERT).expect("prepare");
    for i in 0..n {
        stmt.execute(rusqlite::params![
            1_796_000_000_000_000_000i64 + i as i64,
            id,
            format!("bench_{i}")
        ])
        .expect("insert");
    }
    if one_tx {
        conn.execute_batch("COMMIT").expect("commit");
    }
    t.elapsed().as_secs_f64() * 1e6 / n as f64
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("append") if args.len() >= 3 => {
            let n: u64 = args.get(3).and_then(|s| s.parse().ok()).unwrap_or(20_000);
            let with = open(&args[1]);
            let without = open(&args[2]);
            without
                .conn()
                .execute_batch("DROP TRIGGER events_ledger")
                .expect("drop trigger");
            // Warm both (page cache, statement cache), then alternate three rounds.
            append(&with, 200, true);
            append(&without, 200, true);
            let (mut w1, mut o1, mut wn, mut on) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
            for _ in 0..3 {
                w1.push(append(&with, n, true));
                o1.push(append(&without, n, true));
                wn.push(append(&with, n / 20, false));
                on.push(append(&without, n / 20, false));
            }
            let med = |mut v: Vec<f64>| {
                v.sort_by(|a, b| a.total_cmp(b));
                v[v.len() / 2]
            };
            let (w1, o1, wn, on) = (med(w1), med(o1), med(wn), med(on));
            println!("append_batched_with_ledger_us {w1:.2}");
            println!("append_batched_without_ledger_us {o1:.2}");
            println!("append_per_tx_with_ledger_us {wn:.2}");
            println!("append_per_tx_without_ledger_us {on:.2}");
            println!("ledger_cost_per_entry_us {:.2}", w1 - o1);
        }
        Some("fill") if args.len() == 3 => {
            let n: u64 = args[2].parse().expect("N");
            let store = open(&args[1]);
            let t = Instant::now();
            // Realistic rows: a 64-hex container id, a name, a state change; the trigger
            // stamps actor and leaf on each.
            store
                .conn()
                .execute_batch(&format!(
                    "BEGIN;
                     WITH RECURSIVE c(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM c WHERE i < {n})
                     INSERT INTO events (time_ns, kind, object, name, from_state, to_state, cause)
                       SELECT 1796000000000000000 + i * 1000, 'container', lower(hex(randomblob(32))),
                              'bench_' || (i / 4), 'created', 'running', 'start' FROM c;
                     COMMIT;"
                ))
                .expect("fill");
            println!(
                "filled {n} entries in {:.2} s ({:.2} us per entry)",
                t.elapsed().as_secs_f64(),
                t.elapsed().as_secs_f64() * 1e6 / n as f64
            );
        }
        _ => {
            eprintln!("usage: ledger_bench append DIR_WITH DIR_WITHOUT [N] | fill DIR N");
            std::process::exit(2);
        }
    }
}
