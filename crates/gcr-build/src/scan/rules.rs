//! The secret-scanning rule table: a subset of gitleaks' default rules (its
//! `config/gitleaks.toml`) for private keys, cloud access keys and service tokens, each
//! with gitleaks' rule id where one exists. A rule is a regular expression (compiled once,
//! all rules together in one `RegexSet`), how many leading bytes of a match are a fixed,
//! non-secret prefix that messages may show, and an optional check of the match that
//! removes near misses the expression alone cannot (placeholders, low entropy).

/// One rule.
#[derive(Debug)]
pub struct Rule {
    /// A stable id (gitleaks' where it has one).
    pub id: &'static str,
    /// What a match is, as a noun phrase for messages ("an AWS access key id").
    pub what: &'static str,
    /// The expression (bytes regex, Unicode off: `\b`, `\s` and classes are ASCII).
    pub pattern: &'static str,
    /// Leading bytes of a match that are a well-known prefix, safe to show.
    pub show: usize,
    /// A further test of one match (the whole file, the match, its first capture group).
    pub check: Check,
}

/// Further tests of a match.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Check {
    /// The expression is enough.
    None,
    /// Capture group 1 has Shannon entropy of at least `bits` per byte and holds both
    /// letters and digits (rules out placeholders such as `changeme` or `xxxx…`).
    Entropy { bits: f32 },
    /// The match does not end in `EXAMPLE` (the placeholder of AWS' documentation).
    NotExample,
    /// The file also contains `"private_key"` (a service account file with its key).
    HasPrivateKeyField,
    /// A PEM header followed by at least 64 bytes of key body before an END line.
    PemBody,
}

