//! Unit tests of the scanner: each rule finds a fake but pattern-valid sample and passes
//! over a near miss. Samples are assembled at run time so this file itself holds no
//! token-shaped string.

use super::rules::RULES;
use super::*;

const ALNUM: &str = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
const B64: &str = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
const HEX: &str = "0123456789abcdef";
const DIGITS: &str = "0123456789";

thread_local! {
    /// Every string [`rnd`] made on this thread (the secret parts of the samples).
    static MADE: std::cell::RefCell<Vec<String>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// A deterministic pseudo-random string over `alpha`.
fn rnd(alpha: &str, n: usize, seed: u64) -> String {
    let a = alpha.as_bytes();
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let s: String = (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            a[(x % a.len() as u64) as usize] as char
        })
        .collect();
    MADE.with(|m| m.borrow_mut().push(s.clone()));
    s
}

fn pem(kind: &str) -> String {
    let body: Vec<String> = (0..4).map(|i| rnd(B64, 64, 100 + i)).collect();
    format!(
        "-----BEGIN {kind}-----\n{}\n-----END {kind}-----\n",
        body.join("\n")
    )
}

/// (rule id, a text it must find, a near miss it must not).
fn samples() -> Vec<(&'static str, String, String)> {
    let gh = |p: &str, s| format!("gh{p}_{}", rnd(ALNUM, 36, s));
    vec![
        (
            "private-key",
            pem(&format!("RSA {}", "PRIVATE KEY")),
            "put your -----BEGIN RSA PRIVATE KEY----- block in the file named below\n".into(),
        ),
        ("private-key", pem("OPENSSH PRIVATE KEY"), pem("PUBLIC KEY")),
        ("private-key", pem("EC PRIVATE KEY"), pem("CERTIFICATE")),
        ("private-key", pem("PGP PRIVATE KEY BLOCK"), pem("PGP PUBLIC KEY BLOCK")),
        ("private-key", pem("PRIVATE KEY"), pem("ENCRYPTED MESSAGE")),
        (
            "aws-access-token",
            format!("key_id = {}{}", "AK", "IA") + &rnd("ABCDEFGHIJKLMNOPQRSTUVWXYZ234567", 16, 1),
            format!("key_id = {}IOSFODNN7EXAMPLE", "AKIA"),
        ),
        (
            "aws-access-token",
            format!("{}{}", "AS", "IA") + &rnd("ABCDEFGHIJKLMNOPQRSTUVWXYZ234567", 16, 2),
            format!("{}{}", "AK", "IA") + &rnd("ABCDEFGHIJKLMNOPQRSTUVWXYZ234567", 15, 2),
        ),
        (
            "aws-secret-access-key",
            format!("aws_secret_access_key = {}\n", rnd(B64, 40, 3)),
            format!("aws_secret_access_key = {}\n", "x".repeat(40)),
        ),
        (
            "gcp-service-account",
            format!(
                "{{\n  \"type\": \"service_account\",\n  \"project_id\": \"p\",\n  \"private_key\": \"{}\"\n}}\n",
                pem("PRIVATE KEY").replace('\n', "\\n")
            ),
            "{\"type\": \"service_account\", \"client_email\": \"a@b.iam.gserviceaccount.com\"}\n"
                .into(),
        ),
        (
            "gcp-api-key",
            format!("key={}{}{}", "AI", "za", rnd(ALNUM, 35, 4)),
            format!("key={}{}{}", "AI", "za", rnd(ALNUM, 30, 4)),
        ),
        ("github-pat", gh("p", 5), format!("ghp_{}", rnd(ALNUM, 35, 5))),
        ("github-oauth", gh("o", 6), format!("gh0_{}", rnd(ALNUM, 36, 6))),
        ("github-app-token", gh("s", 7), format!("ghs_{}", rnd(ALNUM, 20, 7))),
        ("github-app-token", gh("u", 8), format!("ghx_{}", rnd(ALNUM, 36, 8))),
        ("github-refresh-token", gh("r", 9), format!("ghr-{}", rnd(ALNUM, 36, 9))),
        (
            "github-fine-grained-pat",
            format!("{}{}{}", "github", "_pat_", rnd(ALNUM, 82, 10)),
            format!("{}{}{}", "github", "_pat_", rnd(ALNUM, 40, 10)),
        ),
        (
            "gitlab-pat",
            format!("{}{}{}", "gl", "pat-", rnd(ALNUM, 20, 11)),
            format!("{}{}{}", "gl", "pat-", rnd(ALNUM, 12, 11)),
        ),
        (
            "slack-bot-token",
            format!(
                "{}{}-{}-{}",
                "xo",
                "xb",
                rnd(DIGITS, 11, 12),
                rnd(DIGITS, 12, 13)
            ) + "-"
                + &rnd(ALNUM, 24, 14),
            "xoxb-not-a-token".into(),
        ),
        (
            "slack-user-token",
            format!(
                "{}{}-{}-{}-{}-{}",
                "xo",
                "xp",
                rnd(DIGITS, 11, 15),
                rnd(DIGITS, 11, 16),
                rnd(DIGITS, 12, 17),
                rnd(HEX, 32, 18)
            ),
            format!("xoxp-{}", rnd(DIGITS, 11, 15)),
        ),
        (
            "slack-legacy-token",
            format!("{}{}-{}-{}", "xo", "xs", rnd(DIGITS, 10, 19), rnd(ALNUM, 20, 20)),
            "xoxs-1234".into(),
        ),
        (
            "slack-webhook-url",
            format!(
                "https://hooks.{}/services/T{}/B{}/{}",
                "slack.com",
                rnd(ALNUM, 8, 21),
                rnd(ALNUM, 8, 22),
                rnd(ALNUM, 24, 23)
            ),
            "https://hooks.slack.com/services/T000/B000/XXX".into(),
        ),
        (
            "stripe-access-token",
            format!("{}{}{}", "sk", "_live_", rnd(ALNUM, 24, 24)),
            format!("{}{}{}", "pk", "_live_", rnd(ALNUM, 24, 24)),
        ),
        (
            "npm-access-token",
            format!("//registry.npmjs.org/:_authToken={}{}", "np", "m_") + &rnd(ALNUM, 36, 25),
            format!("npm_{}", rnd(ALNUM, 35, 25)),
        ),
        (
            "pypi-upload-token",
            format!("password = {}{}{}", "pypi-", "AgEIcHlwaS5vcmc", rnd(ALNUM, 60, 26)),
            format!("password = {}{}", "pypi-", rnd(ALNUM, 60, 26)),
        ),
        (
            "azure-storage-key",
            format!(
                "DefaultEndpointsProtocol=https;AccountName=a;{}={}==;",
                "AccountKey",
                rnd(B64, 86, 27)
            ),
            "DefaultEndpointsProtocol=https;AccountName=a;AccountKey=<your key>;".into(),
        ),
        (
            "jwt",
            format!(
                "Authorization: Bearer {}{}.{}{}.{}",
                "ey",
                rnd(ALNUM, 30, 28),
                "ey",
                rnd(ALNUM, 60, 29),
                rnd(ALNUM, 43, 30)
            ),
            format!("unsigned: ey{}.ey{}.", rnd(ALNUM, 30, 28), rnd(ALNUM, 60, 29)),
        ),
        (
            "sendgrid-api-token",
            format!("{}{}.{}", "SG.", rnd(ALNUM, 22, 31), rnd(ALNUM, 43, 32)),
            format!("SG.{}", rnd(ALNUM, 22, 31)),
        ),
        (
            "openai-api-key",
            format!(
                "{}{}{}{}",
                "sk-proj-",
                rnd(ALNUM, 30, 33),
                "T3Blbk",
                "FJ"
            ) + &rnd(ALNUM, 30, 34),
            format!("sk-proj-{}", rnd(ALNUM, 60, 33)),
        ),
        (
            "anthropic-api-key",
            format!("{}{}{}AA", "sk-ant-", "api03-", rnd(ALNUM, 93, 35)),
            format!("sk-ant-api03-{}AA", rnd(ALNUM, 50, 35)),
        ),
        (
            "digitalocean-pat",
            format!("{}{}", "dop_v1_", rnd(HEX, 64, 36)),
            format!("dop_v1_{}", rnd(HEX, 63, 36)),
        ),
        (
            "huggingface-access-token",
            format!("{}{}", "hf_", rnd("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ", 34, 37)),
            format!("hf_{}", rnd("abcdefghijklmnopqrstuvwxyz", 20, 37)),
        ),
        (
            "age-secret-key",
            format!("{}{}", "AGE-SECRET-", "KEY-1") + &rnd("QPZRY9X8GF2TVDW0S3JN54KHCE6MUA7L", 58, 38),
            format!("age1{}", rnd("qpzry9x8gf2tvdw0s3jn54khce6mua7l", 58, 38)),
        ),
        (
            "generic-password",
            format!("db:\n  password: \"{}\"\n", rnd(ALNUM, 24, 39)),
            "db:\n  password: \"correct-horse-battery-staple\"\n  api_key: \"${API_KEY}\"\n"
                .into(),
        ),
    ]
}

