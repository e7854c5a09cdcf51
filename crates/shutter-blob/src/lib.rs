//! Shutter's `BlobStore` adapters. So far the embedded one, [`LocalBlobStore`]: objects as
//! files under a directory, written by fsync + rename so that a reader (or a crash) never
//! sees half an object, and read as bounded chunks so memory stays flat whatever the size.
//!
//! Keys are `files/<id>` (an upload's bytes) and `files/<id>/<variant>` (derived objects);
//! [`BlobKey`] parses them, and anything else is refused before a path is built.

#![warn(missing_docs)]

mod key;
mod local;

pub use key::BlobKey;
pub use local::LocalBlobStore;
