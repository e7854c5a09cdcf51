//! `files ls | get | share | rm`.

use std::time::Duration;

use anyhow::{bail, Context, Result};
use serde_json::Value;

use crate::helpers::{noise, signed_up, testdata};

fn ids(page: &Value) -> Vec<String> {
    page["items"]
        .as_array()
        .map(|items| {
            items
                .iter()
                .filter_map(|f| f["id"].as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn list_get_share_and_remove() -> Result<()> {
    let (server, cli, token) = signed_up("erin").await?;

    let notes = noise(1_500_000, 9);
    let notes_path = cli.source_dir()?.join("notes.bin");
    std::fs::write(&notes_path, &notes)?;
    let notes_arg = notes_path.to_string_lossy().into_owned();
    let photo_path = testdata("photos/kleiber_1080x1080.jpg");
    let photo = std::fs::read(&photo_path)?;
    let photo_arg = photo_path.to_string_lossy().into_owned();

    let out = cli
        .json(&["upload", "--tag", "notes", notes_arg.as_str()])
        .await?;
    let notes_id = out["uploads"][0]["file"]["id"]
        .as_str()
        .context("notes id")?
        .to_owned();
    let out = cli.json(&["upload", photo_arg.as_str()]).await?;
    let photo_id = out["uploads"][0]["file"]["id"]
        .as_str()
        .context("photo id")?
        .to_owned();
    assert_eq!(out["uploads"][0]["file"]["content_type"], "image/jpeg");
    server.wait_file_status(&photo_id, &token, "ready").await?;

    // ls, with the API's filters.
    let all = cli.json(&["files", "ls"]).await?;
    assert_eq!(
        ids(&all),
        vec![photo_id.clone(), notes_id.clone()],
        "newest first"
    );
    let tagged = cli.json(&["files", "ls", "--tag", "notes"]).await?;
    assert_eq!(ids(&tagged), vec![notes_id.clone()]);
    let images = cli.json(&["files", "ls", "--type", "image/*"]).await?;
    assert_eq!(ids(&images), vec![photo_id.clone()]);
    let public = cli.json(&["files", "ls", "--visibility", "public"]).await?;
    assert!(ids(&public).is_empty());
    let one = cli.json(&["files", "ls", "--limit", "1"]).await?;
    assert_eq!(ids(&one).len(), 1);
    assert!(one["next_cursor"].is_string());
    let paged = cli.json(&["files", "ls", "--limit", "1", "--all"]).await?;
    assert_eq!(ids(&paged), ids(&all));
    assert!(paged["next_cursor"].is_null());
    let human = cli.run(&["files", "ls", "--status", "ready"]).await?.ok()?;
    let text = human.stdout();
    assert!(
        text.contains("notes.bin") && text.contains("kleiber_1080x1080.jpg"),
        "{text}"
    );

    // get: to the file's name in the current directory, byte for byte.
    let got = cli.json(&["files", "get", notes_id.as_str()]).await?;
    let saved = cli.work_dir().join("notes.bin");
    assert_eq!(got["path"], "notes.bin");
    assert!(std::fs::read(&saved)? == notes, "downloaded bytes differ");
    // It does not overwrite without --force.
    let run = cli
        .run(&["--json", "files", "get", notes_id.as_str()])
        .await?;
    assert_eq!(run.code, 1);
    assert_eq!(run.error_code()?, "file_exists");
    std::fs::write(&saved, b"changed")?;
    cli.json(&["files", "get", notes_id.as_str(), "--force"])
        .await?;
    assert!(std::fs::read(&saved)? == notes);
    // -o PATH, and -o - for stdout.
    let out_path = cli.work_dir().join("copy.jpg");
    let out_arg = out_path.to_string_lossy().into_owned();
    let got = cli
        .json(&["files", "get", photo_id.as_str(), "-o", out_arg.as_str()])
        .await?;
    assert_eq!(got["bytes"], photo.len());
    assert!(
        std::fs::read(&out_path)? == photo,
        "downloaded photo differs"
    );
    let run = cli
        .run(&["files", "get", photo_id.as_str(), "-o", "-"])
        .await?
        .ok()?;
    assert!(run.stdout == photo, "photo on stdout differs");
    let thumb = cli
        .run(&[
            "files",
            "get",
            photo_id.as_str(),
            "--variant",
            "thumb",
            "-o",
            "-",
        ])
        .await?
        .ok()?;
    assert!(thumb.stdout.starts_with(&[0xFF, 0xD8]) && thumb.stdout != photo);

    // share: public, and the printed URL serves the bytes to anyone.
    let run = cli
        .run(&["files", "share", notes_id.as_str()])
        .await?
        .ok()?;
    let url = run.stdout().trim().to_owned();
    assert!(url.starts_with("http://"), "{url}");
    let anonymous = reqwest::get(&url).await?;
    assert_eq!(anonymous.status().as_u16(), 200, "{url}");
    assert!(anonymous.bytes().await?.as_ref() == notes.as_slice());
    let public = cli.json(&["files", "ls", "--visibility", "public"]).await?;
    assert_eq!(ids(&public), vec![notes_id.clone()]);

    // rm: gone for its owner at once, and its public URL stops working.
    let out = cli.json(&["files", "rm", notes_id.as_str()]).await?;
    assert_eq!(out["deleted"], notes_id.as_str());
    let (status, _) = server
        .get(&format!("/v1/files/{notes_id}"), Some(&token))
        .await?;
    assert_eq!(status, 404);
    let run = cli
        .run(&["--json", "files", "get", notes_id.as_str(), "-o", "x"])
        .await?;
    assert_eq!(run.code, 1);
    assert_eq!(run.error_code()?, "not_found");
    let run = cli
        .run(&["--json", "files", "rm", notes_id.as_str()])
        .await?;
    assert_eq!(run.code, 1);
    assert_eq!(run.error_code()?, "not_found");
    for attempt in 0.. {
        let status = reqwest::get(&url).await?.status().as_u16();
        if status == 404 || status == 410 {
            break;
        }
        if attempt > 100 {
            bail!("the URL of a deleted file still answers {status}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let left = cli.json(&["files", "ls"]).await?;
    assert_eq!(ids(&left), vec![photo_id]);
    Ok(())
}
