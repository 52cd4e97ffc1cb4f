//! Spec parser tests: the full example of SPEC.md §3, defaults, and bad input with the
//! exact error text and position.

use super::*;
use crate::reference::Reference;
use std::time::Duration;

const HEX: &str = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";

const MIN: &str = "format: gcr-v1.0\nname: myapp\nversion: 1.0.0\nbase: scratch\n";

fn full_example() -> String {
    format!(
        r#"format: gcr-v1.0              # required, exact
name: myapp                   # required; OCI repository name rules
version: 1.0.0                # required; becomes the tag
base: scratch                 # required: scratch | image reference | sha256:<digest>
build:
  copy:                       # each entry is one layer
    - src: ./app/
      dest: /app/
      hash: sha256:{HEX}
      owner: 1000:1000        # optional; default 0:0
  dependencies:
    - name: express
      version: 4.18.0
      source: file:///path/express-4.18.0.tgz   # file:// or http(s)://
      hash: sha256:{HEX}
      dest: /deps/
      extract: true
  commands:
    - make -C /app
    - [/bin/app, --selftest]
  network: none
  env: {{ NODE_ENV: production, PORT: "3000" }}
runtime:
  entrypoint: [/bin/app]
  cmd: [--port, "3000"]
  workdir: /app
  user: appuser
  uid: 1000
  gid: 1000
  resources: {{ memory: 512MB, cpu: 1.0, pids: 256, storage: 1GB }}
  ports: [3000/tcp, 8080/tcp]
  volumes: [/app/data, /app/logs]
  read_only_rootfs: false
  stop_signal: SIGTERM
  healthcheck: {{ command: [/bin/app, health], interval: 30s, timeout: 5s, retries: 3, start_period: 0s }}
metadata:
  author: user@example.com
  description: My app
  tags: [web, api]
  created: 2025-10-10T00:00:00Z
"#
    )
}

fn err(text: &str) -> String {
    parse_spec("app.gcr", text).unwrap_err().to_string()
}

fn with_min(extra: &str) -> String {
    format!("{MIN}{extra}")
}

#[test]
fn parses_every_field_of_the_example() {
    let s = parse_spec("app.gcr", &full_example()).unwrap();
    assert_eq!(
        (s.format.as_str(), s.name.as_str(), s.version.as_str()),
        ("gcr-v1.0", "myapp", "1.0.0")
    );
    assert_eq!(s.base, Base::Scratch);
    let c = &s.build.copy[0];
    assert_eq!((c.src.as_str(), c.dest.as_str()), ("app/", "/app/"));
    assert_eq!(c.hash.as_ref().unwrap().hex, HEX);
    assert_eq!(
        c.owner,
        Owner {
            uid: 1000,
            gid: 1000
        }
    );
    let d = &s.build.dependencies[0];
    assert_eq!(
        (d.name.as_str(), d.version.as_str(), d.dest.as_str()),
        ("express", "4.18.0", "/deps/")
    );
    assert_eq!(d.source, Source::File("/path/express-4.18.0.tgz".into()));
    assert!(d.extract);
    assert_eq!(
        s.build.commands,
        vec![
            Command::Shell("make -C /app".into()),
            Command::Exec(vec!["/bin/app".into(), "--selftest".into()])
        ]
    );
    assert_eq!(s.build.network, BuildNetwork::None);
    assert_eq!(s.build.env.get("PORT").map(String::as_str), Some("3000"));
    assert_eq!(
        s.build.env.get("NODE_ENV").map(String::as_str),
        Some("production")
    );
    let r = &s.runtime;
    assert_eq!(r.entrypoint, Some(Command::Exec(vec!["/bin/app".into()])));
    assert_eq!(
        r.cmd,
        Some(Command::Exec(vec!["--port".into(), "3000".into()]))
    );
    assert_eq!(r.workdir.as_deref(), Some("/app"));
    assert_eq!(
        (r.user.as_deref(), r.uid, r.gid),
        (Some("appuser"), Some(1000), Some(1000))
    );
    assert_eq!(r.resources.memory, Some(512 << 20));
    assert_eq!(r.resources.cpu, Some(1.0));
    assert_eq!(r.resources.pids, Some(256));
    assert_eq!(r.resources.storage, Some(1 << 30));
    let ports: Vec<String> = r.ports.iter().map(ToString::to_string).collect();
    assert_eq!(ports, ["3000/tcp", "8080/tcp"]);
    assert_eq!(r.volumes, ["/app/data", "/app/logs"]);
    assert!(!r.read_only_rootfs);
    assert_eq!(r.stop_signal.as_deref(), Some("SIGTERM"));
    let h = r.healthcheck.as_ref().unwrap();
    assert_eq!(h.command.to_argv(), ["/bin/app", "health"]);
    assert_eq!(
        (h.interval, h.timeout, h.retries, h.start_period),
        (
            Duration::from_secs(30),
            Duration::from_secs(5),
            3,
            Duration::ZERO
        )
    );
    let m = &s.metadata;
    assert_eq!(m.author.as_deref(), Some("user@example.com"));
    assert_eq!(m.description.as_deref(), Some("My app"));
    assert_eq!(m.tags, ["web", "api"]);
    assert_eq!(m.created.unwrap().unix, 1_760_054_400);
}

