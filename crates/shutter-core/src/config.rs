//! Configuration types with the defaults of the specification. Loading (file, environment)
//! happens in the binary; these types only describe and validate.

use std::fmt;
use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Deserializer};

use crate::domain::Tier;

/// The whole configuration. Sections reject unknown keys so a typo is an error, not a silent
/// default.
#[derive(Clone, Debug, Deserialize)]
#[serde(default)]
pub struct Config {
    /// Where the SQLite database, blobs and generated secrets live (`SHUTTER_DATA_DIR`).
    pub data_dir: PathBuf,
    pub server: ServerConfig,
    pub database: DatabaseConfig,
    pub storage: StorageConfig,
    pub auth: AuthConfig,
    pub tiers: TiersConfig,
    pub rate_limits: RateLimitConfig,
    pub feed: FeedConfig,
    pub media: MediaConfig,
    pub jobs: JobsConfig,
    pub redis: RedisConfig,
    pub log: LogConfig,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            data_dir: PathBuf::from("./data"),
            server: ServerConfig::default(),
            database: DatabaseConfig::default(),
            storage: StorageConfig::default(),
            auth: AuthConfig::default(),
            tiers: TiersConfig::default(),
            rate_limits: RateLimitConfig::default(),
            feed: FeedConfig::default(),
            media: MediaConfig::default(),
            jobs: JobsConfig::default(),
            redis: RedisConfig::default(),
            log: LogConfig::default(),
        }
    }
}

impl Config {
    /// The directory of the signing secrets (`server.secrets_dir`).
    pub fn secrets_dir(&self) -> PathBuf {
        self.server
            .secrets_dir
            .clone()
            .unwrap_or_else(|| self.data_dir.join("secrets"))
    }

    /// The database URL, defaulting to a SQLite file in the data directory.
    pub fn database_url(&self) -> String {
        match &self.database.url {
            Some(url) => url.clone(),
            None => format!("sqlite://{}", self.data_dir.join("shutter.db").display()),
        }
    }

    /// The base of absolute URLs handed to clients, without a trailing slash.
    pub fn public_url(&self) -> String {
        match &self.server.public_url {
            Some(url) => url.trim_end_matches('/').to_owned(),
            None => format!("http://{}", self.server.listen),
        }
    }

    pub fn tier_limits(&self, tier: Tier) -> &TierLimits {
        match tier {
            Tier::Basic => &self.tiers.basic,
            Tier::Premium => &self.tiers.premium,
        }
    }

