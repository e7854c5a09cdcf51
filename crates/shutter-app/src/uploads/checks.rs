//! The content checks of a complete upload: the sniffed type against a declared image type,
//! and the image header (read back from the partial object) against the pixel limit.

use futures::StreamExt;
use shutter_core::model::FileRecord;
use shutter_core::{ErrorCode, Id};

use super::blob_error;
use crate::files::blob_key;
use crate::ports::BlobError;
use crate::{AppResult, Shutter};

/// How much of the start of a complete image is read back for sniffing and probing.
const PREFIX_LEN: u64 = 256 * 1024;
/// The most of a file read to find an image's header behind its metadata.
const MAX_HEADER_READ: u64 = 16 * 1024 * 1024;

/// Why a complete upload's content was refused.
pub(super) struct ContentProblem {
    pub(super) code: ErrorCode,
    pub(super) detail: String,
    /// The image's pixel count, when that was the problem.
    pub(super) pixels: Option<u64>,
}

impl ContentProblem {
    fn mismatch(detail: String) -> Self {
        ContentProblem {
            code: ErrorCode::ContentMismatch,
            detail,
            pixels: None,
        }
    }
}

impl Shutter {
    /// The sniffed type must agree with a declared image type; images must have a readable
    /// header within the pixel limit. Returns the displayed dimensions of images (the outer
    /// error is a storage failure, the inner one a problem with the content).
    pub(super) async fn check_content(
        &self,
        file: &FileRecord,
    ) -> AppResult<Result<(Option<u32>, Option<u32>), ContentProblem>> {
        let declared = file.content_type.as_str();
        let declared_image = matches!(
            declared,
            "image/jpeg" | "image/png" | "image/webp" | "image/gif"
        );
        if !declared_image {
            return Ok(Ok((None, None)));
        }
        let prefix = self
            .read_partial_prefix(file.id, PREFIX_LEN.min(file.size))
            .await
            .map_err(blob_error)?;
        Ok(self.check_image(file, &prefix).await)
    }

    async fn check_image(
        &self,
        file: &FileRecord,
        prefix: &[u8],
    ) -> Result<(Option<u32>, Option<u32>), ContentProblem> {
        let declared = file.content_type.as_str();
        let sniffed = shutter_media::sniff(prefix);
        if sniffed != Some(declared) {
            let found = sniffed.unwrap_or("unrecognised bytes");
            return Err(ContentProblem::mismatch(format!(
                "declared {declared} but the bytes are {found}"
            )));
        }
        let mut probed = shutter_media::probe(prefix);
        // Large metadata (ICC profiles, XMP) can push the frame header past the prefix kept
        // in memory: read as much of the file as the header needs, within a bound.
        if let Err(shutter_media::ProbeError::NeedMoreData { needed }) = probed {
            let have = prefix.len() as u64;
            if have < file.size && needed as u64 > have && (needed as u64) <= MAX_HEADER_READ {
                let longer = self
                    .read_partial_prefix(file.id, (needed as u64).min(file.size))
                    .await;
                probed = match longer {
                    Ok(bytes) => shutter_media::probe(&bytes),
                    Err(_) => probed,
                };
            }
        }
        let info = probed.map_err(|e| {
            ContentProblem::mismatch(format!("the image header is unreadable: {e}"))
        })?;
        let pixels = u64::from(info.width) * u64::from(info.height);
        let max = self.config.media.max_pixels;
        if pixels > max {
            return Err(ContentProblem {
                code: ErrorCode::ImageTooLarge,
                detail: format!("the image has {pixels} pixels; at most {max} are allowed"),
                pixels: Some(pixels),
            });
        }
        Ok((Some(info.display_width()), Some(info.display_height())))
    }

    /// The first `len` bytes of a file's partial object.
    async fn read_partial_prefix(&self, id: Id, len: u64) -> Result<Vec<u8>, BlobError> {
        let mut read = self.blobs.read_partial(&blob_key(id)).await?;
        let mut out = Vec::with_capacity(len as usize);
        while let Some(chunk) = read.stream.next().await {
            let chunk = chunk.map_err(|e| BlobError::Other(e.into()))?;
            let room = len as usize - out.len();
            out.extend_from_slice(&chunk[..chunk.len().min(room)]);
            if out.len() as u64 >= len {
                break;
            }
        }
        Ok(out)
    }
}
