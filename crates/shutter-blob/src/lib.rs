//! Shutter's `BlobStore` adapters. The embedded one, [`LocalBlobStore`]: objects as files
//! under a directory, written by fsync + rename so that a reader (or a crash) never sees half
//! an object, and read as bounded chunks so memory stays flat whatever the size. The
//! scale-out one, [`S3BlobStore`]: any S3-compatible object store, with presigned requests.
//!
//! Keys are `files/<id>` (an upload's bytes) and `files/<id>/<variant>` (derived objects);
//! [`BlobKey`] parses them, and anything else is refused before a path is built.

#![warn(missing_docs)]

mod key;
mod local;
mod s3;

pub use key::BlobKey;
pub use local::LocalBlobStore;
pub use s3::{S3BlobStore, BUFFERING_WRITERS, PART_MIN, PART_SIZE};