    /// Checks rules that types alone cannot express. The error names the key.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let url = self.database_url();
        if !(url.starts_with("sqlite:")
            || url.starts_with("postgres://")
            || url.starts_with("postgresql://"))
        {
            return Err(ConfigError::new(
                "database.url",
                "must start with sqlite:, postgres:// or postgresql://",
            ));
        }
        if let Some(read) = &self.database.read_url {
            if !(read.starts_with("postgres://") || read.starts_with("postgresql://")) {
                return Err(ConfigError::new(
                    "database.read_url",
                    "must be a postgres:// URL",
                ));
            }
            if self.database_url().starts_with("sqlite:") {
                return Err(ConfigError::new(
                    "database.read_url",
                    "needs database.url on PostgreSQL (a replica of it)",
                ));
            }
        }
        if self.server.listen.parse::<std::net::SocketAddr>().is_err() {
            return Err(ConfigError::new(
                "server.listen",
                "must be an address like 127.0.0.1:8080",
            ));
        }
        if let Some(bad) = self
            .server
            .trusted_proxies
            .iter()
            .find(|t| IpRange::parse(t).is_none())
        {
            return Err(ConfigError::new(
                "server.trusted_proxies",
                format!("{bad:?} is not an address or a CIDR like 10.0.0.0/8"),
            ));
        }
        if let Some(public) = &self.server.public_url {
            if !(public.starts_with("http://") || public.starts_with("https://")) {
                return Err(ConfigError::new(
                    "server.public_url",
                    "must start with http:// or https://",
                ));
            }
        }
        for (key, value) in [
            (
                "server.header_read_timeout",
                &self.server.header_read_timeout,
            ),
            ("server.idle_timeout", &self.server.idle_timeout),
        ] {
            if value.0.is_zero() {
                return Err(ConfigError::new(key, "must be longer than zero"));
            }
        }
        if self.server.max_event_streams_per_user == 0 {
            return Err(ConfigError::new(
                "server.max_event_streams_per_user",
                "must be at least 1",
            ));
        }
        if let Some(dir) = &self.server.web_dir {
            if !dir.join("index.html").is_file() {
                return Err(ConfigError::new(
                    "server.web_dir",
                    format!("{} holds no index.html", dir.display()),
                ));
            }
        }
        if self.jobs.lease.0 < Duration::from_millis(300) {
            return Err(ConfigError::new("jobs.lease", "must be at least 300ms"));
        }
        if self.storage.backend == StorageBackend::S3 {
            self.storage.s3.validate()?;
        }
        if self.storage.sweep_interval.0.is_zero() {
            return Err(ConfigError::new(
                "storage.sweep_interval",
                "must be longer than zero",
            ));
        }
        if self.auth.access_token_ttl.0.is_zero() {
            return Err(ConfigError::new(
                "auth.access_token_ttl",
                "must be longer than zero",
            ));
        }
        if self.auth.refresh_token_ttl.0.is_zero() {
            return Err(ConfigError::new(
                "auth.refresh_token_ttl",
                "must be longer than zero",
            ));
        }
        for (name, limits) in [
            ("basic", &self.tiers.basic),
            ("premium", &self.tiers.premium),
        ] {
            if limits.posts_per_minute == 0 {
                return Err(ConfigError::new(
                    format!("tiers.{name}.posts_per_minute"),
                    "must be at least 1",
                ));
            }
        }
        if self.rate_limits.per_ip_per_minute == 0 {
            return Err(ConfigError::new(
                "rate_limits.per_ip_per_minute",
                "must be at least 1",
            ));
        }
        if self.rate_limits.login_per_minute == 0 {
            return Err(ConfigError::new(
                "rate_limits.login_per_minute",
                "must be at least 1",
            ));
        }
        if let Some(oidc) = &self.auth.oidc {
            for (key, value) in [
                ("issuer", &oidc.issuer),
                ("audience", &oidc.audience),
                ("jwks_url", &oidc.jwks_url),
            ] {
                if value.is_empty() {
                    return Err(ConfigError::new(
                        format!("auth.oidc.{key}"),
                        "must be set when [auth.oidc] is configured",
                    ));
                }
            }
        }
        Ok(())
    }
}

/// A configuration value that breaks a rule.
#[derive(Debug, thiserror::Error)]
#[error("invalid configuration: {key}: {message}")]
pub struct ConfigError {
    pub key: String,
    pub message: String,
}

impl ConfigError {
    pub fn new(key: impl Into<String>, message: impl Into<String>) -> Self {
        ConfigError {
            key: key.into(),
            message: message.into(),
        }
    }
}

#[derive(Clone, Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ServerConfig {
    pub listen: String,
    pub public_url: Option<String>,
    /// How long a graceful shutdown waits for in-flight requests.
    pub shutdown_timeout: DurationValue,
    /// A client must send a request's whole header block within this time of connecting (or
    /// of its first byte, on a kept-alive connection), or the connection is closed.
    pub header_read_timeout: DurationValue,
    /// A connection on which nothing moves, either way, for this long is closed.
    pub idle_timeout: DurationValue,
    /// Live event streams (SSE and WebSocket together) one user may hold open on one node.
    pub max_event_streams_per_user: usize,
    /// Reverse proxies (CIDRs, or single addresses) whose `X-Forwarded-For` is believed.
    /// Empty (the default): the header is ignored and the peer address is the client.
    pub trusted_proxies: Vec<String>,
    /// Where the signing secrets (`jwt.key`, `url_signing.key`) are kept; generated there on
    /// first start if missing. Every node of one deployment must see the same files (a shared
    /// or mounted directory), or tokens and signed URLs of one node fail on another.
    /// Default: `<data_dir>/secrets`.
    pub secrets_dir: Option<PathBuf>,
    /// Serve the web app at `/` from this directory, read at each request, instead of the copy
    /// built into the binary (a customised app, or working on the app without rebuilding).
    pub web_dir: Option<PathBuf>,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            listen: "127.0.0.1:8080".into(),
            public_url: None,
            shutdown_timeout: DurationValue::secs(30),
            header_read_timeout: DurationValue::secs(10),
            idle_timeout: DurationValue::secs(60),
            max_event_streams_per_user: 8,
            trusted_proxies: Vec::new(),
            secrets_dir: None,
            web_dir: None,
        }
    }
}

