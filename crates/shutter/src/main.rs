use std::process::ExitCode;

use clap::Parser;

/// Rust's allocations go to jemalloc: a request allocates and frees many small buffers
/// (rows, JSON, headers) on whichever worker runs it, and glibc's allocator took about an
/// eighth of the server's samples under the read benchmark (BENCHMARKS.md). C libraries (SQLite, the image
/// codecs) still allocate from glibc, which `memory.rs` trims. jemalloc runs a background
/// thread that gives freed pages back a second after they are freed (`.cargo/config.toml`);
/// `_RJEM_MALLOC_CONF` overrides that at run time.
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

fn main() -> ExitCode {
    shutter::cli::run(shutter::cli::Cli::parse())
}
