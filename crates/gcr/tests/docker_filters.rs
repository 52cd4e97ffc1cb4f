//! Docker's filters and templates on `events` (image, label, `--format` over Docker's
//! event shape), `volume ls` and `network ls` (issue 19, item 5).

mod common;

use common::{need_root, stdout, Env, IMAGE};

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
