//! Every name banatie-live stores under, in one table: the key-value keys and
//! the S3 object keys. Stored names are a contract (every deployment reads
//! them), so each family's exact bytes are pinned by `every_family_is_pinned`
//! below and listed in README ("What the key-value store holds").
//!
//! These are the *logical* keys, with `:` between fields. How a runtime's
//! store spells them (wasmCloud's NATS keys have no `:`) is
//! `core::stored::platform::Flavour::store_key`, applied by the KV adapter only.
//!
//! Fields are ids (UUIDs, hex hashes), slugs (`[a-z0-9-]`), numbers and
//! variant suffixes from closed sets, so no field can spell a separator of
//! another family; the one exception, a client (an IPv6 address or prefix,
//! `core::decide::client::ClientId`), is the last field but one of its family and is
//! escaped by the store encodings.

use crate::stored::stats::Counter;

/// The hour that budgets and per-client allowances count in.
pub const HOUR_SECONDS: u64 = 3600;

/// The clock-aligned hour containing `now` (unix seconds).
pub fn hour(now: u64) -> u64 {
    now / HOUR_SECONDS
}

/// A cache entry (JSON, `core::stored::entry`).
pub fn entry(project: &str, hash: &str) -> String {
    format!("live:{project}:{hash}")
}

/// The hit counter of an entry (a counter).
pub fn hits(project: &str, hash: &str) -> String {
    format!("hits:{project}:{hash}")
}

/// The minute an entry was last served (decimal text, `core::stored::entries`).
pub fn seen(project: &str, hash: &str) -> String {
    format!("seen:{project}:{hash}")
}

/// The single-flight lease of a generation or derivation (`core::decide::single_flight`).
pub fn lease(project: &str, hash: &str) -> String {
    format!("lease:{project}:{hash}")
}

/// The failure an owner left for its waiters (JSON, `core::decide::single_flight`).
pub fn failure(project: &str, hash: &str) -> String {
    format!("failed:{project}:{hash}")
}

/// A per-project stats counter (`core::stored::stats`).
pub fn stats(project: &str, counter: Counter) -> String {
    format!("stats:{project}:{}", counter.name())
}

/// The generation budget's counter for the hour containing `now`.
pub fn budget(project: &str, now: u64) -> String {
    budget_of_hour(project, hour(now))
}

/// The budget counter of hour number `hour`.
pub fn budget_of_hour(project: &str, hour: u64) -> String {
    format!("budget:{project}:{hour}")
}

/// One client's new generations in the hour containing `now` (a counter).
/// `client` is a `core::decide::client::ClientId` (an address, or an IPv6 prefix).
pub fn client_misses(client: &str, now: u64) -> String {
    format!("clientmiss:{client}:{}", hour(now))
}

/// The project's derivations in the hour containing `now` (a counter).
pub fn derivations(project: &str, now: u64) -> String {
    derivations_of_hour(project, hour(now))
}

/// The derivations counter of hour number `hour`.
pub fn derivations_of_hour(project: &str, hour: u64) -> String {
    format!("derivations:{project}:{hour}")
}

/// One client's new variants in the hour containing `now` (a counter).
pub fn client_derivations(client: &str, now: u64) -> String {
    format!("clientderive:{client}:{}", hour(now))
}

/// A project record (JSON, `core::stored::project`).
pub fn project(id: &str) -> String {
    format!("project:{id}")
}

/// An API key's SHA-256 (hex) → its project's id.
pub fn api_key(sha256_hex: &str) -> String {
    format!("apikey:{sha256_hex}")
}

/// Read (never written) by the health route: a KV read that proves the
/// store answers.
pub const HEALTH_PROBE: &str = "health:probe";

/// Fetched (never written) by the health route: an S3 GET that proves the
/// bucket answers with these credentials (404 is the healthy answer).
pub const HEALTH_OBJECT: &str = "health/probe";

/// A project slug → its project's id.
pub fn project_slug(slug: &str) -> String {
    format!("projectslug:{slug}")
}

/// A scope record (JSON, `core::stored::scope`).
pub fn scope(project: &str, slug: &str) -> String {
    format!("scope:{project}:{slug}")
}

/// A scope's new generations, all time (a counter).
pub fn scope_generations(project: &str, slug: &str) -> String {
    format!("scopegen:{project}:{slug}")
}

/// A project's prompt policy (JSON, `core::decide::policy`), read only before a generation.
pub fn policy(project: &str) -> String {
    format!("policy:{project}")
}

/// A scope's prompt policy (JSON, `core::decide::policy`), read only before a generation.
pub fn scope_policy(project: &str, slug: &str) -> String {
    format!("scopepolicy:{project}:{slug}")
}

/// What moderation said of an original's prompt (JSON,
/// `core::provider::moderation::Verdict`), so it is asked once per cache key.
pub fn moderation(project: &str, hash: &str) -> String {
    format!("moderation:{project}:{hash}")
}

/// A blocked cache key (a takedown: JSON, `core::stored::block`): never
/// served or generated again.
pub fn blocked(project: &str, hash: &str) -> String {
    format!("blocked:{project}:{hash}")
}

