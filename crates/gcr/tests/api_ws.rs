//! The WebSocket endpoints of `gcr system service` (issue 20): `GET
//! /containers/{id}/attach/ws` driven by docker-py's `attach_socket(ws=True)` and
//! websocket-client (a tty's shell answers a command typed into the socket, in text
//! frames even for a character split across reads; the detach keys end the socket and
//! leave the container running; a container without a tty sends raw output, no 8-byte
//! frames; `logs=1` replays the log), the handshake's refusals, and the live events of
//! `GET /v1/events` over a WebSocket (a run's run_state events from `since_id`). The
//! service and its containers are cleaned up by their guards, even when an assertion fails.

mod common;

use std::process::Command;

use common::servers::{free_port, need_tools};
use common::service::{docker_py, Service};
use common::{need_root, stderr, stdout, Env, IMAGE};

#[test]
fn attach_and_events_over_websockets() {
    if !need_root("attach_and_events_over_websockets")
        || !need_tools("attach_and_events_over_websockets", &["docker", "curl"])
    {
        return;
    }
    let Some(python) = docker_py("attach_and_events_over_websockets") else {
        return;
    };
    let env = Env::new();
    // docker-py opens its WebSocket to the host of its base URL: a TCP service.
    let port = free_port();
    let svc = Service::start(&env, &format!("tcp://127.0.0.1:{port}"), &[]);
    svc.ok(&["run", "-d", "-it", "--name", "shell", IMAGE, "sh"]);
    svc.ok(&[
        "run",
        "-d",
        "-i",
        "--name",
        "cat",
        IMAGE,
        "sh",
        "-c",
        "cat; echo bye >&2",
    ]);
    svc.ok(&[
        "run",
        "--name",
        "done",
        IMAGE,
        "sh",
        "-c",
        "echo logged; echo err >&2",
    ]);

    let script = r#"
import json, sys, time
import docker
try:
    import websocket
except ImportError:
    raise SystemExit("websocket-client is missing (scripts/deps.sh installs it)")
base = sys.argv[1]
c = docker.DockerClient(base_url=base)
api = c.api

def read_until(ws, needle, secs=10):
    out, deadline = b"", time.time() + secs
    while needle not in out:
        if time.time() > deadline:
            raise SystemExit("no %r in %r" % (needle, out))
        op, data = ws.recv_data()
        if op == websocket.ABNF.OPCODE_CLOSE:
            raise SystemExit("closed before %r: %r" % (needle, out))
        out += data
    return out

# A tty: the shell answers; "é" (two bytes) arrives whole in text frames.
ws = api.attach_socket("shell", params={"stdin": 1, "stdout": 1, "stderr": 1, "stream": 1}, ws=True)
ws.send("echo caf\u00e9 $((6*7))\n")
kinds = set()
out, deadline = "", time.time() + 10
while "caf\u00e9 42" not in out:
    assert time.time() < deadline, out
    op, data = ws.recv_data()
    kinds.add(op)
    out += data.decode()
assert kinds == {websocket.ABNF.OPCODE_TEXT}, kinds
# ctrl-p ctrl-q: the socket ends, the container runs on.
ws.send_binary(b"\x10\x11")
deadline = time.time() + 10
while True:
    assert time.time() < deadline, "the detach keys did not end the attach"
    try:
        op, _ = ws.recv_data()
    except websocket.WebSocketConnectionClosedException:
        break
    if op == websocket.ABNF.OPCODE_CLOSE:
        break
assert c.containers.get("shell").status == "running"

# No tty: raw output (dockerd's attach/ws has no 8-byte frames), stdin from the socket.
ws = api.attach_socket("cat", params={"stdin": 1, "stdout": 1, "stderr": 1, "stream": 1}, ws=True)
ws.send("hello over ws\n")
out = read_until(ws, b"hello over ws\n")
assert out == b"hello over ws\n", out
ws.close()

# logs=1 without stream: the log so far, then the end.
ws = api.attach_socket("done", params={"logs": 1, "stdout": 1, "stderr": 1}, ws=True)
out = read_until(ws, b"err\n")
assert b"logged\n" in out and b"\x01\x00\x00\x00" not in out, out
ws.close()

# The handshake: a plain GET is a 400, a missing container a 404.
for path, status in [("/containers/shell/attach/ws", 400)]:
    r = api._get(api._url(path))
    assert r.status_code == status, (path, r.status_code, r.text)
try:
    websocket.create_connection(base.replace("tcp://", "ws://") + "/containers/nosuch/attach/ws?stream=1")
    raise SystemExit("attached to a missing container")
except websocket.WebSocketBadStatusException as e:
    assert e.status_code == 404, e

# Live events over a WebSocket, from the first: the runs' run_state events.
ws = websocket.create_connection(base.replace("tcp://", "ws://") + "/v1/events?since_id=0&types=run_state")
seen, deadline = [], time.time() + 10
while not any(e["event"] == "run_state.exited" for e in seen):
    assert time.time() < deadline, seen
    op, data = ws.recv_data()
    assert op == websocket.ABNF.OPCODE_TEXT, op
    seen.append(json.loads(data))
ids = [e["id"] for e in seen]
assert ids == sorted(ids) and len(set(ids)) == len(ids), ids
assert {"run_state.pending", "run_state.running"} <= {e["event"] for e in seen}, seen
exited = [e for e in seen if e["event"] == "run_state.exited"][0]
assert exited["data"]["exit_code"] == 0, exited
ws.close()
try:
    websocket.create_connection(base.replace("tcp://", "ws://") + "/v1/events?types=nonsense")
    raise SystemExit("a bad filter was accepted")
except websocket.WebSocketBadStatusException as e:
    assert e.status_code == 400, e
print("websockets ok")
"#;
    let out = Command::new(&python)
        .args(["-c", script, &svc.host])
        .output()
        .expect("python");
    assert!(
        out.status.success() && stdout(&out).contains("websockets ok"),
        "the WebSocket script failed: {}{}",
        stdout(&out),
        stderr(&out)
    );
    // The detached shell still runs; the service is still up for the next request.
    let state = svc.ok(&["inspect", "--format", "{{.State.Status}}", "shell"]);
    assert_eq!(state.trim(), "running");
    svc.ok(&["rm", "-f", "shell", "cat", "done"]);
}
