//! Many nodes, one deployment: two `shutter serve` processes and one `shutter worker` on one
//! PostgreSQL database and one S3 bucket, with Redis or without, as SPEC 6 scales out.
//!
//! Node A keeps its data directory (and the signing secrets generated in it); node B and the
//! worker have data directories of their own and read A's secrets through
//! `server.secrets_dir`, as nodes sharing a mounted secrets directory do. Both serve nodes
//! share `server.public_url`, as nodes behind one address do, and run no job workers: every
//! job runs in the worker process.
//!
//! PostgreSQL and Redis are this run's (`SHUTTER_TEST_POSTGRES_URL`,
//! `SHUTTER_TEST_REDIS_URL`); a test that needs one whose variable is unset says so and does
//! not run (`.ci/run` sets both and fails when a server does not answer).

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::backend::{data_dir_on, Database, Storage, TestDataDir};
use crate::helpers::{expect_status, free_port, id_of, PASSWORD};
use crate::photo_helpers::{media_spec, Api};
use crate::upload_helpers::{
    download_on, pseudo_random, send_to_ticket, sha256_hex, testdata, tus_create_on, tus_metadata,
    tus_patch_on, ChildServer, TUS,
};

const REDIS_URL_VAR: &str = "SHUTTER_TEST_REDIS_URL";

/// Two API nodes and workers on one database and bucket.
struct Cluster {
    a: Api,
    b: Api,
    /// Node A, node B, then the workers.
    servers: Vec<ChildServer>,
    dirs: Vec<tempfile::TempDir>,
    data_dir: TestDataDir,
}

/// The run's Redis URL, or `None` with a note.
fn redis_url() -> Option<String> {
    match std::env::var(REDIS_URL_VAR) {
        Ok(url) if !url.trim().is_empty() => Some(url),
        _ => {
            eprintln!("{REDIS_URL_VAR} is not set: this multi-node test does not run");
            None
        }
    }
}

fn postgres_configured() -> bool {
    let set = std::env::var("SHUTTER_TEST_POSTGRES_URL").is_ok_and(|u| !u.trim().is_empty());
    if !set {
        eprintln!("SHUTTER_TEST_POSTGRES_URL is not set: this multi-node test does not run");
    }
    set
}

/// Starts the cluster with one worker, with `env` on every process (e.g. Redis, rate limits).
async fn cluster(env: &[(&str, &str)]) -> Cluster {
    cluster_with_workers(env, 1).await
}

async fn cluster_with_workers(env: &[(&str, &str)], workers: usize) -> Cluster {
    let data_dir = data_dir_on(Database::Postgres, Storage::S3).await;
    let b_dir = tempfile::tempdir().expect("node B's data directory");
    let (port_a, port_b) = (free_port(), free_port());
    let public_url = format!("http://127.0.0.1:{port_a}");
    let secrets = data_dir.path().join("secrets");
    let secrets = secrets.to_str().expect("a UTF-8 path");
    let b_path = b_dir.path().to_str().expect("a UTF-8 path");
    let common: Vec<(&str, &str)> = [
        ("SHUTTER_SERVER__PUBLIC_URL", public_url.as_str()),
        ("SHUTTER_SERVER__SECRETS_DIR", secrets),
    ]
    .into_iter()
    .chain(env.iter().copied())
    .collect();
    let api_node = || {
        let mut e = common.clone();
        e.push(("SHUTTER_JOBS__WORKERS", "0"));
        e
    };
    // A first (it runs the migrations and makes the secrets), then the others.
    let a = ChildServer::start(data_dir.path(), port_a, &api_node()).await;
    let mut b_env = api_node();
    b_env.push(("SHUTTER_DATA_DIR", b_path));
    let b = ChildServer::start(data_dir.path(), port_b, &b_env).await;
    let mut servers = vec![a, b];
    let mut dirs = vec![b_dir];
    for _ in 0..workers {
        let dir = tempfile::tempdir().expect("a worker's data directory");
        let path = dir.path().to_str().expect("a UTF-8 path").to_owned();
        let mut w_env = common.clone();
        w_env.push(("SHUTTER_DATA_DIR", path.as_str()));
        servers.push(ChildServer::worker(data_dir.path(), &w_env).await);
        dirs.push(dir);
    }
    Cluster {
        a: Api::child(&servers[0]),
        b: Api::child(&servers[1]),
        servers,
        dirs,
        data_dir,
    }
}

