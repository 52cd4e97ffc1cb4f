#!/usr/bin/env python3
"""A pod through containerd's CRI plugin (Kubernetes CRI runtime.v1 over gRPC).

    cri_flow.py --gcr PATH_TO_GCR --work DIR --busybox-tar BUSYBOX.tar [--handler gcr|runc]

Starts a private containerd (root, state and sockets under DIR) whose CRI plugin has two
runtime handlers, `runc` (the default) and `gcr` (containerd-shim-runc-v2 with
BinaryName = DIR/gcr-runc, i.e. gcr speaking runc's command line), then plays the part of
the kubelet for one pod on the chosen handler:

    Version, RunPodSandbox (host network), PodSandboxStatus READY, CreateContainer
    (busybox: sh -c 'echo hello-from-gcr; sleep 300'), StartContainer, ContainerStatus
    RUNNING, the container's log, ExecSync (stdout "exec-ok\\n", exit code 3),
    StopContainer (timeout 2), ContainerStatus EXITED, RemoveContainer, StopPodSandbox,
    RemovePodSandbox

and checks that the handler's runtime binary, and not the other one, ran the pod: both
runtimes are reached through wrapper scripts that append their argv to DIR/calls.log, and
the runtime's own `state` command must know the container while it runs.

The Python stubs are generated from api.proto (next to this file) with grpc_tools.protoc
at run time. Needs root, containerd 1.6+ with containerd-shim-runc-v2, ctr, runc, a
static busybox (Debian's busybox-static) and the Python packages grpcio and grpcio-tools.
BUSYBOX.tar is a docker-archive (what `gcr save` writes); its first RepoTags entry names
the image.

Exit status: 0 when the flow passed, 1 when it failed (the reason, containerd's errors
and the runtime's log lines are printed), 2 on bad arguments, 77 when this host cannot run
it (not root, a tool or Python package missing). Whatever the outcome, everything started
is stopped and removed on the way out: pod and container through the CRI when possible,
containerd, the shims that serve our socket, containers left in our runtime root, our
cgroups, mounts under DIR, and DIR's contents.
"""

import argparse
import glob
import json
import os
import shutil
import signal
import struct
import subprocess
import sys
import tarfile
import time
import traceback
import uuid

HERE = os.path.dirname(os.path.abspath(__file__))
NS = "k8s.io"  # the containerd namespace the CRI plugin uses
PAUSE_NAME = "gcr-test/pause"
PAUSE_VERSION = "1"
# The pause process: PID 1 of the pod's own PID namespace, exits on SIGTERM.
PAUSE_ENTRYPOINT = ["/bin/sh", "-c", "trap 'exit 0' TERM; while :; do /bin/sleep 3600 & wait; done"]
RPC_TIMEOUT = 60
# Everything this program creates directly in DIR (and removes at the end).
OUR_ENTRIES = ("stubs", "bin-real", "gcr-runc", "runc", "calls.log", "pause-ctx", "gcr-store", "pause.tar",
               "cni", "config.toml", "containerd.sock", "containerd.sock.ttrpc", "debug.sock", "root", "state",
               "opt", "containerd.log", "pod-logs", "runtime-root")


class Failure(Exception):
    """The flow failed; the message says where and why."""


class Skip(Exception):
    """This host cannot run the flow."""


def log(msg):
    print(msg, flush=True)


def docker_ref(tag):
    """A short name as containerd's import stores it: test/busybox:1 -> docker.io/test/busybox:1."""
    name = tag
    first = name.split("/", 1)[0]
    if "/" not in name:
        name = "docker.io/library/" + name
    elif not ("." in first or ":" in first or first == "localhost"):
        name = "docker.io/" + name
    last = name.rsplit("/", 1)[1]
    if ":" not in last and "@" not in name:
        name += ":latest"
    return name


def elf_is_static(path):
    """True when the ELF file at path has no program interpreter (PT_INTERP)."""
    with open(path, "rb") as f:
        hdr = f.read(64)
        if hdr[:4] != b"\x7fELF" or hdr[4] != 2 or hdr[5] != 1:
            raise Skip(f"{path} is not a little-endian 64-bit ELF file")
        phoff, = struct.unpack_from("<Q", hdr, 0x20)
        phentsize, phnum = struct.unpack_from("<HH", hdr, 0x36)
        f.seek(phoff)
        table = f.read(phentsize * phnum)
    for i in range(phnum):
        p_type, = struct.unpack_from("<I", table, i * phentsize)
        if p_type == 3:  # PT_INTERP
            return False
    return True