impl ServerConfig {
    /// [`Self::trusted_proxies`] parsed; entries that do not parse are left out
    /// ([`Config::validate`] refuses them at startup).
    pub fn trusted_proxy_ranges(&self) -> Vec<IpRange> {
        self.trusted_proxies
            .iter()
            .filter_map(|t| IpRange::parse(t))
            .collect()
    }
}

/// An address range in CIDR notation (`10.0.0.0/8`, `2001:db8::/32`); a bare address is a
/// range of one (`/32` or `/128`). IPv4-mapped IPv6 addresses count as their IPv4 address.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IpRange {
    network: IpAddr,
    prefix: u8,
}

impl IpRange {
    pub fn parse(text: &str) -> Option<IpRange> {
        let text = text.trim();
        let (addr, prefix) = match text.split_once('/') {
            Some((addr, prefix)) => (addr, Some(prefix)),
            None => (text, None),
        };
        let addr = canonical_ip(addr.parse().ok()?);
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            Some(p) if p.bytes().all(|b| b.is_ascii_digit()) => {
                p.parse::<u8>().ok().filter(|p| *p <= max)?
            }
            Some(_) => return None,
            None => max,
        };
        Some(IpRange {
            network: ip_prefix(addr, prefix),
            prefix,
        })
    }

    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = canonical_ip(ip);
        ip.is_ipv4() == self.network.is_ipv4() && ip_prefix(ip, self.prefix) == self.network
    }
}

/// An IPv4-mapped IPv6 address (`::ffff:192.0.2.1`) as the IPv4 address it is.
pub fn canonical_ip(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

/// The first `prefix` bits of `ip`, the rest zero.
pub fn ip_prefix(ip: IpAddr, prefix: u8) -> IpAddr {
    match ip {
        IpAddr::V4(a) => {
            let mask = u32::MAX
                .checked_shl(32 - u32::from(prefix.min(32)))
                .unwrap_or(0);
            IpAddr::V4((u32::from(a) & mask).into())
        }
        IpAddr::V6(a) => {
            let mask = u128::MAX
                .checked_shl(128 - u32::from(prefix.min(128)))
                .unwrap_or(0);
            IpAddr::V6((u128::from(a) & mask).into())
        }
    }
}

#[derive(Clone, Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DatabaseConfig {
    pub url: Option<String>,
    pub read_url: Option<String>,
    pub max_connections: u32,
}

impl Default for DatabaseConfig {
    fn default() -> Self {
        DatabaseConfig {
            url: None,
            read_url: None,
            max_connections: 16,
        }
    }
}

#[derive(Clone, Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct StorageConfig {
    pub backend: StorageBackend,
    pub local: LocalStorageConfig,
    pub s3: S3StorageConfig,
    pub upload_url_ttl: DurationValue,
    pub download_url_ttl: DurationValue,
    pub multipart_threshold: ByteSize,
    /// How often abandoned uploads and objects without a file are swept away.
    pub sweep_interval: DurationValue,
}

