//! Work a foreground `gcr run` starts on a helper thread while it reads the store, so that
//! it overlaps the command's own start (image, config): the container's loopback-only
//! network namespace, whose kernel setup is the single largest cost of a start.
//!
//! Whatever is not taken by the launch is dropped at exit, which frees it.

use std::sync::Mutex;

use gcr_runtime::{LoopbackNetns, Network};

static NETNS: Mutex<Option<LoopbackNetns>> = Mutex::new(None);

/// Starts making a loopback-only network namespace for the next `--network none` launch.
pub fn loopback_netns() {
    if let Ok(mut g) = NETNS.lock() {
        *g = Some(LoopbackNetns::start());
    }
}

/// The network of a `--network none` container: the namespace made ahead when there is
/// one, else a new one made by the child itself.
pub(crate) fn loopback_network() -> Network {
    let pending = NETNS.lock().ok().and_then(|mut g| g.take());
    match pending.map(LoopbackNetns::wait) {
        Some(Ok(fd)) => Network::JoinFd(fd),
        _ => Network::NewLoopback,
    }
}
