//! `gcr system service --tls` (issue 20): the API beyond loopback only with TLS and client
//! certificates. Certificates are made with openssl (a CA, the service's certificate for
//! 127.0.0.1, a client certificate, and a client certificate of another CA); the stock
//! docker CLI with DOCKER_TLS_VERIFY drives the service on tcp://0.0.0.0:PORT through
//! loopback (a foreground run's output and exit code go through the hijacked attach over
//! TLS); curl without a certificate, with the other CA's, or in plain HTTP reaches no
//! endpoint. Bad TLS settings are refused at start with exit 125 and nothing served.

mod common;

use std::path::Path;
use std::process::Command;

use common::servers::{free_port, need_tools};
use common::service::Service;
use common::{need_root, stderr, stdout, Env, IMAGE};

fn openssl(dir: &Path, args: &[&str]) {
    let o = Command::new("openssl")
        .current_dir(dir)
        .args(args)
        .output()
        .expect("openssl");
    assert!(o.status.success(), "openssl {args:?}: {}", stderr(&o));
}

/// A CA (`NAME-ca.pem`, `NAME-ca-key.pem`) in `dir`.
fn ca(dir: &Path, name: &str) {
    openssl(
        dir,
        &[
            "req",
            "-x509",
            "-new",
            "-nodes",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-keyout",
            &format!("{name}-ca-key.pem"),
            "-out",
            &format!("{name}-ca.pem"),
            "-days",
            "2",
            "-subj",
            &format!("/CN={name} test CA"),
        ],
    );
}

/// A certificate `OUT.pem` with key `OUT-key.pem`, signed by CA `name`, with extensions `ext`.
fn leaf(dir: &Path, name: &str, out: &str, cn: &str, ext: &str) {
    std::fs::write(dir.join(format!("{out}.ext")), ext).unwrap();
    openssl(
        dir,
        &[
            "req",
            "-new",
            "-nodes",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-keyout",
            &format!("{out}-key.pem"),
            "-out",
            &format!("{out}.csr"),
            "-subj",
            &format!("/CN={cn}"),
        ],
    );
    openssl(
        dir,
        &[
            "x509",
            "-req",
            "-in",
            &format!("{out}.csr"),
            "-CA",
            &format!("{name}-ca.pem"),
            "-CAkey",
            &format!("{name}-ca-key.pem"),
            "-CAcreateserial",
            "-out",
            &format!("{out}.pem"),
            "-days",
            "2",
            "-extfile",
            &format!("{out}.ext"),
        ],
    );
}

/// A client certificate directory as the docker CLI reads it (ca.pem, cert.pem, key.pem).
/// The service's CA is the one the client trusts; `cert` is the client's certificate.
fn client_dir(dir: &Path, sub: &str, cert: &str) -> std::path::PathBuf {
    let d = dir.join(sub);
    std::fs::create_dir(&d).unwrap();
    std::fs::copy(dir.join("gcr-ca.pem"), d.join("ca.pem")).unwrap();
    std::fs::copy(dir.join(format!("{cert}.pem")), d.join("cert.pem")).unwrap();
    std::fs::copy(dir.join(format!("{cert}-key.pem")), d.join("key.pem")).unwrap();
    d
}

/// curl of /_ping over https: (exit code, body).
fn curl_ping(port: u16, dir: &Path, cert: Option<&str>) -> (Option<i32>, String) {
    let mut c = Command::new("curl");
    c.args(["-s", "--max-time", "10", "--cacert"])
        .arg(dir.join("gcr-ca.pem"));
    if let Some(cert) = cert {
        c.arg("--cert")
            .arg(dir.join(format!("{cert}.pem")))
            .arg("--key")
            .arg(dir.join(format!("{cert}-key.pem")));
    }
    let o = c
        .arg(format!("https://127.0.0.1:{port}/_ping"))
        .output()
        .expect("curl");
    (o.status.code(), stdout(&o))
}

