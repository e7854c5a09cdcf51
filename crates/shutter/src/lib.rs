//! The Shutter binary's library half: configuration loading, secrets, and
//! [`startup::Application`], which wires the adapters chosen by the configuration into the
//! use cases and the HTTP server. `main.rs` only parses the command line.

pub mod cli;
pub mod config;
pub mod memory;
pub mod secrets;
pub mod serve;
pub mod startup;
pub mod telemetry;