def run(cmd, env=None, check=True, timeout=120):
    p = subprocess.run(cmd, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, timeout=timeout)
    out, err = p.stdout.decode(errors="replace"), p.stderr.decode(errors="replace")
    if check and p.returncode != 0:
        raise Failure(f"{' '.join(cmd)} failed ({p.returncode}): {out.strip()} {err.strip()}")
    return p.returncode, out, err


def wait_for(what, fn, timeout, interval=0.1):
    """Calls fn until it returns something true (returned) or timeout seconds pass."""
    deadline = time.monotonic() + timeout
    last = None
    while True:
        try:
            v = fn()
            if v:
                return v
        except Failure as e:
            last = e
        if time.monotonic() > deadline:
            raise Failure(f"timed out after {timeout}s waiting for {what}" + (f": {last}" if last else ""))
        time.sleep(interval)


def mounts_under(base):
    """Mount points under base from /proc/self/mountinfo, deepest first."""
    found = []
    try:
        with open("/proc/self/mountinfo") as f:
            for line in f:
                mp = line.split(" ")[4]
                mp = mp.replace("\\040", " ").replace("\\011", "\t").replace("\\012", "\n").replace("\\134", "\\")
                if mp == base or mp.startswith(base + "/"):
                    found.append(mp)
    except OSError:
        pass
    return sorted(set(found), key=lambda m: (-m.count("/"), -len(m)))


def cgroup_mounts():
    out = []
    with open("/proc/self/mountinfo") as f:
        for line in f:
            left, _, right = line.partition(" - ")
            if right.split(" ")[0] in ("cgroup", "cgroup2"):
                out.append(left.split(" ")[4])
    return out