#[test]
fn tls_with_client_certificates() {
    if !(need_root("tls_with_client_certificates")
        && need_tools(
            "tls_with_client_certificates",
            &["docker", "curl", "openssl"],
        ))
    {
        return;
    }
    let env = Env::new();
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    ca(d, "gcr");
    ca(d, "rogue");
    leaf(
        d,
        "gcr",
        "server",
        "localhost",
        "subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n",
    );
    leaf(
        d,
        "gcr",
        "client",
        "client",
        "extendedKeyUsage=clientAuth\n",
    );
    leaf(
        d,
        "rogue",
        "intruder",
        "intruder",
        "extendedKeyUsage=clientAuth\n",
    );
    let ca_pem = d.join("gcr-ca.pem").display().to_string();
    let cert = d.join("server.pem").display().to_string();
    let key = d.join("server-key.pem").display().to_string();
    let port = free_port();
    let any = format!("tcp://0.0.0.0:{port}");

    // Refused at start, exit 125, with the fix named.
    let refused = |extra: &[&str], says: &[&str]| {
        let mut args = vec!["system", "service", "--host"];
        args.extend_from_slice(extra);
        let o = env.gcr(&args);
        assert_eq!(o.status.code(), Some(125), "{args:?}: {}", stderr(&o));
        for s in says {
            assert!(stderr(&o).contains(s), "{args:?}: {s:?} in {}", stderr(&o));
        }
    };
    refused(&[&any], &["--tls"]);
    let sock = format!("unix://{}/api/gcr.sock", env.root.path().display());
    refused(&[&sock, "--tls"], &["TCP address only"]);
    refused(&[&any, "--tlscacert", &ca_pem], &["add --tls"]);
    let missing = d.join("nope.pem").display().to_string();
    let with_key = |k: &str| {
        refused(
            &[
                &any,
                "--tls",
                "--tlscacert",
                &ca_pem,
                "--tlscert",
                &cert,
                "--tlskey",
                k,
            ],
            &[
                if k == missing {
                    "nope.pem"
                } else {
                    "does not match"
                },
                "--tlskey",
            ],
        )
    };
    with_key(&missing);
    // The client's key is not the service's: the pair is refused.
    with_key(&d.join("client-key.pem").display().to_string());

    // Served on every address; the docker CLI with its certificate works through loopback.
    let client = client_dir(d, "client-dir", "client");
    let svc = Service::start_for(
        &env,
        &any,
        &[
            "--tls",
            "--tlscacert",
            &ca_pem,
            "--tlscert",
            &cert,
            "--tlskey",
            &key,
        ],
        vec![
            ("DOCKER_TLS_VERIFY".into(), "1".into()),
            ("DOCKER_CERT_PATH".into(), client.display().to_string()),
        ],
    );
    assert_eq!(
        svc.ok(&["version", "--format", "{{.Server.APIVersion}}"])
            .trim(),
        "1.41"
    );
    let o = svc.docker(&["run", "--rm", IMAGE, "sh", "-c", "echo over-tls; exit 5"]);
    assert_eq!(
        (o.status.code(), stdout(&o).as_str()),
        (Some(5), "over-tls\n"),
        "{}",
        stderr(&o)
    );

    // No certificate, another CA's certificate, plain HTTP: no endpoint answers.
    assert_eq!(curl_ping(port, d, Some("client")), (Some(0), "OK".into()));
    let (code, body) = curl_ping(port, d, None);
    assert!(code != Some(0) && body.is_empty(), "{code:?} {body}");
    let (code, body) = curl_ping(port, d, Some("intruder"));
    assert!(code != Some(0) && body.is_empty(), "{code:?} {body}");
    let o = Command::new("curl")
        .args(["-s", "--max-time", "5"])
        .arg(format!("http://127.0.0.1:{port}/_ping"))
        .output()
        .expect("curl");
    assert_ne!(stdout(&o), "OK");
    let rogue = client_dir(d, "rogue-dir", "intruder");
    let o = svc
        .docker_cmd(&["ps"])
        .env("DOCKER_CERT_PATH", &rogue)
        .output()
        .expect("docker");
    assert!(!o.status.success(), "{}", stdout(&o));
    // ... and the service still serves its client.
    assert!(svc.ok(&["ps", "-a"]).starts_with("CONTAINER ID"));
}