#[test]
fn minimal_spec_has_defaults() {
    let s = parse_spec("app.gcr", MIN).unwrap();
    assert!(s.build.copy.is_empty() && s.build.commands.is_empty() && s.build.env.is_empty());
    assert_eq!(s.build.network, BuildNetwork::None);
    assert_eq!(s.runtime, Runtime::default());
    assert_eq!(s.metadata.created_or(None).unix, 0);
    assert_eq!(s.metadata.created_or(Some(42)).unix, 42);
    let s = parse_spec("a", &with_min("build:\nruntime:\nmetadata:\n")).unwrap();
    assert_eq!(s.runtime, Runtime::default());
}

#[test]
fn canonical_serialization_is_stable() {
    let a = parse_spec("app.gcr", &full_example()).unwrap();
    let reordered = full_example().replace(
        "env: { NODE_ENV: production, PORT: \"3000\" }",
        "env: { PORT: \"3000\", NODE_ENV: production }",
    );
    let b = parse_spec("other.gcr", &reordered).unwrap();
    let ja = crate::canonical_json::to_canonical_string(&a).unwrap();
    assert_eq!(ja, crate::canonical_json::to_canonical_string(&b).unwrap());
    assert!(
        ja.contains(r#""healthcheck":{"command":["/bin/app","health"],"interval":"30s""#),
        "{ja}"
    );
    assert!(ja.contains(r#""ports":["3000/tcp","8080/tcp"]"#));
    assert!(ja.contains(r#""created":"2025-10-10T00:00:00Z""#));
    assert!(ja.contains(r#""base":"scratch""#));
}

#[test]
fn bases() {
    let s = parse_spec("a", &MIN.replace("scratch", "alpine:3.20")).unwrap();
    assert_eq!(
        s.base,
        Base::Image(Reference::parse("docker.io/library/alpine:3.20").unwrap())
    );
    let s = parse_spec("a", &MIN.replace("scratch", &format!("sha256:{HEX}"))).unwrap();
    assert_eq!(s.base.to_string(), format!("sha256:{HEX}"));
    assert_eq!(
        err(&MIN.replace("scratch", "Alpine")),
        "app.gcr:4:7: base: invalid reference format: repository name must be lowercase; base must be scratch, an image reference such as alpine:3.20, or sha256:<image id>"
    );
    assert_eq!(
        err(&MIN.replace("scratch", "sha256:abc")),
        "app.gcr:4:7: base: 'sha256:abc' is not a valid digest; expected 64 lowercase hex characters after ':'"
    );
}

#[test]
fn required_fields() {
    assert_eq!(
        err("name: a\nversion: 1\nbase: scratch\n"),
        "app.gcr:1:1: format: missing required field; add e.g. `format: gcr-v1.0`"
    );
    assert_eq!(
        err("format: gcr-v1.0\nversion: 1\nbase: scratch\n"),
        "app.gcr:1:1: name: missing required field; add e.g. `name: myapp`"
    );
    assert_eq!(
        err("format: gcr-v1.0\nname: a\nbase: scratch\n"),
        "app.gcr:1:1: version: missing required field; add e.g. `version: 1.0.0`"
    );
    assert_eq!(
        err("format: gcr-v1.0\nname: a\nversion: 1\nbase:\n"),
        "app.gcr:1:1: base: missing required field; add e.g. `base: scratch`"
    );
    assert_eq!(
        err(""),
        "app.gcr:1:1: the spec is empty; it needs at least format, name, version and base"
    );
    assert_eq!(
        err("# just a comment\n"),
        "app.gcr:1:1: the spec is empty; it needs at least format, name, version and base"
    );
    assert_eq!(
        err("- a\n"),
        "app.gcr:1:1: a spec must be a YAML mapping with format, name, version and base"
    );
    assert_eq!(
        err("hello\n"),
        "app.gcr:1:1: a spec must be a YAML mapping with format, name, version and base"
    );
    assert_eq!(
        err(&with_min("build:\n  copy:\n    - src: ./a\n")),
        "app.gcr:7:7: build.copy[0].dest: missing required field; add e.g. `dest: /app/`"
    );
}

#[test]
fn top_level_values() {
    assert_eq!(
        err(&MIN.replace("gcr-v1.0", "gcr-v2.0")),
        "app.gcr:1:9: format: unsupported format 'gcr-v2.0'; this gcr reads format: gcr-v1.0"
    );
    assert_eq!(
        err(&MIN.replace("myapp", "MyApp")),
        "app.gcr:2:7: name: 'MyApp' is not a valid image name: it must be lowercase"
    );
    assert!(err(&MIN.replace("myapp", "my app"))
        .starts_with("app.gcr:2:7: name: 'my app' is not a valid image name;"));
    assert!(err(&MIN.replace("1.0.0", ".1"))
        .starts_with("app.gcr:3:10: version: '.1' is not a valid version"));
    assert_eq!(
        err(&MIN.replace("myapp", "[a]")),
        "app.gcr:2:7: name: expected a single value, found a list"
    );
}

#[test]
fn unknown_keys_name_path_and_line() {
    assert_eq!(
        err(&with_min("colour: red\n")),
        "app.gcr:5:1: colour: unknown field; expected one of format, name, version, base, build, runtime, metadata"
    );
    assert_eq!(
        err(&with_min("build:\n  cpoy: []\n")),
        "app.gcr:6:3: build.cpoy: unknown field; expected one of copy, dependencies, commands, network, env, secrets"
    );
    assert_eq!(
        err(&with_min("runtime:\n  resources: { memory: 1g, cpus: 2 }\n")),
        "app.gcr:6:28: runtime.resources.cpus: unknown field; expected one of memory, cpu, pids, storage"
    );
    assert_eq!(
        err(&with_min(
            "build:\n  copy:\n    - src: a\n      dest: /a\n      mode: 755\n"
        )),
        "app.gcr:9:7: build.copy[0].mode: unknown field; expected one of src, dest, hash, owner"
    );
}

#[test]
fn runtime_errors() {
    assert_eq!(
        err(&with_min("runtime:\n  resources:\n    memory: 512XB\n")),
        "app.gcr:7:13: runtime.resources.memory: '512XB' is not a size; use e.g. 512MB"
    );
    assert_eq!(
        err(&with_min("runtime:\n  resources: { memory: 0 }\n")),
        "app.gcr:6:24: runtime.resources.memory: '0' is zero; use a size greater than 0, e.g. 512MB"
    );
    assert_eq!(
        err(&with_min("runtime:\n  resources: { cpu: 0 }\n")),
        "app.gcr:6:21: runtime.resources.cpu: '0' is not a CPU count; use a number greater than 0, e.g. 1.0 or 0.5"
    );
    assert_eq!(
        err(&with_min("runtime:\n  resources: { pids: -1 }\n")),
        "app.gcr:6:22: runtime.resources.pids: '-1' is not a number greater than 0; use e.g. 256"
    );
    assert_eq!(
        err(&with_min("runtime:\n  ports: [3000/tcp, 70000/tcp]\n")),
        "app.gcr:6:21: runtime.ports[1]: '70000/tcp' is not a port; use a number from 1 to 65535 with /tcp or /udp, e.g. 8080/tcp"
    );
    assert_eq!(
        err(&with_min("runtime:\n  ports: 3000/tcp\n")),
        "app.gcr:6:10: runtime.ports: expected a list, e.g. [3000/tcp, 53/udp]; found a single value"
    );
    assert_eq!(
        err(&with_min("runtime:\n  volumes: [data]\n")),
        "app.gcr:6:13: runtime.volumes[0]: 'data' must be an absolute path in the image, e.g. /app/"
    );
    assert_eq!(
        err(&with_min("runtime:\n  stop_signal: SIGFOO\n")),
        "app.gcr:6:16: runtime.stop_signal: 'SIGFOO' is not a signal; use e.g. SIGTERM, TERM or 15"
    );
    assert_eq!(
        err(&with_min("runtime:\n  read_only_rootfs: yes\n")),
        "app.gcr:6:21: runtime.read_only_rootfs: 'yes' is not a boolean; use true or false"
    );
    assert_eq!(
        err(&with_min("runtime:\n  read_only_rootfs: \"true\"\n")),
        "app.gcr:6:21: runtime.read_only_rootfs: 'true' is not a boolean; use true or false"
    );
    assert_eq!(
        err(&with_min("runtime:\n  uid: -5\n")),
        "app.gcr:6:8: runtime.uid: '-5' is not a numeric id; use a number from 0 to 4294967295"
    );
    assert_eq!(
        err(&with_min("runtime:\n  healthcheck: { command: [x], interval: 30 }\n")),
        "app.gcr:6:42: runtime.healthcheck.interval: '30' is not a duration; use e.g. 30s, 5m, 1h30m or 500ms"
    );
    assert_eq!(
        err(&with_min("runtime:\n  healthcheck: { interval: 1s }\n")),
        "app.gcr:6:16: runtime.healthcheck.command: missing required field; add e.g. `command: [/bin/app, health]`"
    );
    assert_eq!(
        err(&with_min("runtime:\n  cmd: []\n")),
        "app.gcr:6:8: runtime.cmd: the command list is empty; use e.g. [/bin/app, --flag]"
    );
    assert_eq!(
        err(&with_min("runtime:\n  entrypoint: {a: b}\n")),
        "app.gcr:6:15: runtime.entrypoint: expected a command: a string (run by /bin/sh -c) or a list of strings (exec form), found a mapping"
    );
    assert_eq!(
        err(&with_min("runtime:\n  cmd: [a, [b]]\n")),
        "app.gcr:6:12: runtime.cmd[1]: expected a single value, found a list"
    );
    assert_eq!(
        err(&with_min("runtime:\n  workdir: app\n")),
        "app.gcr:6:12: runtime.workdir: 'app' must be an absolute path in the image, e.g. /app/"
    );
    let s = parse_spec(
        "a",
        &with_min("runtime:\n  stop_signal: 37\n  cmd: echo hi\n"),
    )
    .unwrap();
    assert_eq!(s.runtime.stop_signal.as_deref(), Some("SIGRTMIN+3"));
    assert_eq!(
        s.runtime.cmd.unwrap().to_argv(),
        ["/bin/sh", "-c", "echo hi"]
    );
    let s = parse_spec(
        "a",
        &with_min("runtime:\n  healthcheck: { command: curl -f localhost }\n"),
    )
    .unwrap();
    let h = s.runtime.healthcheck.unwrap();
    assert_eq!(
        (h.interval, h.timeout, h.retries),
        (Duration::from_secs(30), Duration::from_secs(30), 3)
    );
}

#[test]
fn build_errors() {
    assert_eq!(
        err(&with_min("build:\n  copy:\n    - { src: ../secret, dest: /x }\n")),
        "app.gcr:7:14: build.copy[0].src: '../secret' escapes the build context; use a path inside the spec file's directory"
    );
    assert_eq!(
        err(&with_min("build:\n  copy:\n    - { src: /etc/passwd, dest: /x }\n")),
        "app.gcr:7:14: build.copy[0].src: '/etc/passwd' is absolute; use a path relative to the spec file's directory, e.g. ./app/"
    );
    assert_eq!(
        err(&with_min("build:\n  copy:\n    - { src: a, dest: x }\n")),
        "app.gcr:7:23: build.copy[0].dest: 'x' must be an absolute path in the image, e.g. /app/"
    );
    assert_eq!(
        err(&with_min("build:\n  copy:\n    - { src: a, dest: /x, owner: root }\n")),
        "app.gcr:7:34: build.copy[0].owner: 'root' is not an owner; use numeric uid:gid, e.g. 1000:1000"
    );
    assert_eq!(
        err(&with_min("build:\n  copy:\n    - { src: a, dest: /x, hash: sha256:zz }\n")),
        "app.gcr:7:33: build.copy[0].hash: 'sha256:zz' is not a valid digest; expected 64 lowercase hex characters after ':'"
    );
    let dep = |extra: &str| {
        with_min(&format!(
            "build:\n  dependencies:\n    - name: lib\n      version: 1.0\n{extra}"
        ))
    };
    assert_eq!(
        err(&dep("      source: file:///x.tgz\n")),
        "app.gcr:7:7: build.dependencies[0].hash: missing required field; add e.g. `hash: sha256:<64 hex>`"
    );
    assert_eq!(
        err(&dep(&format!("      source: ftp://h/x.tgz\n      hash: sha256:{HEX}\n"))),
        "app.gcr:9:15: build.dependencies[0].source: 'ftp://h/x.tgz' is not a supported source; use file:///path/to/file, file://relative/path or http(s)://host/path"
    );
    let ok = parse_spec(
        "a",
        &dep(&format!(
            "      source: https://example.com/lib.tgz\n      hash: sha256:{HEX}\n"
        )),
    )
    .unwrap();
    let d = &ok.build.dependencies[0];
    assert_eq!(d.dest, "/opt/deps/lib-1.0/");
    assert!(!d.extract);
    assert_eq!(d.source.to_string(), "https://example.com/lib.tgz");
    assert_eq!(
        err(&with_min("build:\n  network: bridge\n")),
        "app.gcr:6:12: build.network: 'bridge' is not a build network; use none or host"
    );
    assert_eq!(
        err(&with_min("build:\n  env: { 1BAD: x }\n")),
        "app.gcr:6:10: build.env: '1BAD' is not a valid environment variable name; use letters, digits and '_', not starting with a digit"
    );
    assert_eq!(
        err(&with_min("build:\n  env:\n    EMPTY:\n")),
        "app.gcr:7:5: build.env.EMPTY: the value is missing; write \"\" for an empty value"
    );
    assert_eq!(
        err(&with_min("build:\n  commands:\n    - \"  \"\n")),
        "app.gcr:7:7: build.commands[0]: the command is empty; give a shell command or a list"
    );
    assert_eq!(
        err(&with_min("build:\n  commands: make\n")),
        "app.gcr:6:13: build.commands: expected a list, e.g. [make -C /app]; found a single value"
    );
    let s = parse_spec(
        "a",
        &with_min("build:\n  network: host\n  env: { E: \"\" }\n"),
    )
    .unwrap();
    assert_eq!(s.build.network, BuildNetwork::Host);
    assert_eq!(s.build.env["E"], "");
}

#[test]
fn metadata_errors() {
    assert_eq!(
        err(&with_min("metadata:\n  created: yesterday\n")),
        "app.gcr:6:12: metadata.created: 'yesterday' is not an RFC 3339 timestamp; use e.g. 2025-10-10T00:00:00Z"
    );
    assert_eq!(
        err(&with_min("metadata:\n  tags: [web, '']\n")),
        "app.gcr:6:15: metadata.tags[1]: the tag is empty; remove the field or give a value"
    );
    assert_eq!(
        err(&with_min("metadata: hello\n")),
        "app.gcr:5:11: metadata: expected a mapping with fields author, description, tags, created, found a single value"
    );
}

#[test]
fn hostile_documents() {
    assert_eq!(
        err(&with_min("build:\n  env: &e { A: b }\nruntime:\n  x: *e\n")),
        "app.gcr:6:8: build.env: YAML anchors (&) and aliases (*) are not allowed in a spec; write the value out"
    );
    let bomb = "a: &a [x, x]\nb: &b [*a, *a]\nc: &c [*b, *b]\n";
    assert!(err(bomb).contains("anchors (&) and aliases (*) are not allowed"));
    assert_eq!(
        err(&format!("{MIN}name: other\n")),
        "app.gcr:5:1: name: duplicate key (first defined on line 2); remove one of them"
    );
    let big = format!("{MIN}# {}\n", "x".repeat(MAX_SPEC_BYTES));
    assert_eq!(
        err(&big),
        format!(
            "app.gcr:1:1: the spec is {} bytes; a spec may be at most 1 MiB",
            big.len()
        )
    );
    assert!(err("format: [\n").starts_with("app.gcr:2:1: invalid YAML"));
    assert!(err(&with_min("runtime: !!map {}\n")).contains("YAML tags (!) are not allowed"));
    let e = parse_spec_bytes("app.gcr", b"format: gcr-v1.0\nname: \xff\n").unwrap_err();
    assert_eq!(
        e.to_string(),
        "app.gcr:2:7: the spec is not valid UTF-8; save it as UTF-8"
    );
    assert_eq!((e.line, e.column, e.path.as_str()), (2, 7, ""));
    assert!(parse_spec_bytes("a", MIN.as_bytes()).is_ok());
}

#[test]
fn error_fields() {
    let e = parse_spec(
        "app.gcr",
        &with_min("runtime:\n  resources:\n    memory: 512XB\n"),
    )
    .unwrap_err();
    assert_eq!((e.file.as_str(), e.line, e.column), ("app.gcr", 7, 13));
    assert_eq!(e.path, "runtime.resources.memory");
    assert_eq!(e.message, "'512XB' is not a size; use e.g. 512MB");
}
