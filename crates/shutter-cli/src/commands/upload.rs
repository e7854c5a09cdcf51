//! `upload FILE…`: each file over tus, one after the other, with a bar per file and a total.
//!
//! Resuming: once the server has created a file's upload, `uploads.json` in the
//! configuration directory remembers it under the server, the file's canonical path, size,
//! modification time and SHA-256. Running the same command again (after Ctrl-C, a crash, a
//! lost connection) finds the entry, asks the server for its offset (tus `HEAD`) and sends
//! only the rest. The entry goes when the upload is done, or when the server says it can
//! never finish (failed, expired, deleted). At the end the server's SHA-256 of the file must
//! equal the local one.

use serde_json::{json, Value};
use url::Url;

use super::{segment, Ctx};
use crate::cli::UploadArgs;
use crate::error::{CliError, CliResult};
use crate::local::{sha256_file, LocalFile};
use crate::output::{human_size, text};
use crate::progress::{Bars, Tracker};
use crate::store::PendingUpload;
use crate::transfer::{self, Failure, Throttle};

/// What every file of the command is uploaded with.
struct Options {
    public: bool,
    tags: Vec<String>,
}

pub async fn run(ctx: &mut Ctx, args: UploadArgs) -> CliResult<()> {
    let files = args
        .files
        .iter()
        .map(|path| LocalFile::inspect(path, args.content_type.as_deref()))
        .collect::<CliResult<Vec<_>>>()?;
    ctx.api.session()?;
    let options = Options {
        public: args.public,
        tags: args.tags,
    };
    let throttle = Throttle::new(args.rate.limit_rate);
    let bars = Bars::new(ctx.bars_wanted());
    let file_bars: Vec<_> = files.iter().map(|f| bars.file(&f.name, f.size)).collect();
    let total = bars.total(files.iter().map(|f| f.size).sum());
    let mut results = Vec::new();
    let mut failed = 0;
    let mut base = 0;
    for (file, bar) in files.iter().zip(file_bars) {
        let tracker = Tracker {
            file: bar,
            total: total.clone(),
            base,
        };
        match upload_one(ctx, &bars, file, &options, &throttle, &tracker).await {
            Ok(done) => {
                tracker.file.finish_with_message("done");
                if !ctx.out.json {
                    bars.out(&summary(file, &done));
                }
                results.push(done);
            }
            Err(err) => {
                failed += 1;
                tracker.file.abandon_with_message("failed");
                bars.note(&format!("error: {}: {err}", file.path.display()));
                results.push(json!({
                    "path": file.path.display().to_string(),
                    "error": err.to_json(),
                }));
            }
        }
        base += file.size;
        total.set_position(base);
    }
    total.finish_and_clear();
    if ctx.out.json {
        crate::output::print_json(&json!({ "uploads": results }));
    }
    if failed > 0 {
        return Err(CliError::reported(
            "upload_failed",
            format!("{failed} of {} uploads failed", files.len()),
        ));
    }
    Ok(())
}

fn summary(file: &LocalFile, done: &Value) -> String {
    let resumed = match done["resumed_from"].as_u64() {
        Some(offset) => format!(", resumed at byte {offset}"),
        None => String::new(),
    };
    format!(
        "{}  {}  {}  {}, sha256 ok{resumed}",
        file.path.display(),
        text(&done["file"], "id"),
        human_size(file.size),
        text(&done["file"], "status"),
    )
}

async fn upload_one(
    ctx: &mut Ctx,
    bars: &Bars,
    file: &LocalFile,
    options: &Options,
    throttle: &Throttle,
    tracker: &Tracker,
) -> CliResult<Value> {
    tracker.file.set_message("hashing");
    let sha256 = sha256_file(&file.path, Some(&tracker.file)).await?;
    // The bar's clock restarts, so that its rate and ETA are the upload's (a resumed upload
    // starts them at the server's offset: see `Tracker::start_at`).
    tracker.file.reset();
    tracker.file.set_message("uploading");
    let mut entry = PendingUpload {
        server: ctx.api.base().to_string(),
        path: file.canonical.clone(),
        size: file.size,
        mtime_ns: file.mtime_ns,
        sha256: sha256.clone(),
        tus_url: String::new(),
        file_id: String::new(),
    };
    let (url, offset, resumed_from) = match resume(ctx, bars, file, &entry).await? {
        Some((url, offset)) => (url, offset, Some(offset)),
        None => {
            let url = create(ctx, file, &sha256, options).await?;
            entry.tus_url = url.to_string();
            entry.file_id = transfer::file_id_of(&url);
            ctx.api.store().remember_upload(&entry)?;
            (url, 0, None)
        }
    };
    let file_id = transfer::file_id_of(&url);
    let sent = send(ctx, file, &url, offset, throttle, tracker).await;
    if let Err(err) = sent {
        // An upload that can never go on is forgotten; any other failure leaves it for the
        // next run to resume.
        if transfer::classify(&err) == Failure::Dead {
            ctx.api.store().forget_upload(&entry)?;
        }
        return Err(err);
    }
    ctx.api.store().forget_upload(&entry)?;
    let info: Value = ctx
        .api
        .get(&format!("v1/files/{}", segment(&file_id)))
        .await?;
    check_result(&info, &sha256)?;
    Ok(json!({
        "path": file.path.display().to_string(),
        "file": info,
        "sha256": sha256,
        "resumed_from": resumed_from,
    }))
}

