//! `shutter-cli`: a command-line client for Shutter, built only on its public HTTP API.
//!
//! `cli.rs` is the command line, `commands/` one module per command, `api.rs` the HTTP
//! client with the session (and its refresh), `transfer.rs` tus uploads and presigned PUTs,
//! `store.rs` the credentials and unfinished uploads on disk, `progress.rs` the bars.
//!
//! Exit codes, as the server binary's: 0 success, 1 failure (the error's code is printed:
//! the server's problem `code`, or one of this client's), 2 invalid arguments.

mod api;
mod cli;
mod commands;
mod error;
mod local;
mod output;
mod progress;
mod store;
mod transfer;

use std::process::ExitCode;

use clap::Parser;
use serde_json::json;

use crate::error::CliError;
use crate::output::Output;

fn main() -> ExitCode {
    let cli = cli::Cli::parse();
    let out = Output { json: cli.json };
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            report(
                &CliError::new("internal", format!("starting the runtime: {e}")),
                out,
            );
            return ExitCode::from(error::EXIT_FAILURE);
        }
    };
    match runtime.block_on(commands::run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            report(&err, out);
            ExitCode::from(err.exit_code())
        }
    }
}

/// `error: <detail> (<code>)` on stderr; with `--json` also `{"error": <problem>}` on stdout.
fn report(err: &CliError, out: Output) {
    if err.reported {
        return;
    }
    eprintln!("error: {err}");
    if out.json {
        output::print_json(&json!({ "error": err.to_json() }));
    }
}
