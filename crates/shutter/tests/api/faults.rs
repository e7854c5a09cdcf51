//! Fault injection: the database going away under load and the data disk filling up. Shutter
//! answers 503 `service_unavailable` with `Retry-After` while a dependency is gone, recovers
//! by itself when it is back, and loses nothing it acknowledged.
//!
//! These tests need root (to mount a small tmpfs and to run a private PostgreSQL cluster as
//! the `postgres` user) and the PostgreSQL server binaries; without them they fail.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::backend::{Database, Storage};
use crate::helpers::*;
use crate::upload_helpers::*;

/// Runs a command, panicking with its output when it fails.
fn run(cmd: &mut Command) -> String {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("{cmd:?} could not start: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

// ---------------------------------------------------------------------------------------
// A private PostgreSQL cluster this test may stop and start at will
// ---------------------------------------------------------------------------------------

struct PrivatePostgres {
    bin: PathBuf,
    dir: tempfile::TempDir,
    port: u16,
}

impl PrivatePostgres {
    fn bin_dir() -> PathBuf {
        let out = Command::new("pg_config").arg("--bindir").output();
        let from_config = out
            .ok()
            .filter(|o| o.status.success())
            .map(|o| PathBuf::from(String::from_utf8_lossy(&o.stdout).trim()))
            .filter(|p| p.join("initdb").exists());
        from_config
            .or_else(|| {
                let mut found: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
                    .ok()?
                    .filter_map(|e| e.ok().map(|e| e.path().join("bin")))
                    .filter(|p| p.join("initdb").exists())
                    .collect();
                found.sort();
                found.pop()
            })
            .expect("PostgreSQL server binaries (initdb, pg_ctl) are needed for this test")
    }

    fn as_postgres(&self, program: &str) -> Command {
        let mut cmd = Command::new("runuser");
        cmd.args(["-u", "postgres", "--"])
            .arg(self.bin.join(program));
        cmd
    }

    fn data(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    fn start_new() -> PrivatePostgres {
        let dir = tempfile::tempdir().expect("temp dir");
        run(Command::new("chown")
            .args(["postgres:postgres"])
            .arg(dir.path()));
        let pg = PrivatePostgres {
            bin: Self::bin_dir(),
            dir,
            port: free_port(),
        };
        run(pg
            .as_postgres("initdb")
            .args(["-A", "trust", "-U", "postgres", "--no-sync", "-D"])
            .arg(pg.data()));
        pg.start();
        pg
    }

    fn start(&self) {
        let options = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1 -c fsync=off",
            self.port,
            self.dir.path().display()
        );
        run(self
            .as_postgres("pg_ctl")
            .args(["-w", "-t", "60", "-l"])
            .arg(self.dir.path().join("log"))
            .args(["-o", &options, "-D"])
            .arg(self.data())
            .arg("start"));
    }

    /// Stops at once, as a crash would: open connections are cut.
    fn stop(&self) {
        run(self
            .as_postgres("pg_ctl")
            .args(["-w", "-m", "immediate", "-D"])
            .arg(self.data())
            .arg("stop"));
    }

    fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }
}

impl Drop for PrivatePostgres {
    fn drop(&mut self) {
        let _ = self
            .as_postgres("pg_ctl")
            .args(["-m", "immediate", "-D"])
            .arg(self.data())
            .arg("stop")
            .output();
    }
}

#[tokio::test]
async fn postgres_going_away_under_load_is_503_then_full_recovery_with_nothing_lost() {
    let pg = PrivatePostgres::start_new();
    let app = spawn_app_with(|c| c.database.url = Some(pg.url())).await;
    let (_, token, _) = app.register("writer").await;

    // Writers keep creating posts throughout; every 201 is a promise.
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut writers = Vec::new();
    for w in 0..4 {
        let client = app.client.clone();
        let url = app.url("/v1/posts");
        let token = token.clone();
        let stop = stop.clone();
        writers.push(tokio::spawn(async move {
            let mut acknowledged = Vec::new();
            let mut unavailable = 0u32;
            let mut n = 0;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                n += 1;
                let caption = format!("w{w}-{n}");
                let resp = client
                    .post(&url)
                    .bearer_auth(&token)
                    .json(&json!({ "caption": caption }))
                    .send()
                    .await
                    .expect("the server answers even when its database is gone");
                let status = resp.status();
                let retry_after = resp.headers().get("retry-after").cloned();
                let body: Value = resp.json().await.expect("a JSON body");
                match status {
                    StatusCode::CREATED => acknowledged.push(id_of(&body["post"])),
                    StatusCode::SERVICE_UNAVAILABLE => {
                        assert_eq!(body["code"], "service_unavailable", "{body}");
                        assert!(retry_after.is_some(), "503 without Retry-After: {body}");
                        unavailable += 1;
                        tokio::time::sleep(Duration::from_millis(50)).await;
                    }
                    other => {
                        panic!("during the outage every answer is 201 or 503, got {other}: {body}")
                    }
                }
            }
            (acknowledged, unavailable)
        }));
    }

    tokio::time::sleep(Duration::from_millis(500)).await;
    pg.stop();
    // While it is down: readiness says so, and reads are 503 too.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let resp = app.get("/readyz", None).await;
        if resp.status() == StatusCode::SERVICE_UNAVAILABLE {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "/readyz never noticed the outage"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let resp = app.get("/v1/users/me", Some(&token)).await;
    assert_problem(resp, 503, "service_unavailable").await;
    tokio::time::sleep(Duration::from_secs(2)).await;

    pg.start();
    // Full recovery without a restart of Shutter.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let resp = app.get("/v1/users/me", Some(&token)).await;
        if resp.status() == StatusCode::OK {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "Shutter did not recover after PostgreSQL came back: {}",
            resp.status()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let mut acknowledged = Vec::new();
    let mut unavailable = 0;
    for writer in writers {
        let (ids, refused) = writer.await.expect("writer");
        acknowledged.extend(ids);
        unavailable += refused;
    }
    assert!(unavailable > 0, "the outage was never seen by a writer");
    assert_eq!(
        expect_status(app.get("/readyz", None).await, StatusCode::OK).await["status"],
        "ok"
    );

    // Every acknowledged post is there.
    for id in &acknowledged {
        let resp = app.get(&format!("/v1/posts/{id}"), Some(&token)).await;
        assert_eq!(
            resp.status(),
            StatusCode::OK,
            "acknowledged post {id} was lost"
        );
    }
}

// ---------------------------------------------------------------------------------------
// A full data disk
// ---------------------------------------------------------------------------------------

/// A tmpfs of `size` mounted on a fresh directory, unmounted on drop.
struct SmallDisk {
    dir: tempfile::TempDir,
}

impl SmallDisk {
    fn mount(size: &str) -> SmallDisk {
        let dir = tempfile::tempdir().expect("temp dir");
        run(Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir.path()));
        SmallDisk { dir }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = Command::new("umount")
            .arg("-l")
            .arg(self.dir.path())
            .output();
    }
}

/// Bytes used by the files under `dir`.
fn used(dir: &Path) -> u64 {
    let mut total = 0;
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let meta = entry.metadata().expect("metadata");
        total += if meta.is_dir() {
            used(&entry.path())
        } else {
            meta.len()
        };
    }
    total
}

