//! Kubernetes' CRI over gcr-runc: `tests/cri/cri_flow.py` plays the kubelet against a
//! private containerd whose CRI plugin has a `gcr` runtime handler (the runc v2 shim with
//! BinaryName = gcr-runc) next to `runc`, over the runtime.v1 gRPC API (grpcio, stubs made
//! from `tests/cri/api.proto` at run time): RunPodSandbox (a pause image built by gcr),
//! CreateContainer, StartContainer, ContainerStatus, ExecSync, StopContainer,
//! RemoveContainer, StopPodSandbox, RemovePodSandbox; and checks that only the handler's
//! runtime ran it. The same flow on the `runc` handler is the reference. The script stops
//! and removes everything it started, whatever the outcome.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::{need_root, Env, IMAGE};

/// The peers' Python (scripts/deps.sh installs grpcio there); None when it lacks grpc.
fn python() -> Option<PathBuf> {
    let base = std::env::var_os("GCR_PEERS")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/peers"));
    let py = base.join("venv/bin/python");
    let ok = Command::new(&py)
        .args(["-c", "import grpc, grpc_tools.protoc"])
        .output()
        .is_ok_and(|o| o.status.success());
    if ok && Command::new("containerd").arg("--version").output().is_ok() {
        return Some(py);
    }
    let why = "grpcio/grpcio-tools or containerd missing; run scripts/deps.sh";
    assert!(
        std::env::var("CI").as_deref() != Ok("true"),
        "{why}; skipping is not allowed when CI=true"
    );
    eprintln!("skipped: {why}");
    None
}

fn flow(handler: &str) {
    if !need_root(&format!("cri flow on {handler}")) {
        return;
    }
    let Some(py) = python() else {
        return;
    };
    let env = Env::new();
    let work = tempfile::Builder::new()
        .prefix("gcr-cri-")
        .tempdir()
        .unwrap();
    let tar = work.path().join("busybox.tar");
    env.ok(&["save", "-o", tar.to_str().unwrap(), IMAGE]);
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/cri/cri_flow.py");
    let out = Command::new(py)
        .arg(script)
        .arg("--gcr")
        .arg(common::gcr_bin())
        .arg("--work")
        .arg(work.path().join("w"))
        .arg("--busybox-tar")
        .arg(&tar)
        .args(["--handler", handler])
        .output()
        .expect("run cri_flow.py");
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert_ne!(
        out.status.code(),
        Some(77),
        "the CRI flow cannot run on this host: {said}"
    );
    assert!(
        out.status.success(),
        "the CRI flow on handler {handler} failed: {said}"
    );
    assert!(said.contains("exec-ok"), "{said}");
}

#[test]
fn a_pod_runs_through_containerds_cri_on_gcr_runc() {
    flow("gcr");
}

#[test]
fn the_same_pod_on_runc_for_reference() {
    flow("runc");
}
