//! Phase timings on stderr when `GCR_DEBUG_TIMING` is set: a glass box for the hot path.
//! Times are from [`init`] (called first thing in `main`), or from the first mark.

use std::sync::OnceLock;
use std::time::Instant;

static START: OnceLock<Option<Instant>> = OnceLock::new();

/// Starts the clock when `GCR_DEBUG_TIMING` is set; later calls do nothing.
pub fn init() {
    START.get_or_init(|| std::env::var_os("GCR_DEBUG_TIMING").map(|_| Instant::now()));
}

/// Prints `gcr timing: WHAT at T` when timing is on.
pub fn mark(what: &str) {
    init();
    if let Some(Some(t)) = START.get() {
        eprintln!("gcr timing: {what} at {:?}", t.elapsed());
    }
}
