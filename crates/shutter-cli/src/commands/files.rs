//! `files ls | get | share | rm`.

use std::path::{Path, PathBuf};

use futures::StreamExt;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use tokio::io::AsyncWriteExt;

use super::{segment, Ctx};
use crate::api::checked;
use crate::cli::{GetArgs, LsArgs, StatusArg, VisibilityArg};
use crate::error::{CliError, CliResult};
use crate::local::hex;
use crate::output::{human_size, print_json, text};
use crate::progress::{Bars, Tracker};
use crate::transfer::{Activity, STALL};

pub async fn ls(ctx: &mut Ctx, args: LsArgs) -> CliResult<()> {
    let url = ctx.api.url("v1/files")?;
    let mut query: Vec<(&str, String)> = Vec::new();
    if let Some(v) = args.visibility {
        let v = match v {
            VisibilityArg::Private => "private",
            VisibilityArg::Public => "public",
        };
        query.push(("visibility", v.to_owned()));
    }
    if let Some(s) = args.status {
        let s = match s {
            StatusArg::Pending => "pending",
            StatusArg::Uploading => "uploading",
            StatusArg::Processing => "processing",
            StatusArg::Ready => "ready",
            StatusArg::Failed => "failed",
        };
        query.push(("status", s.to_owned()));
    }
    let optional = [
        ("tag", args.tag),
        ("content_type", args.content_type),
        ("created_after", args.created_after),
        ("created_before", args.created_before),
    ];
    query.extend(optional.into_iter().filter_map(|(k, v)| v.map(|v| (k, v))));
    if let Some(limit) = args.page.limit {
        query.push(("limit", limit.to_string()));
    }
    let mut cursor = args.page.cursor;
    let mut items: Vec<Value> = Vec::new();
    let next = loop {
        let mut q = query.clone();
        if let Some(c) = &cursor {
            q.push(("cursor", c.clone()));
        }
        let page: Value = ctx
            .api
            .json(|c, t| c.get(url.clone()).query(&q).bearer_auth(t))
            .await?;
        items.extend(page["items"].as_array().cloned().unwrap_or_default());
        cursor = page["next_cursor"].as_str().map(str::to_owned);
        if !args.all || cursor.is_none() {
            break cursor;
        }
    };
    let page = json!({ "items": items, "next_cursor": next });
    ctx.out.emit(&page, || files_table(&items));
    if let (false, Some(next)) = (ctx.out.json, &next) {
        eprintln!("more: --cursor {next} (or --all)");
    }
    Ok(())
}

fn files_table(items: &[Value]) -> String {
    if items.is_empty() {
        return "No files.".to_owned();
    }
    let mut out = format!(
        "{:<36}  {:<10}  {:<7}  {:>10}  {:<24}  {:<24}  {}\n",
        "ID", "STATUS", "VISIB.", "SIZE", "TYPE", "CREATED", "NAME"
    );
    for f in items {
        out.push_str(&format!(
            "{:<36}  {:<10}  {:<7}  {:>10}  {:<24}  {:<24}  {}\n",
            text(f, "id"),
            text(f, "status"),
            text(f, "visibility"),
            human_size(f["size"].as_u64().unwrap_or_default()),
            text(f, "content_type"),
            text(f, "created_at"),
            text(f, "filename"),
        ));
    }
    out
}

/// Where `files get` writes.
enum Destination {
    Stdout,
    File(PathBuf),
}

pub async fn get(ctx: &mut Ctx, args: GetArgs) -> CliResult<()> {
    let to_stdout = args.output.as_deref() == Some(Path::new("-"));
    if to_stdout && ctx.out.json {
        return Err(CliError::usage(
            "--json and -o - both write to standard output: pick one",
        ));
    }
    let id = segment(&args.id);
    let info: Value = ctx.api.get(&format!("v1/files/{id}")).await?;
    let destination = if to_stdout {
        Destination::Stdout
    } else {
        let name = safe_name(text(&info, "filename"), &args.id);
        let path = match args.output {
            Some(dir) if dir.is_dir() => dir.join(name),
            Some(path) => path,
            None => PathBuf::from(name),
        };
        if path.exists() && !args.force {
            return Err(CliError::new(
                "file_exists",
                format!("{} exists; pass --force to overwrite it", path.display()),
            ));
        }
        Destination::File(path)
    };
    let content = ctx.api.url(&format!("v1/files/{id}/content"))?;
    let variant = args.variant.map(|v| v.as_str());
    // The answer must come within a minute, and then its bytes must not stall.
    let activity = Activity::without_body();
    let response = ctx
        .api
        .send_watched(
            |c, t| {
                let request = c.get(content.clone()).bearer_auth(t);
                match variant {
                    Some(v) => request.query(&[("variant", v)]),
                    None => request,
                }
            },
            Some(&activity),
        )
        .await?;
    let response = checked(response).await?;
    let len = response
        .content_length()
        .or_else(|| variant.is_none().then(|| info["size"].as_u64()).flatten())
        .unwrap_or(0);
    let bars = Bars::new(ctx.bars_wanted());
    let tracker = Tracker {
        file: bars.file(text(&info, "filename"), len),
        total: indicatif::ProgressBar::hidden(),
        base: 0,
    };
    let (written, sha256) = match &destination {
        Destination::Stdout => save(response, None, &tracker).await?,
        Destination::File(path) => save_to_file(response, path, &tracker).await?,
    };
    tracker.file.finish_and_clear();
    // The original must be the very bytes the server hashed.
    let expected = text(&info, "sha256");
    let verified = variant.is_none() && !expected.is_empty();
    if verified && !expected.eq_ignore_ascii_case(&sha256) {
        if let Destination::File(path) = &destination {
            let _ = std::fs::remove_file(path);
        }
        return Err(CliError::new(
            "checksum_mismatch",
            format!("the download's sha256 is {sha256}, the server's {expected}"),
        ));
    }
    if let Destination::File(path) = destination {
        let check = if verified { ", sha256 ok" } else { "" };
        ctx.out.emit(
            &json!({
                "file": info,
                "path": path.display().to_string(),
                "bytes": written,
                "sha256": sha256,
                "variant": variant,
            }),
            || format!("{}  {}{check}", path.display(), human_size(written)),
        );
    }
    Ok(())
}

