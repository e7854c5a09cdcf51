//! What a scenario is: a name, its targets, and a run against the started, seeded server
//! that returns named figures (the `scenarios.<name>` object of results.json).

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use crate::db::Watcher;
use crate::seed::Seeded;
use crate::tokens::Minter;
use async_trait::async_trait;
use serde_json::Value;

/// Everything a scenario may use.
pub struct Ctx {
    /// Keep-alive connections of the load generator.
    pub connections: usize,
    pub addr: SocketAddr,
    pub base_url: String,
    /// The server's data directory (its filesystem is the one uploads land on).
    pub data_dir: PathBuf,
    /// The server process, to read its memory in `/proc`.
    pub server_pid: u32,
    /// Where the server stores files.
    pub storage: Storage,
    /// The S3 server's process with `--storage s3` (s3s-fs), to read its memory.
    pub store_pid: Option<u32>,
    /// For the few control requests (creating a post, confirming a feed), not for load.
    pub http: reqwest::Client,
    pub minter: Minter,
    pub seeded: Seeded,
    /// An access token for each social user (`seeded.users[..seeded.social_users]`).
    pub tokens: Vec<Arc<str>>,
    /// The server's database (SQLite or PostgreSQL), read-only, to observe what the server
    /// did.
    pub db: Watcher,
    pub durations: Durations,
}

/// Where the server stores files (`--storage`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Storage {
    /// The server's data directory.
    Local,
    /// A bucket of a local S3 server (s3s-fs) the harness starts.
    S3,
}

impl Storage {
    pub fn name(self) -> &'static str {
        match self {
            Storage::Local => "local",
            Storage::S3 => "s3",
        }
    }
}

static STORAGE: std::sync::OnceLock<Storage> = std::sync::OnceLock::new();

/// Records the run's storage once, for what a scenario targets and skips (which the report
/// asks for without a [`Ctx`]).
pub fn set_storage(storage: Storage) {
    let _ = STORAGE.set(storage);
}

/// The run's storage (local until [`set_storage`]).
pub fn storage() -> Storage {
    STORAGE.get().copied().unwrap_or(Storage::Local)
}

static ON_POSTGRES: std::sync::OnceLock<bool> = std::sync::OnceLock::new();

/// Records once whether the server runs on PostgreSQL (`--database`), whose targets differ.
pub fn set_on_postgres(on: bool) {
    let _ = ON_POSTGRES.set(on);
}

/// Whether the server runs on PostgreSQL (SQLite until [`set_on_postgres`]).
pub fn on_postgres() -> bool {
    ON_POSTGRES.get().copied().unwrap_or(false)
}

/// How long load runs last.
#[derive(Clone, Copy, Debug)]
pub struct Durations {
    /// Load before each measurement, not counted.
    pub warmup: Duration,
    pub measure: Duration,
    pub quick: bool,
    /// The whole length of the `soak` scenario.
    pub soak: Duration,
}

impl Durations {
    pub fn new(quick: bool) -> Self {
        if quick {
            Durations {
                warmup: Duration::from_secs(3),
                measure: Duration::from_secs(15),
                quick,
                soak: Duration::from_secs(600),
            }
        } else {
            Durations {
                warmup: Duration::from_secs(10),
                measure: Duration::from_secs(60),
                quick,
                soak: Duration::from_secs(600),
            }
        }
    }
}

/// A scenario's named figures, in insertion-independent (sorted) order.
#[derive(Clone, Debug, Default)]
pub struct Figures(pub BTreeMap<String, Value>);

impl Figures {
    /// A measured quantity, rounded to `decimals`.
    pub fn set(&mut self, name: &str, value: f64, decimals: i32) {
        let scale = 10f64.powi(decimals);
        let v = (value * scale).round() / scale;
        if let Some(n) = serde_json::Number::from_f64(v) {
            self.0.insert(name.to_owned(), Value::Number(n));
        }
    }

    /// A word or phrase (what a figure cannot say in a number).
    pub fn text(&mut self, name: &str, value: impl Into<String>) {
        self.0.insert(name.to_owned(), Value::String(value.into()));
    }

    /// A count.
    pub fn count(&mut self, name: &str, value: u64) {
        self.0.insert(name.to_owned(), Value::from(value));
    }

    pub fn get(&self, name: &str) -> Option<f64> {
        self.0.get(name).and_then(Value::as_f64)
    }
}

/// How a figure is judged.
#[derive(Clone, Copy, Debug)]
pub enum Check {
    AtLeast(f64),
    AtMost(f64),
    /// Equal to another figure of the same scenario.
    EqualsFigure(&'static str),
}

/// A figure's target.
#[derive(Clone, Copy, Debug)]
pub struct Target {
    pub figure: &'static str,
    pub check: Check,
}

impl Target {
    pub fn describe(&self) -> String {
        match self.check {
            Check::AtLeast(v) => format!("≥ {v}"),
            Check::AtMost(v) => format!("≤ {v}"),
            Check::EqualsFigure(other) => format!("= {other}"),
        }
    }

    /// `None` when the figure (or the one compared with) was not measured.
    pub fn met(&self, figures: &Figures) -> Option<bool> {
        let value = figures.get(self.figure)?;
        Some(match self.check {
            Check::AtLeast(v) => value >= v,
            Check::AtMost(v) => value <= v,
            Check::EqualsFigure(other) => value == figures.get(other)?,
        })
    }
}

/// Scenarios that run only when `--only` names them (they take long).
pub const ON_REQUEST: &[&str] = &["soak"];

#[async_trait]
pub trait Scenario: Send + Sync {
    fn name(&self) -> &'static str;
    fn targets(&self) -> Vec<Target> {
        Vec::new()
    }
    /// Figures this run does not measure on purpose (e.g. skipped in quick mode), with why.
    fn skipped(&self, _quick: bool) -> Vec<(&'static str, &'static str)> {
        Vec::new()
    }
    async fn run(&self, ctx: &Ctx) -> anyhow::Result<Figures>;
}

/// Every scenario, in the order they run (`soak` only when named: see [`ON_REQUEST`]).
pub fn all() -> Vec<Box<dyn Scenario>> {
    use crate::scenarios::{
        fanout::Fanout, like_storm::LikeStorm, media::Media, presign::Presign,
        read_fixed_rate::ReadFixedRate, read_mix::ReadMix, soak::Soak, upload_large::UploadLarge,
        upload_small::UploadSmall, write_mix::WriteMix,
    };
    vec![
        Box::new(ReadMix),
        Box::new(ReadFixedRate),
        Box::new(WriteMix),
        Box::new(Presign),
        Box::new(UploadSmall),
        Box::new(UploadLarge),
        Box::new(Media),
        Box::new(Fanout),
        Box::new(LikeStorm),
        Box::new(Soak),
    ]
}