#[tokio::test]
async fn a_full_data_disk_refuses_uploads_cleanly_and_loses_nothing() {
    let disk = SmallDisk::mount("8m");
    let blobs = disk.path().join("blobs");
    // The blobs on the small disk, whatever store the run asks for: that is the point.
    let data = crate::backend::local_storage_data_dir().await;
    let mut config = test_config(data.path());
    config.storage.local.path = Some(blobs.clone());
    let app = start(config, data).await;
    let (_, token) = user(&app, "filler").await;

    // A file that fits, stored and readable.
    let kept = pseudo_random(3 * 1024 * 1024, 7);
    let first = store(&app, &token, "kept.bin", &kept).await;
    let first_id = id_of(&first);
    assert_eq!(first["status"], "ready", "{first}");

    // One that does not fit: refused as a passing condition, not a bug.
    let big = pseudo_random(7 * 1024 * 1024, 8);
    let (file, ticket) = create_file(
        &app,
        &token,
        &file_request("big.bin", "application/octet-stream", big.len()),
    )
    .await;
    let resp = put_ticket(&app, &ticket, big.clone()).await;
    let retry_after = header(&resp, "retry-after");
    assert_problem(resp, 503, "service_unavailable").await;
    assert!(
        retry_after.is_some(),
        "a full disk answers with Retry-After"
    );
    // Its partial bytes are gone, and it can be retried later with the same URL.
    let big_id = id_of(&file);
    let state = file_of(&app, Some(&token), &big_id).await;
    assert_eq!(state["status"], "pending", "{state}");
    assert!(
        used(&blobs) < kept.len() as u64 + 512 * 1024,
        "a refused upload left {} bytes on the disk",
        used(&blobs)
    );

    // A tus upload that runs into the full disk keeps what is durable and resumes.
    let (url, tus_id) = tus_create(
        &app,
        &token,
        big.len(),
        &tus_metadata(&[("filename", "tus.bin")]),
    )
    .await;
    let resp = tus_patch(&app, &url, &token, 0, &big).await;
    assert_problem(resp, 503, "service_unavailable").await;
    let offset = tus_offset(&app, &url, &token).await;
    assert!(offset < big.len() as u64, "offset {offset}");
    // Bytes past the durable offset are given back at once: the disk is full.
    assert!(
        used(&blobs) <= kept.len() as u64 + offset + 64 * 1024,
        "a refused PATCH left {} bytes on the disk for an upload at offset {offset}",
        used(&blobs)
    );

    // What was stored before is intact.
    assert_eq!(download(&app, Some(&token), &first_id).await, kept);

    // Space comes back (the first file is deleted and its bytes erased): the tus upload
    // resumes from its offset and completes, and the refused PUT goes through on retry.
    let resp = app
        .delete(&format!("/v1/files/{first_id}"), Some(&token))
        .await;
    assert_eq!(resp.status(), StatusCode::NO_CONTENT);
    wait_used_below(&blobs, offset + 512 * 1024).await;
    let resp = tus_patch(&app, &url, &token, offset as usize, &big[offset as usize..]).await;
    assert_eq!(
        resp.status(),
        StatusCode::NO_CONTENT,
        "the tus upload resumes"
    );
    assert_eq!(download(&app, Some(&token), &tus_id).await, big);
    let resp = app
        .delete(&format!("/v1/files/{tus_id}"), Some(&token))
        .await;
    assert_eq!(resp.status(), StatusCode::NO_CONTENT);
    wait_used_below(&blobs, 64 * 1024).await;
    let resp = put_ticket(&app, &ticket, big.clone()).await;
    expect_status(resp, StatusCode::OK).await;
    assert_eq!(download(&app, Some(&token), &big_id).await, big);
}

