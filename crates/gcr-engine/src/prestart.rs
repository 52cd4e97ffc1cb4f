//! Work a foreground `gcr run` gets going early or hands off, so that it overlaps (or leaves)
//! the command's own path: the container's loopback-only network namespace, whose kernel
//! setup is the single largest cost of a start, made on a helper thread or taken from the
//! store's housekeeper (see [`crate::housekeeper`]), and the container's mount namespace,
//! whose teardown the housekeeper takes over.
//!
//! Whatever is not taken by the launch is dropped at exit, which frees it.

use std::os::fd::AsFd;
use std::path::Path;
use std::sync::{Mutex, OnceLock};

use gcr_runtime::{LoopbackNetns, Network};

use crate::housekeeper::Client;

static NETNS: Mutex<Option<LoopbackNetns>> = Mutex::new(None);
static DOOR: OnceLock<Option<Client>> = OnceLock::new();

/// Connects to the housekeeper of the store at `root` (its socket under `run_dir`), if one is there, asking it for a
/// network namespace when `netns`. True when it was asked.
pub fn housekeeper(root: &Path, run_dir: &Path, netns: bool) -> bool {
    DOOR.get_or_init(|| Client::connect(root, run_dir, netns))
        .is_some()
        && netns
}

/// The connection to the housekeeper, when [`housekeeper`] made one.
pub(crate) fn door() -> Option<&'static Client> {
    DOOR.get()?.as_ref()
}

/// Starts making a loopback-only network namespace for the next `--network none` launch.
pub fn loopback_netns() {
    if let Ok(mut g) = NETNS.lock() {
        *g = Some(LoopbackNetns::start());
    }
}

/// The network of a `--network none` container: a namespace made ahead (here or by the
/// housekeeper) when there is one, else a new one made by the child itself.
pub(crate) fn loopback_network() -> Network {
    let pending = NETNS.lock().ok().and_then(|mut g| g.take());
    if let Some(Ok(fd)) = pending.map(LoopbackNetns::wait) {
        return Network::JoinFd(fd);
    }
    match door().and_then(Client::netns) {
        Some(fd) => Network::JoinFd(fd),
        None => Network::NewLoopback,
    }
}

/// Gives the housekeeper (if connected) a reference to the mount namespace of process
/// `pid`, so that the container's mounts are torn down there, after this run.
pub(crate) fn hand_over_mounts(pid: i32) {
    let Some(door) = door() else {
        return;
    };
    if let Ok(f) = std::fs::File::open(format!("/proc/{pid}/ns/mnt")) {
        door.hold(&[f.as_fd()]);
    }
}
