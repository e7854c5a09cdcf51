//! Durable photo jobs (DESIGN "Jobs"): a `process_file` job whose server is killed mid-way
//! runs again after its lease and publishes the post exactly once; a job that keeps failing
//! is dead-lettered and `shutter jobs retry` sends it round again; premium jobs go first;
//! `/metrics` reports the queue.

use std::path::{Path, PathBuf};
use std::time::Duration;

use reqwest::StatusCode;

use crate::backend::{data_dir_on, Database, Storage};
use crate::helpers::*;
use crate::photo_helpers::*;
use crate::upload_helpers::{testdata, ChildServer};

const JPEG: &str = "photos/kleiber_1080x1080.jpg";

/// Where the local store will put the `thumb` variant of file `id`
/// (`blobs/objects/<last two hex digits>/<id>/variants/thumb`).
fn thumb_path(data_dir: &Path, id: &str) -> PathBuf {
    data_dir
        .join("blobs")
        .join("objects")
        .join(&id[id.len() - 2..])
        .join(id)
        .join("variants")
        .join("thumb")
}

/// A storage fault for one file, set up before its bytes arrive: a non-empty directory where
/// its `thumb` variant must go, so storing the variant fails on every attempt until removed.
/// (Local blob directory only: no S3 server lets a client plant such a fault.)
fn block_thumb(data_dir: &Path, id: &str) -> PathBuf {
    let thumb = thumb_path(data_dir, id);
    std::fs::create_dir_all(thumb.join("blocker")).expect("the blocking directory");
    thumb
}

async fn sql_exec(db: &sqlx::SqlitePool, sql: &str, binds: &[i64], id: &str) {
    let mut q = sqlx::query(sql);
    for b in binds {
        q = q.bind(*b);
    }
    q.bind(id.to_owned()).execute(db).await.expect(sql);
}

async fn sql_one(db: &sqlx::SqlitePool, sql: &str, id: &str) -> (String,) {
    sqlx::query_as(sql)
        .bind(id.to_owned())
        .fetch_one(db)
        .await
        .expect(sql)
}

