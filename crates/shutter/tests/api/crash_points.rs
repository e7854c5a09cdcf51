//! `kill -9` at every stage of an upload and of a photo job: the server runs with
//! `SHUTTER_KILL_AT` naming a crash point (`shutter_app::crash`) and SIGKILLs itself there;
//! after a restart on the same data directory, what was acknowledged is kept, what was not is
//! retried by the client's own protocol (the same upload URL, tus HEAD + PATCH, the job's
//! lease), and no half-written file is ever served or left behind. With `SHUTTER_PAUSE_AT`
//! a request waits at a point instead, to hold a race's window open.

use std::path::Path;
use std::time::Duration;

use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::*;
use crate::photo_helpers::*;
use crate::upload_helpers::*;

const SIZE: usize = 3 * 1024 * 1024;

/// Starts a server on `data`; with `kill_at`, it dies at that crash point.
async fn start(
    data: &Path,
    port: u16,
    kill_at: Option<&str>,
    extra: &[(&str, &str)],
) -> ChildServer {
    let mut envs: Vec<(&str, &str)> = extra.to_vec();
    if let Some(point) = kill_at {
        envs.push(("SHUTTER_KILL_AT", point));
    }
    ChildServer::start(data, port, &envs).await
}

/// Starts the server again after a crash, with a new client (the old one may hold
/// connections to the dead process). On a shared database a starting node takes only
/// uploads idle for a while to be cut off (others may be mid-upload on other nodes): a
/// crashed node's restart is at least that slow.
async fn restart(data: &Path, port: u16, extra: &[(&str, &str)]) -> (ChildServer, Api) {
    if crate::backend::postgres_requested() {
        let idle = shutter_app::uploads::STALLED_AT_START_MS as u64;
        tokio::time::sleep(Duration::from_millis(idle + 500)).await;
    }
    let server = start(data, port, None, extra).await;
    let api = Api::child(&server);
    (server, api)
}

/// `POST /v1/files` for `bytes` with its sha256 declared: `(file id, upload URL)`.
async fn ticket(api: &Api, token: &str, bytes: &[u8]) -> (String, String) {
    let resp = api
        .post_json(
            "/v1/files",
            Some(token),
            &json!({"filename": "crash.bin", "size": bytes.len(),
                    "content_type": "application/octet-stream", "sha256": sha256_hex(bytes)}),
        )
        .await;
    let created = expect_status(resp, StatusCode::CREATED).await;
    (
        id_of(&created["file"]),
        created["upload"]["url"].as_str().unwrap().to_owned(),
    )
}

async fn put(api: &Api, url: &str, bytes: &[u8]) -> reqwest::Result<reqwest::Response> {
    api.client
        .put(url)
        .header("content-type", "application/octet-stream")
        .body(bytes.to_vec())
        .send()
        .await
}

/// The file's bytes as its owner downloads them.
async fn content(api: &Api, token: &str, id: &str) -> (StatusCode, Vec<u8>) {
    let resp = api
        .get(&format!("/v1/files/{id}/content"), Some(token))
        .await;
    let resp = follow_to_bucket(&api.client, resp).await;
    let status = resp.status();
    (status, resp.bytes().await.unwrap().to_vec())
}

/// After a crash mid-upload: the file is waiting for its bytes again and serves none.
async fn assert_waiting(api: &Api, token: &str, id: &str) {
    let file = api.file_of(token, id).await;
    assert_eq!(
        file["status"], "pending",
        "cut off, so waiting again: {file}"
    );
    let (status, _) = content(api, token, id).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "no bytes are served");
}

/// The file is ready with exactly `bytes`, and stored once.
async fn assert_stored(api: &Api, data: &Path, token: &str, id: &str, bytes: &[u8]) {
    let file = api.file_of(token, id).await;
    assert_eq!(file["status"], "ready", "{file}");
    assert_eq!(file["sha256"], sha256_hex(bytes), "{file}");
    let (status, body) = content(api, token, id).await;
    assert_eq!(status, StatusCode::OK);
    assert!(body == bytes, "the bytes served are the bytes sent");
    assert!(original_stored(data, id).await, "the object is stored");
    let left = crate::backend::blob_store(data)
        .partial_len(&format!("files/{id}"))
        .await
        .expect("the blob store answers");
    assert_eq!(left, None, "no upload of {id} is left in progress");
}

#[tokio::test]
async fn a_put_whose_server_died_after_the_ticket_is_taken_by_the_restarted_one() {
    let data = crate::backend::local_storage_data_dir().await;
    let port = free_port();
    let mut server = start(data.path(), port, None, &[]).await;
    let api = Api::child(&server);
    let (_, token) = api.register("alice").await;
    let bytes = pseudo_random(SIZE, 1);
    let (id, url) = ticket(&api, &token, &bytes).await;
    server.kill9().await;

    let (_server, api) = restart(data.path(), port, &[]).await;
    assert_waiting(&api, &token, &id).await;
    let resp = put(&api, &url, &bytes).await.unwrap();
    assert_eq!(
        resp.status(),
        StatusCode::OK,
        "the ticket outlives the process"
    );
    assert_stored(&api, data.path(), &token, &id, &bytes).await;
}

