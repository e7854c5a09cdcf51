//! `upload`: a process killed in the middle of a file, and the same command again going on
//! from the server's offset.

use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use serde_json::Value;

use crate::helpers::{finish, noise, sha256_hex, signed_up, start_server, Cli};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_upload_resumes_from_the_server_offset() -> Result<()> {
    let (server, cli, token) = signed_up("dave").await?;

    const SIZE: usize = 6 * 1024 * 1024;
    let bytes = noise(SIZE, 42);
    let path = cli.source_dir()?.join("big.bin");
    std::fs::write(&path, &bytes)?;
    let path = path.to_string_lossy().into_owned();
    // 1 MiB/s: about six seconds for the file, so the kill lands in its middle.
    let args = [
        "--json",
        "upload",
        path.as_str(),
        "--limit-rate",
        "1M",
        "--tag",
        "big",
    ];

    let mut child = cli.command(&args).spawn()?;
    let started = Instant::now();
    let (file_id, received) = loop {
        if let Some(status) = child.try_wait()? {
            bail!("the upload ended ({status}) before it could be killed");
        }
        if started.elapsed() > Duration::from_secs(60) {
            bail!("the server never saw a byte");
        }
        let (_, page) = server.get("/v1/files", Some(&token)).await?;
        let received = page["items"][0]["bytes_received"].as_u64().unwrap_or(0);
        if received > 0 {
            let id = page["items"][0]["id"].as_str().context("file id")?;
            break (id.to_owned(), received);
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    child.kill().await?; // SIGKILL: no chance to clean up
    assert!(received < SIZE as u64);

    // The state file remembers the upload; the server holds part of it.
    let state = std::fs::read_to_string(cli.config_dir().join("uploads.json"))?;
    assert!(state.contains(&file_id), "{state}");
    let (_, file) = server
        .get(&format!("/v1/files/{file_id}"), Some(&token))
        .await?;
    assert_ne!(file["status"], "ready");
    assert!(file["bytes_received"].as_u64().unwrap_or(0) < SIZE as u64);

    // The same command again goes on from where the server stands.
    let run = cli.run(&args).await?.ok()?;
    let out = run.json()?;
    let upload = &out["uploads"][0];
    let resumed_from = upload["resumed_from"]
        .as_u64()
        .with_context(|| format!("not resumed: {out}"))?;
    assert!(resumed_from > 0 && resumed_from < SIZE as u64, "{out}");
    assert!(
        run.stderr
            .contains(&format!("resuming {path} at byte {resumed_from}")),
        "{}",
        run.stderr
    );
    assert_eq!(upload["file"]["id"], file_id.as_str());
    assert_eq!(upload["file"]["status"], "ready");
    assert_eq!(upload["file"]["tags"][0], "big");
    let local = sha256_hex(&bytes);
    assert_eq!(upload["sha256"], local.as_str());
    assert_eq!(upload["file"]["sha256"], local.as_str());

    // On the server: one file, complete, the very bytes.
    let (_, page) = server.get("/v1/files", Some(&token)).await?;
    assert_eq!(page["items"].as_array().map(Vec::len), Some(1), "{page}");
    let (_, file) = server
        .get(&format!("/v1/files/{file_id}"), Some(&token))
        .await?;
    assert_eq!(file["size"], SIZE as u64);
    assert_eq!(file["bytes_received"], SIZE as u64);
    // Following the redirect to the bucket when the file is on S3.
    let content = reqwest::Client::new()
        .get(server.url(&format!("/v1/files/{file_id}/content")))
        .bearer_auth(&token)
        .send()
        .await?
        .error_for_status()?
        .bytes()
        .await?;
    assert!(
        content.as_ref() == bytes.as_slice(),
        "the stored bytes differ"
    );

    // Done: the entry is gone, and a third run uploads a new copy from the start.
    let state: Value = serde_json::from_str(&std::fs::read_to_string(
        cli.config_dir().join("uploads.json"),
    )?)?;
    assert_eq!(
        state["uploads"].as_array().map(Vec::len),
        Some(0),
        "{state}"
    );
    let out = cli.json(&["upload", path.as_str()]).await?;
    assert!(out["uploads"][0]["resumed_from"].is_null(), "{out}");
    assert_ne!(out["uploads"][0]["file"]["id"], file_id.as_str());
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn several_files_in_one_command_and_a_failure_among_them() -> Result<()> {
    let server = start_server().await?;
    let cli = Cli::new(&server)?;
    cli.register("eve").await?;
    let dir = cli.source_dir()?;
    let a = dir.join("a.txt");
    let b = dir.join("b.dat");
    std::fs::write(&a, b"hello, shutter\n")?;
    std::fs::write(&b, noise(300_000, 7))?;
    let empty = dir.join("empty.txt");
    std::fs::write(&empty, b"")?;
    let (a, b, empty) = (
        a.to_string_lossy().into_owned(),
        b.to_string_lossy().into_owned(),
        empty.to_string_lossy().into_owned(),
    );

    let out = cli
        .json(&["upload", "--public", a.as_str(), b.as_str(), empty.as_str()])
        .await?;
    let uploads = out["uploads"].as_array().context("uploads")?;
    assert_eq!(uploads.len(), 3);
    assert_eq!(uploads[0]["file"]["filename"], "a.txt");
    assert_eq!(uploads[0]["file"]["content_type"], "text/plain");
    assert_eq!(uploads[0]["file"]["visibility"], "public");
    assert_eq!(uploads[1]["file"]["size"], 300_000);
    assert_eq!(uploads[2]["file"]["size"], 0);
    assert_eq!(uploads[2]["file"]["status"], "ready");

    // A declared type the bytes contradict: the server fails the file, the command exits 1
    // and its JSON names the code.
    let run = cli
        .run(&[
            "--json",
            "upload",
            "--content-type",
            "image/png",
            a.as_str(),
        ])
        .await?;
    assert_eq!(run.code, 1, "{run:?}");
    let out = run.json()?;
    assert_eq!(
        out["uploads"][0]["error"]["code"], "content_mismatch",
        "{out}"
    );

    // A symbolic link goes under its own name, not its target's.
    #[cfg(unix)]
    {
        let link = dir.join("link.txt");
        std::os::unix::fs::symlink(&a, &link)?;
        let link = link.to_string_lossy().into_owned();
        let out = cli.json(&["upload", link.as_str()]).await?;
        assert_eq!(out["uploads"][0]["file"]["filename"], "link.txt", "{out}");
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_uploads_all_remember_their_state_and_resume() -> Result<()> {
    let (server, cli, token) = signed_up("mallory").await?;
    const SIZE: usize = 2 * 1024 * 1024;
    const N: usize = 3;
    let dir = cli.source_dir()?;
    let mut paths = Vec::new();
    let mut contents = Vec::new();
    for i in 0..N {
        let bytes = noise(SIZE, 1000 + i as u64);
        let path = dir.join(format!("part{i}.bin"));
        std::fs::write(&path, &bytes)?;
        paths.push(path.to_string_lossy().into_owned());
        contents.push(bytes);
    }

    // Three slow uploads in three processes at once, killed once each has sent something:
    // each one's entry must be in uploads.json (they all read, change and write it).
    let mut children = Vec::new();
    for path in &paths {
        let child = cli
            .command(&["--json", "upload", path.as_str(), "--limit-rate", "256K"])
            .spawn()?;
        children.push(child);
    }
    let started = Instant::now();
    loop {
        for child in &mut children {
            if let Some(status) = child.try_wait()? {
                bail!("an upload ended ({status}) before it could be killed");
            }
        }
        if started.elapsed() > Duration::from_secs(60) {
            bail!("the server never saw bytes of every file");
        }
        let (_, page) = server.get("/v1/files", Some(&token)).await?;
        let items = page["items"].as_array().cloned().unwrap_or_default();
        let sending = items
            .iter()
            .filter(|f| f["bytes_received"].as_u64().unwrap_or(0) > 0)
            .count();
        if sending == N {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    for child in &mut children {
        child.kill().await?;
    }
    let state: Value = serde_json::from_str(&std::fs::read_to_string(
        cli.config_dir().join("uploads.json"),
    )?)?;
    assert_eq!(
        state["uploads"].as_array().map(Vec::len),
        Some(N),
        "{state}"
    );

    // The same commands again, at once: each resumes its own file.
    let runs = futures::future::join_all(
        paths
            .iter()
            .map(|path| finish(cli.command(&["--json", "upload", path.as_str()]), None)),
    )
    .await;
    let mut ids = Vec::new();
    for (run, bytes) in runs.into_iter().zip(&contents) {
        let out = run?.ok()?.json()?;
        let upload = &out["uploads"][0];
        let resumed_from = upload["resumed_from"]
            .as_u64()
            .with_context(|| format!("not resumed: {out}"))?;
        assert!(resumed_from > 0 && resumed_from < SIZE as u64, "{out}");
        assert_eq!(upload["file"]["sha256"], sha256_hex(bytes).as_str());
        ids.push(upload["file"]["id"].as_str().unwrap_or_default().to_owned());
    }
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), N, "one file each");
    let (_, page) = server.get("/v1/files", Some(&token)).await?;
    assert_eq!(page["items"].as_array().map(Vec::len), Some(N), "{page}");
    let state: Value = serde_json::from_str(&std::fs::read_to_string(
        cli.config_dir().join("uploads.json"),
    )?)?;
    assert_eq!(
        state["uploads"].as_array().map(Vec::len),
        Some(0),
        "{state}"
    );
    Ok(())
}
