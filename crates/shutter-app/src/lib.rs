//! Shutter's use cases. Each public method of [`Shutter`] is one thing a client can ask for;
//! it checks the rules and talks to the outside only through the ports in [`ports`].
//!
//! **Invariant:** no SQL, no HTTP server types and no image code here; adapters implement
//! the ports in their own crates.

pub mod error;
pub mod ports;

pub use error::{AppError, AppResult};
