use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    shutter::cli::run(shutter::cli::Cli::parse())
}