impl Default for StorageConfig {
    fn default() -> Self {
        StorageConfig {
            backend: StorageBackend::Local,
            local: LocalStorageConfig::default(),
            s3: S3StorageConfig::default(),
            upload_url_ttl: DurationValue::secs(3600),
            download_url_ttl: DurationValue::secs(15 * 60),
            multipart_threshold: ByteSize(64 * 1024 * 1024),
            sweep_interval: DurationValue::secs(30),
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StorageBackend {
    Local,
    S3,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LocalStorageConfig {
    pub path: Option<PathBuf>,
}

/// An S3-compatible bucket. Unset keys fall back to the standard AWS environment variables
/// ([`S3StorageConfig::fill_from_env`]), then to AWS's own defaults (region `us-east-1`,
/// endpoint `https://s3.<region>.amazonaws.com`, virtual-hosted-style URLs).
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct S3StorageConfig {
    pub endpoint: Option<String>,
    pub bucket: Option<String>,
    pub region: Option<String>,
    pub access_key: Option<String>,
    pub secret_key: Option<String>,
    /// Temporary credentials' session token (`AWS_SESSION_TOKEN`).
    pub session_token: Option<String>,
    /// `https://endpoint/bucket/key` instead of `https://bucket.endpoint/key` (MinIO, Garage
    /// and most self-hosted stores want this).
    pub path_style: bool,
}

impl S3StorageConfig {
    /// Fills the keys the configuration leaves unset from the AWS variables every S3 tool
    /// reads: `AWS_ENDPOINT_URL_S3` or `AWS_ENDPOINT_URL`, `AWS_REGION` or
    /// `AWS_DEFAULT_REGION`, `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, `AWS_SESSION_TOKEN`.
    pub fn fill_from_env(&mut self, env: impl Fn(&str) -> Option<String>) {
        let first = |names: &[&str]| {
            names
                .iter()
                .find_map(|name| env(name).filter(|v| !v.trim().is_empty()))
        };
        let fills: [(&mut Option<String>, &[&str]); 5] = [
            (
                &mut self.endpoint,
                &["AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL"],
            ),
            (&mut self.region, &["AWS_REGION", "AWS_DEFAULT_REGION"]),
            (&mut self.access_key, &["AWS_ACCESS_KEY_ID"]),
            (&mut self.secret_key, &["AWS_SECRET_ACCESS_KEY"]),
            (&mut self.session_token, &["AWS_SESSION_TOKEN"]),
        ];
        for (slot, names) in fills {
            if slot.is_none() {
                *slot = first(names);
            }
        }
    }

    fn validate(&self) -> Result<(), ConfigError> {
        let blank = |v: &Option<String>| v.as_deref().is_none_or(|v| v.trim().is_empty());
        if blank(&self.bucket) {
            return Err(ConfigError::new(
                "storage.s3.bucket",
                "must be set when storage.backend is s3",
            ));
        }
        for (key, value, env) in [
            ("access_key", &self.access_key, "AWS_ACCESS_KEY_ID"),
            ("secret_key", &self.secret_key, "AWS_SECRET_ACCESS_KEY"),
        ] {
            if blank(value) {
                return Err(ConfigError::new(
                    format!("storage.s3.{key}"),
                    format!("must be set (or {env}) when storage.backend is s3"),
                ));
            }
        }
        if let Some(endpoint) = &self.endpoint {
            let scheme_ok = endpoint.starts_with("http://") || endpoint.starts_with("https://");
            let host = endpoint.split_once("://").map_or("", |(_, rest)| rest);
            if !scheme_ok || host.trim_matches('/').is_empty() {
                return Err(ConfigError::new(
                    "storage.s3.endpoint",
                    format!("{endpoint:?} is not an http:// or https:// URL"),
                ));
            }
        }
        Ok(())
    }
}

#[derive(Clone, Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AuthConfig {
    pub access_token_ttl: DurationValue,
    pub refresh_token_ttl: DurationValue,
    pub oidc: Option<OidcConfig>,
}

impl Default for AuthConfig {
    fn default() -> Self {
        AuthConfig {
            access_token_ttl: DurationValue::secs(15 * 60),
            refresh_token_ttl: DurationValue::secs(30 * 24 * 3600),
            oidc: None,
        }
    }
}

/// An external identity provider whose tokens are accepted besides Shutter's own.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct OidcConfig {
    pub issuer: String,
    pub audience: String,
    pub jwks_url: String,
    /// A claim whose value (`basic` or `premium`) sets the user's tier.
    pub tier_claim: Option<String>,
}

/// Each tier's limits. A key left out (in the file or the environment) keeps that tier's own
/// default, so `SHUTTER_TIERS__BASIC__STORAGE_QUOTA` alone is a complete setting.
#[derive(Clone, Debug)]
pub struct TiersConfig {
    pub basic: TierLimits,
    pub premium: TierLimits,
}

impl<'de> Deserialize<'de> for TiersConfig {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(deny_unknown_fields)]
        struct Given {
            basic: Option<TierLimitsGiven>,
            premium: Option<TierLimitsGiven>,
        }
        let given = Given::deserialize(d)?;
        let mut tiers = TiersConfig::default();
        if let Some(g) = given.basic {
            g.apply(&mut tiers.basic);
        }
        if let Some(g) = given.premium {
            g.apply(&mut tiers.premium);
        }
        Ok(tiers)
    }
}