/// Creates a photo file through `create` and sends its bytes to the ticket, whose
/// `complete` (on S3) goes to `complete`; returns the file's id.
async fn upload_photo(create: &Api, complete: &Api, token: &str) -> String {
    let photo = testdata("photos/kleiber_1080x1080.jpg");
    let resp = create
        .post_json(
            "/v1/files",
            Some(token),
            &media_spec("kleiber.jpg", "image/jpeg", &photo),
        )
        .await;
    let created = expect_status(resp, StatusCode::CREATED).await;
    let id = id_of(&created["file"]);
    let resp = send_to_ticket(&complete.client, &complete.base, &created["upload"], photo).await;
    let done = expect_status(resp, StatusCode::OK).await;
    assert_eq!(done["file"]["id"], id.as_str(), "{done}");
    id
}

/// A photo uploaded through node A (ticket on A, `complete` on B) is processed by the worker,
/// and its `file.ready` reaches the owner's stream held on node B, whose token node A issued.
async fn an_upload_through_one_node_is_announced_on_another(cluster: &Cluster) {
    let (_, token) = cluster.a.register("crossing").await;
    let mut events_on_b = cluster.b.events(&token).await;
    let id = upload_photo(&cluster.a, &cluster.b, &token).await;
    let seen = events_on_b
        .until(Duration::from_secs(60), |e| {
            e["type"] == "file.ready" && e["file_id"] == id.as_str()
        })
        .await;
    assert!(
        seen.iter()
            .any(|e| e["type"] == "file.processing" && e["file_id"] == id.as_str()),
        "file.processing, published where `complete` ran, arrives too: {seen:#?}"
    );
}

