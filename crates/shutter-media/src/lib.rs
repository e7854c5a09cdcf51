//! Shutter's image pipeline: recognising content from its first bytes ([`sniff`]), reading
//! an image's type, dimensions and EXIF orientation from its header ([`probe`]), so that
//! decompression bombs are refused before anything is decoded, and turning an upload into
//! its upright, metadata-free JPEG variants and blurhash ([`process`]).
//!
//! **Invariant:** this crate does no I/O and spawns nothing. Every function is a pure
//! function of the bytes it is given; callers run the expensive one, [`process`], off the
//! async runtime on a pool bounded by the core count (say `spawn_blocking` behind a
//! semaphore of `available_parallelism()` permits). `process` itself uses one thread.
//!
//! **Invariant:** nothing here panics, and nothing allocates in proportion to what an input
//! claims (dimensions, lengths, counts) before the claim has been held against the caller's
//! [`Limits`] — inputs are hostile until proven otherwise.

#![warn(missing_docs)]

pub mod icc;
mod pipeline;
mod probe;
mod sniff;

pub use pipeline::{process, Limits, MediaError, Processed, Variant, JPEG_QUALITY, THUMB_SIZE};
pub use probe::{probe, ImageInfo, ProbeError};
pub use sniff::{
    sniff, APPLICATION_PDF, IMAGE_AVIF, IMAGE_GIF, IMAGE_HEIC, IMAGE_JPEG, IMAGE_PNG, IMAGE_TIFF,
    IMAGE_WEBP, SNIFF_LEN,
};