/// The keys of one tier that were written down.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TierLimitsGiven {
    max_file_size: Option<ByteSize>,
    max_concurrent_uploads: Option<u32>,
    storage_quota: Option<ByteSize>,
    posts_per_minute: Option<u32>,
}

impl TierLimitsGiven {
    fn apply(self, limits: &mut TierLimits) {
        if let Some(v) = self.max_file_size {
            limits.max_file_size = v;
        }
        if let Some(v) = self.max_concurrent_uploads {
            limits.max_concurrent_uploads = v;
        }
        if let Some(v) = self.storage_quota {
            limits.storage_quota = v;
        }
        if let Some(v) = self.posts_per_minute {
            limits.posts_per_minute = v;
        }
    }
}

impl Default for TiersConfig {
    fn default() -> Self {
        TiersConfig {
            basic: TierLimits {
                max_file_size: ByteSize(100 * MIB),
                max_concurrent_uploads: 10,
                storage_quota: ByteSize(10 * GIB),
                posts_per_minute: 10,
            },
            premium: TierLimits {
                max_file_size: ByteSize(5 * GIB),
                max_concurrent_uploads: 50,
                storage_quota: ByteSize(1024 * GIB),
                posts_per_minute: 60,
            },
        }
    }
}

const MIB: u64 = 1024 * 1024;
const GIB: u64 = 1024 * MIB;

/// What one tier may do.
#[derive(Clone, Debug)]
pub struct TierLimits {
    pub max_file_size: ByteSize,
    pub max_concurrent_uploads: u32,
    pub storage_quota: ByteSize,
    pub posts_per_minute: u32,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RateLimitConfig {
    pub enabled: bool,
    pub per_ip_per_minute: u32,
    pub login_per_minute: u32,
}

impl Default for RateLimitConfig {
    fn default() -> Self {
        RateLimitConfig {
            enabled: true,
            per_ip_per_minute: 1000,
            login_per_minute: 10,
        }
    }
}

#[derive(Clone, Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FeedConfig {
    pub fanout_threshold: u64,
}

impl Default for FeedConfig {
    fn default() -> Self {
        FeedConfig {
            fanout_threshold: 10_000,
        }
    }
}

#[derive(Clone, Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MediaConfig {
    pub max_pixels: u64,
}

impl Default for MediaConfig {
    fn default() -> Self {
        MediaConfig {
            max_pixels: 100_000_000,
        }
    }
}

#[derive(Clone, Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct JobsConfig {
    /// Worker count; the number of cores when unset. `0` runs `shutter serve` without
    /// in-process workers (an API-only node; jobs wait for `shutter worker` processes).
    pub workers: Option<usize>,
    /// How long a claimed job is reserved for its worker; a crashed worker's job is taken
    /// again after this. Running jobs extend it every third of its length.
    pub lease: DurationValue,
}

impl Default for JobsConfig {
    fn default() -> Self {
        JobsConfig {
            workers: None,
            lease: DurationValue::secs(60),
        }
    }
}