/// The rules, in report order.
pub const RULES: &[Rule] = &[
    Rule {
        id: "private-key",
        what: "a private key",
        pattern: r"-----BEGIN[ A-Z0-9_-]{0,100}PRIVATE KEY(?: BLOCK)?-----",
        show: usize::MAX, // the header line names the key type and is not secret
        check: Check::PemBody,
    },
    Rule {
        id: "aws-access-token",
        what: "an AWS access key id",
        pattern: r"\b(?:A3T[A-Z0-9]|AKIA|ASIA|ABIA|ACCA)[A-Z2-7]{16}\b",
        show: 4,
        check: Check::NotExample,
    },
    Rule {
        id: "aws-secret-access-key",
        what: "an AWS secret access key",
        pattern: r#"(?i)(?:aws_?secret_?(?:access_?)?key|secret_?access_?key)["']?\s*[:=]\s*["']?([A-Za-z0-9/+]{40})(?:[^A-Za-z0-9/+=]|$)"#,
        show: 0,
        check: Check::Entropy { bits: 4.0 },
    },
    Rule {
        id: "gcp-service-account",
        what: "a Google Cloud service account key file",
        pattern: r#""type"\s*:\s*"service_account""#,
        show: usize::MAX, // the match is the "type" field, not the key
        check: Check::HasPrivateKeyField,
    },
    Rule {
        id: "gcp-api-key",
        what: "a Google API key",
        pattern: r"\bAIza[0-9A-Za-z_-]{35}\b",
        show: 4,
        check: Check::None,
    },
    Rule {
        id: "github-pat",
        what: "a GitHub personal access token",
        pattern: r"\bghp_[0-9a-zA-Z]{36}\b",
        show: 4,
        check: Check::None,
    },
    Rule {
        id: "github-fine-grained-pat",
        what: "a GitHub fine-grained personal access token",
        pattern: r"\bgithub_pat_[0-9a-zA-Z_]{82}\b",
        show: 11,
        check: Check::None,
    },
    Rule {
        id: "github-oauth",
        what: "a GitHub OAuth access token",
        pattern: r"\bgho_[0-9a-zA-Z]{36}\b",
        show: 4,
        check: Check::None,
    },
    Rule {
        id: "github-app-token",
        what: "a GitHub App token",
        pattern: r"\b(?:ghu|ghs)_[0-9a-zA-Z]{36}\b",
        show: 4,
        check: Check::None,
    },
    Rule {
        id: "github-refresh-token",
        what: "a GitHub refresh token",
        pattern: r"\bghr_[0-9a-zA-Z]{36}\b",
        show: 4,
        check: Check::None,
    },
    Rule {
        id: "gitlab-pat",
        what: "a GitLab personal access token",
        pattern: r"\bglpat-[0-9a-zA-Z_-]{20}\b",
        show: 6,
        check: Check::None,
    },
    Rule {
        id: "slack-bot-token",
        what: "a Slack bot token",
        pattern: r"\bxoxb-[0-9]{10,13}-[0-9]{10,13}-[a-zA-Z0-9]{16,32}\b",
        show: 5,
        check: Check::None,
    },
    Rule {
        id: "slack-user-token",
        what: "a Slack user token",
        pattern: r"\bxox[pe](?:-[0-9]{10,13}){3}-[a-zA-Z0-9-]{28,34}\b",
        show: 5,
        check: Check::None,
    },
    Rule {
        id: "slack-legacy-token",
        what: "a Slack legacy token",
        pattern: r"\bxox[ars]-(?:[0-9]{7,13}-){1,3}[0-9a-zA-Z]{8,48}\b",
        show: 5,
        check: Check::None,
    },
    Rule {
        id: "slack-webhook-url",
        what: "a Slack webhook URL",
        pattern: r"hooks\.slack\.com/(?:services|workflows|triggers)/[A-Za-z0-9+/]{43,56}",
        show: 15,
        check: Check::None,
    },
    Rule {
        id: "stripe-access-token",
        what: "a Stripe API key",
        pattern: r"\b(?:sk|rk)_(?:test|live|prod)_[a-zA-Z0-9]{10,99}\b",
        show: 8,
        check: Check::None,
    },
    Rule {
        id: "npm-access-token",
        what: "an npm access token",
        pattern: r"\bnpm_[a-zA-Z0-9]{36}\b",
        show: 4,
        check: Check::None,
    },
    Rule {
        id: "pypi-upload-token",
        what: "a PyPI upload token",
        pattern: r"pypi-AgEIcHlwaS5vcmc[A-Za-z0-9_-]{50,}",
        show: 5,
        check: Check::None,
    },
    Rule {
        id: "azure-storage-key",
        what: "an Azure storage account key",
        pattern: r"(?i)AccountKey\s*=\s*([A-Za-z0-9+/]{86}==)",
        show: 11,
        check: Check::Entropy { bits: 4.0 },
    },
    Rule {
        id: "jwt",
        what: "a signed JSON Web Token",
        pattern: r"\bey[a-zA-Z0-9_-]{17,}\.ey[a-zA-Z0-9_-]{17,}\.[a-zA-Z0-9_-]{10,}",
        show: 2,
        check: Check::None,
    },
    Rule {
        id: "sendgrid-api-token",
        what: "a SendGrid API key",
        pattern: r"\bSG\.[a-zA-Z0-9_-]{22}\.[a-zA-Z0-9_-]{43}\b",
        show: 3,
        check: Check::None,
    },
    Rule {
        id: "openai-api-key",
        what: "an OpenAI API key",
        pattern: r"\bsk-(?:proj-|svcacct-|admin-)?[A-Za-z0-9_-]{20,74}T3BlbkFJ[A-Za-z0-9_-]{20,74}\b",
        show: 3,
        check: Check::None,
    },
    Rule {
        id: "anthropic-api-key",
        what: "an Anthropic API key",
        pattern: r"\bsk-ant-(?:api03|admin01)-[a-zA-Z0-9_-]{93}AA\b",
        show: 7,
        check: Check::None,
    },
    Rule {
        id: "digitalocean-pat",
        what: "a DigitalOcean personal access token",
        pattern: r"\bdop_v1_[a-f0-9]{64}\b",
        show: 7,
        check: Check::None,
    },
    Rule {
        id: "huggingface-access-token",
        what: "a Hugging Face access token",
        pattern: r"\bhf_[a-zA-Z]{34}\b",
        show: 3,
        check: Check::None,
    },
    Rule {
        id: "age-secret-key",
        what: "an age secret key",
        pattern: r"AGE-SECRET-KEY-1[QPZRY9X8GF2TVDW0S3JN54KHCE6MUA7L]{58}",
        show: 15,
        check: Check::None,
    },
    Rule {
        id: "generic-password",
        what: "a password or API secret assigned in clear",
        pattern: r#"(?i)\b(?:password|passwd|api_?key|api_?secret|client_?secret|access_?token|auth_?token|secret_?key)["']?\s*[:=]\s*["']([A-Za-z0-9!#%&*+,.;=?@^_~-]{16,64})["']"#,
        show: 0,
        check: Check::Entropy { bits: 3.5 },
    },
];