/// An account deleted through node A is refused on node B at once.
async fn an_account_deleted_on_one_node_is_refused_on_the_other_at_once(cluster: &Cluster) {
    let (_, token) = cluster.a.register("leaving").await;
    let resp = cluster.b.get("/v1/users/me", Some(&token)).await;
    assert_eq!(
        resp.status(),
        StatusCode::OK,
        "node B accepts node A's token"
    );
    let resp = cluster
        .a
        .delete(
            "/v1/users/me",
            Some(&token),
            Some(&json!({"password": PASSWORD})),
        )
        .await;
    assert_eq!(resp.status(), StatusCode::NO_CONTENT);
    let resp = cluster.b.get("/v1/users/me", Some(&token)).await;
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn nodes_on_postgresql_alone_share_events_tokens_and_deletions() {
    if !postgres_configured() {
        return;
    }
    let cluster = cluster(&[]).await;
    an_upload_through_one_node_is_announced_on_another(&cluster).await;
    an_account_deleted_on_one_node_is_refused_on_the_other_at_once(&cluster).await;
}

#[tokio::test]
async fn nodes_with_redis_share_events_tokens_and_deletions() {
    let (true, Some(redis)) = (postgres_configured(), redis_url()) else {
        return;
    };
    let cluster = cluster(&[("SHUTTER_REDIS__URL", redis.as_str())]).await;
    an_upload_through_one_node_is_announced_on_another(&cluster).await;
    an_account_deleted_on_one_node_is_refused_on_the_other_at_once(&cluster).await;
}

/// With Redis the per-IP limit counts the requests to both nodes together.
#[tokio::test]
async fn with_redis_the_per_ip_limit_counts_both_nodes_together() {
    let (true, Some(redis)) = (postgres_configured(), redis_url()) else {
        return;
    };
    let cluster = cluster(&[
        ("SHUTTER_REDIS__URL", redis.as_str()),
        ("SHUTTER_RATE_LIMITS__ENABLED", "true"),
        ("SHUTTER_RATE_LIMITS__PER_IP_PER_MINUTE", "10"),
    ])
    .await;
    let ghost = uuid::Uuid::now_v7();
    let path = format!("/v1/users/{ghost}");
    let mut answers: Vec<(char, StatusCode, Value)> = Vec::new();
    for n in 0..14 {
        let (name, node) = if n % 2 == 0 {
            ('A', &cluster.a)
        } else {
            ('B', &cluster.b)
        };
        let resp = node.get(&path, None).await;
        let status = resp.status();
        let remaining = resp
            .headers()
            .get("ratelimit-remaining")
            .and_then(|v| v.to_str().ok())
            .map(|v| json!(v))
            .unwrap_or(Value::Null);
        answers.push((name, status, remaining));
    }
    let allowed = answers
        .iter()
        .filter(|(_, s, _)| *s == StatusCode::NOT_FOUND)
        .count();
    let refused = answers
        .iter()
        .filter(|(_, s, _)| *s == StatusCode::TOO_MANY_REQUESTS)
        .count();
    assert_eq!((allowed, refused), (10, 4), "{answers:?}");
    assert!(
        answers[10..]
            .iter()
            .all(|(_, s, _)| *s == StatusCode::TOO_MANY_REQUESTS),
        "both nodes refuse once the shared budget is spent: {answers:?}"
    );
}

/// A Redis of this test's own (`redis-server` on a free port, nothing saved), to stop and
/// start again.
struct OwnRedis {
    port: u16,
    child: Option<tokio::process::Child>,
}

impl OwnRedis {
    async fn start(port: u16) -> OwnRedis {
        let child = tokio::process::Command::new("redis-server")
            .args([
                "--port",
                &port.to_string(),
                "--save",
                "",
                "--appendonly",
                "no",
            ])
            .stdout(std::process::Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("redis-server starts (the Debian package redis-server)");
        let redis = OwnRedis {
            port,
            child: Some(child),
        };
        for _ in 0..100 {
            if tokio::net::TcpStream::connect(("127.0.0.1", port))
                .await
                .is_ok()
            {
                return redis;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("redis-server did not answer on port {port}");
    }

    fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/", self.port)
    }

    async fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            child.start_kill().expect("kill redis-server");
            let _ = child.wait().await;
        }
    }
}

async fn readyz(api: &Api) -> (StatusCode, Value) {
    let resp = api.get("/readyz", None).await;
    let status = resp.status();
    (status, resp.json().await.expect("readyz JSON"))
}

/// Redis going away degrades the nodes without an outage: `/readyz` stays 200 and names the
/// failed check, limited routes still answer (counting per node), a node's own events still
/// reach the streams it holds, and when Redis is back `/readyz` is `ok` again.
#[tokio::test]
async fn redis_going_away_degrades_the_nodes_without_an_outage() {
    if !postgres_configured() {
        return;
    }
    let mut redis = OwnRedis::start(free_port()).await;
    let url = redis.url();
    let cluster = cluster(&[
        ("SHUTTER_REDIS__URL", url.as_str()),
        ("SHUTTER_RATE_LIMITS__ENABLED", "true"),
    ])
    .await;
    let (status, body) = readyz(&cluster.a).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["status"], "ok", "{body}");
    assert_eq!(body["checks"]["redis"]["status"], "ok", "{body}");
    let (_, token) = cluster.a.register("degraded").await;
    let mut events_on_a = cluster.a.events(&token).await;

    redis.stop().await;
    let (status, body) = readyz(&cluster.a).await;
    assert_eq!(
        status,
        StatusCode::OK,
        "a degraded node stays ready: {body}"
    );
    assert_eq!(body["status"], "degraded", "{body}");
    assert_eq!(body["checks"]["redis"]["status"], "error", "{body}");
    assert_eq!(body["checks"]["database"]["status"], "ok", "{body}");
    let resp = cluster.a.get("/v1/users/me", Some(&token)).await;
    assert_eq!(resp.status(), StatusCode::OK, "limited routes still answer");
    assert!(
        resp.headers().contains_key("ratelimit-remaining"),
        "counted per node meanwhile"
    );
    let id = upload_photo(&cluster.a, &cluster.a, &token).await;
    events_on_a
        .until(Duration::from_secs(30), |e| {
            e["type"] == "file.processing" && e["file_id"] == id.as_str()
        })
        .await;

    let _redis_again = OwnRedis::start(redis.port).await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let (status, body) = readyz(&cluster.a).await;
        if status == StatusCode::OK && body["status"] == "ok" {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "still not ok once Redis is back: {body}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Sends a streamed request body piece by piece.
type BodySender = futures::channel::mpsc::Sender<Result<bytes::Bytes, std::io::Error>>;

/// A tus `PATCH` whose body the test sends piece by piece: the sender, and the answer to come.
fn streamed_patch(
    api: &Api,
    url: &str,
    token: &str,
    offset: usize,
) -> (
    BodySender,
    tokio::task::JoinHandle<reqwest::Result<reqwest::Response>>,
) {
    let (tx, rx) = futures::channel::mpsc::channel(1);
    let request = tus_patch_on(&api.client, url, token, offset, Vec::new())
        .body(reqwest::Body::wrap_stream(rx));
    (tx, tokio::spawn(request.send()))
}

async fn send(tx: &mut BodySender, bytes: &[u8]) {
    use futures::SinkExt;
    tx.send(Ok(bytes::Bytes::copy_from_slice(bytes)))
        .await
        .expect("the PATCH takes the bytes");
}

/// tus `HEAD` of an upload URL of `api`'s node: the offset.
async fn tus_head(api: &Api, url: &str, token: &str) -> usize {
    let resp = api
        .client
        .head(url)
        .bearer_auth(token)
        .header("Tus-Resumable", TUS)
        .send()
        .await
        .expect("HEAD");
    assert_eq!(resp.status(), StatusCode::OK, "HEAD {url}");
    resp.headers()["upload-offset"]
        .to_str()
        .expect("ASCII")
        .parse()
        .expect("a number")
}

/// `http://host:port` of an absolute URL.
fn api_base_of(url: &str) -> String {
    let after_scheme = url.find("://").map_or(0, |i| i + 3);
    let end = url[after_scheme..]
        .find('/')
        .map_or(url.len(), |i| after_scheme + i);
    url[..end].to_owned()
}

/// The same upload URL on another node.
fn on(api: &Api, url: &str) -> String {
    url.replace(&api_base_of(url), &api.base)
}

/// A tus upload whose PATCHes go to both nodes: while one node writes it, a PATCH on the
/// other is refused (one writer across nodes); PATCHes taking turns continue the same bytes
/// and digests; and when the node writing it is killed mid-PATCH, the other resumes it from
/// what is durable at once (no waiting for the dead writer to look stalled), so what was
/// acknowledged is all there and the file's bytes and SHA-256 are the ones sent.
#[tokio::test]
async fn a_tus_upload_moves_between_nodes_with_one_writer_at_a_time() {
    if !postgres_configured() {
        return;
    }
    let mut cluster = cluster(&[]).await;
    let (_, token) = cluster.a.register("roaming").await;
    const MIB: usize = 1 << 20;
    let data = pseudo_random(20 * MIB, 12);
    let metadata = tus_metadata(&[
        ("filename", "roaming.bin"),
        ("filetype", "application/octet-stream"),
    ]);
    let (url, id) = tus_create_on(
        &cluster.a.client,
        &cluster.a.base,
        &token,
        data.len(),
        &metadata,
    )
    .await;
    let (url_a, url_b) = (on(&cluster.a, &url), on(&cluster.b, &url));

    // 0..6 MiB through A.
    let resp = tus_patch_on(
        &cluster.a.client,
        &url_a,
        &token,
        0,
        data[..6 * MIB].to_vec(),
    )
    .send()
    .await
    .expect("PATCH on A");
    assert_eq!(resp.status(), StatusCode::NO_CONTENT);

    // 6..12 MiB through B, streamed; half-way, a PATCH on A at the offset HEAD reports then
    // is refused: B holds the upload.
    let (mut tx, answer) = streamed_patch(&cluster.b, &url_b, &token, 6 * MIB);
    send(&mut tx, &data[6 * MIB..9 * MIB]).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let offset = tus_head(&cluster.a, &url_a, &token).await;
    let resp = tus_patch_on(
        &cluster.a.client,
        &url_a,
        &token,
        offset,
        data[offset..offset + MIB].to_vec(),
    )
    .send()
    .await
    .expect("PATCH on A");
    assert_eq!(
        resp.status(),
        StatusCode::CONFLICT,
        "a second writer on another node is refused"
    );
    send(&mut tx, &data[9 * MIB..12 * MIB]).await;
    drop(tx);
    let resp = answer.await.expect("the PATCH task").expect("PATCH on B");
    assert_eq!(resp.status(), StatusCode::NO_CONTENT);
    assert_eq!(
        resp.headers()["upload-offset"].to_str().unwrap(),
        (12 * MIB).to_string()
    );

    // Taking turns is not a take-over: no node reset the upload or re-read its bytes.
    for node in &cluster.servers[..2] {
        assert!(
            !node.log().contains("interrupted upload recovered"),
            "a PATCH after another node's finished PATCH recovered nothing: {}",
            node.log()
        );
    }

    // 12..20 MiB through A, which is killed before the PATCH ends; what A acknowledged is
    // kept, and B resumes at once from what is durable.
    let (mut tx, _answer) = streamed_patch(&cluster.a, &url_a, &token, 12 * MIB);
    send(&mut tx, &data[12 * MIB..19 * MIB]).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    cluster.servers[0].kill9().await;
    let durable = tus_head(&cluster.b, &url_b, &token).await;
    assert!(
        (12 * MIB..=19 * MIB).contains(&durable),
        "resumes at or past what was acknowledged: {durable}"
    );
    let resp = tus_patch_on(
        &cluster.b.client,
        &url_b,
        &token,
        durable,
        data[durable..].to_vec(),
    )
    .send()
    .await
    .expect("PATCH on B");
    assert_eq!(resp.status(), StatusCode::NO_CONTENT);

    let file = cluster
        .b
        .get(&format!("/v1/files/{id}"), Some(&token))
        .await;
    let file = expect_status(file, StatusCode::OK).await;
    assert_eq!(file["sha256"], sha256_hex(&data), "{file}");
    let bytes = download_on(&cluster.b.client, &cluster.b.base, Some(&token), &id).await;
    assert!(bytes == data, "the stored bytes are the ones sent");
}

/// 10 000 likes (100 users × 100 posts), sent to both nodes at once, end with every post's
/// `like_count` exactly 100 on both: each node recounts from the rows the posts liked
/// through it. The 100 photos are processed by two workers, each job by exactly one.
#[tokio::test]
async fn ten_thousand_likes_through_both_nodes_are_counted_exactly() {
    use futures::StreamExt;
    if !postgres_configured() {
        return;
    }
    const USERS: usize = 100;
    const POSTS: usize = 100;
    let cluster =
        cluster_with_workers(&[("SHUTTER_TIERS__BASIC__POSTS_PER_MINUTE", "1000")], 2).await;
    let (_, author) = cluster.a.register("author").await;
    let photo = testdata("photos/kleiber_1080x1080.jpg");
    let posts: Vec<String> = futures::stream::iter(0..POSTS)
        .map(|n| {
            let (api, author, photo) = (&cluster.a, &author, &photo);
            async move {
                let (post, uploads) = api
                    .create_photo_post(
                        author,
                        &format!("post {n}"),
                        &[("p.jpg", "image/jpeg", photo)],
                    )
                    .await;
                api.put_ok(&uploads[0], photo).await;
                id_of(&post)
            }
        })
        .buffer_unordered(8)
        .collect()
        .await;
    for id in &posts {
        cluster
            .a
            .wait_post(&author, id, Duration::from_secs(120), |p| {
                p["status"] == "published"
            })
            .await;
    }
    let mut done_by: std::collections::HashMap<String, usize> = Default::default();
    for worker in &cluster.servers[2..] {
        for line in worker.log().lines().filter(|l| l.contains("\"job done\"")) {
            let entry: Value = serde_json::from_str(line).expect("a JSON log line");
            if entry["kind"] == "process_file" {
                let job = entry["job.id"].as_str().expect("job.id").to_owned();
                *done_by.entry(job).or_default() += 1;
            }
        }
    }
    assert_eq!(
        done_by.len(),
        POSTS,
        "a process_file job per photo: {done_by:?}"
    );
    assert!(
        done_by.values().all(|n| *n == 1),
        "each job ran once: {done_by:?}"
    );
    let likers: Vec<String> = futures::stream::iter(0..USERS)
        .map(|n| {
            let api = if n % 2 == 0 { &cluster.a } else { &cluster.b };
            async move { api.register(&format!("liker{n}")).await.1 }
        })
        .buffer_unordered(8)
        .collect()
        .await;
    let pairs: Vec<(usize, usize)> = (0..USERS)
        .flat_map(|u| (0..POSTS).map(move |p| (u, p)))
        .collect();
    futures::stream::iter(pairs)
        .map(|(u, p)| {
            let api = if (u + p) % 2 == 0 {
                &cluster.a
            } else {
                &cluster.b
            };
            let (token, post) = (&likers[u], &posts[p]);
            async move {
                let resp = api
                    .client
                    .put(api.url(&format!("/v1/posts/{post}/like")))
                    .bearer_auth(token)
                    .send()
                    .await
                    .expect("PUT like");
                assert_eq!(resp.status(), StatusCode::NO_CONTENT, "like {u} → {p}");
            }
        })
        .buffer_unordered(32)
        .collect::<Vec<()>>()
        .await;
    for node in [&cluster.a, &cluster.b] {
        for id in &posts {
            let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
            loop {
                let post = node.post_of(Some(&author), id).await;
                if post["like_count"] == USERS {
                    break;
                }
                assert!(
                    tokio::time::Instant::now() < deadline,
                    "like_count of {id} on {} stays {}",
                    node.base,
                    post["like_count"]
                );
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
}

/// Jobs queued while no worker runs are taken premium first by every worker: each worker's
/// finished jobs, in its own order, never go from a basic job back to a premium one.
#[tokio::test]
async fn workers_on_many_nodes_take_premium_jobs_first() {
    use futures::StreamExt;
    if !postgres_configured() {
        return;
    }
    const EACH: usize = 6;
    let mut cluster = cluster_with_workers(&[], 0).await;
    let (_, basic) = cluster.a.register("basicuser").await;
    cluster.a.register("premiumuser").await;
    let out = crate::helpers::run_shutter(
        cluster.data_dir.path(),
        &["admin", "set-tier", "premiumuser", "premium"],
        &[],
    )
    .await;
    crate::helpers::assert_success(&out, "shutter admin set-tier");
    let premium = cluster.b.login("premiumuser").await;
    // Basic photos first, so that a worker taking jobs in arrival order would show it.
    for token in [&basic, &premium] {
        futures::stream::iter(0..EACH)
            .map(|_| upload_photo(&cluster.a, &cluster.b, token))
            .buffer_unordered(4)
            .collect::<Vec<_>>()
            .await;
    }
    for _ in 0..2 {
        let dir = tempfile::tempdir().expect("a worker's data directory");
        let path = dir.path().to_str().expect("a UTF-8 path").to_owned();
        let secrets = cluster.data_dir.path().join("secrets");
        let env = [
            ("SHUTTER_DATA_DIR", path.as_str()),
            (
                "SHUTTER_SERVER__SECRETS_DIR",
                secrets.to_str().expect("UTF-8"),
            ),
        ];
        let worker = ChildServer::worker(cluster.data_dir.path(), &env).await;
        cluster.servers.push(worker);
        cluster.dirs.push(dir);
    }
    let deadline = tokio::time::Instant::now() + Duration::from_secs(120);
    loop {
        let done: Vec<Vec<i64>> = cluster.servers[2..]
            .iter()
            .map(|w| {
                w.log()
                    .lines()
                    .filter(|l| l.contains("\"job done\""))
                    .map(|l| {
                        let entry: Value = serde_json::from_str(l).expect("a JSON log line");
                        entry["priority"].as_i64().expect("priority")
                    })
                    .collect()
            })
            .collect();
        if done.iter().map(Vec::len).sum::<usize>() == 2 * EACH {
            for order in &done {
                assert!(
                    order.windows(2).all(|w| w[0] >= w[1]),
                    "a worker took a basic job before a premium one: {done:?}"
                );
            }
            let top = done.iter().flatten().max().copied();
            let bottom = done.iter().flatten().min().copied();
            assert!(top > bottom, "premium jobs rank above basic ones: {done:?}");
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the workers did not run every job: {done:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}
