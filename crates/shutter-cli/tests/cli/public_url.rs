//! A server whose `public_url` names another origin than the one the CLI reaches it by (unset
//! behind a proxy, or plain wrong): the URLs it hands out (tus `Location`, tickets' `tus_url`
//! and `url`) are moved onto `--server`, and nothing, the token least of all, goes to that
//! other origin.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Context, Result};
use tokio::io::AsyncReadExt;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

use crate::helpers::{noise, sha256_hex, start_server_with, testdata, Cli};

/// A listener that records what each connection sends first, then hangs up.
struct Trap {
    url: String,
    seen: Arc<Mutex<Vec<String>>>,
    task: JoinHandle<()>,
}

impl Drop for Trap {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Trap {
    async fn start() -> Result<Trap> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let url = format!("http://{}", listener.local_addr()?);
        let seen = Arc::new(Mutex::new(Vec::new()));
        let log = seen.clone();
        let task = tokio::spawn(async move {
            while let Ok((mut socket, _)) = listener.accept().await {
                let mut buf = vec![0u8; 8192];
                let read = tokio::time::timeout(Duration::from_secs(2), socket.read(&mut buf));
                let n = match read.await {
                    Ok(Ok(n)) => n,
                    _ => 0,
                };
                let text = String::from_utf8_lossy(&buf[..n]).into_owned();
                log.lock().unwrap_or_else(|e| e.into_inner()).push(text);
            }
        });
        Ok(Trap { url, seen, task })
    }

    fn seen(&self) -> Vec<String> {
        self.seen.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn urls_on_another_origin_are_moved_onto_the_server_and_never_get_the_token() -> Result<()> {
    let trap = Trap::start().await?;
    let public_url = trap.url.clone();
    let server = start_server_with(move |c| c.server.public_url = Some(public_url)).await?;
    let cli = Cli::new(&server)?;
    cli.register("ivan").await?;

    // upload: the tus Location is the trap's.
    let bytes = noise(300_000, 11);
    let path = cli.source_dir()?.join("notes.bin");
    std::fs::write(&path, &bytes)?;
    let arg = path.to_string_lossy().into_owned();
    let out = cli.json(&["upload", arg.as_str()]).await?;
    let file = &out["uploads"][0]["file"];
    assert_eq!(file["status"], "ready", "{out}");
    assert_eq!(file["sha256"], sha256_hex(&bytes).as_str());
    let id = file["id"].as_str().context("file id")?.to_owned();

    // files get: the very bytes.
    let got = cli.json(&["files", "get", id.as_str()]).await?;
    assert_eq!(got["bytes"], bytes.len());
    assert!(std::fs::read(cli.work_dir().join("notes.bin"))? == bytes);

    // post over tus (the tickets' tus_url), and with the tickets' PUT url (Shutter's own
    // signed URL on the built-in store; the bucket's on S3).
    let jpeg = testdata("photos/kleiber_1080x1080.jpg")
        .to_string_lossy()
        .into_owned();
    let post = cli
        .json(&["post", "--caption", "over tus", jpeg.as_str()])
        .await?;
    assert_eq!(post["status"], "published", "{post}");
    // The server does build its URLs on the other origin.
    let thumb = post["media"][0]["variants"]["thumb"]["url"]
        .as_str()
        .unwrap_or_default();
    assert!(thumb.starts_with(&trap.url), "{post}");
    let webp = testdata("photos/onestandsout_1200x750.webp")
        .to_string_lossy()
        .into_owned();
    let post = cli
        .json(&[
            "post",
            "--upload-via",
            "put",
            "--caption",
            "with a PUT",
            webp.as_str(),
        ])
        .await?;
    assert_eq!(post["status"], "published", "{post}");

    let seen = trap.seen();
    assert!(
        seen.is_empty(),
        "{} connection(s) went to the public_url: {seen:?}",
        seen.len()
    );
    Ok(())
}