/// Killed with every byte durable but nothing checked or committed: the restarted server
/// finishes the upload itself (a tus client told the whole length is there must not wait
/// for nothing); a retried PUT finds the file complete.
#[tokio::test]
async fn a_put_killed_between_its_last_byte_and_the_commit_is_finished_on_restart() {
    let data = crate::backend::local_storage_data_dir().await;
    let port = free_port();
    let point = shutter_app::crash::UPLOAD_RECEIVED;
    let mut server = start(data.path(), port, Some(point), &[]).await;
    let api = Api::child(&server);
    let (_, token) = api.register("alice").await;
    let bytes = pseudo_random(SIZE, 2);
    let (id, url) = ticket(&api, &token, &bytes).await;
    let cut = put(&api, &url, &bytes).await;
    assert!(cut.is_err(), "the server died before answering: {cut:?}");
    server.wait_killed().await;

    let (server, api) = restart(data.path(), port, &[]).await;
    assert_stored(&api, data.path(), &token, &id, &bytes).await;
    let resp = put(&api, &url, &bytes).await.unwrap();
    assert_problem(resp, 409, "conflict").await;
    // Answered before its body was read, that connection is closed: a new client.
    let api = Api::child(&server);
    assert_stored(&api, data.path(), &token, &id, &bytes).await;
}

/// Killed after the object was committed but before the database knew: the file waits for
/// its bytes again and the same URL takes them (the new object replaces the old).
#[tokio::test]
async fn a_put_killed_between_the_commit_and_its_record_is_retried_whole() {
    let point = shutter_app::crash::UPLOAD_COMMITTED;
    let data = crate::backend::local_storage_data_dir().await;
    let port = free_port();
    let mut server = start(data.path(), port, Some(point), &[]).await;
    let api = Api::child(&server);
    let (_, token) = api.register("alice").await;
    let bytes = pseudo_random(SIZE, 2);
    let (id, url) = ticket(&api, &token, &bytes).await;
    let cut = put(&api, &url, &bytes).await;
    assert!(
        cut.is_err(),
        "{point}: the server died before answering: {cut:?}"
    );
    server.wait_killed().await;

    let (_server, api) = restart(data.path(), port, &[]).await;
    assert_waiting(&api, &token, &id).await;
    let resp = put(&api, &url, &bytes).await.unwrap();
    let done = expect_status(resp, StatusCode::OK).await;
    assert_eq!(done["file"]["status"], "ready", "{point}: {done}");
    assert_stored(&api, data.path(), &token, &id, &bytes).await;
}

#[tokio::test]
async fn a_tus_upload_killed_between_its_last_byte_and_its_record_completes() {
    for point in [
        shutter_app::crash::UPLOAD_RECEIVED,
        shutter_app::crash::UPLOAD_COMMITTED,
    ] {
        let data = crate::backend::data_dir().await;
        let port = free_port();
        let mut server = start(data.path(), port, Some(point), &[]).await;
        let api = Api::child(&server);
        let (_, token) = api.register("alice").await;
        let bytes = pseudo_random(SIZE, 3);
        let metadata = tus_metadata(&[("filename", "crash.bin"), ("sha256", &sha256_hex(&bytes))]);
        let (url, id) = tus_create_on(&api.client, &api.base, &token, bytes.len(), &metadata).await;
        let patch = |offset: usize| {
            tus_patch_on(&api.client, &url, &token, offset, bytes[offset..].to_vec()).send()
        };
        let cut = patch(0).await;
        assert!(
            cut.is_err(),
            "{point}: the server died before answering: {cut:?}"
        );
        server.wait_killed().await;

        let (_server, api) = restart(data.path(), port, &[]).await;
        let received = point == shutter_app::crash::UPLOAD_RECEIVED;
        if !received {
            assert_waiting(&api, &token, &id).await;
        }
        // What a tus client does: HEAD for the offset, PATCH the rest.
        let resp = api
            .client
            .head(&url)
            .bearer_auth(&token)
            .header("Tus-Resumable", TUS)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::OK);
        let offset: usize = header(&resp, "upload-offset").unwrap().parse().unwrap();
        if received {
            // Finished by the restarted server: the client has nothing left to send.
            assert_eq!(offset, bytes.len(), "{point}");
        } else {
            assert_eq!(
                offset, 0,
                "{point}: the committed object is not the partial one"
            );
            let resp = patch(offset).await.unwrap();
            assert_eq!(resp.status(), StatusCode::NO_CONTENT, "{point}");
        }
        assert_stored(&api, data.path(), &token, &id, &bytes).await;
    }
}

