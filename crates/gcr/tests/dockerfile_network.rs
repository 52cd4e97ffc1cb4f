//! The network of a Dockerfile's RUN steps, as docker build gives it: by default the
//! default bridge network (a step reaches a container on it, with `eth0`, `/etc/hosts` and
//! `/etc/resolv.conf` in place, and the mount points of those files are not left in the
//! image); `--network none` and `RUN --network=none` give loopback only. A build with a
//! network is recorded as non-hermetic in its transcript, one without as hermetic; the
//! image config carries no gcr label either way (docker build writes none).

mod common;

use common::{need_root, stderr, Env, IMAGE};

const HTTPD: &str =
    "mkdir -p /www && echo hello-build > /www/index.html && exec httpd -f -p 8080 -h /www";

fn transcript_hermetic(env: &Env, image: &str) -> serde_json::Value {
    let t: serde_json::Value =
        serde_json::from_str(&env.ok(&["inspect", "--transcript", image])).unwrap();
    t[0]["hermetic"].clone()
}

#[test]
fn run_steps_get_the_default_bridge_network_unless_told_none() {
    if !need_root("run_steps_get_the_default_bridge_network_unless_told_none") {
        return;
    }
    let env = Env::new();
    env.ok(&["run", "-d", "--name", "web", IMAGE, "sh", "-c", HTTPD]);
    let addr = env.ok(&["exec", "web", "ip", "-4", "-o", "addr", "show", "eth0"]);
    let ip = addr
        .split_whitespace()
        .skip_while(|w| *w != "inet")
        .nth(1)
        .and_then(|a| a.split('/').next())
        .unwrap_or_else(|| panic!("no address on the server's eth0: {addr}"))
        .to_string();
    let ctx = tempfile::tempdir().unwrap();
    std::fs::write(
        ctx.path().join("Dockerfile"),
        format!(
            "FROM {IMAGE}\nARG IP\n\
             RUN for i in 1 2 3 4 5 6 7 8 9 10; do wget -q -O /got http://$IP:8080/ && break; sleep 0.3; done; \
                 tail -n +3 /proc/net/dev | cut -d: -f1 | tr -d ' ' | sort > /interfaces; \
                 grep -q gcr-build /etc/hosts && test -e /etc/resolv.conf && echo files-ok > /files\n\
             RUN --network=none tail -n +3 /proc/net/dev | cut -d: -f1 | tr -d ' ' > /isolated\n"
        ),
    )
    .unwrap();
    let dir = ctx.path().to_str().unwrap();
    let arg = format!("IP={ip}");
    env.ok(&["build", "--build-arg", &arg, "-t", "net:1", dir]);
    let cat = |f: &str| env.ok(&["run", "--rm", "--network", "none", "net:1", "cat", f]);
    assert_eq!(
        cat("/got").trim(),
        "hello-build",
        "the step reached the server"
    );
    assert_eq!(cat("/interfaces").trim(), "eth0\nlo");
    assert_eq!(
        cat("/files").trim(),
        "files-ok",
        "hosts and resolv.conf in the step"
    );
    assert_eq!(
        cat("/isolated").trim(),
        "lo",
        "RUN --network=none is isolated"
    );
    // The base has no /etc/resolv.conf and the step wrote none: its mount point is not
    // part of the image (a `--network none` run mounts none either).
    let out = env.gcr(&[
        "run",
        "--rm",
        "--network",
        "none",
        "net:1",
        "test",
        "!",
        "-e",
        "/etc/resolv.conf",
    ]);
    assert!(
        out.status.success(),
        "the resolv.conf mount point was left in the image"
    );
    assert_eq!(transcript_hermetic(&env, "net:1"), false);
    let labels = env.ok(&["inspect", "net:1"]);
    assert!(!labels.contains("dev.gcr.build.hermetic"), "{labels}");

    // --network none: the step cannot reach the server; the build fails naming the step.
    std::fs::write(
        ctx.path().join("Dockerfile"),
        format!("FROM {IMAGE}\nARG IP\nRUN wget -q -T 2 -O /got http://$IP:8080/\n"),
    )
    .unwrap();
    let out = env.gcr(&[
        "build",
        "--network",
        "none",
        "--build-arg",
        &arg,
        "-t",
        "net:2",
        dir,
    ]);
    assert!(
        !out.status.success(),
        "a --network none step reached the server"
    );
    assert!(stderr(&out).contains("wget"), "{}", stderr(&out));

    // A build whose steps have no network is hermetic.
    std::fs::write(
        ctx.path().join("Dockerfile"),
        format!("FROM {IMAGE}\nRUN echo x > /x\n"),
    )
    .unwrap();
    env.ok(&["build", "--network", "none", "-t", "net:3", dir]);
    assert_eq!(transcript_hermetic(&env, "net:3"), true);

    // No lease outlives its step: only the server holds an address.
    let info: serde_json::Value =
        serde_json::from_str(&env.ok(&["network", "inspect", "bridge"])).unwrap();
    let members = info[0]["containers"].as_array().map(|a| a.len());
    assert_eq!(members, Some(1), "{info}");
}