/// Revokes certificate `OUT.pem` of CA `name` (with `revoke`) and writes the CA's CRL to
/// `crl.pem` (openssl ca with a minimal database in `dir`).
fn crl(dir: &Path, name: &str, revoke: Option<&str>) {
    if !dir.join("ca.cnf").exists() {
        std::fs::write(
            dir.join("ca.cnf"),
            "[ ca ]\ndefault_ca = d\n[ d ]\ndatabase = index.txt\ncrlnumber = crlnumber\n\
             default_md = sha256\ndefault_crl_days = 2\n",
        )
        .unwrap();
        std::fs::write(dir.join("index.txt"), "").unwrap();
        std::fs::write(dir.join("crlnumber"), "01\n").unwrap();
    }
    let (key, cert) = (format!("{name}-ca-key.pem"), format!("{name}-ca.pem"));
    let ca = ["ca", "-config", "ca.cnf", "-keyfile", &key, "-cert", &cert];
    if let Some(out) = revoke {
        let pem = format!("{out}.pem");
        let mut args = ca.to_vec();
        args.extend(["-revoke", &pem]);
        openssl(dir, &args);
    }
    let mut args = ca.to_vec();
    args.extend(["-gencrl", "-out", "crl.pem"]);
    openssl(dir, &args);
}

#[test]
fn revoked_client_certificates_and_reload() {
    if !(need_root("revoked_client_certificates_and_reload")
        && need_tools(
            "revoked_client_certificates_and_reload",
            &["docker", "curl", "openssl"],
        ))
    {
        return;
    }
    let env = Env::new();
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    ca(d, "gcr");
    leaf(
        d,
        "gcr",
        "server",
        "localhost",
        "subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n",
    );
    for c in ["client", "other"] {
        leaf(d, "gcr", c, c, "extendedKeyUsage=clientAuth\n");
    }
    crl(d, "gcr", None);
    let path = |f: &str| d.join(f).display().to_string();
    let port = free_port();
    let any = format!("tcp://0.0.0.0:{port}");
    let (ca_pem, cert, key, crl_pem) = (
        path("gcr-ca.pem"),
        path("server.pem"),
        path("server-key.pem"),
        path("crl.pem"),
    );
    let tls = [
        "--tls",
        "--tlscacert",
        ca_pem.as_str(),
        "--tlscert",
        cert.as_str(),
        "--tlskey",
        key.as_str(),
        "--tlscrl",
        crl_pem.as_str(),
    ];
    // A CRL that is no CRL is refused at start (exit 125, the flag named).
    let junk = path("junk.pem");
    std::fs::write(&junk, "not a crl\n").unwrap();
    let mut args = vec!["system", "service", "--host", &any];
    args.extend_from_slice(&tls[..7]);
    args.extend(["--tlscrl", &junk]);
    let o = env.gcr(&args);
    assert_eq!(o.status.code(), Some(125), "{}", stderr(&o));
    assert!(stderr(&o).contains("--tlscrl"), "{}", stderr(&o));

    let client = client_dir(d, "client-dir", "client");
    let svc = Service::start_for(
        &env,
        &any,
        &tls,
        vec![
            ("DOCKER_TLS_VERIFY".into(), "1".into()),
            ("DOCKER_CERT_PATH".into(), client.display().to_string()),
        ],
    );
    assert_eq!(curl_ping(port, d, Some("client")), (Some(0), "OK".into()));
    assert_eq!(curl_ping(port, d, Some("other")), (Some(0), "OK".into()));
    // Revoked, then SIGHUP: the service reads its files again and refuses that client.
    crl(d, "gcr", Some("other"));
    svc.signal(libc::SIGHUP);
    assert!(
        common::eventually(10, || curl_ping(port, d, Some("other")).0 != Some(0)),
        "a revoked client certificate is still accepted after SIGHUP"
    );
    assert_eq!(curl_ping(port, d, Some("client")), (Some(0), "OK".into()));
    // A reload that fails (a broken CRL) keeps what is in use.
    std::fs::write(d.join("crl.pem"), "broken\n").unwrap();
    svc.signal(libc::SIGHUP);
    std::thread::sleep(std::time::Duration::from_millis(300));
    assert_eq!(curl_ping(port, d, Some("client")), (Some(0), "OK".into()));
    let (code, body) = curl_ping(port, d, Some("other"));
    assert!(code != Some(0) && body.is_empty(), "{code:?} {body}");
    assert!(svc.ok(&["ps", "-a"]).starts_with("CONTAINER ID"));
}