async fn send(
    ctx: &mut Ctx,
    file: &LocalFile,
    url: &Url,
    offset: u64,
    throttle: &Throttle,
    tracker: &Tracker,
) -> CliResult<()> {
    if file.size == 0 {
        return transfer::patch_empty(&mut ctx.api, url).await;
    }
    transfer::patch_all(
        &mut ctx.api,
        url,
        &file.path,
        file.size,
        offset,
        throttle,
        tracker,
    )
    .await
}

/// The remembered upload of this file and the server's offset in it, if it can go on.
async fn resume(
    ctx: &mut Ctx,
    bars: &Bars,
    file: &LocalFile,
    probe: &PendingUpload,
) -> CliResult<Option<(Url, u64)>> {
    let Some(entry) = ctx.api.store().find_upload(probe)? else {
        return Ok(None);
    };
    let url = ctx.api.url(&entry.tus_url)?;
    match transfer::offset(&mut ctx.api, &url).await {
        Ok(offset) => {
            let percent = offset
                .saturating_mul(100)
                .checked_div(file.size)
                .unwrap_or(100);
            bars.note(&format!(
                "resuming {} at byte {offset} of {} ({percent}%), file {}",
                file.path.display(),
                file.size,
                entry.file_id
            ));
            Ok(Some((url, offset)))
        }
        Err(err) if transfer::classify(&err) == Failure::Dead => {
            bars.note(&format!(
                "the earlier upload of {} cannot go on ({err}); starting again",
                file.path.display()
            ));
            ctx.api.store().forget_upload(&entry)?;
            Ok(None)
        }
        Err(err) => Err(err),
    }
}

async fn create(
    ctx: &mut Ctx,
    file: &LocalFile,
    sha256: &str,
    options: &Options,
) -> CliResult<Url> {
    let tags = options.tags.join(",");
    let mut meta = vec![
        ("filename", file.name.as_str()),
        ("content_type", file.content_type.as_str()),
        ("sha256", sha256),
    ];
    if options.public {
        meta.push(("visibility", "public"));
    }
    if !tags.is_empty() {
        meta.push(("tags", tags.as_str()));
    }
    transfer::create(&mut ctx.api, file.size, &meta).await
}

/// The server's view of the finished file: not failed, and the same SHA-256.
fn check_result(info: &Value, sha256: &str) -> CliResult<()> {
    if text(info, "status") == "failed" {
        let failure = &info["failure"];
        let code = failure["code"].as_str().unwrap_or("upload_failed");
        return Err(CliError::new(
            code,
            format!(
                "the server failed the file: {}",
                failure["detail"].as_str().unwrap_or("no detail")
            ),
        ));
    }
    let theirs = text(info, "sha256");
    if !theirs.eq_ignore_ascii_case(sha256) {
        return Err(CliError::new(
            "checksum_mismatch",
            format!("the server's sha256 is {theirs:?}, the local file's {sha256}"),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_file_whose_sha256_differs_is_an_error() {
        let info = json!({"status": "ready", "sha256": "AB"});
        assert!(check_result(&info, "ab").is_ok());
        let err = check_result(&info, "cd").err().map(|e| e.code);
        assert_eq!(err.as_deref(), Some("checksum_mismatch"));
        let failed =
            json!({"status": "failed", "failure": {"code": "content_mismatch", "detail": "x"}});
        let err = check_result(&failed, "ab").err().map(|e| e.code);
        assert_eq!(err.as_deref(), Some("content_mismatch"));
    }
}
