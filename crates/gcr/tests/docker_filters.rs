//! Docker's filters and templates on `events` (image, label, `--format` over Docker's
//! event shape), `volume ls` and `network ls` (issue 19, item 5); `ps` filters by order,
//! ports and tasks and `ps --size`, through the CLI and the docker CLI (issue 20).

mod common;

use common::{need_root, stderr, stdout, Env, IMAGE};

#[test]
fn events_by_image_and_label_with_templates() {
    if !need_root("events_by_image_and_label_with_templates") {
        return;
    }
    let env = Env::new();
    env.ok(&["tag", IMAGE, "other/img:2"]);
    env.ok(&[
        "create",
        "--name",
        "ev-a",
        "--label",
        "team=blue",
        IMAGE,
        "true",
    ]);
    env.ok(&["create", "--name", "ev-b", "other/img:2", "true"]);
    let past = |filters: &[&str], format: &str| {
        let mut a = vec![
            "events", "--since", "0", "--until", "0s", "--format", format,
        ];
        for f in filters {
            a.extend_from_slice(&["--filter", f]);
        }
        env.ok(&a)
    };
    let names = "{{.Actor.Attributes.name}}";
    assert_eq!(
        past(&["type=container", "image=other/img:2"], names),
        "ev-b\n"
    );
    // Image events of that name match too (the tag), as Docker's.
    let tagged = past(&["type=image", "image=other/img:2"], "{{.Type}}");
    assert!(
        tagged.lines().count() >= 1 && tagged.lines().all(|l| l == "image"),
        "{tagged}"
    );
    assert_eq!(past(&["label=team=blue"], names), "ev-a\n");
    assert_eq!(past(&["label=team"], names), "ev-a\n");
    assert_eq!(past(&["label=team=red"], names), "");
    // Two values of one key: either; two keys: both.
    let both = past(
        &[
            "type=container",
            "image=other/img:2",
            "image=test/busybox:1",
        ],
        names,
    );
    assert_eq!(both, "ev-a\nev-b\n");
    assert_eq!(past(&["image=other/img:2", "label=team"], names), "");
    // Docker's event fields in a template, and a table template with its header.
    let line = past(
        &["container=ev-a"],
        "{{.Type}} {{.Action}} {{.Actor.Attributes.image}} {{.Actor.Attributes.team}} {{len .ID}}",
    );
    assert_eq!(line, "container create test/busybox:1 blue 64\n");
    let table = past(&["container=ev-b"], "table {{.Type}}\t{{.Action}}");
    let mut rows = table.lines();
    let header: Vec<&str> = rows.next().unwrap().split_whitespace().collect();
    assert_eq!(header, ["TYPE", "ACTION"]);
    let out = env.gcr(&[
        "events",
        "--since",
        "0",
        "--until",
        "0s",
        "--filter",
        "colour=red",
    ]);
    assert_eq!(out.status.code(), Some(2));
    let out = env.gcr(&[
        "events", "--since", "0", "--until", "0s", "--format", "{{.Nope",
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stdout(&out).is_empty());
}

#[test]
fn volume_and_network_ls_filters() {
    if !need_root("volume_and_network_ls_filters") {
        return;
    }
    let env = Env::new();
    env.ok(&["volume", "create", "used-vol"]);
    env.ok(&["volume", "create", "idle-vol"]);
    env.ok(&[
        "create",
        "--name",
        "user",
        "-v",
        "used-vol:/d",
        IMAGE,
        "true",
    ]);
    let vols = |f: &[&str]| {
        let mut a = vec!["volume", "ls", "-q"];
        for x in f {
            a.extend_from_slice(&["--filter", x]);
        }
        env.ok(&a)
    };
    assert_eq!(vols(&["dangling=true"]), "idle-vol\n");
    assert_eq!(vols(&["dangling=false"]), "used-vol\n");
    assert_eq!(vols(&["name=used"]), "used-vol\n");
    assert_eq!(vols(&["name=vol", "driver=local"]).lines().count(), 2);
    assert_eq!(vols(&["label=x"]), "");
    env.ok(&["network", "create", "filt-net"]);
    let nets = |f: &str| env.ok(&["network", "ls", "--format", "{{.Name}}", "--filter", f]);
    assert_eq!(nets("name=filt"), "filt-net\n");
    assert_eq!(nets("type=custom"), "filt-net\n");
    let builtin = nets("type=builtin");
    assert!(
        builtin.contains("bridge") && !builtin.contains("filt-net"),
        "{builtin}"
    );
    let out = env.gcr(&["volume", "ls", "--filter", "size=1"]);
    assert_eq!(out.status.code(), Some(2));
    env.ok(&["rm", "user"]);
    env.ok(&["network", "rm", "filt-net"]);
}

/// `ps` filters that name other containers, ports and tasks (before, since, publish,
/// expose, is-task) and `--size`: the CLI and the docker CLI through `gcr system service`
/// list the same containers (one filter implementation in the engine).
#[test]
fn ps_filters_by_order_ports_and_size_through_cli_and_api() {
    if !need_root("ps_filters_by_order_ports_and_size_through_cli_and_api")
        || !common::servers::need_tools("ps_filters_by_order_ports_and_size", &["docker"])
    {
        return;
    }
    let env = Env::new();
    for n in ["f-a", "f-b", "f-c"] {
        env.ok(&["create", "--name", n, IMAGE, "true"]);
    }
    let port = common::servers::free_port();
    env.ok(&[
        "run",
        "-d",
        "--name",
        "f-web",
        "-p",
        &format!("127.0.0.1:{port}:80"),
        IMAGE,
        "sleep",
        "60",
    ]);
    env.ok(&[
        "run",
        "--name",
        "f-big",
        IMAGE,
        "sh",
        "-c",
        "head -c 300000 /dev/zero > /blob",
    ]);
    let svc =
        common::service::Service::start(&env, &common::service::sock_host(env.root.path()), &[]);
    let names = |args: &[&str]| -> [String; 2] {
        let mut a = vec!["ps", "-a", "--format", "{{.Names}}"];
        for f in args {
            a.extend_from_slice(&["--filter", f]);
        }
        let mut gcr = env.ok(&a).lines().map(String::from).collect::<Vec<_>>();
        let mut docker = svc.ok(&a).lines().map(String::from).collect::<Vec<_>>();
        gcr.sort();
        docker.sort();
        [gcr.join(" "), docker.join(" ")]
    };
    let both = |args: &[&str], want: &str| {
        let [g, d] = names(args);
        assert_eq!(g, want, "gcr ps {args:?}");
        assert_eq!(d, want, "docker ps {args:?}");
    };
    both(&["before=f-b"], "f-a");
    both(&["since=f-b"], "f-big f-c f-web");
    both(&["since=f-a", "before=f-web"], "f-b f-c");
    both(&[&format!("publish={port}")], "f-web");
    both(&[&format!("publish={port}/udp")], "");
    both(&[&format!("publish={}-{}", port - 1, port)], "f-web");
    both(&["expose=80"], "f-web");
    both(&["expose=79-81/tcp"], "f-web");
    both(&["is-task=true"], "");
    both(&["is-task=false", "name=f-a"], "f-a");
    // Docker's name filter is a regular expression against "/NAME".
    both(&["name=^/f-[ab]$"], "f-a f-b");
    // Bad values: one clear error naming the filter, from both.
    for (f, says) in [
        ("publish=http", "publish=http"),
        ("before=nobody", "nobody"),
        ("is-task=maybe", "is-task=maybe"),
    ] {
        let o = env.gcr(&["ps", "-a", "--filter", f]);
        assert!(
            !o.status.success() && stderr(&o).contains(says),
            "gcr ps {f}: {}",
            stderr(&o)
        );
        svc.fails(&["ps", "-a", "--filter", f], says);
    }
    // Sizes: the writable layer holds the 300 kB file, the virtual size adds the image's.
    for out in [
        env.ok(&["ps", "-a", "-s", "--filter", "name=f-big"]),
        svc.ok(&["ps", "-a", "-s", "--filter", "name=f-big"]),
    ] {
        let mut lines = out.lines();
        assert!(
            lines.next().unwrap_or("").trim_end().ends_with("SIZE"),
            "{out}"
        );
        let row = lines.next().unwrap_or("");
        assert!(row.contains("300kB (virtual "), "{out}");
    }
    let sized = env.ok(&[
        "ps",
        "-a",
        "--filter",
        "name=f-a",
        "--format",
        "{{.Names}} {{.Size}}",
    ]);
    assert!(sized.starts_with("f-a 0B (virtual "), "{sized}");
    env.ok(&["rm", "-f", "f-web"]);
}

#[test]
fn prune_filters_until_and_labels_through_cli_and_api() {
    if !need_root("prune_filters_until_and_labels_through_cli_and_api")
        || !common::servers::need_tools("prune_filters_until_and_labels", &["docker"])
    {
        return;
    }
    let env = Env::new();
    let names = |args: &[&str]| -> Vec<String> {
        let mut v: Vec<String> = env.ok(args).split_whitespace().map(String::from).collect();
        v.sort();
        v
    };
    // Containers: label! keeps the labelled one; until keeps what is newer than the time.
    env.ok(&[
        "create", "--name", "pr-keep", "--label", "keep=yes", IMAGE, "true",
    ]);
    env.ok(&["create", "--name", "pr-go", IMAGE, "true"]);
    let out = env.ok(&["container", "prune", "-f", "--filter", "until=1h"]);
    assert!(!out.contains("Deleted Containers"), "{out}");
    env.ok(&["container", "prune", "-f", "--filter", "label!=keep"]);
    let ps = || names(&["ps", "-a", "--format", "{{.Names}}"]);
    assert_eq!(ps(), ["pr-keep"]);
    // Networks: label picks them; the predefined and the used ones stay.
    env.ok(&["network", "create", "--label", "team=a", "pr-na"]);
    env.ok(&["network", "create", "--label", "team=b", "pr-nb"]);
    let out = env.ok(&["network", "prune", "-f", "--filter", "label=team=a"]);
    assert!(out.contains("pr-na"), "{out}");
    let nets = || names(&["network", "ls", "--format", "{{.Name}}"]);
    assert!(!nets().contains(&"pr-na".to_string()) && nets().contains(&"pr-nb".to_string()));
    // Volumes: labels only.
    env.ok(&["volume", "create", "--label", "keep=1", "pr-v1"]);
    env.ok(&["volume", "create", "pr-v2"]);
    env.ok(&["volume", "prune", "-a", "-f", "--filter", "label!=keep"]);
    let vols = names(&["volume", "ls", "--format", "{{.Name}}"]);
    assert!(
        vols.contains(&"pr-v1".to_string()) && !vols.contains(&"pr-v2".to_string()),
        "{vols:?}"
    );
    // Images: an unused image older than the time goes with -a; a label nobody has keeps all.
    env.ok(&["tag", IMAGE, "pr/img:1"]);
    env.ok(&["rm", "-f", "pr-keep"]);
    env.ok(&["image", "prune", "-a", "-f", "--filter", "label=nobody"]);
    assert!(
        !env.ok(&["images", "-q"]).trim().is_empty(),
        "a label nobody has pruned images"
    );
    // Refusals name the filter and the fix.
    env.fails(
        &["container", "prune", "-f", "--filter", "colour=red"],
        "invalid filter 'colour'",
    );
    env.fails(
        &["image", "prune", "-f", "--filter", "until=someday"],
        "until=someday",
    );
    env.fails(
        &["volume", "prune", "-f", "--filter", "until=1h"],
        "invalid filter 'until'",
    );
    // The docker CLI through the service: the same filters over the API.
    let svc = common::service::Service::on_socket(&env);
    svc.ok(&[
        "create",
        "--name",
        "pr-api-keep",
        "--label",
        "keep=yes",
        IMAGE,
        "true",
    ]);
    svc.ok(&["create", "--name", "pr-api-go", IMAGE, "true"]);
    svc.ok(&["container", "prune", "-f", "--filter", "label!=keep"]);
    assert_eq!(ps(), ["pr-api-keep"]);
    svc.ok(&["network", "prune", "-f", "--filter", "until=1h"]);
    assert!(
        nets().contains(&"pr-nb".to_string()),
        "until=1h pruned a new network"
    );
    let o = svc.docker(&["container", "prune", "-f", "--filter", "colour=red"]);
    assert!(
        !o.status.success() && stderr(&o).contains("colour"),
        "{}",
        stderr(&o)
    );
    svc.ok(&["rm", "-f", "pr-api-keep"]);
    let out = svc.ok(&["image", "prune", "-a", "-f", "--filter", "until=1s"]);
    assert!(
        out.contains("Deleted"),
        "the old busybox image is unused and older: {out}"
    );
    assert!(stdout(&env.gcr(&["images", "-q"])).trim().is_empty());
}
