//! The database schema, created and migrated by `PRAGMA user_version`. Every table of the
//! store's database is made here, by a versioned migration; no other module creates tables
//! (a test checks the sources). A migration, once released, is never edited: changes go
//! into a new version.

use crate::error::{Result, StoreError};
use rusqlite::Connection;

/// The schema version this build writes: one per migration in [`MIGRATIONS`].
pub(crate) const VERSION: i64 = MIGRATIONS.len() as i64;

/// Every migration, in order: version `n` is `MIGRATIONS[n - 1]`. A new version is one
/// more entry at the end.
const MIGRATIONS: &[&str] = &[
    V1,
    V2,
    V3,
    V4,
    V5,
    V6,
    V7,
    V_LEDGER,
    V_MANIFEST,
    V_LIVE,
    V_LABELS,
    V_MULTINET,
    V_INTERNAL,
    V_IPAM,
    V_EVENT_ATTRS,
    V_NET_OPTIONS,
    V_IPV6,
];

const V1: &str = "
CREATE TABLE IF NOT EXISTS images(
    id TEXT PRIMARY KEY,                 -- config digest
    manifest_digest TEXT NOT NULL,
    manifest_media_type TEXT NOT NULL,
    created INTEGER,                     -- unix seconds from the config, if any
    added_at INTEGER NOT NULL,
    size INTEGER NOT NULL,               -- config + layer blobs
    os TEXT NOT NULL DEFAULT '',
    arch TEXT NOT NULL DEFAULT '',
    config TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS images_manifest ON images(manifest_digest);
CREATE INDEX IF NOT EXISTS images_created ON images(created DESC, id);
CREATE TABLE IF NOT EXISTS tags(
    ref TEXT PRIMARY KEY,                -- docker.io/library/busybox:latest
    image_id TEXT NOT NULL REFERENCES images(id)
);
CREATE INDEX IF NOT EXISTS tags_image ON tags(image_id);
CREATE TABLE IF NOT EXISTS layers(
    digest TEXT PRIMARY KEY,             -- compressed blob digest
    diff_id TEXT NOT NULL,
    media_type TEXT NOT NULL,
    size INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS image_layers(
    image_id TEXT NOT NULL REFERENCES images(id) ON DELETE CASCADE,
    idx INTEGER NOT NULL,                -- 0 = bottom layer
    digest TEXT NOT NULL,
    chain_id TEXT NOT NULL,
    PRIMARY KEY(image_id, idx)
);
CREATE INDEX IF NOT EXISTS image_layers_digest ON image_layers(digest);
CREATE INDEX IF NOT EXISTS image_layers_chain ON image_layers(chain_id);
CREATE TABLE IF NOT EXISTS snapshots(
    chain_id TEXT PRIMARY KEY,
    key TEXT UNIQUE NOT NULL,            -- directory name under snapshots/
    diff_id TEXT NOT NULL,
    size INTEGER NOT NULL,
    created_at INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS containers(
    id TEXT PRIMARY KEY,
    name TEXT UNIQUE NOT NULL,
    image_id TEXT NOT NULL,
    image_ref TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    state TEXT NOT NULL,
    config TEXT NOT NULL,
    pid INTEGER,
    started_at INTEGER,
    finished_at INTEGER,
    exit_code INTEGER,
    oom_killed INTEGER NOT NULL DEFAULT 0,
    restart_count INTEGER NOT NULL DEFAULT 0,
    extra TEXT
);
CREATE INDEX IF NOT EXISTS containers_image ON containers(image_id);
CREATE TABLE IF NOT EXISTS events(
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    time_ns INTEGER NOT NULL,
    kind TEXT NOT NULL,
    object TEXT NOT NULL,
    name TEXT,
    from_state TEXT,
    to_state TEXT,
    cause TEXT
);
CREATE INDEX IF NOT EXISTS events_time ON events(time_ns);
";

/// Version 2: the records of `gcr registry serve` (repositories' manifests, tags and blob
/// links), so that `rmi`/`prune` never free blobs the registry still serves.
const V2: &str = "
CREATE TABLE IF NOT EXISTS registry_manifests(
    repo TEXT NOT NULL, digest TEXT NOT NULL, media_type TEXT NOT NULL,
    size INTEGER NOT NULL, subject TEXT, artifact_type TEXT, annotations TEXT,
    PRIMARY KEY(repo, digest));
CREATE INDEX IF NOT EXISTS registry_manifests_subject ON registry_manifests(repo, subject);
CREATE INDEX IF NOT EXISTS registry_manifests_digest ON registry_manifests(digest);
CREATE TABLE IF NOT EXISTS registry_tags(
    repo TEXT NOT NULL, tag TEXT NOT NULL, digest TEXT NOT NULL, PRIMARY KEY(repo, tag));
CREATE TABLE IF NOT EXISTS registry_blobs(
    repo TEXT NOT NULL, digest TEXT NOT NULL, PRIMARY KEY(repo, digest));
CREATE INDEX IF NOT EXISTS registry_blobs_digest ON registry_blobs(digest);
";

/// Version 3: what each snapshot looked like when it was made (see `snapdigest`): the
/// digest `doctor --snapshots` checks, and the entry count and byte total plain `doctor`
/// checks. NULL for snapshots made by older versions until `doctor --snapshots` records
/// them.
const V3: &str = "
ALTER TABLE snapshots ADD COLUMN tree_digest TEXT;
ALTER TABLE snapshots ADD COLUMN entries INTEGER;
ALTER TABLE snapshots ADD COLUMN bytes INTEGER;
";

/// Version 4: the tables other modules used to create on first use, now made here: the
/// build's step cache, file-metadata index and transcripts (gcr-build), the registry
/// client's blob sources (gcr-registry), and volumes and networks (gcr-engine). `IF NOT
/// EXISTS` because stores made by older versions may already have them, with these very
/// definitions.
const V4: &str = "
CREATE TABLE IF NOT EXISTS build_cache(
    key TEXT PRIMARY KEY,             -- sha256(parent chain id, canonical step, input digests)
    digest TEXT NOT NULL,
    diff_id TEXT NOT NULL,
    size INTEGER NOT NULL,
    created_at INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS build_file_index(
    path TEXT PRIMARY KEY,
    size INTEGER NOT NULL,
    mtime_ns INTEGER NOT NULL,
    ctime_ns INTEGER NOT NULL,
    ino INTEGER NOT NULL,
    digest TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS build_transcripts(
    image_id TEXT PRIMARY KEY,
    transcript TEXT NOT NULL,
    created_at INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS registry_blob_sources(
    digest TEXT NOT NULL, registry TEXT NOT NULL, repository TEXT NOT NULL,
    PRIMARY KEY(digest, registry, repository));
CREATE TABLE IF NOT EXISTS volumes (
    name      TEXT PRIMARY KEY,
    created   INTEGER NOT NULL,
    anonymous INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS networks (
    name      TEXT PRIMARY KEY,
    id        TEXT NOT NULL UNIQUE,
    driver    TEXT NOT NULL,
    bridge    TEXT NOT NULL UNIQUE,
    subnet    TEXT NOT NULL,
    created   INTEGER NOT NULL,
    firewall  TEXT NOT NULL DEFAULT '',
    next_host INTEGER NOT NULL DEFAULT 2
);
CREATE TABLE IF NOT EXISTS net_endpoints (
    container TEXT PRIMARY KEY,
    network   TEXT NOT NULL,
    ip        TEXT NOT NULL,
    names     TEXT NOT NULL,
    veth      TEXT NOT NULL,
    ports     TEXT NOT NULL DEFAULT '',
    proxy_pid INTEGER NOT NULL DEFAULT 0,
    UNIQUE (network, ip)
);
";

/// Version 5: OCI 1.1 referrers (signatures, attestations, any artifact with a `subject`),
/// indexed by subject digest (see `referrers`), and the blobs each referrer manifest names
/// (config and layers), so that `rmi`/`prune` free exactly what no referrer still uses.
const V5: &str = "
CREATE TABLE referrers(
    digest TEXT PRIMARY KEY,             -- the referrer's manifest digest
    subject TEXT NOT NULL,               -- the manifest digest it refers to
    media_type TEXT NOT NULL,
    size INTEGER NOT NULL,
    artifact_type TEXT NOT NULL,
    annotations TEXT NOT NULL DEFAULT '{}', -- JSON object of strings
    added_at INTEGER NOT NULL
);
CREATE INDEX referrers_subject ON referrers(subject, artifact_type);
CREATE TABLE referrer_blobs(
    referrer TEXT NOT NULL REFERENCES referrers(digest) ON DELETE CASCADE,
    blob TEXT NOT NULL,
    PRIMARY KEY(referrer, blob)
);
CREATE INDEX referrer_blobs_blob ON referrer_blobs(blob);
";

/// Version 6: what verifying a signature referrer with a key concluded, so container DNA
/// (`ps --format json`) does not re-verify Ed25519 signatures on every call. A verdict is
/// a function of content-addressed bytes (the referrer, its bundle, the subject manifest)
/// and the key (its id is a digest of the public key), so it never goes stale; it is deleted
/// with its referrer.
const V6: &str = "
CREATE TABLE signature_verdicts(
    referrer TEXT NOT NULL,              -- deleted with its row in `referrers`
    key_id TEXT NOT NULL,
    subject TEXT NOT NULL,               -- the manifest digest the signature was checked against
    ok INTEGER NOT NULL,
    PRIMARY KEY(referrer, key_id)
);
CREATE INDEX signature_verdicts_subject ON signature_verdicts(subject);
";

/// Version 7: secrets (`gcr secret create`). Only the sealed value is kept: a random
/// 24-byte nonce followed by the XChaCha20-Poly1305 ciphertext and tag of the value under
/// the store's secrets key (`<root>/secrets.key`), with the name and id as associated data;
/// `digest` is sha256 of that sealed blob (what `secret inspect` shows). Never the clear value.
const V7: &str = "
CREATE TABLE secrets(
    id TEXT PRIMARY KEY,                 -- 25 random lowercase letters and digits, as Docker's
    name TEXT NOT NULL UNIQUE,
    created_at INTEGER NOT NULL,         -- unix nanoseconds
    updated_at INTEGER NOT NULL,
    labels TEXT NOT NULL DEFAULT '{}',   -- JSON object
    sealed BLOB NOT NULL,                -- nonce || ciphertext || tag
    digest TEXT NOT NULL                 -- sha256:<hex> of sealed
);
";

/// The audit ledger (see `ledger`): every event row carries its actor and its RFC 6962
/// leaf hash, written by a trigger in the same statement as the row (events written before
/// this version get theirs here, with an unknown actor); the Merkle tree's stored hashes
/// (ids as in Go's `sumdb/tlog`) and the signed checkpoints. Entries are never deleted;
/// `compacted` marks one whose body was dropped (its leaf stays).
const V_LEDGER: &str = "
ALTER TABLE events ADD COLUMN actor TEXT;
ALTER TABLE events ADD COLUMN leaf BLOB;
ALTER TABLE events ADD COLUMN compacted INTEGER NOT NULL DEFAULT 0;
UPDATE events SET actor = '{\"exe\":\"\",\"uid\":null}';
UPDATE events SET leaf = gcr_ledger_leaf(seq, time_ns, actor, kind, object, name, from_state, to_state, cause);
CREATE TRIGGER events_ledger AFTER INSERT ON events BEGIN
    UPDATE events SET actor = gcr_ledger_actor(),
        leaf = gcr_ledger_leaf(NEW.seq, NEW.time_ns, gcr_ledger_actor(), NEW.kind, NEW.object,
                               NEW.name, NEW.from_state, NEW.to_state, NEW.cause)
    WHERE seq = NEW.seq;
END;
CREATE TABLE ledger_hashes(
    id INTEGER PRIMARY KEY,              -- stored hash index (tlog's StoredHashIndex)
    hash BLOB NOT NULL
);
CREATE TABLE ledger_checkpoints(
    size INTEGER PRIMARY KEY,            -- entries covered
    note BLOB NOT NULL,                  -- the signed note (c2sp.org/tlog-checkpoint)
    made_at INTEGER NOT NULL
);
";

/// Version 9: MiniContainer manifest applies (`gcr manifest apply`): the first result of
/// each idempotency key (NULL while that apply runs) with the manifest digest it was used
/// for, and the nonces already used (the seed's `X-Nonce`), so neither can be replayed.
const V_MANIFEST: &str = "
CREATE TABLE manifest_applies(
    idempotency_key TEXT PRIMARY KEY,
    digest TEXT NOT NULL,                -- blake3:<hex> of the manifest's signed payload
    result TEXT,                         -- JSON of the first apply's outcome
    created_at INTEGER NOT NULL
);
CREATE TABLE manifest_nonces(
    nonce TEXT PRIMARY KEY,
    digest TEXT NOT NULL,
    used_at INTEGER NOT NULL
);
";

/// Version 10: live events and idempotent API requests. `events.exit_code` is the exit
/// code of an exit transition (`to_state = 'exited'`), written with the event in its
/// statement (a detail of the row, outside its ledger leaf); `api_requests` holds the
/// first answer of each `Idempotency-Key` the API service was given (NULL status while
/// that request runs, by `owner`), with the digest of the request it was used for and its
/// expiry.
const V_LIVE: &str = "
ALTER TABLE events ADD COLUMN exit_code INTEGER;
CREATE TABLE api_requests(
    idempotency_key TEXT PRIMARY KEY,
    request_digest TEXT NOT NULL,        -- sha256:<hex> of method, path and body
    status INTEGER,                      -- the first answer's HTTP status; NULL while in flight
    content_type TEXT,
    body BLOB,
    owner TEXT NOT NULL,                 -- pid:start-time of the process serving it
    created_at INTEGER NOT NULL,         -- unix seconds
    expires_at INTEGER NOT NULL
);
CREATE INDEX api_requests_expiry ON api_requests(expires_at);
";

/// Version 11: labels of volumes and networks (`docker volume|network create --label`,
/// docker-compose's `com.docker.compose.*`), a JSON object of strings.
const V_LABELS: &str = "
ALTER TABLE volumes ADD COLUMN labels TEXT NOT NULL DEFAULT '{}';
ALTER TABLE networks ADD COLUMN labels TEXT NOT NULL DEFAULT '{}';
";

/// Version 13: internal networks (`network create --internal`): no traffic is forwarded
/// into or out of their bridge, and their containers get no default route through them.
const V_INTERNAL: &str = "
ALTER TABLE networks ADD COLUMN internal INTEGER NOT NULL DEFAULT 0;
";

/// Version 14: a network's own gateway address and the range its addresses are leased
/// from (`network create --gateway --ip-range`); empty: the subnet's first address, the
/// whole subnet.
const V_IPAM: &str = "
ALTER TABLE networks ADD COLUMN gateway TEXT NOT NULL DEFAULT '';
ALTER TABLE networks ADD COLUMN ip_range TEXT NOT NULL DEFAULT '';
";

/// Version 15: a container event's attributes as Docker's events show them (the image
/// reference and id, the labels), a JSON object written with the event — a detail of the
/// row outside its ledger leaf, like `exit_code` — so that the events of a container
/// removed since (a `run --rm`) still carry them. NULL for other events and older rows.
const V_EVENT_ATTRS: &str = "
ALTER TABLE events ADD COLUMN attributes TEXT;
";

/// Version 16: a network's driver options as given (`network create -o KEY=VALUE`, a
/// compose file's `driver_opts`), a JSON object of strings.
const V_NET_OPTIONS: &str = "
ALTER TABLE networks ADD COLUMN options TEXT NOT NULL DEFAULT '{}';
";

/// Version 17: dual-stack networks (`network create --ipv6`): a network's IPv6 subnet and
/// its own IPv6 gateway (empty: none, the subnet's first address), and each endpoint's
/// IPv6 address (empty on IPv4-only networks).
const V_IPV6: &str = "
ALTER TABLE networks ADD COLUMN subnet6 TEXT NOT NULL DEFAULT '';
ALTER TABLE networks ADD COLUMN gateway6 TEXT NOT NULL DEFAULT '';
ALTER TABLE net_endpoints ADD COLUMN ip6 TEXT NOT NULL DEFAULT '';
";

/// Version 12: a container may have several network endpoints, one per network
/// (`network connect` of a running container, docker-compose services on two networks):
/// `net_endpoints` is keyed by container and network, and records the interface name
/// inside the container (`eth0` for the first, `eth1`, ... for the others).
const V_MULTINET: &str = "
CREATE TABLE net_endpoints_v12 (
    container TEXT NOT NULL,
    network   TEXT NOT NULL,
    ip        TEXT NOT NULL,
    names     TEXT NOT NULL,
    veth      TEXT NOT NULL,
    ports     TEXT NOT NULL DEFAULT '',
    proxy_pid INTEGER NOT NULL DEFAULT 0,
    ifname    TEXT NOT NULL DEFAULT 'eth0',
    PRIMARY KEY (container, network),
    UNIQUE (network, ip)
);
INSERT INTO net_endpoints_v12 (container, network, ip, names, veth, ports, proxy_pid)
    SELECT container, network, ip, names, veth, ports, proxy_pid FROM net_endpoints;
DROP TABLE net_endpoints;
ALTER TABLE net_endpoints_v12 RENAME TO net_endpoints;
";

/// Creates or migrates the schema; a single pragma read when already current.
pub(crate) fn ensure(conn: &Connection) -> Result<()> {
    let v: i64 = conn.pragma_query_value(None, "user_version", |r| r.get(0))?;
    if v == VERSION {
        return Ok(());
    }
    if v > VERSION {
        return Err(StoreError::SchemaTooNew {
            found: v,
            supported: VERSION,
        });
    }
    conn.execute_batch("BEGIN IMMEDIATE")?;
    let r = (|| -> Result<()> {
        let v: i64 = conn.pragma_query_value(None, "user_version", |r| r.get(0))?;
        for (n, m) in MIGRATIONS.iter().enumerate() {
            if v < n as i64 + 1 {
                conn.execute_batch(m)?;
            }
        }
        conn.pragma_update(None, "user_version", VERSION)?;
        Ok(())
    })();
    match r {
        Ok(()) => {
            conn.execute_batch("COMMIT")?;
            Ok(())
        }
        Err(e) => {
            let _ = conn.execute_batch("ROLLBACK");
            Err(e)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Store;
    use std::path::Path;

    /// Every table the store's database must have after open.
    const TABLES: &[&str] = &[
        "images",
        "tags",
        "layers",
        "image_layers",
        "snapshots",
        "containers",
        "events",
        "registry_manifests",
        "registry_tags",
        "registry_blobs",
        "registry_blob_sources",
        "build_cache",
        "build_file_index",
        "build_transcripts",
        "volumes",
        "networks",
        "net_endpoints",
        "referrers",
        "referrer_blobs",
        "signature_verdicts",
        "secrets",
        "manifest_applies",
        "manifest_nonces",
        "api_requests",
    ];

    fn missing_tables(conn: &Connection) -> Vec<&'static str> {
        TABLES
            .iter()
            .copied()
            .filter(|t| {
                conn.query_row(
                    "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = ?1",
                    [t],
                    |r| r.get::<_, i64>(0),
                )
                .unwrap()
                    != 1
            })
            .collect()
    }

    fn version(conn: &Connection) -> i64 {
        conn.pragma_query_value(None, "user_version", |r| r.get(0))
            .unwrap()
    }

    /// A store whose database was written by schema version `v` (with the tables that
    /// version's modules created on first use, holding a row each), made from scratch.
    fn old_store(dir: &Path, v: i64) {
        drop(Store::open(dir).unwrap());
        for f in ["gcr.db", "gcr.db-wal", "gcr.db-shm"] {
            let _ = std::fs::remove_file(dir.join(f));
        }
        let conn = Connection::open(dir.join("gcr.db")).unwrap();
        // The ledger's SQL functions, which its migration and trigger call.
        let _actor = crate::ledger::register(&conn).unwrap();
        conn.pragma_update(None, "journal_mode", "WAL").unwrap();
        for (n, m) in [V1, V2, V3].into_iter().enumerate() {
            if (n as i64) < v {
                conn.execute_batch(m).unwrap();
            }
        }
        // What the volumes and build modules made on first use before version 4.
        conn.execute_batch(V4).unwrap();
        for (n, m) in MIGRATIONS.iter().enumerate().skip(4) {
            if (n as i64) < v {
                conn.execute_batch(m).unwrap();
            }
        }
        conn.execute(
            "INSERT INTO volumes(name, created, anonymous) VALUES ('keep', 7, 0)",
            [],
        )
        .unwrap();
        conn.execute(
            "INSERT INTO build_cache(key, digest, diff_id, size, created_at) VALUES ('k', 'd', 'i', 1, 2)",
            [],
        )
        .unwrap();
        conn.pragma_update(None, "user_version", v).unwrap();
    }

    #[test]
    fn a_fresh_store_has_every_table() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("s")).unwrap();
        assert_eq!(missing_tables(store.conn()), Vec::<&str>::new());
        assert_eq!(version(store.conn()), VERSION);
    }

    #[test]
    fn old_stores_upgrade_to_every_table_and_keep_their_rows() {
        for v in 1..VERSION {
            let dir = tempfile::tempdir().unwrap();
            let root = dir.path().join("s");
            old_store(&root, v);
            let store = Store::open(&root).unwrap();
            assert_eq!(
                missing_tables(store.conn()),
                Vec::<&str>::new(),
                "from v{v}"
            );
            assert_eq!(version(store.conn()), VERSION, "from v{v}");
            let created: i64 = store
                .conn()
                .query_row("SELECT created FROM volumes WHERE name = 'keep'", [], |r| {
                    r.get(0)
                })
                .unwrap();
            assert_eq!(created, 7, "from v{v}");
            let cached: i64 = store
                .conn()
                .query_row("SELECT count(*) FROM build_cache", [], |r| r.get(0))
                .unwrap();
            assert_eq!(cached, 1, "from v{v}");
        }
    }

    #[test]
    fn endpoints_move_to_one_row_per_container_and_network() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("s");
        old_store(&root, 11);
        {
            let conn = Connection::open(root.join("gcr.db")).unwrap();
            conn.execute(
                "INSERT INTO net_endpoints (container, network, ip, names, veth, ports) \
                 VALUES ('c1', 'front', '10.1.0.2', 'c1', 'gvc1', '80')",
                [],
            )
            .unwrap();
        }
        let store = Store::open(&root).unwrap();
        let c = store.conn();
        let (ifname, ports): (String, String) = c
            .query_row(
                "SELECT ifname, ports FROM net_endpoints WHERE container = 'c1'",
                [],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .unwrap();
        assert_eq!((ifname.as_str(), ports.as_str()), ("eth0", "80"));
        c.execute(
            "INSERT INTO net_endpoints (container, network, ip, names, veth, ifname) \
             VALUES ('c1', 'back', '10.2.0.2', 'c1', 'gvc1n1', 'eth1')",
            [],
        )
        .unwrap();
        // Still one address per network, and one endpoint per container and network.
        for (net, ip) in [("front", "10.1.0.2"), ("back", "10.2.0.9")] {
            assert!(
                c.execute(
                    "INSERT INTO net_endpoints (container, network, ip, names, veth) \
                     VALUES ('c2', ?1, ?2, 'c2', 'gvc2')",
                    [net, ip],
                )
                .is_ok()
                    == (net == "back")
            );
        }
        assert!(c
            .execute(
                "INSERT INTO net_endpoints (container, network, ip, names, veth) \
                 VALUES ('c1', 'back', '10.2.0.3', 'c1', 'x')",
                [],
            )
            .is_err());
    }

    #[test]
    fn a_store_without_the_module_tables_gets_them() {
        // A version-3 store that never used volumes, networks or builds.
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("s");
        drop(Store::open(&root).unwrap());
        for f in ["gcr.db", "gcr.db-wal", "gcr.db-shm"] {
            let _ = std::fs::remove_file(root.join(f));
        }
        let conn = Connection::open(root.join("gcr.db")).unwrap();
        conn.execute_batch(&format!("{V1}{V2}{V3}")).unwrap();
        conn.pragma_update(None, "user_version", 3).unwrap();
        assert!(missing_tables(&conn).contains(&"volumes"));
        drop(conn);
        let store = Store::open(&root).unwrap();
        assert_eq!(missing_tables(store.conn()), Vec::<&str>::new());
    }

    /// Whether SQL text in `src` creates a table (any spacing or case).
    fn creates_table(src: &str) -> bool {
        let words: Vec<String> = src
            .split(|c: char| !c.is_ascii_alphanumeric() && c != '_')
            .filter(|w| !w.is_empty())
            .map(str::to_ascii_uppercase)
            .collect();
        words.windows(2).enumerate().any(|(i, w)| {
            w[0] == "CREATE"
                && (w[1] == "TABLE"
                    || (matches!(w[1].as_str(), "TEMP" | "TEMPORARY" | "VIRTUAL")
                        && words.get(i + 2).is_some_and(|t| t == "TABLE")))
        })
    }

    fn rust_files(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
        for e in std::fs::read_dir(dir).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                if p.file_name().is_some_and(|n| n != "target") {
                    rust_files(&p, out);
                }
            } else if p.extension().is_some_and(|x| x == "rs") {
                out.push(p);
            }
        }
    }

    #[test]
    fn the_detector_sees_table_creation_in_any_form() {
        assert!(creates_table(
            "conn.execute_batch(\"create  table if not exists t(x)\")"
        ));
        assert!(creates_table("\"CREATE\n    TEMP TABLE t(x)\""));
        assert!(!creates_table(
            "CREATE INDEX i ON t(x); -- the table is created elsewhere"
        ));
    }

    #[test]
    fn no_module_outside_the_schema_creates_a_table() {
        let crates = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
        let this = Path::new(env!("CARGO_MANIFEST_DIR")).join("src/schema.rs");
        let this = this.canonicalize().unwrap();
        let mut files = Vec::new();
        rust_files(&crates, &mut files);
        assert!(files.len() > 50, "only {} sources found", files.len());
        let offenders: Vec<String> = files
            .iter()
            .filter(|p| p.canonicalize().is_ok_and(|c| c != this))
            .filter(|p| creates_table(&std::fs::read_to_string(p).unwrap_or_default()))
            .map(|p| p.display().to_string())
            .collect();
        assert!(
            offenders.is_empty(),
            "tables are created by migrations in gcr-store/src/schema.rs only; move these: {offenders:?}"
        );
    }
}