impl JobsConfig {
    /// Workers to run: the configured count (which may be 0), else the number of cores.
    pub fn worker_count(&self) -> usize {
        self.workers.unwrap_or_else(|| {
            std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(2)
        })
    }
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RedisConfig {
    pub url: Option<String>,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LogConfig {
    pub format: LogFormat,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// JSON when stdout is not a terminal, readable text when it is.
    #[default]
    Auto,
    Json,
    Pretty,
}

/// A size in bytes, written as a number of bytes or with a unit: `100MiB`, `5GiB`, `64KB`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct ByteSize(pub u64);

impl ByteSize {
    pub fn bytes(self) -> u64 {
        self.0
    }

    pub fn parse(text: &str) -> Option<Self> {
        let text = text.trim();
        let split = text
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(text.len());
        let (num, unit) = text.split_at(split);
        let num: u64 = num.parse().ok()?;
        let mult: u64 = match unit.trim().to_ascii_lowercase().as_str() {
            "" | "b" => 1,
            "kb" => 1000,
            "kib" | "k" => 1024,
            "mb" => 1000 * 1000,
            "mib" | "m" => MIB,
            "gb" => 1000 * 1000 * 1000,
            "gib" | "g" => GIB,
            "tb" => 1000 * 1000 * 1000 * 1000,
            "tib" | "t" => 1024 * GIB,
            _ => return None,
        };
        num.checked_mul(mult).map(ByteSize)
    }
}

impl<'de> Deserialize<'de> for ByteSize {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(NumberOrText::<ByteSize>::new(
            "a size like 100MiB or a number of bytes",
        ))
    }
}

/// A duration, written `500ms`, `90s`, `15m`, `1h`, `30d`, or a number of seconds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct DurationValue(pub Duration);

impl DurationValue {
    pub const fn secs(secs: u64) -> Self {
        DurationValue(Duration::from_secs(secs))
    }

    pub fn get(self) -> Duration {
        self.0
    }

    pub fn parse(text: &str) -> Option<Self> {
        let text = text.trim();
        let split = text.find(|c: char| !c.is_ascii_digit())?;
        let (num, unit) = text.split_at(split);
        let num: u64 = num.parse().ok()?;
        let ms: u64 = match unit {
            "ms" => 1,
            "s" => 1000,
            "m" => 60_000,
            "h" => 3_600_000,
            "d" => 86_400_000,
            _ => return None,
        };
        num.checked_mul(ms)
            .map(|ms| DurationValue(Duration::from_millis(ms)))
    }
}

impl<'de> Deserialize<'de> for DurationValue {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(NumberOrText::<DurationValue>::new(
            "a duration like 15m, 1h or 30d",
        ))
    }
}

trait FromNumberOrText: Sized {
    fn from_number(n: u64) -> Self;
    fn from_text(text: &str) -> Option<Self>;
}

impl FromNumberOrText for ByteSize {
    fn from_number(n: u64) -> Self {
        ByteSize(n)
    }
    fn from_text(text: &str) -> Option<Self> {
        ByteSize::parse(text)
    }
}

impl FromNumberOrText for DurationValue {
    fn from_number(n: u64) -> Self {
        DurationValue::secs(n)
    }
    fn from_text(text: &str) -> Option<Self> {
        DurationValue::parse(text)
    }
}

struct NumberOrText<T> {
    expected: &'static str,
    _marker: std::marker::PhantomData<T>,
}

impl<T> NumberOrText<T> {
    fn new(expected: &'static str) -> Self {
        NumberOrText {
            expected,
            _marker: std::marker::PhantomData,
        }
    }
}

