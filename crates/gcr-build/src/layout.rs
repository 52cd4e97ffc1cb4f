//! Small helpers for placing entries in a layer: image paths without the leading `/`, and
//! the parent directories every entry needs (root-owned, `0755`, mtime = created).

use std::collections::BTreeMap;

use gcr_store::LayerEntry;

/// `dest` (absolute, maybe with a trailing `/`) joined with `rel`, without the leading `/`.
pub fn join_dest(dest: &str, rel: &str) -> String {
    let d = dest.trim_matches('/');
    match (d.is_empty(), rel.is_empty()) {
        (true, _) => rel.to_string(),
        (false, true) => d.to_string(),
        (false, false) => format!("{d}/{rel}"),
    }
}

/// Adds a directory entry for every missing parent of `path`.
pub fn add_parents(out: &mut BTreeMap<String, LayerEntry>, path: &str, mtime: u64) {
    let mut acc = String::new();
    let parts: Vec<&str> = path.split('/').collect();
    for p in &parts[..parts.len().saturating_sub(1)] {
        if !acc.is_empty() {
            acc.push('/');
        }
        acc.push_str(p);
        out.entry(acc.clone())
            .or_insert_with(|| LayerEntry::dir(0o755, 0, 0, mtime));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dest_paths_and_parents() {
        assert_eq!(join_dest("/app/", "x/y"), "app/x/y");
        assert_eq!(join_dest("/", "x"), "x");
        assert_eq!(join_dest("/app", ""), "app");
        let mut m = BTreeMap::new();
        add_parents(&mut m, "a/b/c", 5);
        assert_eq!(m.keys().cloned().collect::<Vec<_>>(), vec!["a", "a/b"]);
        assert!(m.values().all(|e| e.mode == 0o755 && e.mtime == 5));
    }
}
