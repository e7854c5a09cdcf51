//! Shutter's image pipeline. So far: recognising content from its first bytes ([`sniff`])
//! and reading an image's type, dimensions and EXIF orientation from its header
//! ([`probe`]), so that decompression bombs are refused before anything is decoded.
//!
//! **Invariant:** this crate does no I/O and spawns nothing. Every function is a pure
//! function of the bytes it is given; callers run the expensive ones on a blocking or
//! worker pool.
//!
//! **Invariant:** nothing here panics or allocates in proportion to what an input claims
//! (dimensions, lengths, counts) — inputs are hostile until proven otherwise.

#![warn(missing_docs)]

mod probe;
mod sniff;

pub use probe::{probe, ImageInfo, ProbeError};
pub use sniff::{
    sniff, APPLICATION_PDF, IMAGE_AVIF, IMAGE_GIF, IMAGE_HEIC, IMAGE_JPEG, IMAGE_PNG, IMAGE_TIFF,
    IMAGE_WEBP, SNIFF_LEN,
};