/// A project's blocks: blocked original image id → cache key (JSON object).
pub fn blocks(project: &str) -> String {
    format!("blocks:{project}")
}

/// A project's scope slugs (JSON array).
pub fn scope_index(project: &str) -> String {
    format!("scopes:{project}")
}

/// The entries log's sequence counter (`core::stored::entries`).
pub fn entry_seq(project: &str) -> String {
    format!("entryseq:{project}")
}

/// The entries log's record number `seq` (zero-padded, JSON).
pub fn entry_log(project: &str, seq: i64) -> String {
    format!("entrylog:{project}:{seq:012}")
}

/// A variant's name where an original's hash goes (`{hash}~w256.webp.q80`;
/// `~` is in no hash and no suffix).
pub fn variant_hash(original_hash: &str, suffix: &str) -> String {
    format!("{original_hash}~{suffix}")
}

/// Counter of the variants recorded for an original (a purge walks them).
pub fn variant_seq(project: &str, original_hash: &str) -> String {
    format!("variantseq:{project}:{original_hash}")
}

/// How far purges have walked an original's variant log (decimal text).
pub fn variant_purged(project: &str, original_hash: &str) -> String {
    format!("variantpurged:{project}:{original_hash}")
}

/// The `n`th variant recorded for an original: its suffix.
pub fn variant_log(project: &str, original_hash: &str, n: i64) -> String {
    format!("variantlog:{project}:{original_hash}:{n}")
}

/// How many rows the hour-`hour` expiry list holds (a counter, `api::kv::expiry`).
pub fn expiry_seq(hour: u64) -> String {
    format!("expiryseq:{hour}")
}

/// The `n`th row to remove once hour `hour` is over: a kind byte and the
/// row's key (`api::kv::expiry`).
pub fn expiry(hour: u64, n: i64) -> String {
    format!("expiry:{hour}:{n:012}")
}

/// A short-lived lock around creating `key` on stores whose first increment
/// is not atomic (`core::stored::platform`): a lease value, like a generation's.
pub fn lock(key: &str) -> String {
    format!("lock:{key}")
}

/// A counter incremented once to learn the byte order of a store's 8-byte
/// counters (`core::stored::platform::Flavour::big_endian_probe`; wasmCloud only).
pub const COUNTER_PROBE: &str = "platform:counter-probe";

/// A project's aliases: one JSON object, name → image id (`api::aliases`).
pub fn aliases(project: &str) -> String {
    format!("aliases:{project}")
}

/// An original's image id → its cache hash, for `ref=` (written with the
/// original's entry, removed with it).
pub fn image_index(project: &str, image_id: &str) -> String {
    format!("imageid:{project}:{image_id}")
}

/// S3 object key of one stored image. Every generation and every variant
/// gets its own object, so replacing an entry never overwrites bytes another
/// entry points at (objects are immutable).
pub fn object(project: &str, hash: &str, image_id: &str, content_type: &str) -> String {
    let ext = match content_type {
        "image/png" => "png",
        "image/jpeg" => "jpg",
        "image/webp" => "webp",
        "image/gif" => "gif",
        "image/avif" => "avif",
        _ => "bin",
    };
    format!("live/{project}/{hash}/{image_id}.{ext}")
}