/// Uploads `bytes` as an octet-stream file (a ticket and a PUT); the file as answered.
async fn store(app: &TestApp, token: &str, name: &str, bytes: &[u8]) -> Value {
    upload_with(
        app,
        token,
        file_request(name, "application/octet-stream", bytes.len()),
        bytes,
    )
    .await
}

/// Waits (the erasing job runs in the background) until `dir` holds fewer than `bytes`.
async fn wait_used_below(dir: &Path, bytes: u64) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while used(dir) >= bytes {
        assert!(
            tokio::time::Instant::now() < deadline,
            "{} bytes are still on the disk",
            used(dir)
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Fills `dir`'s file system to the last byte with one file, which is returned.
fn fill(dir: &Path) -> PathBuf {
    use std::io::Write;
    let path = dir.join("filler");
    let mut f = std::fs::File::create(&path).expect("the filler file");
    let block = vec![0xA5u8; 64 * 1024];
    let mut small = vec![0u8; 512];
    loop {
        if f.write_all(&block).is_err() {
            break;
        }
    }
    // The last partial block, a few bytes at a time.
    while f.write_all(&small).is_ok() {}
    small.truncate(1);
    while f.write_all(&small).is_ok() {}
    let _ = f.sync_all();
    path
}

/// The whole data directory — the SQLite database with its WAL, and the objects — on a disk
/// that something else fills up: writes are refused as 503 with Retry-After (never a 500),
/// reads go on, nothing stored is damaged, and everything works again once there is room.
#[tokio::test]
async fn a_full_disk_under_the_database_refuses_writes_cleanly_and_recovers() {
    let disk = SmallDisk::mount("24m");
    let mut config = test_config(disk.path());
    config.storage.sweep_interval = shutter_core::config::DurationValue::secs(3600);
    let db_path = disk.path().join("shutter.db");
    // SQLite on the small disk whatever backend the run asks for: that is the point.
    config.database.url = Some(format!("sqlite://{}", db_path.display()));
    // And its blobs beside it, in a local directory whatever store the run asks for.
    config.storage.local.path = Some(disk.path().join("blobs"));
    let app = start(
        config,
        crate::backend::data_dir_on(Database::Sqlite, Storage::Local).await,
    )
    .await;
    let (_, token) = user(&app, "alice").await;
    let kept = pseudo_random(1024 * 1024, 9);
    let first = store(&app, &token, "kept.bin", &kept).await;
    let first_id = id_of(&first);
    let resp = app
        .post_json("/v1/posts", Some(&token), &json!({"caption": "before"}))
        .await;
    let post = expect_status(resp, StatusCode::CREATED).await;

    let filler = fill(disk.path());
    // Writes of every kind: a ticket, a post, a comment, a sign-up.
    let post_id = id_of(&post["post"]);
    let comment_path = format!("/v1/posts/{post_id}/comments");
    let writes: Vec<(&str, Value)> = vec![
        (
            "/v1/files",
            file_request("more.bin", "application/octet-stream", 10),
        ),
        ("/v1/posts", json!({"caption": "x".repeat(2000)})),
        (comment_path.as_str(), json!({"text": "y".repeat(2000)})),
    ];
    let mut refused = 0;
    for round in 0..200 {
        for (path, body) in &writes {
            let resp = app.post_json(path, Some(&token), body).await;
            match resp.status().as_u16() {
                201 => {}
                503 => {
                    assert!(header(&resp, "retry-after").is_some(), "{path}");
                    assert_problem(resp, 503, "service_unavailable").await;
                    refused += 1;
                }
                other => panic!(
                    "round {round}, {path}: {other} {}",
                    resp.text().await.unwrap_or_default()
                ),
            }
        }
        if refused >= 6 {
            break;
        }
    }
    assert!(refused >= 6, "the full disk refused writes ({refused})");
    let resp = app
        .post_json(
            "/v1/auth/register",
            None,
            &json!({"username": "bob", "password": "correct horse battery staple"}),
        )
        .await;
    assert!(
        resp.status() == StatusCode::CREATED || resp.status() == StatusCode::SERVICE_UNAVAILABLE,
        "{}",
        resp.status()
    );

    // Reads go on.
    assert_eq!(download(&app, Some(&token), &first_id).await, kept);
    let resp = app.get(&format!("/v1/posts/{post_id}"), Some(&token)).await;
    assert_eq!(resp.status(), StatusCode::OK);

    // Room again: writes work, and the database is whole.
    std::fs::remove_file(&filler).expect("the filler goes");
    let again = pseudo_random(512 * 1024, 10);
    let second = store(&app, &token, "again.bin", &again).await;
    assert_eq!(second["status"], "ready", "{second}");
    assert_eq!(download(&app, Some(&token), &id_of(&second)).await, again);
    assert_eq!(download(&app, Some(&token), &first_id).await, kept);
    let resp = app
        .post_json("/v1/posts", Some(&token), &json!({"caption": "after"}))
        .await;
    expect_status(resp, StatusCode::CREATED).await;
    let db = sqlx::SqlitePool::connect(&format!("sqlite://{}", db_path.display()))
        .await
        .expect("the database opens");
    let (check,): (String,) = sqlx::query_as("PRAGMA integrity_check")
        .fetch_one(&db)
        .await
        .expect("integrity_check");
    assert_eq!(check, "ok");
}