#[test]
fn the_rules_compile_and_have_unique_ids() {
    let s = scanner().expect("rules compile");
    assert_eq!(s.each.len(), RULES.len());
    let mut ids: Vec<&str> = RULES.iter().map(|r| r.id).collect();
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), RULES.len(), "duplicate rule ids");
    assert!((20..=30).contains(&RULES.len()));
}

#[test]
fn every_rule_has_a_sample() {
    let tested: Vec<&str> = samples().iter().map(|s| s.0).collect();
    for r in RULES {
        assert!(tested.contains(&r.id), "rule {} has no sample", r.id);
    }
}

#[test]
fn each_rule_finds_its_sample_and_not_its_near_miss() {
    let s = scanner().unwrap();
    let mut wrong = Vec::new();
    for (id, pos, neg) in samples() {
        let text = format!("first line\nsecond line\n{pos}\nlast line\n");
        let hits = s.scan(text.as_bytes());
        let i = RULES.iter().position(|r| r.id == id).unwrap();
        let at = s.each[i].find(pos.as_bytes()).map_or(0, |m| m.start());
        let line = 3 + pos[..at].matches('\n').count();
        match hits.iter().find(|h| h.rule == id) {
            None => wrong.push(format!("{id} did not find {pos:?}; hits {hits:?}")),
            Some(h) if h.line != line => wrong.push(format!("{id}: line {} of {pos:?}", h.line)),
            Some(_) => {}
        }
        let neg_hits = s.scan(format!("one\n{neg}\n").as_bytes());
        if !neg_hits.is_empty() {
            wrong.push(format!("{id}: near miss {neg:?} was found: {neg_hits:?}"));
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

#[test]
fn previews_never_show_the_secret() {
    let s = scanner().unwrap();
    let samples = samples();
    let secrets: Vec<String> = MADE.with(|m| m.borrow().clone());
    for (id, pos, _) in samples {
        for h in s.scan(pos.as_bytes()) {
            let shown = h.preview.trim_end_matches('…');
            for secret in &secrets {
                for w in secret.as_bytes().windows(6) {
                    let w = std::str::from_utf8(w).unwrap();
                    assert!(!shown.contains(w), "{id}: preview {shown:?} shows {w:?}");
                }
            }
        }
    }
}

#[test]
fn binary_files_are_not_scanned() {
    let s = scanner().unwrap();
    let mut b = format!("{}{}{}\n", "gh", "p_", rnd(ALNUM, 36, 40)).into_bytes();
    assert_eq!(s.scan(&b).len(), 1);
    b.insert(0, 0);
    assert!(is_binary(&b));
    assert!(s.scan(&b).is_empty());
}

#[test]
fn lines_are_counted_and_hits_capped() {
    let s = scanner().unwrap();
    let mut text = String::new();
    for i in 0..20 {
        text.push_str(&format!(
            "k{i} = {}{}{}\n",
            "gh",
            "p_",
            rnd(ALNUM, 36, 50 + i)
        ));
    }
    let hits = s.scan(text.as_bytes());
    assert_eq!(hits.len(), MAX_HITS_PER_FILE);
    assert_eq!(
        hits.iter().map(|h| h.line).collect::<Vec<_>>(),
        (1..=8).collect::<Vec<_>>()
    );
}

#[test]
fn arbitrary_bytes_do_not_panic() {
    let s = scanner().unwrap();
    for seed in 0..200u64 {
        let b: Vec<u8> = rnd(B64, 300, seed)
            .bytes()
            .map(|c| c.wrapping_mul(seed as u8 | 1))
            .collect();
        let _ = s.scan(&b);
    }
    let _ = s.scan(b"-----BEGIN PRIVATE KEY-----");
    let _ = s.scan(b"");
}

#[test]
fn allow_paths_match_files_and_directories() {
    let ctx = Path::new("/ctx");
    let a = Allow::new(
        ctx,
        &["./keys/".into(), "app/.env".into(), "/ctx/x/y".into()],
    )
    .unwrap();
    assert!(a.allows("keys/id_rsa"));
    assert!(a.allows("keys/sub/k"));
    assert!(!a.allows("keysX/id_rsa"));
    assert!(a.allows("app/.env"));
    assert!(!a.allows("app/.env2"));
    assert!(!a.allows("app"));
    assert!(a.allows("x/y"));
    assert!(Allow::new(ctx, &[".".into()]).unwrap().allows("any/file"));
    assert!(!Allow::default().allows("a"));
    assert!(Allow::new(ctx, &["../up".into()]).is_err());
    assert!(Allow::new(ctx, &["/elsewhere/f".into()]).is_err());
}

#[test]
fn the_refusal_names_file_line_rule_and_the_fix() {
    let s = scanner().unwrap();
    let tok = format!("{}{}{}", "gl", "pat-", rnd(ALNUM, 20, 60));
    let hits = s.scan(format!("a\n{tok}\n").as_bytes());
    let e = refusal(&[("conf/app.ini".into(), hits[0].clone())]).to_string();
    assert!(e.contains("conf/app.ini:2"), "{e}");
    assert!(e.contains("gitlab-pat"), "{e}");
    assert!(e.contains("--allow-secret conf/app.ini"), "{e}");
    assert!(e.contains(".gcrignore"), "{e}");
    assert!(!e.contains(&tok[6..]), "{e}");
}
