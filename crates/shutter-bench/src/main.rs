//! `shutter-bench`: builds the server in release mode, starts it on a temporary data
//! directory (rate limits off, a free port), seeds it straight into its database (SQLite in
//! the data directory, or a scratch PostgreSQL database with `--database`), runs the
//! scenarios and writes `target/bench/results.json` plus a readable table.
//!
//! ```sh
//! cargo run --release -p shutter-bench -- --quick
//! cargo run --release -p shutter-bench -- --quick --storage s3 --only presign,upload_small,upload_large
//! cargo run --release -p shutter-bench -- --quick --database postgres://postgres@127.0.0.1:5432/postgres
//! ```
//!
//! `--storage s3` runs the server on a bucket of its own s3s-fs (see `s3.rs`);
//! `--database` on a scratch database of that PostgreSQL server (see `db.rs`).
//!
//! See BENCHMARKS.md at the root of the repository.

mod db;
mod load;
mod machine;
mod report;
mod s3;
mod scenario;
mod scenarios;
mod seed;
mod server;
mod tokens;

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use clap::Parser;
use serde_json::json;

use crate::db::{Database, Watcher};
use crate::report::Outcome;
use crate::scenario::{Ctx, Durations, Storage};
use crate::seed::SeedPlan;
use crate::server::ServerConfig;

#[derive(Parser, Debug)]
#[command(
    name = "shutter-bench",
    about = "Benchmarks the Shutter server (see BENCHMARKS.md)"
)]
struct Args {
    /// Shorter runs and smaller data (finishes in a few minutes); skips fanout to 100k.
    #[arg(long)]
    quick: bool,
    /// Do not run `cargo build --release -p shutter`; use the existing target/release/shutter.
    #[arg(long)]
    no_build: bool,
    /// Run only these scenarios (comma-separated names).
    #[arg(long, value_delimiter = ',')]
    only: Vec<String>,
    /// Keep-alive connections of the load generator.
    #[arg(long, default_value_t = 64)]
    connections: usize,
    /// Where to write the results (the table goes beside it as results.txt).
    #[arg(long)]
    out: Option<PathBuf>,
    /// The server's log filter (`RUST_LOG`), e.g. `warn`; by default the server's own default
    /// (`info`: one access-log line per request, as shipped).
    #[arg(long)]
    server_log: Option<String>,
    /// How long the `soak` scenario runs, in minutes.
    #[arg(long, default_value_t = 10)]
    soak_minutes: u64,
    /// Keep the temporary data directory (its path is printed).
    #[arg(long)]
    keep_data: bool,
    /// Where the server stores files: `local` (its data directory) or `s3` (a local
    /// s3s-fs the harness starts on a fresh directory, stopped at the end).
    #[arg(long, value_enum, default_value_t = Storage::Local)]
    storage: Storage,
    /// The server's database: by default SQLite in the data directory; a
    /// `postgres://user@host:port/db` URL runs it on a scratch database the harness creates
    /// on that server (connecting to `db` to create it) and drops at the end (kept with
    /// `--keep-data`).
    #[arg(long, value_name = "URL")]
    database: Option<String>,
}

