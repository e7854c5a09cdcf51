//! A stock tus client, tuspy (SPEC 4: "stock tus clients (tus-js-client, Uppy, tuspy) work
//! unchanged"), driven through `fixtures/tus_upload.py`. These tests need `python3` with
//! tuspy (`pip install tuspy`) and fail, not skip, without them.

use std::path::Path;
use std::time::Duration;

use serde_json::Value;

use crate::helpers::*;
use crate::upload_helpers::*;

/// Runs the fixture script with `args`; returns its JSON line.
async fn tuspy(args: &[&str]) -> Value {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/api/fixtures/tus_upload.py");
    let probe = tokio::process::Command::new("python3")
        .args(["-c", "import tusclient"])
        .output()
        .await;
    match probe {
        Err(e) => panic!(
            "python3 is needed for the tuspy tests ({e}); install Python 3 and `pip install tuspy`"
        ),
        Ok(out) if !out.status.success() => panic!(
            "tuspy is not importable; `pip install tuspy` (CI installs it in .ci/run): {}",
            String::from_utf8_lossy(&out.stderr)
        ),
        Ok(_) => {}
    }
    let child = tokio::process::Command::new("python3")
        .arg(&script)
        .args(args)
        .stdin(std::process::Stdio::null())
        .output();
    let out = tokio::time::timeout(Duration::from_secs(60), child)
        .await
        .expect("tuspy finished within 60 s")
        .expect("python3 runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "tuspy {args:?} failed ({:?}); if tuspy is missing: pip install tuspy\nstdout: {stdout}\nstderr: {stderr}",
        out.status
    );
    let line = stdout.lines().last().unwrap_or_default();
    serde_json::from_str(line)
        .unwrap_or_else(|e| panic!("tuspy printed no JSON ({e}): {stdout}\n{stderr}"))
}

#[tokio::test]
async fn tuspy_uploads_a_real_photo() {
    let app = spawn_app().await;
    let (_, token) = user(&app, "alice").await;
    let rel = "photos/kleiber_12mp_4000x3000.jpg";
    let photo = testdata(rel);
    let sha = sha256_hex(&photo);
    let path = testdata_path(rel);
    let endpoint = app.url("/v1/tus");
    let out = tuspy(&[
        "full",
        &endpoint,
        &token,
        path.to_str().unwrap(),
        &(512 * 1024).to_string(),
        "filename=kleiber.jpg",
        "filetype=image/jpeg",
        &format!("sha256={sha}"),
    ])
    .await;
    assert_eq!(out["offset"], photo.len(), "{out}");
    let url = out["url"].as_str().unwrap();
    let id = url.rsplit('/').next().unwrap();
    let file = wait_ready(&app, &token, id).await;
    assert_eq!(file["sha256"], sha, "{file}");
    assert_eq!(file["filename"], "kleiber.jpg");
    assert_eq!(file["content_type"], "image/jpeg");
    assert_eq!(file["size"], photo.len());
    assert_eq!(file["width"], 4000);
    assert_eq!(file["height"], 3000);
    assert_eq!(sha256_hex(&download(&app, Some(&token), id).await), sha);
}

#[tokio::test]
async fn tuspy_resumes_an_interrupted_upload_from_the_servers_offset() {
    let app = spawn_app().await;
    let (_, token) = user(&app, "alice").await;
    let rel = "photos/path_2560x1600.jpg";
    let photo = testdata(rel);
    let sha = sha256_hex(&photo);
    let path = testdata_path(rel);
    let chunk = 256 * 1024;
    assert!(photo.len() > 3 * chunk);

    // Two chunks, then the client stops.
    let first = tuspy(&[
        "partial",
        &app.url("/v1/tus"),
        &token,
        path.to_str().unwrap(),
        &chunk.to_string(),
        "2",
        "filename=path.jpg",
        "content_type=image/jpeg",
        &format!("sha256={sha}"),
    ])
    .await;
    let url = first["url"].as_str().unwrap().to_owned();
    let id = url.rsplit('/').next().unwrap().to_owned();
    assert_eq!(first["offset"], 2 * chunk, "{first}");
    assert_eq!(tus_offset(&app, &url, &token).await, 2 * chunk as u64);
    let partial = file_of(&app, Some(&token), &id).await;
    assert_ne!(partial["status"], "ready");
    assert_eq!(partial["bytes_received"], 2 * chunk);

    // A new client on the same URL asks where the upload stands and sends the rest.
    let second = tuspy(&[
        "resume",
        &url,
        &token,
        path.to_str().unwrap(),
        &chunk.to_string(),
    ])
    .await;
    assert_eq!(
        second["started_at"],
        2 * chunk,
        "resumed from the server's offset: {second}"
    );
    assert_eq!(second["offset"], photo.len(), "{second}");
    let file = wait_ready(&app, &token, &id).await;
    assert_eq!(file["sha256"], sha);
    assert_eq!(file["width"], 2560);
    assert_eq!(file["height"], 1600);
    assert_eq!(download(&app, Some(&token), &id).await, photo);
}
