//! In-process image lookup benchmark: fills a store with N distinct images (default 10,000)
//! and times `resolve_image` by name, by short id and by full id.
//!
//! `cargo run --release -p gcr-store --example lookup_bench -- STORE_DIR [N]`

use std::time::Instant;

fn tar_with(n: usize) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    let data = n.to_string();
    let mut h = tar::Header::new_gnu();
    h.set_size(data.len() as u64);
    h.set_mode(0o644);
    h.set_cksum();
    b.append_data(&mut h, "n", data.as_bytes())
        .expect("tar entry");
    b.into_inner().expect("tar")
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

fn main() {
    let mut args = std::env::args().skip(1);
    let dir = args.next().expect("usage: lookup_bench STORE_DIR [N]");
    let n: usize = args.next().and_then(|s| s.parse().ok()).unwrap_or(10_000);
    let store = gcr_store::Store::open(std::path::Path::new(&dir)).expect("open store");
    let have = store.list_images().expect("list").len();
    let t = Instant::now();
    let mut ids = Vec::new();
    for i in have..n {
        let id = store
            .import_rootfs(
                &tar_with(i)[..],
                Some(&format!("bench/lookup{i}:v1")),
                Some(0),
            )
            .expect("import");
        ids.push(id);
    }
    if have < n {
        eprintln!("filled {} images in {:?}", n - have, t.elapsed());
    }
    let ids: Vec<String> = store
        .list_images()
        .expect("list")
        .into_iter()
        .map(|s| s.id)
        .collect();
    assert!(ids.len() >= n, "store has {} images", ids.len());
    let mut by_name = Vec::new();
    let mut by_short = Vec::new();
    let mut by_full = Vec::new();
    for k in 0..1000usize {
        let i = (k * 7919) % n;
        let t = Instant::now();
        store
            .resolve_image(&format!("bench/lookup{i}:v1"))
            .expect("by name");
        by_name.push(t.elapsed().as_secs_f64() * 1e3);
        let id = &ids[(k * 104_729) % ids.len()];
        let t = Instant::now();
        store.resolve_image(&id[7..19]).expect("by short id");
        by_short.push(t.elapsed().as_secs_f64() * 1e3);
        let t = Instant::now();
        store.resolve_image(id).expect("by id");
        by_full.push(t.elapsed().as_secs_f64() * 1e3);
    }
    println!(
        "image lookup among {} images (in process, median of 1000): by name {:.4} ms, by short id {:.4} ms, by full id {:.4} ms (bar 1 ms)",
        ids.len(),
        median(by_name),
        median(by_short),
        median(by_full)
    );
}