/// One of each family, built from sample fields: the table the tests pin and
/// check against every store's key rules (`core::stored::platform`).
#[cfg(test)]
pub fn samples() -> Vec<(&'static str, String)> {
    let (p, h) = (
        "2c5e3f6a-9b1d-4e7f-8a2b-3c4d5e6f7a8b",
        "fba03139ac1344d356e6251fa4a8fc58fe33961475ac00c3cc488a67daef273b",
    );
    let v = variant_hash(h, "w1536.avif.q100");
    let now = 1_767_225_600;
    vec![
        ("entry", entry(p, h)),
        ("variant entry", entry(p, &v)),
        ("hits", hits(p, h)),
        ("variant hits", hits(p, &v)),
        ("seen", seen(p, h)),
        ("lease", lease(p, h)),
        ("variant lease", lease(p, &v)),
        ("failure", failure(p, &v)),
        ("stats", stats(p, Counter::VariantBytes)),
        ("budget", budget(p, now)),
        ("client v4", client_misses("203.0.113.9", now)),
        ("client v6", client_misses("2001:db8::/64", now)),
        ("client ::", client_misses("::/64", now)),
        ("derivations", derivations(p, now)),
        ("client derivations", client_derivations("2001:db8::/64", now)),
        ("project", project(p)),
        ("api key", api_key(h)),
        ("project slug", project_slug("my-blog-2c5e3f6a")),
        ("scope", scope(p, "hero-images")),
        ("scope generations", scope_generations(p, "hero-images")),
        ("scope index", scope_index(p)),
        ("policy", policy(p)),
        ("scope policy", scope_policy(p, "hero-images")),
        ("moderation", moderation(p, h)),
        ("blocked", blocked(p, h)),
        ("blocks", blocks(p)),
        ("entry seq", entry_seq(p)),
        ("entry log", entry_log(p, 42)),
        ("aliases", aliases(p)),
        ("image index", image_index(p, "0d56ce37-e090-45ee-9f1d-d1cb6c801308")),
        ("variant seq", variant_seq(p, h)),
        ("variant purged", variant_purged(p, h)),
        ("variant log", variant_log(p, h, 7)),
        ("expiry seq", expiry_seq(490896)),
        ("expiry", expiry(490896, 3)),
        ("lock", lock(&budget(p, now))),
        ("counter probe", COUNTER_PROBE.to_string()),
        ("health probe", HEALTH_PROBE.to_string()),
        ("longest", scope_generations(p, &"s".repeat(64))),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_family_is_pinned() {
        let p = "2c5e3f6a-9b1d-4e7f-8a2b-3c4d5e6f7a8b";
        let h = "fba03139ac1344d356e6251fa4a8fc58fe33961475ac00c3cc488a67daef273b";
        let table: Vec<(String, String)> = samples().into_iter().map(|(n, k)| (n.to_string(), k)).collect();
        let expected = [
            ("entry", format!("live:{p}:{h}")),
            ("variant entry", format!("live:{p}:{h}~w1536.avif.q100")),
            ("hits", format!("hits:{p}:{h}")),
            ("variant hits", format!("hits:{p}:{h}~w1536.avif.q100")),
            ("seen", format!("seen:{p}:{h}")),
            ("lease", format!("lease:{p}:{h}")),
            ("variant lease", format!("lease:{p}:{h}~w1536.avif.q100")),
            ("failure", format!("failed:{p}:{h}~w1536.avif.q100")),
            ("stats", format!("stats:{p}:variant_bytes")),
            ("budget", format!("budget:{p}:490896")),
            ("client v4", "clientmiss:203.0.113.9:490896".to_string()),
            ("client v6", "clientmiss:2001:db8::/64:490896".to_string()),
            ("client ::", "clientmiss:::/64:490896".to_string()),
            ("derivations", format!("derivations:{p}:490896")),
            ("client derivations", "clientderive:2001:db8::/64:490896".to_string()),
            ("project", format!("project:{p}")),
            ("api key", format!("apikey:{h}")),
            ("project slug", "projectslug:my-blog-2c5e3f6a".to_string()),
            ("scope", format!("scope:{p}:hero-images")),
            ("scope generations", format!("scopegen:{p}:hero-images")),
            ("scope index", format!("scopes:{p}")),
            ("policy", format!("policy:{p}")),
            ("scope policy", format!("scopepolicy:{p}:hero-images")),
            ("moderation", format!("moderation:{p}:{h}")),
            ("blocked", format!("blocked:{p}:{h}")),
            ("blocks", format!("blocks:{p}")),
            ("entry seq", format!("entryseq:{p}")),
            ("entry log", format!("entrylog:{p}:000000000042")),
            ("aliases", format!("aliases:{p}")),
            ("image index", format!("imageid:{p}:0d56ce37-e090-45ee-9f1d-d1cb6c801308")),
            ("variant seq", format!("variantseq:{p}:{h}")),
            ("variant purged", format!("variantpurged:{p}:{h}")),
            ("variant log", format!("variantlog:{p}:{h}:7")),
            ("expiry seq", "expiryseq:490896".to_string()),
            ("expiry", "expiry:490896:000000000003".to_string()),
            ("lock", format!("lock:budget:{p}:490896")),
            ("counter probe", "platform:counter-probe".to_string()),
            ("health probe", "health:probe".to_string()),
            ("longest", format!("scopegen:{p}:{}", "s".repeat(64))),
        ];
        let expected: Vec<(String, String)> = expected.into_iter().map(|(n, k)| (n.to_string(), k)).collect();
        assert_eq!(table, expected);
        assert_eq!(
            object(p, h, "0d56ce37-e090-45ee-9f1d-d1cb6c801308", "image/png"),
            format!("live/{p}/{h}/0d56ce37-e090-45ee-9f1d-d1cb6c801308.png")
        );
        assert_eq!(object(p, h, "i", "image/avif"), format!("live/{p}/{h}/i.avif"));
        assert_eq!(object(p, h, "i", "text/html"), format!("live/{p}/{h}/i.bin"));
    }

    /// README's key-value table names every family (by its prefix).
    #[test]
    fn readme_lists_every_family() {
        let readme = include_str!("../../../../README.md");
        let table = readme.split("Key-value layout (store `default`):").nth(1).expect("README's key table");
        let table: String = table.lines().take_while(|l| l.is_empty() || l.starts_with('|')).collect();
        for (name, key) in samples() {
            let prefix = key.split(':').next().unwrap();
            assert!(table.contains(&format!("`{prefix}:")), "README's key table lacks {name} ({prefix}:…)");
        }
    }

    #[test]
    fn the_hour_is_clock_aligned() {
        assert_eq!(hour(7_199), 1);
        assert_eq!(hour(7_200), 2);
        assert_eq!(budget("p", 7_200), budget_of_hour("p", 2));
    }
}
