//! Fuzz target: arbitrary bytes as a layer (plain or gzip'd tar) unpacked by gcr-store's
//! hostile-input-safe unpacker. It must never panic, and nothing may appear outside the
//! target directory: after each run the sandbox holds only `target/`.
#![no_main]

use libfuzzer_sys::fuzz_target;
use std::path::PathBuf;

fn sandbox() -> PathBuf {
    std::env::temp_dir().join(format!("gcr-fuzz-tar-{}", std::process::id()))
}

fuzz_target!(|data: &[u8]| {
    let sb = sandbox();
    let target = sb.join("target");
    let _ = std::fs::remove_dir_all(&target);
    std::fs::create_dir_all(&target).expect("create fuzz target dir");
    let _ = gcr_store::unpack_layer(data, &target);
    let outside: Vec<_> = std::fs::read_dir(&sb)
        .expect("list sandbox")
        .flatten()
        .map(|e| e.file_name())
        .filter(|n| n != "target")
        .collect();
    assert!(outside.is_empty(), "unpack escaped the target: {outside:?}");
    let _ = std::fs::remove_dir_all(&target);
});