impl<T: FromNumberOrText> serde::de::Visitor<'_> for NumberOrText<T> {
    type Value = T;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.expected)
    }

    fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<T, E> {
        Ok(T::from_number(v))
    }

    fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<T, E> {
        u64::try_from(v)
            .map(T::from_number)
            .map_err(|_| E::invalid_value(serde::de::Unexpected::Signed(v), &self))
    }

    fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<T, E> {
        T::from_text(v).ok_or_else(|| E::invalid_value(serde::de::Unexpected::Str(v), &self))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_and_durations_parse_with_units() {
        assert_eq!(ByteSize::parse("100MiB"), Some(ByteSize(100 * MIB)));
        assert_eq!(ByteSize::parse("1024"), Some(ByteSize(1024)));
        assert_eq!(ByteSize::parse("5 GiB"), Some(ByteSize(5 * GIB)));
        assert_eq!(ByteSize::parse("lots"), None);
        assert_eq!(DurationValue::parse("15m"), Some(DurationValue::secs(900)));
        assert_eq!(
            DurationValue::parse("30d"),
            Some(DurationValue::secs(30 * 86400))
        );
        assert_eq!(
            DurationValue::parse("250ms").map(|d| d.get().as_millis()),
            Some(250)
        );
        assert_eq!(DurationValue::parse("15"), None);
        assert_eq!(DurationValue::parse("15y"), None);
    }

    #[test]
    fn defaults_match_the_specification() {
        let c = Config::default();
        assert!(c.validate().is_ok());
        assert_eq!(c.server.listen, "127.0.0.1:8080");
        assert_eq!(c.public_url(), "http://127.0.0.1:8080");
        assert!(c.database_url().ends_with("data/shutter.db"));
        assert_eq!(c.tiers.basic.max_file_size, ByteSize(100 * MIB));
        assert_eq!(c.tiers.premium.storage_quota, ByteSize(1024 * GIB));
        assert_eq!(c.auth.access_token_ttl, DurationValue::secs(900));
        assert_eq!(c.feed.fanout_threshold, 10_000);
    }

    #[test]
    fn validation_names_the_key() {
        let mut c = Config::default();
        c.server.listen = "nowhere".into();
        let err = c.validate().err().map(|e| e.key);
        assert_eq!(err.as_deref(), Some("server.listen"));
        let mut c = Config::default();
        c.database.url = Some("mysql://x".into());
        assert_eq!(
            c.validate().err().map(|e| e.key).as_deref(),
            Some("database.url")
        );
    }
}

#[cfg(test)]
mod tier_tests {
    use super::*;

    #[test]
    fn a_tier_key_alone_keeps_that_tiers_other_defaults() {
        let json = serde_json::json!({"tiers": {"premium": {"posts_per_minute": 100}, "basic": {"storage_quota": "5GiB"}}});
        let c: Config = serde_json::from_value(json).unwrap_or_default();
        assert_eq!(c.tiers.premium.posts_per_minute, 100);
        assert_eq!(c.tiers.premium.max_file_size, ByteSize(5 * GIB));
        assert_eq!(c.tiers.basic.storage_quota, ByteSize(5 * GIB));
        assert_eq!(c.tiers.basic.max_file_size, ByteSize(100 * MIB));
        let bad = serde_json::json!({"tiers": {"basic": {"max_file_sise": 1}}});
        assert!(serde_json::from_value::<Config>(bad).is_err());
    }

    #[test]
    #[allow(clippy::unwrap_used)]
    fn ip_ranges_parse_cidrs_and_match_their_addresses() {
        let ip = |t: &str| t.parse::<IpAddr>().unwrap();
        let net = IpRange::parse("10.1.0.0/16").unwrap();
        assert!(net.contains(ip("10.1.200.3")));
        assert!(net.contains(ip("::ffff:10.1.0.9")), "IPv4-mapped");
        assert!(!net.contains(ip("10.2.0.1")));
        assert!(!net.contains(ip("::a01:1")));
        let one = IpRange::parse("192.0.2.7").unwrap();
        assert!(one.contains(ip("192.0.2.7")) && !one.contains(ip("192.0.2.8")));
        let v6 = IpRange::parse("2001:db8:1::/48").unwrap();
        assert!(v6.contains(ip("2001:db8:1:ffff::1")));
        assert!(!v6.contains(ip("2001:db8:2::1")));
        assert!(IpRange::parse("0.0.0.0/0").unwrap().contains(ip("8.8.8.8")));
        for bad in [
            "10.0.0.0/33",
            "::/129",
            "10.0.0.0/+8",
            "10.0.0/8",
            "",
            "x/8",
        ] {
            assert_eq!(IpRange::parse(bad), None, "{bad}");
        }
        let mut c = Config::default();
        c.server.trusted_proxies = vec!["10.0.0.0/8".into(), "nonsense".into()];
        let err = c.validate().unwrap_err();
        assert_eq!(err.key, "server.trusted_proxies");
    }
}