#[tokio::test]
async fn an_upload_abandoned_after_a_crash_at_the_commit_expires_without_leaving_bytes() {
    let data = crate::backend::local_storage_data_dir().await;
    let port = free_port();
    let short = [
        ("SHUTTER_STORAGE__UPLOAD_URL_TTL", "4s"),
        ("SHUTTER_STORAGE__SWEEP_INTERVAL", "1s"),
    ];
    let mut server = start(
        data.path(),
        port,
        Some(shutter_app::crash::UPLOAD_COMMITTED),
        &short,
    )
    .await;
    let api = Api::child(&server);
    let (_, token) = api.register("alice").await;
    let bytes = pseudo_random(SIZE, 4);
    let (id, url) = ticket(&api, &token, &bytes).await;
    assert!(put(&api, &url, &bytes).await.is_err());
    server.wait_killed().await;
    assert!(
        original_stored(data.path(), &id).await,
        "the crash left the committed object behind"
    );

    let (_server, api) = restart(data.path(), port, &short).await;
    let file = api
        .wait_file(&token, &id, Duration::from_secs(30), |f| {
            f["status"] == "failed"
        })
        .await;
    assert_eq!(file["failure"]["code"], "upload_expired", "{file}");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while bytes_kept(data.path(), &id).await {
        assert!(
            tokio::time::Instant::now() < deadline,
            "an expired upload keeps no bytes"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Where a photo job runs in [`photo_job_killed_at`].
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum JobsIn {
    /// The workers inside `shutter serve`: the whole server dies.
    Serve,
    /// A `shutter worker` process beside an API-only `shutter serve` (`jobs.workers = 0`):
    /// only the worker dies, and the API goes on answering.
    Worker,
}

/// A photo post whose job dies at `point`: after the restart the job runs again once its
/// lease is over and the post is published, once, with every variant served.
async fn photo_job_killed_at(point: &str, jobs_in: JobsIn) {
    let data = crate::backend::data_dir().await;
    let port = free_port();
    let lease = [("SHUTTER_JOBS__LEASE", "1s")];
    let kill = [("SHUTTER_JOBS__LEASE", "1s"), ("SHUTTER_KILL_AT", point)];
    let api_only = [
        ("SHUTTER_JOBS__LEASE", "1s"),
        ("SHUTTER_JOBS__WORKERS", "0"),
    ];
    let (mut server, mut worker) = match jobs_in {
        JobsIn::Serve => (start(data.path(), port, Some(point), &lease).await, None),
        JobsIn::Worker => (
            start(data.path(), port, None, &api_only).await,
            Some(ChildServer::worker(data.path(), &kill).await),
        ),
    };
    let api = Api::child(&server);
    let (alice_id, token) = api.register("alice").await;
    let photo = testdata("photos/kleiber_1080x1080.jpg");
    let (post, tickets) = api
        .create_photo_post(&token, "crash", &[("k.jpg", "image/jpeg", &photo)])
        .await;
    let post_id = id_of(&post);
    let file_id = tickets[0]["file_id"].as_str().unwrap().to_owned();
    // The upload itself is acknowledged; the job dies after it.
    api.put_ok(&tickets[0], &photo).await;

    let (_server, api, _worker) = match jobs_in {
        JobsIn::Serve => {
            server.wait_killed().await;
            let (server, api) = restart(data.path(), port, &lease).await;
            (server, api, None)
        }
        JobsIn::Worker => {
            worker.as_mut().unwrap().wait_killed().await;
            // The API node is untouched: the post waits for its photo, and nobody else
            // takes the job while no worker runs.
            tokio::time::sleep(Duration::from_millis(1500)).await;
            let waiting = api.post_of(Some(&token), &post_id).await;
            assert_eq!(waiting["status"], "pending", "{point}: {waiting}");
            let next = ChildServer::worker(data.path(), &lease).await;
            (server, api, Some(next))
        }
    };
    let post = api.wait_settled(&token, &post_id, "published").await;
    let file = api.file_of(&token, &file_id).await;
    assert_eq!(file["status"], "ready", "{point}: {file}");
    for url in urls_of(&post["media"][0]) {
        assert_eq!(api.fetch(&url).await.0, StatusCode::OK, "{point}: {url}");
    }
    let posts = api
        .list_ids(&format!("/v1/users/{alice_id}/posts"), Some(&token))
        .await;
    assert_eq!(posts, vec![post_id], "{point}: the post once");
    assert!(original_stored(data.path(), &file_id).await, "{point}");
}

#[tokio::test]
async fn a_photo_job_killed_after_storing_its_variants_publishes_its_post() {
    photo_job_killed_at(shutter_app::crash::JOB_VARIANTS_STORED, JobsIn::Serve).await;
}

#[tokio::test]
async fn a_photo_job_killed_between_the_ready_photo_and_its_post_publishes_it() {
    photo_job_killed_at(shutter_app::crash::JOB_FILE_READY, JobsIn::Serve).await;
}

#[tokio::test]
async fn a_worker_process_killed_after_storing_variants_leaves_the_job_to_the_next() {
    photo_job_killed_at(shutter_app::crash::JOB_VARIANTS_STORED, JobsIn::Worker).await;
}

#[tokio::test]
async fn a_worker_process_killed_between_the_ready_photo_and_its_post_leaves_it_to_the_next() {
    photo_job_killed_at(shutter_app::crash::JOB_FILE_READY, JobsIn::Worker).await;
}

/// Two tus PATCHes at one offset, the second arriving while the first waits between its
/// offset check and its write (`SHUTTER_PAUSE_AT`): the check must not be stale by the time
/// either writes. The second is refused (409) and the first one's acknowledged bytes stay.
#[tokio::test]
async fn a_patch_at_the_offset_another_patch_is_writing_at_is_refused() {
    const HALF: usize = 64 * 1024;
    let data = crate::backend::data_dir().await;
    let port = free_port();
    let paused = [("SHUTTER_PAUSE_AT", shutter_app::crash::TUS_OFFSET_CHECKED)];
    let server = start(data.path(), port, None, &paused).await;
    let api = Api::child(&server);
    let (_, token) = api.register("alice").await;
    let bytes = pseudo_random(2 * HALF, 5);
    let other = pseudo_random(HALF, 6);
    let metadata = tus_metadata(&[("filename", "race.bin")]);
    let (url, id) = tus_create_on(&api.client, &api.base, &token, bytes.len(), &metadata).await;
    let patch =
        |offset: usize, body: Vec<u8>| tus_patch_on(&api.client, &url, &token, offset, body).send();
    let first = patch(0, bytes[..HALF].to_vec());
    let second = async {
        tokio::time::sleep(shutter_app::crash::PAUSE / 2).await;
        patch(0, other.clone()).await
    };
    let (first, second) = tokio::join!(first, second);
    assert_eq!(first.unwrap().status(), StatusCode::NO_CONTENT);
    assert_problem(second.unwrap(), 409, "conflict").await;

    let resp = patch(HALF, bytes[HALF..].to_vec()).await.unwrap();
    assert_eq!(resp.status(), StatusCode::NO_CONTENT);
    let file = api.file_of(&token, &id).await;
    assert_eq!(file["status"], "ready", "{file}");
    assert_eq!(
        file["sha256"],
        sha256_hex(&bytes),
        "the bytes the first PATCH was told were kept: {file}"
    );
}

/// A `shutter worker` starting while `shutter serve` takes an upload on the same database
/// leaves that upload alone: the worker takes no upload for one a crash cut off unless it has
/// been idle for a while (on SQLite, too, where the API node itself takes every one it finds
/// at its start).
#[tokio::test]
async fn a_worker_starting_beside_a_running_upload_leaves_it_alone() {
    use futures::SinkExt;
    let data = crate::backend::local_storage_data_dir().await;
    let port = free_port();
    let server = start(data.path(), port, None, &[]).await;
    let api = Api::child(&server);
    let (_, token) = api.register("alice").await;
    let bytes = pseudo_random(SIZE, 7);
    let (id, url) = ticket(&api, &token, &bytes).await;
    let (mut tx, rx) = futures::channel::mpsc::channel::<Result<bytes::Bytes, std::io::Error>>(1);
    let request = api
        .client
        .put(&url)
        .header("content-type", "application/octet-stream")
        .body(reqwest::Body::wrap_stream(rx));
    let half = bytes.len() / 2;
    let sending = async {
        tx.send(Ok(bytes::Bytes::copy_from_slice(&bytes[..half])))
            .await
            .unwrap();
        let file = api
            .wait_file(&token, &id, Duration::from_secs(10), |f| {
                f["status"] == "uploading"
            })
            .await;
        assert_eq!(file["status"], "uploading");
        let worker = ChildServer::worker(data.path(), &[]).await;
        tx.send(Ok(bytes::Bytes::copy_from_slice(&bytes[half..])))
            .await
            .unwrap();
        drop(tx);
        worker
    };
    let (resp, _worker) = tokio::join!(request.send(), sending);
    let done = expect_status(resp.unwrap(), StatusCode::OK).await;
    assert_eq!(done["file"]["status"], "ready", "{done}");
    assert_stored(&api, data.path(), &token, &id, &bytes).await;
}
