//! One module per command; [`run`] resolves the server and the session, then dispatches.

mod auth;
mod feed;
mod files;
mod post;
mod upload;

use crate::api::{normalise_server, Api, DEFAULT_SERVER};
use crate::cli::{Cli, Command, FilesCommand};
use crate::error::CliResult;
use crate::output::Output;
use crate::store::Store;

/// What every command works with.
pub struct Ctx {
    pub api: Api,
    pub out: Output,
}

impl Ctx {
    /// Whether progress bars are wanted (they still only draw on a terminal).
    pub fn bars_wanted(&self) -> bool {
        !self.out.json
    }
}

pub async fn run(cli: Cli) -> CliResult<()> {
    let store = Store::new(cli.config_dir)?;
    let stored = store.load_session()?;
    // `--server` / SHUTTER_URL, else the server of the stored login, else the default.
    let server = match (&cli.server, &stored) {
        (Some(server), _) => normalise_server(server)?,
        (None, Some(session)) => normalise_server(&session.server)?,
        (None, None) => normalise_server(DEFAULT_SERVER)?,
    };
    let session = stored.filter(|s| s.server == server.as_str());
    let mut ctx = Ctx {
        api: Api::new(server, store, session)?,
        out: Output { json: cli.json },
    };
    match cli.command {
        Command::Register(args) => auth::register(&mut ctx, args).await,
        Command::Login(args) => auth::login(&mut ctx, args).await,
        Command::Logout => auth::logout(&mut ctx).await,
        Command::Whoami => auth::whoami(&mut ctx).await,
        Command::Upload(args) => upload::run(&mut ctx, args).await,
        Command::Files(FilesCommand::Ls(args)) => files::ls(&mut ctx, args).await,
        Command::Files(FilesCommand::Get(args)) => files::get(&mut ctx, args).await,
        Command::Files(FilesCommand::Share(args)) => files::share(&mut ctx, &args.id).await,
        Command::Files(FilesCommand::Rm(args)) => files::rm(&mut ctx, &args.id).await,
        Command::Post(args) => post::run(&mut ctx, args).await,
        Command::Feed(args) => feed::run(&mut ctx, args).await,
    }
}

/// A path segment for an id typed by the user (ids are UUIDs; anything else is escaped so
/// that it cannot reach another route).
pub fn segment(id: &str) -> String {
    url::form_urlencoded::byte_serialize(id.as_bytes()).collect()
}