#[tokio::main]
async fn main() -> ExitCode {
    match run(Args::parse()).await {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("shutter-bench: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// `sync`: the kernel writes every dirty page back (best effort; a failure is only reported).
async fn flush_to_disk() {
    match tokio::process::Command::new("sync").status().await {
        Ok(status) if status.success() => {}
        Ok(status) => eprintln!("bench: sync failed ({status})"),
        Err(e) => eprintln!("bench: sync could not run: {e}"),
    }
}

/// The full run's `write_mix` leaves some 30 000 fan-outs queued (a quarter of its requests
/// are posts, created faster than two workers fan them out on the full data set).
const JOB_DRAIN_LIMIT: Duration = Duration::from_secs(900);

/// Waits (up to [`JOB_DRAIN_LIMIT`]) until the server's job queue has nothing queued or
/// running.
async fn wait_for_idle_jobs(db: &Watcher) -> anyhow::Result<()> {
    let started = Instant::now();
    let mut said = false;
    loop {
        let busy = db
            .count(
                "SELECT COUNT(*) FROM jobs WHERE status IN ('queued', 'running')",
                &[],
            )
            .await?;
        if busy == 0 {
            if said {
                eprintln!(
                    "bench: the job queue drained in {:.1} s",
                    started.elapsed().as_secs_f64()
                );
            }
            return Ok(());
        }
        if !said {
            eprintln!("bench: waiting for {busy} background jobs to finish");
            said = true;
        }
        if started.elapsed() > JOB_DRAIN_LIMIT {
            bail!(
                "the server's job queue still holds {busy} jobs after {} s",
                JOB_DRAIN_LIMIT.as_secs()
            );
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// `Ok(false)` when a scenario failed to run (a target not met is not a failure).
async fn run(args: Args) -> anyhow::Result<bool> {
    let started = Instant::now();
    let root = server::workspace_root();
    let entries = scenario::all();
    for name in &args.only {
        if !entries.iter().any(|e| e.name() == name) {
            bail!("unknown scenario {name:?}");
        }
    }
    let selected = |name: &str| {
        if args.only.is_empty() {
            !scenario::ON_REQUEST.contains(&name)
        } else {
            args.only.iter().any(|n| n == name)
        }
    };

    let mut machine = machine::describe();
    machine.insert(
        "mode".into(),
        json!(if args.quick { "quick" } else { "full" }),
    );
    machine.insert(
        "server_log".into(),
        json!(args.server_log.as_deref().unwrap_or("default (info)")),
    );

    let bin = if args.no_build {
        server::binary(&root)?
    } else {
        server::build(&root).await?
    };

    let out = args
        .out
        .clone()
        .unwrap_or_else(|| root.join("target").join("bench").join("results.json"));
    let out_dir = out
        .parent()
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("."));
    std::fs::create_dir_all(&out_dir).with_context(|| format!("creating {}", out_dir.display()))?;

    let tmp = tempfile::Builder::new()
        .prefix("shutter-bench-")
        .tempdir()
        .context("creating a temporary data directory")?;
    let data_dir = tmp.path().join("data");
    std::fs::create_dir_all(&data_dir)?;
    scenario::set_storage(args.storage);
    scenario::set_on_postgres(args.database.is_some());
    // With `--storage s3`, the bucket's directory sits beside the data directory, on the same
    // filesystem (the one `upload_large` writes its disk probe to).
    let s3_server = match args.storage {
        Storage::Local => None,
        Storage::S3 => {
            let s3_log = out_dir.join("s3s-fs.log");
            let s3 = s3::S3Server::start(&tmp.path().join("s3"), &s3_log).await?;
            eprintln!(
                "bench: s3s-fs at {} over {} (bucket {}), its log in {}",
                s3.endpoint.endpoint,
                s3.root.display(),
                s3.endpoint.bucket,
                s3_log.display()
            );
            Some(s3)
        }
    };
    machine.insert(
        "storage".into(),
        json!(match &s3_server {
            None => "local (the data directory)".to_owned(),
            Some(s3) => format!(
                "s3 (s3s-fs {} as tools/s3s-fs-nodelay serves it, on 127.0.0.1, bucket {}, path-style)",
                s3::S3S_FS_VERSION,
                s3.endpoint.bucket
            ),
        }),
    );
    // From here on the scratch database exists: it is dropped (unless kept) however the run
    // ends, after the server (killed when dropped) is gone.
    let database = Database::prepare(args.database.as_deref(), &data_dir).await?;
    machine.insert("database".into(), json!(database.describe()));
    let outcome: anyhow::Result<bool> = async {
        let mut server_env = vec![("SHUTTER_STORAGE__BACKEND", args.storage.name().to_owned())];
        if let Some(s3) = &s3_server {
            server_env = s3.endpoint.env();
        }
        server_env.extend(database.env());
        let config = ServerConfig {
            bin,
            data_dir: data_dir.clone(),
            port: server::free_port()?,
            log_file: out_dir.join("server.log"),
            log_filter: args.server_log.clone(),
            env: server_env,
        };
        eprintln!(
            "bench: data in {}, server on {}, its log in {}",
            data_dir.display(),
            config.base_url(),
            config.log_file.display()
        );
        if let Database::Postgres(scratch) = &database {
            eprintln!(
                "bench: database {} on PostgreSQL at {}",
                scratch.name, scratch.server
            );
        }

        config.migrate().await?;
        let plan = if args.quick {
            SeedPlan {
                users: 10_000,
                crowd: 0,
                posts: 100_000,
                follows: 200_000,
                fan_authors: vec![10_000],
                files_per_user: 5,
            }
        } else {
            SeedPlan {
                users: 10_000,
                crowd: 90_000,
                posts: 100_000,
                follows: 200_000,
                fan_authors: vec![10_000, 100_000],
                files_per_user: 5,
            }
        };
        eprintln!(
            "bench: seeding {} users, {} posts, {} follows (+ fan-out authors' followers)",
            plan.users + plan.crowd,
            plan.posts,
            plan.follows
        );
        let seeded = seed::seed(&database, &plan).await?;
        eprintln!(
            "bench: seeded in {:.1} s ({} feed entries)",
            seeded.seconds, seeded.feed_entries
        );

        let srv = config.start().await?;
        let base_url = config.base_url();
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(60))
            .build()?;
        // One real login: the seeded password hash works, and the server's own token works.
        let login = http
            .post(format!("{base_url}/v1/auth/login"))
            .json(&json!({ "username": seeded.users[0].username, "password": seed::PASSWORD }))
            .send()
            .await?;
        if !login.status().is_success() {
            bail!(
                "logging in a seeded user failed: {} {}",
                login.status(),
                login.text().await.unwrap_or_default()
            );
        }
        let minter = tokens::Minter::from_data_dir(&data_dir, base_url.clone())?;
        let tokens = seeded.users[..seeded.social_users]
            .iter()
            .map(|u| minter.token(&u.id).map(Arc::<str>::from))
            .collect::<anyhow::Result<Vec<_>>>()?;
        let me = http
            .get(format!("{base_url}/v1/users/me"))
            .bearer_auth(tokens.first().map(|t| &**t).unwrap_or(""))
            .send()
            .await?;
        if !me.status().is_success() {
            bail!("a minted token was refused: {}", me.status());
        }

        let db = database.watcher().await?;
        let ctx = Ctx {
            connections: args.connections,
            addr: config.addr(),
            base_url,
            data_dir: data_dir.clone(),
            server_pid: srv.pid()?,
            storage: args.storage,
            store_pid: s3_server.as_ref().and_then(s3::S3Server::pid),
            http,
            minter,
            seeded,
            tokens,
            db,
            durations: Durations {
                soak: Duration::from_secs(args.soak_minutes * 60),
                ..Durations::new(args.quick)
            },
        };

        let mut results: Vec<(String, Outcome)> = Vec::new();
        let mut all_ran = true;
        for s in &entries {
            if !selected(s.name()) {
                results.push((s.name().to_owned(), Outcome::NotRun));
                continue;
            }
            // Each scenario starts on a quiet server: the background jobs of the one before
            // (fan-out of new posts, photo processing, deletes) are done, and the bytes it wrote
            // are on disk rather than dirty in the kernel's page cache, whose write-back would
            // otherwise throttle the next scenario's writes.
            wait_for_idle_jobs(&ctx.db).await?;
            flush_to_disk().await;
            let t = Instant::now();
            let outcome = match s.run(&ctx).await {
                Ok(f) => Outcome::Measured(f),
                Err(e) => {
                    eprintln!("bench: {} failed: {e:#}", s.name());
                    all_ran = false;
                    Outcome::Failed(format!("{e:#}"))
                }
            };
            eprintln!(
                "bench: {} done in {:.1} s",
                s.name(),
                t.elapsed().as_secs_f64()
            );
            results.push((s.name().to_owned(), outcome));
        }
        ctx.db.close().await;
        srv.stop().await?;
        if let Some(s3) = s3_server {
            s3.stop().await?;
        }

        if let Some(load) = machine::load_average() {
            machine.insert("loadavg_end".into(), json!(load));
        }
        machine.insert(
            "total_seconds".into(),
            json!(started.elapsed().as_secs_f64().round()),
        );
        let json = report::results_json(&machine, &results);
        std::fs::write(&out, serde_json::to_string_pretty(&json)? + "\n")
            .with_context(|| format!("writing {}", out.display()))?;
        let table = report::table(&machine, &entries, &results, args.quick);
        let txt = out.with_extension("txt");
        std::fs::write(&txt, &table).with_context(|| format!("writing {}", txt.display()))?;
        println!("{table}");
        println!("results: {} (table: {})", out.display(), txt.display());
        Ok(all_ran)
    }
    .await;

    let removed = if args.keep_data {
        let kept = tmp.keep();
        println!("data kept in {}", kept.display());
        if let Database::Postgres(scratch) = &database {
            println!(
                "database kept: {} on PostgreSQL at {}",
                scratch.name, scratch.server
            );
        }
        Ok(())
    } else {
        database.remove().await
    };
    match (outcome, removed) {
        (Ok(all_ran), Ok(())) => Ok(all_ran),
        (Err(e), Ok(())) | (Ok(_), Err(e)) => Err(e),
        (Err(e), Err(also)) => {
            eprintln!("shutter-bench: {also:#}");
            Err(e)
        }
    }
}
