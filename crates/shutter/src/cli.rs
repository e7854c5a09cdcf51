//! The command line: `serve`, `migrate`, `check`, `admin set-tier|set-role`.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use shutter_core::config::Config;
use shutter_core::domain::{Role, Tier};

#[derive(Debug, Parser)]
#[command(
    name = "shutter",
    version,
    about = "Shutter: a self-hostable backend for photo sharing and file uploads"
)]
pub struct Cli {
    /// Configuration file (default: ./shutter.toml if it exists). Environment variables
    /// SHUTTER_<SECTION>__<KEY> and SHUTTER_DATA_DIR override it.
    #[arg(long, global = true, value_name = "FILE")]
    pub config: Option<PathBuf>,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the API server, with job workers in the same process.
    Serve,
    /// Run job workers only (scale processing out; several may share one database).
    Worker,
    /// Inspect and retry background jobs.
    #[command(subcommand)]
    Jobs(JobsCommand),
    /// Apply database migrations and exit.
    Migrate,
    /// Check the configuration, the database, the data directory and the storage (the S3
    /// bucket answers and takes a write, or the local directory does), then exit.
    Check,
    /// Administrative changes to users.
    #[command(subcommand)]
    Admin(AdminCommand),
}

#[derive(Debug, Subcommand)]
pub enum JobsCommand {
    /// List jobs, newest first (dead-lettered ones by default).
    List {
        /// queued, running, done, dead or all.
        #[arg(long, default_value = "dead")]
        status: String,
        #[arg(long, default_value_t = 50)]
        limit: u32,
    },
    /// Queue dead-lettered jobs again: one by id, or all with --all.
    Retry {
        id: Option<String>,
        #[arg(long)]
        all: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum AdminCommand {
    /// Set a user's tier: basic or premium.
    SetTier { username: String, tier: String },
    /// Set a user's role: user or admin.
    SetRole { username: String, role: String },
}

/// Runs a command. Exit codes: 0 success, 1 failure, 2 invalid configuration or arguments.
pub fn run(cli: Cli) -> ExitCode {
    let config = match crate::config::load(cli.config.as_deref()) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("shutter: {e}");
            return ExitCode::from(2);
        }
    };
    crate::telemetry::init(config.log.format);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("shutter: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(execute(cli.command, config)) {
        Ok(code) => code,
        Err(e) => {
            tracing::error!(error = format!("{e:#}"), "command failed");
            eprintln!("shutter: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn execute(command: Command, config: Config) -> anyhow::Result<ExitCode> {
    match command {
        Command::Serve => {
            // Held until the process ends.
            let _one_node = shutter_store::claim_embedded_node(&config.database_url())?;
            let app = crate::startup::Application::build(config).await?;
            app.run_until_stopped().await?;
        }
        Command::Worker => {
            if config.jobs.worker_count() == 0 {
                let e = shutter_core::config::ConfigError::new(
                    "jobs.workers",
                    "must be at least 1 for `shutter worker` (0 is for an API-only `shutter serve`)",
                );
                eprintln!("shutter: {e}");
                return Ok(ExitCode::from(2));
            }
            crate::startup::run_worker(config).await?
        }
        Command::Jobs(jobs) => return run_jobs_command(jobs, config).await,
        Command::Migrate => {
            crate::startup::open_repo(&config).await?;
            println!("migrations applied to {}", redact(&config.database_url()));
        }
        Command::Check => {
            let repo = crate::startup::open_repo(&config).await?;
            repo.ping().await?;
            crate::secrets::load_or_create(&config.secrets_dir(), "jwt.key")?;
            let storage = crate::startup::check_storage(&config).await?;
            println!("configuration ok");
            println!("database   {} (answers)", redact(&config.database_url()));
            println!("data dir   {}", config.data_dir.display());
            println!("storage    {storage}");
            println!("listen     {}", config.server.listen);
        }
        Command::Admin(admin) => {
            let app = crate::startup::build_app(config).await?;
            let user = match admin {
                AdminCommand::SetTier { username, tier } => {
                    let Some(tier) = Tier::parse(&tier) else {
                        eprintln!("shutter: tier must be basic or premium");
                        return Ok(ExitCode::from(2));
                    };
                    app.set_tier_by_username(&username, tier).await
                }
                AdminCommand::SetRole { username, role } => {
                    let Some(role) = Role::parse(&role) else {
                        eprintln!("shutter: role must be user or admin");
                        return Ok(ExitCode::from(2));
                    };
                    app.set_role_by_username(&username, role).await
                }
            };
            match user {
                Ok(u) => println!(
                    "{}: tier {}, role {}",
                    u.username,
                    u.tier.as_str(),
                    u.role.as_str()
                ),
                Err(e) => {
                    eprintln!("shutter: {}", e.detail);
                    return Ok(ExitCode::FAILURE);
                }
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

async fn run_jobs_command(command: JobsCommand, config: Config) -> anyhow::Result<ExitCode> {
    use shutter_app::ports::JobStatus;
    let app = crate::startup::build_app(config).await?;
    match command {
        JobsCommand::List { status, limit } => {
            let status = match status.as_str() {
                "all" => None,
                s => match JobStatus::parse(s) {
                    Some(st) => Some(st),
                    None => {
                        eprintln!("shutter: --status must be queued, running, done, dead or all");
                        return Ok(ExitCode::from(2));
                    }
                },
            };
            let jobs = app
                .list_jobs(status, limit)
                .await
                .map_err(|e| anyhow::anyhow!(e.detail))?;
            println!(
                "{:<36}  {:<15}  {:<7}  {:>8}  {:<24}  last error",
                "id", "kind", "status", "attempts", "created"
            );
            for j in &jobs {
                println!(
                    "{:<36}  {:<15}  {:<7}  {:>4}/{:<3}  {:<24}  {}",
                    j.id.to_string(),
                    j.kind,
                    j.status.as_str(),
                    j.attempts,
                    j.max_attempts,
                    j.created_at.to_string(),
                    j.last_error.as_deref().unwrap_or("")
                );
            }
            println!("{} job(s)", jobs.len());
        }
        JobsCommand::Retry { id, all } => {
            let id = match (id, all) {
                (Some(raw), false) => match raw.parse() {
                    Ok(id) => Some(id),
                    Err(_) => {
                        eprintln!("shutter: {raw} is not a job id");
                        return Ok(ExitCode::from(2));
                    }
                },
                (None, true) => None,
                _ => {
                    eprintln!("shutter: give a job id or --all");
                    return Ok(ExitCode::from(2));
                }
            };
            let n = app
                .retry_dead_jobs(id)
                .await
                .map_err(|e| anyhow::anyhow!(e.detail))?;
            println!("{n} job(s) queued again");
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// A database URL without its password, for messages.
fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            let creds = &url[scheme + 3..at];
            match creds.split_once(':') {
                Some((user, _)) => format!("{}{user}:***{}", &url[..scheme + 3], &url[at..]),
                None => url.to_owned(),
            }
        }
        _ => url.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn passwords_are_redacted_from_database_urls() {
        assert_eq!(
            super::redact("postgres://u:secret@h/db"),
            "postgres://u:***@h/db"
        );
        assert_eq!(super::redact("postgres://u@h/db"), "postgres://u@h/db");
        assert_eq!(
            super::redact("sqlite://./data/shutter.db"),
            "sqlite://./data/shutter.db"
        );
    }
}