/// A file name from the server that is safe to create in a directory: its last component,
/// never empty, `.` or `..` (else the file id).
fn safe_name(filename: &str, id: &str) -> String {
    let name = Path::new(filename)
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    if name.is_empty() || name == "." || name == ".." {
        id.to_owned()
    } else {
        name
    }
}

/// Streams the body into a temporary file beside `path`, then renames it into place.
async fn save_to_file(
    response: reqwest::Response,
    path: &Path,
    tracker: &Tracker,
) -> CliResult<(u64, String)> {
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "download".to_owned());
    let tmp = dir.join(format!(".{name}.{}.part", std::process::id()));
    let file = tokio::fs::File::create(&tmp)
        .await
        .map_err(|e| CliError::io("creating", &tmp, e))?;
    let saved = save(response, Some((file, &tmp)), tracker).await;
    let renamed = match saved {
        Ok(done) => std::fs::rename(&tmp, path)
            .map(|()| done)
            .map_err(|e| CliError::io("renaming to", path, e)),
        Err(err) => Err(err),
    };
    if renamed.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    renamed
}

/// Streams the body to the file (or stdout), hashing it; the byte count and SHA-256.
async fn save(
    response: reqwest::Response,
    file: Option<(tokio::fs::File, &Path)>,
    tracker: &Tracker,
) -> CliResult<(u64, String)> {
    let mut hasher = Sha256::new();
    let mut written = 0u64;
    let mut stream = response.bytes_stream();
    let mut stdout = tokio::io::stdout();
    let (mut file, path) = match file {
        Some((f, p)) => (Some(f), p.to_path_buf()),
        None => (None, PathBuf::from("<stdout>")),
    };
    loop {
        let next = tokio::time::timeout(STALL, stream.next()).await;
        let chunk = match next {
            Ok(Some(chunk)) => chunk?,
            Ok(None) => break,
            Err(_) => {
                return Err(CliError::new(
                    "timeout",
                    format!(
                        "the download stalled: no byte for {} s after {written} bytes",
                        STALL.as_secs()
                    ),
                ))
            }
        };
        hasher.update(&chunk);
        let result = match file.as_mut() {
            Some(f) => f.write_all(&chunk).await,
            None => stdout.write_all(&chunk).await,
        };
        result.map_err(|e| CliError::io("writing", &path, e))?;
        written += chunk.len() as u64;
        tracker.inc(chunk.len() as u64);
    }
    let flushed = match file.as_mut() {
        Some(f) => f.sync_all().await,
        None => stdout.flush().await,
    };
    flushed.map_err(|e| CliError::io("writing", &path, e))?;
    Ok((written, hex(&hasher.finalize())))
}

pub async fn share(ctx: &mut Ctx, id: &str) -> CliResult<()> {
    let url = ctx.api.url(&format!("v1/files/{}", segment(id)))?;
    let file: Value = ctx
        .api
        .json(|c, t| {
            c.patch(url.clone())
                .bearer_auth(t)
                .json(&json!({ "visibility": "public" }))
        })
        .await?;
    // A public file's `url` is stable; before it is ready, the content route serves it.
    let link = match file["url"].as_str() {
        Some(link) => link.to_owned(),
        None => ctx
            .api
            .url(&format!("v1/files/{}/content", segment(id)))?
            .to_string(),
    };
    let mut shown = file.clone();
    if shown["url"].is_null() {
        shown["url"] = Value::String(link.clone());
    }
    ctx.out.emit(&shown, || link.clone());
    Ok(())
}

pub async fn rm(ctx: &mut Ctx, id: &str) -> CliResult<()> {
    let url = ctx.api.url(&format!("v1/files/{}", segment(id)))?;
    ctx.api
        .empty(|c, t| c.delete(url.clone()).bearer_auth(t))
        .await?;
    if ctx.out.json {
        print_json(&json!({ "deleted": id }));
    } else {
        println!("Deleted {id}.");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_from_the_server_stay_in_the_directory() {
        assert_eq!(safe_name("photo.jpg", "id"), "photo.jpg");
        assert_eq!(safe_name("../../etc/passwd", "id"), "passwd");
        assert_eq!(safe_name("..", "id"), "id");
        assert_eq!(safe_name("", "id"), "id");
    }
}
