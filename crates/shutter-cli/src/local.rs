//! Local files to send: what they are (size, modification time, content type) and their
//! SHA-256, read in a stream.

use std::path::{Path, PathBuf};
use std::time::UNIX_EPOCH;

use indicatif::ProgressBar;
use sha2::{Digest, Sha256};
use tokio::io::AsyncReadExt;

use crate::error::{CliError, CliResult};

/// How much of a file is read at a time (hashing, uploading, downloading).
pub const READ_BUF: usize = 256 * 1024;

#[derive(Clone, Debug)]
pub struct LocalFile {
    /// As given on the command line.
    pub path: PathBuf,
    /// Absolute, symbolic links resolved: the key of a resumable upload.
    pub canonical: PathBuf,
    /// The name sent to the server: the last component of the path as given (a symbolic
    /// link is uploaded under its own name, not its target's).
    pub name: String,
    pub size: u64,
    pub mtime_ns: u64,
    pub content_type: String,
}

impl LocalFile {
    /// A regular file named on the command line; anything else is an invalid argument.
    pub fn inspect(path: &Path, content_type: Option<&str>) -> CliResult<LocalFile> {
        let meta = std::fs::metadata(path)
            .map_err(|e| CliError::usage(format!("{}: {e}", path.display())))?;
        if !meta.is_file() {
            return Err(CliError::usage(format!(
                "{}: not a regular file",
                path.display()
            )));
        }
        let canonical = std::fs::canonicalize(path)
            .map_err(|e| CliError::usage(format!("{}: {e}", path.display())))?;
        let name = path
            .file_name()
            .or_else(|| canonical.file_name())
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "upload".to_owned());
        let mtime_ns = meta
            .modified()
            .ok()
            .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
            .map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX));
        let content_type = match content_type {
            Some(ct) => ct.to_owned(),
            None => guess_content_type(path)?,
        };
        Ok(LocalFile {
            path: path.to_path_buf(),
            canonical,
            name,
            size: meta.len(),
            mtime_ns,
            content_type,
        })
    }
}

/// The content type of a file: what its first bytes say for the image types the server
/// sniffs (so a mis-named photo is still sent as what it is), else what its extension says.
pub fn guess_content_type(path: &Path) -> CliResult<String> {
    let mut head = [0u8; 16];
    let n = {
        use std::io::Read;
        let mut file = std::fs::File::open(path)
            .map_err(|e| CliError::usage(format!("{}: {e}", path.display())))?;
        let mut n = 0;
        while n < head.len() {
            match file.read(&mut head[n..]) {
                Ok(0) => break,
                Ok(k) => n += k,
                Err(e) => return Err(CliError::io("reading", path, e)),
            }
        }
        n
    };
    if let Some(ct) = sniff(&head[..n]) {
        return Ok(ct.to_owned());
    }
    Ok(mime_guess::from_path(path)
        .first_or_octet_stream()
        .essence_str()
        .to_owned())
}

fn sniff(head: &[u8]) -> Option<&'static str> {
    if head.starts_with(&[0xFF, 0xD8, 0xFF]) {
        Some("image/jpeg")
    } else if head.starts_with(b"\x89PNG\r\n\x1a\n") {
        Some("image/png")
    } else if head.len() >= 12 && head.starts_with(b"RIFF") && &head[8..12] == b"WEBP" {
        Some("image/webp")
    } else if head.starts_with(b"GIF87a") || head.starts_with(b"GIF89a") {
        Some("image/gif")
    } else {
        None
    }
}

/// The SHA-256 of a file in lowercase hex, read in a stream; `bar` follows the bytes read.
pub async fn sha256_file(path: &Path, bar: Option<&ProgressBar>) -> CliResult<String> {
    let mut file = tokio::fs::File::open(path)
        .await
        .map_err(|e| CliError::io("opening", path, e))?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; READ_BUF];
    loop {
        let n = file
            .read(&mut buf)
            .await
            .map_err(|e| CliError::io("reading", path, e))?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
        if let Some(bar) = bar {
            bar.inc(n as u64);
        }
    }
    Ok(hex(&hasher.finalize()))
}

pub fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    bytes
        .iter()
        .fold(String::with_capacity(bytes.len() * 2), |mut s, b| {
            let _ = write!(s, "{b:02x}");
            s
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn image_types_come_from_the_bytes() {
        assert_eq!(sniff(&[0xFF, 0xD8, 0xFF, 0xE0]), Some("image/jpeg"));
        assert_eq!(sniff(b"\x89PNG\r\n\x1a\n...."), Some("image/png"));
        assert_eq!(sniff(b"RIFF\0\0\0\0WEBPVP8 "), Some("image/webp"));
        assert_eq!(sniff(b"hello"), None);
    }

    #[cfg(unix)]
    #[test]
    fn a_link_is_sent_under_its_own_name() -> Result<(), Box<dyn std::error::Error>> {
        let dir = std::env::temp_dir().join(format!("shutter-cli-link-{}", std::process::id()));
        std::fs::create_dir_all(&dir)?;
        let target = dir.join("IMG_0001.JPG");
        std::fs::write(&target, b"x")?;
        let link = dir.join("holiday.jpg");
        let _ = std::fs::remove_file(&link);
        std::os::unix::fs::symlink(&target, &link)?;
        let file = LocalFile::inspect(&link, None)?;
        assert_eq!(file.name, "holiday.jpg");
        assert_eq!(file.canonical, std::fs::canonicalize(&target)?);
        std::fs::remove_dir_all(&dir)?;
        Ok(())
    }

    #[tokio::test]
    async fn sha256_of_a_file() -> CliResult<()> {
        let path =
            std::env::temp_dir().join(format!("shutter-cli-hash-{}.txt", std::process::id()));
        std::fs::write(&path, b"abc").map_err(|e| CliError::io("writing", &path, e))?;
        let digest = sha256_file(&path, None).await?;
        assert_eq!(
            digest,
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert_eq!(guess_content_type(&path)?, "text/plain");
        let _ = std::fs::remove_file(&path);
        Ok(())
    }
}