#[tokio::test]
async fn a_photo_job_killed_mid_way_runs_again_and_publishes_exactly_once() {
    let data = crate::backend::sqlite_data_dir().await;
    let envs = [("SHUTTER_JOBS__LEASE", "1s")];
    let mut server = ChildServer::start(data.path(), free_port(), &envs).await;
    let api = Api::child(&server);
    let (alice_id, alice) = api.register("alice").await;
    let photo = testdata("photos/kleiber_24mp_6000x4000.jpg");
    let (post, tickets) = api
        .create_photo_post(&alice, "24 MP", &[("big.jpg", "image/jpeg", &photo)])
        .await;
    let post_id = id_of(&post);
    let file_id = tickets[0]["file_id"].as_str().unwrap().to_owned();
    let db = database(data.path()).await;
    api.put_ok(&tickets[0], &photo).await;

    // As soon as a worker holds the job, kill the server with it.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        let job = process_job_of(&db, &file_id).await;
        if job.status == "running" {
            break;
        }
        assert_eq!(job.status, "queued", "seen before it ran: {job:?}");
        assert!(tokio::time::Instant::now() < deadline, "never ran: {job:?}");
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    server.kill9().await;
    let job = process_job_of(&db, &file_id).await;
    assert_eq!(job.status, "running", "killed while the job ran: {job:?}");
    assert_eq!(job.attempts, 1, "{job:?}");
    let (file_status,) = sql_one(&db, "SELECT status FROM files WHERE id = ?", &file_id).await;
    assert_eq!(file_status, "processing");
    let (post_status,) = sql_one(&db, "SELECT status FROM posts WHERE id = ?", &post_id).await;
    assert_eq!(post_status, "pending");

    // The crashed worker's lease is made to outlast the restart (as a longer lease would), so
    // the restarted server's event stream is open before the job can be claimed again; then
    // the lease runs out.
    sql_exec(
        &db,
        "UPDATE jobs SET locked_until = ? WHERE id = ?",
        &[now_millis() + 120_000],
        &job.id,
    )
    .await;
    let server = ChildServer::start(data.path(), free_port(), &envs).await;
    let api = Api::child(&server);
    let alice = api.login("alice").await;
    let mut events = api.events(&alice).await;
    assert_eq!(
        process_job_of(&db, &file_id).await.attempts,
        1,
        "not claimed while its lease holds"
    );
    sql_exec(
        &db,
        "UPDATE jobs SET locked_until = ? WHERE id = ?",
        &[now_millis() - 1],
        &job.id,
    )
    .await;

    let post = api.wait_settled(&alice, &post_id, "published").await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    let job = loop {
        let job = process_job_of(&db, &file_id).await;
        if job.status == "done" {
            break job;
        }
        assert!(tokio::time::Instant::now() < deadline, "not done: {job:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(
        job.attempts, 2,
        "claimed once more after the lease: {job:?}"
    );
    // Everything the job announces is published before it is marked done.
    let seen = events.drain(Duration::from_millis(1500)).await;
    assert_eq!(
        count_events(&seen, "post.published", "post_id", &post_id),
        1,
        "published exactly once: {seen:#?}"
    );
    assert_eq!(
        count_events(&seen, "file.ready", "file_id", &file_id),
        1,
        "{seen:#?}"
    );

    // One post, one file with its three variants, one job: nothing doubled.
    assert_processed(&api, &post["media"][0], 6000, 4000).await;
    let me = expect_status(api.get("/v1/users/me", Some(&alice)).await, StatusCode::OK).await;
    assert_eq!(me["posts_count"], 1, "{me}");
    let posts = api
        .list_ids(&format!("/v1/users/{alice_id}/posts"), Some(&alice))
        .await;
    assert_eq!(posts, vec![post_id.clone()]);
    assert_eq!(
        api.list_ids("/v1/files", Some(&alice)).await,
        vec![file_id.clone()]
    );
    let (variant_rows,): (i64,) =
        sqlx::query_as("SELECT COUNT(*) FROM file_variants WHERE file_id = ?")
            .bind(&file_id)
            .fetch_one(&db)
            .await
            .unwrap();
    assert_eq!(variant_rows, 3);
    for variant in ["thumb", "w640", "w1080"] {
        let key = format!("files/{file_id}/{variant}");
        assert!(object_stored(data.path(), &key).await, "{key} is stored");
    }

    let listed: Vec<JobLine> = jobs_list(data.path(), "all")
        .await
        .into_iter()
        .filter(|j| j.kind == "process_file")
        .collect();
    assert_eq!(listed.len(), 1, "{listed:?}");
    assert_eq!(listed[0].id, job.id);
    assert_eq!(listed[0].status, "done", "{listed:?}");
    assert_eq!(listed[0].attempts, "2/8", "{listed:?}");
}

#[tokio::test]
async fn a_job_that_keeps_failing_is_dead_lettered_and_retried_with_the_cli() {
    // SQLite and the local blob directory: see `block_thumb` and `crate::backend`.
    let app = spawn_app_in(data_dir_on(Database::Sqlite, Storage::Local).await, |_| {}).await;
    let api = Api::of(&app);
    let dir = app.data_dir.path();
    let (_, alice) = api.register("alice").await;
    let jpeg = testdata(JPEG);
    let (post, tickets) = api
        .create_photo_post(&alice, "doomed", &[("a.jpg", "image/jpeg", &jpeg)])
        .await;
    let post_id = id_of(&post);
    let file_id = tickets[0]["file_id"].as_str().unwrap().to_owned();
    let blocked = block_thumb(dir, &file_id);
    api.put_ok(&tickets[0], &jpeg).await;

    // Each failed attempt waits 2, 4, 8 … s before the next; make each retry due at once,
    // as if that time had passed, until the attempts run out.
    let db = database(dir).await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    let mut failures_seen = 0;
    let dead = loop {
        let job = process_job_of(&db, &file_id).await;
        match job.status.as_str() {
            "dead" => break job,
            "done" => panic!("the blocked job cannot succeed: {job:?}"),
            "queued" if job.attempts > 0 => {
                failures_seen += 1;
                sql_exec(
                    &db,
                    "UPDATE jobs SET run_at = ? WHERE id = ? AND status = 'queued'",
                    &[now_millis()],
                    &job.id,
                )
                .await;
            }
            _ => {}
        }
        assert!(tokio::time::Instant::now() < deadline, "not dead: {job:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert!(failures_seen > 0, "retries were queued");
    assert_eq!(dead.attempts, 8, "{dead:?}");
    assert_eq!(dead.max_attempts, 8, "{dead:?}");
    let error = dead.last_error.clone().expect("the last error is kept");
    assert!(error.contains("variant"), "{error}");
    let post = api.post_of(Some(&alice), &post_id).await;
    assert_eq!(post["status"], "pending", "{post}");

    let listed = jobs_list(dir, "dead").await;
    assert_eq!(listed.len(), 1, "{listed:?}");
    assert_eq!(listed[0].id, dead.id);
    assert_eq!(listed[0].kind, "process_file");
    assert_eq!(listed[0].status, "dead");
    assert_eq!(listed[0].attempts, "8/8");
    assert!(listed[0].rest.contains("variant"), "{listed:?}");
    let default = run_shutter(dir, &["jobs", "list"], &[]).await;
    assert_success(&default, "shutter jobs list");
    let text = String::from_utf8_lossy(&default.stdout);
    assert!(
        text.contains(&dead.id) && text.contains("1 job(s)"),
        "dead jobs by default:\n{text}"
    );

    // Repair the fault and send the job round again.
    std::fs::remove_dir_all(&blocked).unwrap();
    let out = run_shutter(dir, &["jobs", "retry", "--all"], &[]).await;
    assert_success(&out, "shutter jobs retry --all");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("1 job(s) queued again"), "{text}");
    assert!(jobs_list(dir, "dead").await.is_empty());
    let post = api.wait_settled(&alice, &post_id, "published").await;
    assert_processed(&api, &post["media"][0], 1080, 1080).await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    let done = loop {
        let job = process_job_of(&db, &file_id).await;
        if job.status == "done" {
            break job;
        }
        assert!(tokio::time::Instant::now() < deadline, "not done: {job:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(done.attempts, 1, "fresh attempts after the retry: {done:?}");
    let listed = jobs_list(dir, "done").await;
    assert!(
        listed
            .iter()
            .any(|j| j.id == dead.id && j.attempts == "1/8"),
        "{listed:?}"
    );

    // Retrying what is not dead queues nothing; bad arguments are usage errors.
    let out = run_shutter(dir, &["jobs", "retry", &dead.id], &[]).await;
    assert_success(&out, "shutter jobs retry <id>");
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("0 job(s) queued again"),
        "{out:?}"
    );
    for args in [
        &["jobs", "retry"][..],
        &["jobs", "retry", "not-a-job-id"],
        &["jobs", "list", "--status", "sleeping"],
    ] {
        let out = run_shutter(dir, args, &[]).await;
        assert_eq!(out.status.code(), Some(2), "shutter {args:?}: {out:?}");
    }
}

#[tokio::test]
async fn premium_photos_are_processed_with_priority() {
    let app = spawn_sqlite_app().await;
    let api = Api::of(&app);
    let (_, alice) = api.register("alice").await;
    let (_, bob) = api.register("bob").await;
    app.set_tier_cli("alice", "premium").await;
    let jpeg = testdata(JPEG);
    let premium = id_of(&api.upload_image(&alice, "a.jpg", "image/jpeg", &jpeg).await);
    let basic = id_of(&api.upload_image(&bob, "b.jpg", "image/jpeg", &jpeg).await);
    let db = database(app.data_dir.path()).await;
    assert_eq!(process_job_of(&db, &premium).await.priority, 10);
    assert_eq!(process_job_of(&db, &basic).await.priority, 0);
}

/// The value of the sample `name{…kind="process_file"…}` in Prometheus text.
fn sample(text: &str, name: &str) -> Option<f64> {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .find(|l| l.starts_with(&format!("{name}{{")) && l.contains("kind=\"process_file\""))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
}

/// The value of `name`'s sample carrying `label` (`key="value"`).
fn labelled(text: &str, name: &str, label: &str) -> Option<f64> {
    text.lines()
        .filter(|l| l.starts_with(&format!("{name}{{")) && l.contains(label))
        .find_map(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
}

/// The value of an unlabelled gauge or counter.
fn gauge(text: &str, name: &str) -> Option<f64> {
    text.lines()
        .find_map(|l| l.strip_prefix(&format!("{name} ")))
        .and_then(|v| v.trim().parse().ok())
}

#[tokio::test]
async fn metrics_report_the_job_queue_and_its_outcomes() {
    // SQLite and the local blob directory: see `block_thumb` and `crate::backend`.
    let data = data_dir_on(Database::Sqlite, Storage::Local).await;
    let server = ChildServer::start(data.path(), free_port(), &[]).await;
    let api = Api::child(&server);
    let (_, alice) = api.register("alice").await;
    let jpeg = testdata(JPEG);
    api.upload_image(&alice, "a.jpg", "image/jpeg", &jpeg).await;

    // A second photo whose first attempt fails (storage refuses its variant), then succeeds.
    let resp = api
        .post_json(
            "/v1/files",
            Some(&alice),
            &media_spec("b.jpg", "image/jpeg", &jpeg),
        )
        .await;
    let created = expect_status(resp, StatusCode::CREATED).await;
    let id = id_of(&created["file"]);
    let blocked = block_thumb(data.path(), &id);
    api.put_ok(&created["upload"], &jpeg).await;
    let db = database(data.path()).await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let job = process_job_of(&db, &id).await;
        if job.status == "queued" && job.attempts == 1 {
            break;
        }
        assert_ne!(job.status, "done", "{job:?}");
        assert!(
            tokio::time::Instant::now() < deadline,
            "no failure: {job:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    std::fs::remove_dir_all(&blocked).unwrap();
    api.wait_file(&alice, &id, Duration::from_secs(60), |f| {
        f["status"] == "ready"
    })
    .await;
    // And an upload that ends short.
    let resp = api
        .post_json(
            "/v1/files",
            Some(&alice),
            &media_spec("c.jpg", "image/jpeg", &jpeg),
        )
        .await;
    let short = expect_status(resp, StatusCode::CREATED).await;
    let half = &jpeg[..jpeg.len() / 2];
    assert_problem(api.put(&short["upload"], half).await, 422, "size_mismatch").await;
    let received = (2 * jpeg.len() + half.len()) as f64;
    let stored = (2 * jpeg.len()) as f64;

    // The gauges are refreshed every 5 s: poll until they and the counters show it all.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let resp = api.get("/metrics", None).await;
        assert_eq!(resp.status(), StatusCode::OK);
        let text = resp.text().await.unwrap();
        let done = sample(&text, "jobs_completed_total") == Some(2.0)
            && sample(&text, "jobs_failed_total") == Some(1.0)
            && sample(&text, "jobs_retried_total") == Some(1.0)
            && labelled(&text, "uploads_finished_total", "outcome=\"ok\"") == Some(2.0)
            && labelled(&text, "uploads_finished_total", "outcome=\"size_mismatch\"") == Some(1.0)
            && gauge(&text, "upload_received_bytes_total") == Some(received)
            && gauge(&text, "upload_stored_bytes_total") == Some(stored)
            && sample(&text, "job_duration_seconds_count") == Some(3.0)
            && sample(&text, "job_wait_seconds_count") == Some(3.0)
            && gauge(&text, "jobs_queued") == Some(0.0)
            && gauge(&text, "jobs_running") == Some(0.0)
            && gauge(&text, "jobs_dead") == Some(0.0)
            && gauge(&text, "jobs_oldest_due_seconds").is_some();
        if done {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "/metrics lacks the job and upload metrics expected after 2 completions, 1 retry and 1 short upload:\n{text}"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}
