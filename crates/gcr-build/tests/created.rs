//! A built image's `created`: SOURCE_DATE_EPOCH when given, else its base image's, else
//! (scratch) the epoch; the history entries the build adds carry the same time, and equal
//! inputs still give equal digests. Dockerfile builds against real stores (no root
//! needed: no RUN).

use std::path::{Path, PathBuf};

use gcr_build::dockerfile::{self, DockerfileOptions};
use gcr_build::{RunRequest, Runner};
use gcr_store::Store;
use serde_json::Value;

/// The base image's `created`: 1_700_000_000.
const BASE_CREATED: &str = "2023-11-14T22:13:20Z";
const EPOCH: &str = "1970-01-01T00:00:00Z";

/// No step here runs a command.
struct NoRun;

impl Runner for NoRun {
    fn run(&self, req: &RunRequest, _out: &mut dyn FnMut(&str)) -> Result<i32, String> {
        Err(format!("unexpected command {:?}", req.argv))
    }
}

/// A store holding `base:1`, a one-file image created at [`BASE_CREATED`].
fn store_with_base(dir: &Path) -> Store {
    let store = Store::open(dir).unwrap();
    let mut tar = tar::Builder::new(Vec::new());
    let mut h = tar::Header::new_gnu();
    h.set_size(5);
    h.set_mode(0o644);
    h.set_mtime(1_600_000_000);
    h.set_cksum();
    tar.append_data(&mut h, "etc/base", &b"base\n"[..]).unwrap();
    let bytes = tar.into_inner().unwrap();
    store
        .import_rootfs(&bytes[..], Some("base:1"), Some(1_700_000_000))
        .unwrap();
    store
}

fn context(dir: &Path, dockerfile: &str) -> PathBuf {
    std::fs::write(dir.join("hello.txt"), "hello\n").unwrap();
    let f = dir.join("Dockerfile");
    std::fs::write(&f, dockerfile).unwrap();
    f
}

fn df_opts(file: &Path) -> DockerfileOptions {
    DockerfileOptions {
        dockerfile: file.to_path_buf(),
        context: file.parent().unwrap().to_path_buf(),
        tags: vec!["app:1".into()],
        tag: true,
        ..Default::default()
    }
}

fn config(store: &Store, id: &str) -> Value {
    serde_json::from_slice(&store.image_config(id).unwrap()).unwrap()
}

/// The `created` of the history entries the build added (comment "gcr build").
fn added_history(cfg: &Value) -> Vec<String> {
    cfg["history"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|h| h["comment"] == "gcr build")
        .map(|h| h["created"].as_str().unwrap_or("").to_string())
        .collect()
}

const FROM_BASE: &str = "FROM base:1\nENV A=1\nCOPY hello.txt /hello.txt\nLABEL x=y\n";

#[test]
fn a_dockerfile_build_is_as_old_as_its_base() {
    let (s1, s2) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let (c1, c2) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let (store1, store2) = (store_with_base(s1.path()), store_with_base(s2.path()));
    assert_eq!(config(&store1, "base:1")["created"], BASE_CREATED);

    let f1 = context(c1.path(), FROM_BASE);
    let b1 = dockerfile::build(&store1, &NoRun, &df_opts(&f1), &mut |_| {}).unwrap();
    let cfg = config(&store1, &b1.id);
    assert_eq!(cfg["created"], BASE_CREATED, "{cfg}");
    let added = added_history(&cfg);
    assert_eq!(added.len(), 3, "{cfg}");
    assert!(added.iter().all(|c| c == BASE_CREATED), "{added:?}");
    // The base's own history entry is kept as it was.
    assert_eq!(cfg["history"][0]["created_by"], "gcr import");
    assert_eq!(b1.transcript["created"], BASE_CREATED);
    // `images` lists it at that time.
    let listed = store1.list_images().unwrap();
    let row = listed.iter().find(|i| i.id == b1.id).unwrap();
    assert_eq!(row.created, Some(1_700_000_000));

    // The same inputs in another store and directory: the same digest.
    let f2 = context(c2.path(), FROM_BASE);
    let b2 = dockerfile::build(&store2, &NoRun, &df_opts(&f2), &mut |_| {}).unwrap();
    assert_eq!(b2.manifest_digest, b1.manifest_digest);
    assert_eq!(b2.id, b1.id);
    // And again from the cache.
    let b3 = dockerfile::build(&store1, &NoRun, &df_opts(&f1), &mut |_| {}).unwrap();
    assert_eq!(b3.cached, b3.steps);
    assert_eq!(b3.manifest_digest, b1.manifest_digest);

    // SOURCE_DATE_EPOCH is explicit and wins over the base's time.
    let mut o = df_opts(&f1);
    o.source_date_epoch = Some(1_650_000_000);
    let b4 = dockerfile::build(&store1, &NoRun, &o, &mut |_| {}).unwrap();
    let cfg4 = config(&store1, &b4.id);
    assert_eq!(cfg4["created"], "2022-04-15T05:20:00Z", "{cfg4}");
    assert!(added_history(&cfg4)
        .iter()
        .all(|c| c == "2022-04-15T05:20:00Z"));
    assert_ne!(b4.manifest_digest, b1.manifest_digest);
}

#[test]
fn scratch_keeps_the_epoch_and_stages_keep_their_base() {
    let s = tempfile::tempdir().unwrap();
    let c = tempfile::tempdir().unwrap();
    let store = store_with_base(s.path());

    let f = context(c.path(), "FROM scratch\nCOPY hello.txt /hello.txt\n");
    let b = dockerfile::build(&store, &NoRun, &df_opts(&f), &mut |_| {}).unwrap();
    let cfg = config(&store, &b.id);
    assert_eq!(cfg["created"], EPOCH, "{cfg}");
    assert_eq!(added_history(&cfg), vec![EPOCH.to_string()]);

    // A stage from a stage inherits its base's time; a scratch target copying from it
    // does not.
    let f = context(
        c.path(),
        "FROM base:1 AS one\nENV A=1\nFROM one AS two\nCOPY hello.txt /h\n\
         FROM scratch AS three\nCOPY --from=two /h /h\n",
    );
    let mut o = df_opts(&f);
    o.target = Some("two".into());
    let two = dockerfile::build(&store, &NoRun, &o, &mut |_| {}).unwrap();
    let cfg = config(&store, &two.id);
    assert_eq!(cfg["created"], BASE_CREATED, "{cfg}");
    assert_eq!(added_history(&cfg).len(), 2, "{cfg}");
    assert!(added_history(&cfg).iter().all(|c| c == BASE_CREATED));
    o.target = Some("three".into());
    let three = dockerfile::build(&store, &NoRun, &o, &mut |_| {}).unwrap();
    assert_eq!(config(&store, &three.id)["created"], EPOCH);
}
