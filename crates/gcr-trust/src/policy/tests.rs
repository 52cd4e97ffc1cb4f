use super::dockerref::DockerRef;
use super::image::{identity_ok, Identity, ImageFacts, ImagePolicy};
use super::run::{RunPolicy, RunRequest};
use super::PolicyError;

fn syntax(e: PolicyError) -> (usize, usize, String) {
    match e {
        PolicyError::Syntax {
            line, column, msg, ..
        } => (line, column, msg),
        other => panic!("expected a syntax error, got {other}"),
    }
}

#[test]
fn unknown_key_names_line_column_and_key() {
    let text = "{\n  \"default\": [{\"type\": \"reject\"}],\n  \"transportz\": {}\n}";
    let (line, col, msg) = syntax(ImagePolicy::parse("p.json", text.as_bytes()).unwrap_err());
    assert_eq!(line, 3);
    assert!(col > 0);
    assert!(msg.contains("unknown key `transportz`"), "{msg}");
    let text = "{\"default\": [\n {\"type\": \"insecureAcceptAnything\", \"extra\": 1}]}";
    let (line, _, msg) = syntax(ImagePolicy::parse("p.json", text.as_bytes()).unwrap_err());
    assert_eq!(line, 2);
    assert!(msg.contains("extra"), "{msg}");
}

#[test]
fn missing_default_and_bad_types_are_errors() {
    let text = "{\n \"transports\": {}\n}";
    let (line, _, msg) = syntax(ImagePolicy::parse("p.json", text.as_bytes()).unwrap_err());
    assert_eq!(line, 3);
    assert!(msg.contains("missing key `default`"), "{msg}");
    let text = "{\n\"default\": \"reject\"}";
    let (line, _, msg) = syntax(ImagePolicy::parse("p.json", text.as_bytes()).unwrap_err());
    assert_eq!(line, 2);
    assert!(msg.contains("invalid type"), "{msg}");
    let text = "{\"default\": [{\"type\": \"rejectt\"}]}";
    let (_, _, msg) = syntax(ImagePolicy::parse("p.json", text.as_bytes()).unwrap_err());
    assert!(msg.contains("rejectt"), "{msg}");
    // Run policy: unknown key and a wrong type, each with its line.
    let text = "{\"registries\": [\"*\"],\n\"privileged\": \"yes\"}";
    let (line, _, msg) = syntax(RunPolicy::parse("r.json", text.as_bytes()).unwrap_err());
    assert_eq!(line, 2);
    assert!(msg.contains("invalid type"), "{msg}");
    let text = "{\"registries\": [\"*\"],\n\n\"cap_add\": []}";
    let (line, _, msg) = syntax(RunPolicy::parse("r.json", text.as_bytes()).unwrap_err());
    assert_eq!(line, 3);
    assert!(msg.contains("cap_add"), "{msg}");
    let (_, _, msg) = syntax(RunPolicy::parse("r.json", b"{}").unwrap_err());
    assert!(msg.contains("registries"), "{msg}");
}

#[test]
fn signed_by_empty_lists_and_bad_scopes_are_refused() {
    let text = r#"{"default":[{"type":"signedBy","keyType":"GPGKeys","keyPath":"/k.gpg"}]}"#;
    let e = ImagePolicy::parse("p.json", text.as_bytes()).unwrap_err();
    assert!(e.to_string().contains("signedBy"), "{e}");
    let e = ImagePolicy::parse("p.json", br#"{"default":[]}"#).unwrap_err();
    assert!(e.to_string().contains("empty"), "{e}");
    let text =
        r#"{"default":[{"type":"reject"}],"transports":{"docker":{"a b":[{"type":"reject"}]}}}"#;
    assert!(ImagePolicy::parse("p.json", text.as_bytes()).is_err());
    let text = r#"{"default":[{"type":"reject"}],"transports":{"nosuch":{}}}"#;
    assert!(ImagePolicy::parse("p.json", text.as_bytes()).is_err());
    let text = r#"{"default":[{"type":"sigstoreSigned"}]}"#;
    let e = ImagePolicy::parse("p.json", text.as_bytes()).unwrap_err();
    assert!(e.to_string().contains("keyPath"), "{e}");
}

fn r(s: &str) -> DockerRef {
    DockerRef::parse(s).unwrap()
}

#[test]
fn most_specific_scope_wins() {
    let text = r#"{"default":[{"type":"reject"}],"transports":{"docker":{
        "":[{"type":"reject"}],
        "reg.example.com":[{"type":"insecureAcceptAnything"}],
        "reg.example.com/team/app:bad":[{"type":"reject"}],
        "reg.example.com/team":[{"type":"insecureAcceptAnything"}],
        "*.example.org":[{"type":"insecureAcceptAnything"}],
        "127.0.0.1:5000/ok":[{"type":"insecureAcceptAnything"}]}}}"#;
    let p = ImagePolicy::parse("p.json", text.as_bytes()).unwrap();
    let rule = |s: &str| p.lookup("docker", Some(&r(s))).rule;
    assert_eq!(
        rule("reg.example.com/team/app:bad"),
        "policy.transports.docker.reg.example.com/team/app:bad"
    );
    assert_eq!(
        rule("reg.example.com/team/app:good"),
        "policy.transports.docker.reg.example.com/team"
    );
    assert_eq!(
        rule("reg.example.com/x:1"),
        "policy.transports.docker.reg.example.com"
    );
    assert_eq!(
        rule("a.b.example.org/x:1"),
        "policy.transports.docker.*.example.org"
    );
    assert_eq!(
        rule("127.0.0.1:5000/ok:1"),
        "policy.transports.docker.127.0.0.1:5000/ok"
    );
    assert_eq!(
        rule("127.0.0.1:5000/other:1"),
        "policy.transports.docker.\"\""
    );
    assert_eq!(
        p.lookup("gcr", Some(&r("docker.io/library/a:1"))).rule,
        "policy.default"
    );
    fn facts(s: &DockerRef) -> ImageFacts<'_> {
        ImageFacts {
            transport: "docker",
            reference: Some(s),
            manifest: b"{}",
            signatures: &[],
        }
    }
    assert!(
        !p.evaluate(&facts(&r("reg.example.com/team/app:bad")))
            .allowed
    );
    assert!(
        p.evaluate(&facts(&r("reg.example.com/team/app:good")))
            .allowed
    );
    assert!(p
        .precheck("docker", &r("reg.example.com/team/app:bad"))
        .is_some());
    assert!(p
        .precheck("docker", &r("reg.example.com/team/app:good"))
        .is_none());
}