class Flow:
    def __init__(self, a):
        self.a = a
        self.work = a.work
        self.handler = a.handler
        self.sock = os.path.join(self.work, "containerd.sock")
        self.runtime_root = os.path.join(self.work, "runtime-root")  # the shim adds /<namespace>
        self.calls_log = os.path.join(self.work, "calls.log")
        self.log_dir = os.path.join(self.work, "pod-logs")
        self.cgroup_parent = f"/gcr-cri-test-{os.getpid()}"
        # The real binaries behind the logging wrappers; the gcr one's name must be
        # gcr-runc, as gcr picks runc's command line by the name it is invoked under.
        self.real = {"gcr": os.path.join(self.work, "bin-real", "gcr-runc"), "runc": a.runc}
        self.wrapper = {"gcr": os.path.join(self.work, "gcr-runc"), "runc": os.path.join(self.work, "runc")}
        self.other = "runc" if self.handler == "gcr" else "gcr"
        self.daemon = None
        self.daemon_log = None
        self.channel = None
        self.rt = None
        self.img = None
        self.pb = None
        self.pod_id = None
        self.pod_config = None
        self.ctr_ids = []

    # ---- setup -------------------------------------------------------------------------

    def preflight(self):
        if os.geteuid() != 0:
            raise Skip("needs root (containerd, mounts, cgroups)")
        # containerd finds the shim on PATH.
        for tool in (self.a.containerd, self.a.ctr, "containerd-shim-runc-v2"):
            if shutil.which(tool) is None:
                raise Skip(f"{tool} is not installed (scripts/deps.sh installs containerd)")
        for path, what in ((self.a.gcr, "--gcr"), (self.a.runc, "--runc"), (self.a.busybox_tar, "--busybox-tar"),
                           (self.a.busybox_static, "--busybox-static")):
            if not path or not os.path.exists(path):
                raise Skip(f"{what} {path!r} does not exist")
        try:
            import grpc  # noqa: F401
            import grpc_tools.protoc  # noqa: F401
        except ImportError as e:
            raise Skip(f"Python package missing ({e}); pip install grpcio grpcio-tools")
        if len(self.sock) + len(".ttrpc") >= 108:
            raise Failure(f"--work {self.work} is too long for a unix socket path")

    def stubs(self):
        import grpc_tools.protoc as protoc
        from importlib.resources import files
        out = os.path.join(self.work, "stubs")
        os.makedirs(out, exist_ok=True)
        proto_dir = os.path.dirname(self.a.proto)
        include = str(files("grpc_tools") / "_proto")
        rc = protoc.main(["protoc", f"-I{proto_dir}", f"-I{include}", f"--python_out={out}",
                          f"--grpc_python_out={out}", os.path.basename(self.a.proto)])
        if rc != 0:
            raise Failure(f"grpc_tools.protoc failed on {self.a.proto} ({rc})")
        sys.path.insert(0, out)
        import api_pb2
        import api_pb2_grpc
        self.pb, self.pb_grpc = api_pb2, api_pb2_grpc
        log(f"stubs: generated from {self.a.proto}")

    def wrappers(self):
        os.makedirs(os.path.dirname(self.real["gcr"]), exist_ok=True)
        os.symlink(os.path.abspath(self.a.gcr), self.real["gcr"])
        for name in ("gcr", "runc"):
            w = self.wrapper[name]
            label = "gcr-runc" if name == "gcr" else "runc"
            with open(w, "w") as f:
                f.write("#!/bin/sh\n"
                        f"# Logs each call of the {label} runtime, then runs it with the same argv.\n"
                        f"printf '%s\\n' \"{label} $*\" >> '{self.calls_log}'\n"
                        f"exec '{self.real[name]}' \"$@\"\n")
            os.chmod(w, 0o755)
        open(self.calls_log, "w").close()

    def pause_image(self, env):
        """Builds the sandbox ("pause") image with gcr build and saves it as a docker-archive.

        A pause image's only job is a process that holds the pod's namespaces and exits on
        SIGTERM. The gcr binary is not such a program: it has no pause mode, and its builds
        are dynamically linked (`file target/release/gcr` says "dynamically linked", so the
        image would need its libraries too). So the image holds the static busybox twice,
        as /bin/sh and /bin/sleep, and its entrypoint is a shell loop that sleeps until
        SIGTERM.
        """
        bb = self.a.busybox_static
        if not elf_is_static(bb):
            raise Skip(f"{bb} is not statically linked (install busybox-static)")
        ctx = os.path.join(self.work, "pause-ctx")
        os.makedirs(ctx)
        shutil.copy2(bb, os.path.join(ctx, "busybox"))
        spec = ("format: gcr-v1.0\n"
                f"name: {PAUSE_NAME}\n"
                f"version: \"{PAUSE_VERSION}\"\n"
                "base: scratch\n"
                "build:\n"
                "  copy:\n"
                "    - src: ./busybox\n"
                "      dest: /bin/sh\n"
                "    - src: ./busybox\n"
                "      dest: /bin/sleep\n"
                "runtime:\n"
                f"  entrypoint: {json.dumps(PAUSE_ENTRYPOINT)}\n")
        with open(os.path.join(ctx, "pause.gcr"), "w") as f:
            f.write(spec)
        gcr = os.path.abspath(self.a.gcr)
        run([gcr, "build", "--progress", "plain", ctx], env=env)
        tar = os.path.join(self.work, "pause.tar")
        run([gcr, "save", "-o", tar, f"{PAUSE_NAME}:{PAUSE_VERSION}"], env=env)
        return tar, docker_ref(f"{PAUSE_NAME}:{PAUSE_VERSION}")

    def busybox_ref(self):
        if self.a.busybox_ref:
            return self.a.busybox_ref
        try:
            with tarfile.open(self.a.busybox_tar) as t:
                manifest = json.load(t.extractfile("manifest.json"))
            return docker_ref(manifest[0]["RepoTags"][0])
        except (KeyError, IndexError, ValueError, tarfile.TarError) as e:
            raise Failure(f"{self.a.busybox_tar}: not a docker-archive with a RepoTags name ({e}); "
                          "pass --busybox-ref")

    def config(self, pause_ref):
        w = self.work
        cni = os.path.join(w, "cni")
        os.makedirs(os.path.join(cni, "bin"))
        os.makedirs(os.path.join(cni, "net.d"))
        toml = f'''version = 2
root = "{w}/root"
state = "{w}/state"

[grpc]
  address = "{self.sock}"
[ttrpc]
  address = "{self.sock}.ttrpc"
[debug]
  address = "{w}/debug.sock"
  level = "debug"
[plugins."io.containerd.internal.v1.opt"]
  path = "{w}/opt"

[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "{pause_ref}"
  restrict_oom_score_adj = true
  disable_apparmor = true
  # A free port for the streaming server (Exec/Attach/PortForward URLs; ExecSync does not
  # use it), so that this containerd does not collide with another one on 10010.
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"
  # The pod uses the host's network, so no CNI plugin runs. An empty private directory
  # keeps containerd away from the host's /etc/cni (it only logs that no network config
  # was found, and reports NetworkReady false in Status, which this flow does not call).
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "{cni}/bin"
    conf_dir = "{cni}/net.d"
  [plugins."io.containerd.grpc.v1.cri".containerd]
    default_runtime_name = "runc"
    # Root: the runtimes' state under DIR (the shim appends /k8s.io), not the host-wide
    # /run/containerd/runc. BinaryName: the logging wrappers (DIR/runc runs runc,
    # DIR/gcr-runc runs gcr through a link named gcr-runc).
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        BinaryName = "{self.wrapper['runc']}"
        Root = "{self.runtime_root}"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.gcr]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.gcr.options]
        BinaryName = "{self.wrapper['gcr']}"
        Root = "{self.runtime_root}"
'''
        path = os.path.join(w, "config.toml")
        with open(path, "w") as f:
            f.write(toml)
        return path

    def start_containerd(self, config):
        import grpc
        self.daemon_log = os.path.join(self.work, "containerd.log")
        with open(self.daemon_log, "wb") as lf:
            self.daemon = subprocess.Popen([self.a.containerd, "--config", config], stdin=subprocess.DEVNULL,
                                           stdout=lf, stderr=lf, start_new_session=True)
        deadline = time.monotonic() + 30
        while not os.path.exists(self.sock):
            if self.daemon.poll() is not None:
                raise Failure(f"containerd exited ({self.daemon.returncode}) before serving; see its log")
            if time.monotonic() > deadline:
                raise Failure("containerd did not create its socket within 30s")
            time.sleep(0.05)
        self.channel = grpc.insecure_channel("unix://" + self.sock)
        grpc.channel_ready_future(self.channel).result(timeout=30)
        self.rt = self.pb_grpc.RuntimeServiceStub(self.channel)
        self.img = self.pb_grpc.ImageServiceStub(self.channel)

    def ctr(self, *args, check=True):
        return run([self.a.ctr, "-a", self.sock, "-n", NS, *args], check=check)

    # ---- the flow ----------------------------------------------------------------------

    def call(self, what, fn, req, timeout=RPC_TIMEOUT):
        import grpc
        try:
            return fn(req, timeout=timeout)
        except grpc.RpcError as e:
            raise Failure(f"{what}: {e.code().name}: {e.details()}")

    def sandbox_status(self):
        return self.call("PodSandboxStatus", self.rt.PodSandboxStatus,
                         self.pb.PodSandboxStatusRequest(pod_sandbox_id=self.pod_id)).status

    def container_status(self, cid):
        return self.call("ContainerStatus", self.rt.ContainerStatus,
                         self.pb.ContainerStatusRequest(container_id=cid)).status

    def run_flow(self):
        pb = self.pb
        gcr_env = dict(os.environ, GCR_ROOT=os.path.join(self.work, "gcr-store"),
                       GCR_RUN_DIR=os.path.join(self.work, "gcr-store", "run"))
        gcr_env.pop("GCR_POLICY", None)
        gcr_env.pop("GCR_RUN_POLICY", None)
        self.wrappers()
        pause_tar, pause_ref = self.pause_image(gcr_env)
        log(f"pause image: built with gcr build ({pause_ref}, static busybox, entrypoint {PAUSE_ENTRYPOINT})")
        busybox_ref = self.busybox_ref()
        config = self.config(pause_ref)
        self.start_containerd(config)
        v = self.call("Version", self.rt.Version, pb.VersionRequest(version="v1"))
        log(f"Version: {v.runtime_name} {v.runtime_version}, CRI {v.runtime_api_version}")

        for tar in (pause_tar, self.a.busybox_tar):
            self.ctr("images", "import", tar)
        # The CRI plugin learns of imported images from containerd's events: wait for both.
        for ref in (pause_ref, busybox_ref):
            wait_for(f"the CRI plugin to list {ref}", lambda ref=ref: self.call(
                "ImageStatus", self.img.ImageStatus, pb.ImageStatusRequest(image=pb.ImageSpec(image=ref))).image.id,
                timeout=30)
        log(f"images: {pause_ref} and {busybox_ref} imported into namespace {NS} and seen by the CRI plugin")

        os.makedirs(self.log_dir)
        ns = pb.NamespaceOption(network=pb.NODE, pid=pb.CONTAINER, ipc=pb.POD)
        self.pod_config = pb.PodSandboxConfig(
            metadata=pb.PodSandboxMetadata(name=f"cri-flow-{self.handler}", uid=str(uuid.uuid4()),
                                           namespace="default", attempt=1),
            log_directory=self.log_dir,
            labels={"app": "cri-flow"},
            linux=pb.LinuxPodSandboxConfig(
                cgroup_parent=self.cgroup_parent,
                security_context=pb.LinuxSandboxSecurityContext(namespace_options=ns, privileged=False)))
        r = self.call("RunPodSandbox", self.rt.RunPodSandbox,
                      pb.RunPodSandboxRequest(config=self.pod_config, runtime_handler=self.handler), timeout=120)
        self.pod_id = r.pod_sandbox_id
        log(f"RunPodSandbox: {self.pod_id} (handler {self.handler}, host network)")

        st = self.sandbox_status()
        if st.state != pb.SANDBOX_READY:
            raise Failure(f"PodSandboxStatus: state {pb.PodSandboxState.Name(st.state)}, want SANDBOX_READY")
        if st.runtime_handler != self.handler:
            raise Failure(f"PodSandboxStatus: runtime_handler {st.runtime_handler!r}, want {self.handler!r}")
        if st.linux.namespaces.options.network != pb.NODE:
            raise Failure("PodSandboxStatus: network namespace is not NODE")
        log(f"PodSandboxStatus: SANDBOX_READY, runtime_handler {st.runtime_handler}, network NODE")

        cconf = pb.ContainerConfig(
            metadata=pb.ContainerMetadata(name="hello", attempt=0),
            image=pb.ImageSpec(image=busybox_ref),
            command=["sh", "-c", "echo hello-from-gcr; sleep 300"],
            log_path="hello.log",
            linux=pb.LinuxContainerConfig(security_context=pb.LinuxContainerSecurityContext(
                privileged=False, namespace_options=ns)))
        r = self.call("CreateContainer", self.rt.CreateContainer,
                      pb.CreateContainerRequest(pod_sandbox_id=self.pod_id, config=cconf,
                                                sandbox_config=self.pod_config), timeout=120)
        cid = r.container_id
        self.ctr_ids.append(cid)
        log(f"CreateContainer: {cid}")
        self.call("StartContainer", self.rt.StartContainer, pb.StartContainerRequest(container_id=cid), timeout=120)
        log("StartContainer: ok")

        def running():
            s = self.container_status(cid)
            if s.state == pb.CONTAINER_EXITED:
                raise Failure(f"container exited ({s.exit_code}, {s.reason} {s.message})")
            return s.state == pb.CONTAINER_RUNNING
        wait_for("ContainerStatus RUNNING", running, timeout=20)
        log("ContainerStatus: CONTAINER_RUNNING")

        log_file = os.path.join(self.log_dir, "hello.log")

        def logged():
            try:
                with open(log_file) as f:
                    return [l for l in f.read().splitlines() if l.endswith(" hello-from-gcr")]
            except FileNotFoundError:
                return None
        line = wait_for(f"hello-from-gcr in {log_file}", logged, timeout=20)[0]
        log(f"container log: {line}")

        # The handler's runtime itself knows the containers (it reads only its own state).
        real = self.real[self.handler]
        for what, i in (("sandbox", self.pod_id), ("container", cid)):
            rc, out, err = run([real, "--root", os.path.join(self.runtime_root, NS), "state", i], check=False)
            if rc != 0:
                raise Failure(f"{os.path.basename(real)} state {i} ({what}) failed: {err.strip() or out.strip()}")
            status = json.loads(out).get("status")
            if status != "running":
                raise Failure(f"{os.path.basename(real)} state {i} ({what}): status {status!r}, want running")
        log(f"{os.path.basename(real)} state: sandbox and container are running in its state directory")

        r = self.call("ExecSync", self.rt.ExecSync,
                      pb.ExecSyncRequest(container_id=cid, cmd=["sh", "-c", "echo exec-ok; exit 3"], timeout=30))
        if r.stdout != b"exec-ok\n" or r.exit_code != 3:
            raise Failure(f"ExecSync: stdout {r.stdout!r} stderr {r.stderr!r} exit {r.exit_code}; "
                          "want b'exec-ok\\n' and 3")
        log("ExecSync: stdout 'exec-ok\\n', exit code 3")

        # containerd answers once the container is stopped and its exit handled (the
        # runtime's kill --all and delete); 30s is ample for a 2s grace period.
        self.call("StopContainer", self.rt.StopContainer, pb.StopContainerRequest(container_id=cid, timeout=2),
                  timeout=30)
        log("StopContainer: ok (timeout 2)")
        s = wait_for("ContainerStatus EXITED",
                     lambda: (lambda s: s if s.state == pb.CONTAINER_EXITED else None)(self.container_status(cid)),
                     timeout=20)
        log(f"ContainerStatus: CONTAINER_EXITED, exit code {s.exit_code}, reason {s.reason}")
        self.call("RemoveContainer", self.rt.RemoveContainer, pb.RemoveContainerRequest(container_id=cid))
        self.ctr_ids.remove(cid)
        log("RemoveContainer: ok")

        self.call("StopPodSandbox", self.rt.StopPodSandbox, pb.StopPodSandboxRequest(pod_sandbox_id=self.pod_id))
        st = self.sandbox_status()
        if st.state != pb.SANDBOX_NOTREADY:
            raise Failure(f"after StopPodSandbox: state {pb.PodSandboxState.Name(st.state)}, want SANDBOX_NOTREADY")
        log("StopPodSandbox: ok, SANDBOX_NOTREADY")
        self.call("RemovePodSandbox", self.rt.RemovePodSandbox, pb.RemovePodSandboxRequest(pod_sandbox_id=self.pod_id))
        pod_id, self.pod_id = self.pod_id, None
        log("RemovePodSandbox: ok")

        self.check_calls(pod_id, cid)
        left = os.listdir(os.path.join(self.runtime_root, NS)) if os.path.isdir(os.path.join(self.runtime_root, NS)) else []
        if left:
            raise Failure(f"the runtime's state directory still holds {left} after RemovePodSandbox")

    def check_calls(self, pod_id, cid):
        """The wrappers' log: the handler's runtime made, started, exec'd in and deleted both
        containers; the other runtime was never called for them."""
        label = {"gcr": "gcr-runc", "runc": "runc"}
        calls = [l.split() for l in open(self.calls_log).read().splitlines() if l.strip()]
        mine = [c for c in calls if c[0] == label[self.handler]]
        others = [c for c in calls if c[0] == label[self.other] and (pod_id in c or cid in c)]
        if others:
            raise Failure(f"{label[self.other]} was called for our pod: {others[0]}")

        def saw(verb, i):
            return any(verb in c and c[-1] == i for c in mine)
        missing = [f"{verb} {i[:12]}" for i in (pod_id, cid) for verb in ("create", "start", "delete") if not saw(verb, i)]
        if not saw("exec", cid):
            missing.append(f"exec {cid[:12]}")
        if missing:
            raise Failure(f"{label[self.handler]} calls missing from {self.calls_log}: {', '.join(missing)}")
        verbs = {}
        for c in mine:
            for v in ("create", "start", "exec", "kill", "delete", "state", "features"):
                if v in c[1:]:
                    verbs[v] = verbs.get(v, 0) + 1
                    break
        log(f"runtime calls: {label[self.handler]} " +
            ", ".join(f"{v} x{n}" for v, n in verbs.items()) + f"; {label[self.other]} not called")

    # ---- diagnostics and cleanup -------------------------------------------------------

    def diagnostics(self):
        out = sys.stderr
        if self.daemon_log and os.path.exists(self.daemon_log):
            lines = [l for l in open(self.daemon_log, errors="replace").read().splitlines()
                     if "level=error" in l or "level=warning" in l or "level=fatal" in l]
            print(f"--- containerd errors and warnings ({self.daemon_log}, last 30) ---", file=out)
            for l in lines[-30:]:
                print(l, file=out)
        for lj in sorted(glob.glob(os.path.join(self.work, "state", "io.containerd.runtime.v2.task", NS, "*", "log.json"))):
            text = open(lj, errors="replace").read().strip()
            if text:
                print(f"--- {lj} ---", file=out)
                print("\n".join(text.splitlines()[-10:]), file=out)
        if os.path.exists(self.calls_log):
            print(f"--- {self.calls_log} (last 20) ---", file=out)
            print("\n".join(open(self.calls_log).read().splitlines()[-20:]), file=out)

    def cleanup(self):
        steps = [self.cleanup_cri, self.cleanup_runtime_state, self.stop_containerd, self.kill_shims,
                 self.cleanup_cgroups, self.cleanup_mounts, self.cleanup_host_dirs, self.cleanup_work]
        for step in steps:
            try:
                step()
            except Exception as e:  # keep going: every later step still has work to do
                print(f"cleanup: {step.__name__}: {e}", file=sys.stderr)

    def cleanup_cri(self):
        if self.rt is None or self.daemon is None or self.daemon.poll() is not None:
            return
        import grpc
        pb = self.pb
        for cid in list(self.ctr_ids):
            for fn, req in ((self.rt.StopContainer, pb.StopContainerRequest(container_id=cid, timeout=0)),
                            (self.rt.RemoveContainer, pb.RemoveContainerRequest(container_id=cid))):
                try:
                    fn(req, timeout=10)
                except grpc.RpcError:
                    pass
        if self.pod_id:
            for fn, req in ((self.rt.StopPodSandbox, pb.StopPodSandboxRequest(pod_sandbox_id=self.pod_id)),
                            (self.rt.RemovePodSandbox, pb.RemovePodSandboxRequest(pod_sandbox_id=self.pod_id))):
                try:
                    fn(req, timeout=10)
                except grpc.RpcError:
                    pass

    def cleanup_runtime_state(self):
        """Containers still in our private runtime root: force-delete them with the runtime
        that made them (the other one cannot read its state; try both)."""
        root = os.path.join(self.runtime_root, NS)
        if not os.path.isdir(root):
            return
        for i in os.listdir(root):
            for name in (self.handler, self.other):
                real = self.real[name]
                if os.path.exists(real) and os.path.isdir(os.path.join(root, i)):
                    run([real, "--root", root, "delete", "--force", i], check=False, timeout=30)

    def stop_containerd(self):
        if self.channel is not None:
            self.channel.close()
        if self.daemon is None or self.daemon.poll() is not None:
            return
        self.daemon.send_signal(signal.SIGTERM)
        try:
            self.daemon.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.daemon.kill()
            self.daemon.wait(timeout=10)

    def our_shims(self):
        """Pids of containerd-shim-runc-v2 processes whose -address is our socket."""
        pids = []
        for d in glob.glob("/proc/[0-9]*"):
            try:
                argv = open(os.path.join(d, "cmdline"), "rb").read().split(b"\0")
            except OSError:
                continue
            if not argv or os.path.basename(argv[0]) != b"containerd-shim-runc-v2":
                continue
            args = [x.decode(errors="replace") for x in argv]
            if "-address" in args and args.index("-address") + 1 < len(args) \
                    and args[args.index("-address") + 1] == self.sock:
                pids.append(int(os.path.basename(d)))
        return pids

    def kill_shims(self):
        # The shims' sockets (in /run/containerd/s, named by a hash) are listed in each
        # task's bundle; a shim killed before it cleans up leaves its socket behind.
        sockets = []
        for f in glob.glob(os.path.join(self.work, "state", "io.containerd.runtime.v2.task", NS, "*", "address")):
            try:
                addr = open(f).read().strip()
            except OSError:
                continue
            path = addr[len("unix://"):] if addr.startswith("unix://") else addr
            if path.startswith("/run/containerd/s/"):
                sockets.append(path)
        pids = self.our_shims()
        for p in pids:
            try:
                os.kill(p, signal.SIGKILL)
            except ProcessLookupError:
                pass
        deadline = time.monotonic() + 10
        while pids and time.monotonic() < deadline:
            pids = [p for p in pids if os.path.exists(f"/proc/{p}")
                    and not open(f"/proc/{p}/stat").read().split(") ")[-1].startswith("Z")]
            time.sleep(0.05)
        for s in sockets:
            try:
                os.unlink(s)
            except OSError:
                pass

    def cleanup_cgroups(self):
        """Our pod's cgroup parent in every hierarchy: kill what is left in it, then
        remove it, deepest first."""
        for mnt in cgroup_mounts():
            top = mnt + self.cgroup_parent
            if not os.path.isdir(top):
                continue
            for _ in range(50):
                dirs = [d for d, _, _ in os.walk(top, topdown=False)]
                for d in dirs:
                    try:
                        for pid in open(os.path.join(d, "cgroup.procs")).read().split():
                            try:
                                os.kill(int(pid), signal.SIGKILL)
                            except ProcessLookupError:
                                pass
                    except OSError:
                        pass
                    try:
                        os.rmdir(d)
                    except OSError:
                        pass
                if not os.path.isdir(top):
                    break
                time.sleep(0.1)
            if os.path.isdir(top):
                print(f"cleanup: could not remove cgroup {top}", file=sys.stderr)

    def cleanup_mounts(self):
        for _ in range(5):
            ms = mounts_under(self.work)
            if not ms:
                return
            for m in ms:
                subprocess.run(["umount", "-l", m], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        left = mounts_under(self.work)
        if left:
            print(f"cleanup: still mounted: {left}", file=sys.stderr)

    def cleanup_host_dirs(self):
        """Host-wide directories the shim may use whatever our config says: remove only
        the entries named by our own pod and container ids."""
        ids = [i for i in [self.pod_id, *self.ctr_ids] if i]
        ids += [os.path.basename(d) for d in glob.glob(os.path.join(self.work, "state", "io.containerd.runtime.v2.task", NS, "*"))]
        for i in set(ids):
            for base in ("/run/containerd/runc/" + NS, "/run/containerd/io.containerd.runtime.v2.task/" + NS):
                p = os.path.join(base, i)
                if os.path.isdir(p):
                    shutil.rmtree(p, ignore_errors=True)

    def cleanup_work(self):
        if mounts_under(self.work):
            print(f"cleanup: mounts remain under {self.work}; not removing its contents", file=sys.stderr)
            return
        for e in os.listdir(self.work):
            if e not in OUR_ENTRIES:
                continue
            p = os.path.join(self.work, e)
            if os.path.isdir(p) and not os.path.islink(p):
                shutil.rmtree(p, ignore_errors=True)
            else:
                os.unlink(p)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--gcr", required=True, help="the gcr binary (run as gcr-runc through a link)")
    ap.add_argument("--work", required=True, help="private directory for containerd and the pod (emptied at the end)")
    ap.add_argument("--busybox-tar", required=True, help="docker-archive of a busybox image (gcr save)")
    ap.add_argument("--busybox-ref", help="the image's name after import (default: from the archive's RepoTags)")
    ap.add_argument("--handler", choices=("gcr", "runc"), default="gcr", help="CRI runtime handler for the pod")
    ap.add_argument("--busybox-static", default="/bin/busybox", help="static busybox for the pause image")
    ap.add_argument("--proto", default=os.path.join(HERE, "api.proto"))
    ap.add_argument("--containerd", default=shutil.which("containerd") or "containerd")
    ap.add_argument("--ctr", default=shutil.which("ctr") or "ctr")
    ap.add_argument("--runc", default=shutil.which("runc") or "/usr/sbin/runc")
    a = ap.parse_args()
    a.work = os.path.abspath(a.work)
    if a.work in ("/", "/tmp", "/run", "/var", "/home", "/root") or a.work == os.path.expanduser("~"):
        print(f"--work {a.work}: refusing to use (and empty) this directory", file=sys.stderr)
        return 2
    os.makedirs(a.work, exist_ok=True)
    # DIR may already hold the inputs (the busybox archive): those are left alone, and
    # only what this program creates is removed at the end. It must not clash with them.
    clash = set(os.listdir(a.work)) & set(OUR_ENTRIES)
    if clash:
        print(f"--work {a.work} already has {sorted(clash)}; use an empty directory", file=sys.stderr)
        return 2
    flow = Flow(a)
    rc = 1

    def terminated(signum, _frame):
        raise KeyboardInterrupt(f"signal {signum}")
    signal.signal(signal.SIGTERM, terminated)  # so that the cleanup below still runs
    started = time.monotonic()
    try:
        flow.preflight()
        flow.stubs()
        flow.run_flow()
        rc = 0
    except Skip as e:
        print(f"SKIP: {e}", file=sys.stderr)
        rc = 77
    except Failure as e:
        print(f"FAIL: {e}", file=sys.stderr)
        flow.diagnostics()
    except KeyboardInterrupt as e:
        print(f"FAIL: interrupted ({e or 'SIGINT'})", file=sys.stderr)
    except Exception:
        traceback.print_exc()
        print("FAIL: unexpected error (above)", file=sys.stderr)
        flow.diagnostics()
    finally:
        flow.cleanup()
    if rc == 0:
        log(f"PASS: a pod ran through containerd's CRI with handler {a.handler} "
            f"({time.monotonic() - started:.1f}s)")
    return rc


if __name__ == "__main__":
    sys.exit(main())
