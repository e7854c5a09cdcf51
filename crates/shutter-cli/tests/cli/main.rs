//! The `shutter-cli` binary against a real Shutter: each test starts the server in process
//! on a real socket (its own data directory) and runs the built binary as a child process
//! with a configuration directory of its own. The server runs on the database and blob store
//! the run asks for, as the API suite's (`SHUTTER_TEST_API_DATABASE=postgres`,
//! `SHUTTER_TEST_API_STORAGE=s3`; see `shutter/tests/api/backend.rs`).

mod accounts;
// The API suite's backend selection, shared rather than copied.
#[allow(dead_code, clippy::expect_used, clippy::unwrap_used)]
#[path = "../../../shutter/tests/api/backend.rs"]
mod backend;
mod files;
mod helpers;
mod posts;
mod public_url;
mod uploads;
