//! Shutter's domain: identifiers, validated values, error codes, cursors, time and
//! configuration types.
//!
//! **Invariant:** this crate does no I/O. Everything here is a pure function of its inputs,
//! so every other crate can depend on it without pulling in a runtime.

pub mod config;
pub mod cursor;
pub mod domain;
pub mod error;
pub mod id;
pub mod model;
pub mod timestamp;

pub use cursor::{Cursor, Page, PageRequest};
pub use error::ErrorCode;
pub use id::Id;
pub use timestamp::Timestamp;