#[test]
fn signed_identity_rules() {
    let img = r("reg.io/ns/app:1");
    let dig = r("reg.io/ns/app@sha256:abcd");
    assert!(identity_ok(&Identity::MatchRepository {}, Some(&img), "reg.io/ns/app").is_ok());
    assert!(identity_ok(&Identity::MatchRepository {}, Some(&img), "reg.io/ns/other").is_err());
    assert!(identity_ok(
        &Identity::MatchRepoDigestOrExact {},
        Some(&img),
        "reg.io/ns/app"
    )
    .is_err());
    assert!(identity_ok(
        &Identity::MatchRepoDigestOrExact {},
        Some(&img),
        "reg.io/ns/app:1"
    )
    .is_ok());
    assert!(identity_ok(
        &Identity::MatchRepoDigestOrExact {},
        Some(&dig),
        "reg.io/ns/app"
    )
    .is_ok());
    assert!(identity_ok(&Identity::MatchExact {}, Some(&img), "reg.io/ns/app:2").is_err());
    let exact = Identity::ExactReference {
        docker_reference: "x.io/a:1".into(),
    };
    assert!(identity_ok(&exact, None, "x.io/a:1").is_ok());
    let repo = Identity::ExactRepository {
        docker_repository: "x.io/a".into(),
    };
    assert!(identity_ok(&repo, None, "x.io/a").is_ok());
    assert!(identity_ok(&repo, None, "x.io/b").is_err());
    let remap = Identity::RemapIdentity {
        prefix: "mirror:5000/v".into(),
        signed_prefix: "vendor.io".into(),
    };
    let m = r("mirror:5000/v/prod/img:3");
    assert!(identity_ok(&remap, Some(&m), "vendor.io/prod/img:3").is_ok());
    assert!(identity_ok(&remap, Some(&m), "vendor.io/prod/img:4").is_err());
}

#[test]
fn run_policy_denies_by_default_and_fills_ceilings() {
    let p = RunPolicy::parse(
        "r.json",
        br#"{"registries":["local"],"capAdd":["net_admin"],"memory":"64m","cpus":1.5,"pids":50,"nonRoot":true}"#,
    )
    .unwrap();
    let ok = RunRequest {
        registry: "local".into(),
        uid: Some(1000),
        ..Default::default()
    };
    let d = p.evaluate(&ok, &[]).unwrap();
    assert_eq!(d.memory, Some(64 << 20));
    assert_eq!(d.pids, Some(50));
    let rule = |req: RunRequest| p.evaluate(&req, &[]).unwrap_err().rule;
    assert_eq!(
        rule(RunRequest {
            registry: "docker.io".into(),
            ..ok.clone()
        }),
        "runPolicy.registries"
    );
    assert_eq!(
        rule(RunRequest {
            privileged: true,
            ..ok.clone()
        }),
        "runPolicy.privileged"
    );
    assert_eq!(
        rule(RunRequest {
            cap_add: vec!["SYS_ADMIN".into()],
            ..ok.clone()
        }),
        "runPolicy.capAdd"
    );
    assert!(p
        .evaluate(
            &RunRequest {
                cap_add: vec!["CAP_NET_ADMIN".into()],
                ..ok.clone()
            },
            &[]
        )
        .is_ok());
    assert_eq!(
        rule(RunRequest {
            host_network: true,
            ..ok.clone()
        }),
        "runPolicy.hostNetwork"
    );
    assert_eq!(
        rule(RunRequest {
            binds: vec![("/etc".into(), Some("/etc".into()))],
            ..ok.clone()
        }),
        "runPolicy.bindMounts"
    );
    assert_eq!(
        rule(RunRequest {
            host_namespaces: vec!["pid".into()],
            ..ok.clone()
        }),
        "runPolicy.hostNamespaces"
    );
    assert_eq!(
        rule(RunRequest {
            devices: vec!["/dev/fuse".into()],
            ..ok.clone()
        }),
        "runPolicy.devices"
    );
    assert_eq!(
        rule(RunRequest {
            uid: Some(0),
            ..ok.clone()
        }),
        "runPolicy.nonRoot"
    );
    assert_eq!(
        rule(RunRequest {
            memory: Some(1 << 30),
            ..ok.clone()
        }),
        "runPolicy.memory"
    );
    assert_eq!(
        rule(RunRequest {
            cpus: Some(2.0),
            ..ok.clone()
        }),
        "runPolicy.cpus"
    );
    assert_eq!(
        rule(RunRequest {
            pids: Some(51),
            ..ok.clone()
        }),
        "runPolicy.pids"
    );
    let e = p.evaluate(&ok, &["abc".into()]).unwrap_err();
    assert_eq!(e.rule, "runPolicy.signers");
}
