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
use crate::upload_helpers::{send_to_ticket, testdata, ChildServer};

const REDIS_URL_VAR: &str = "SHUTTER_TEST_REDIS_URL";

/// Two API nodes and a worker on one database and bucket.
struct Cluster {
    a: Api,
    b: Api,
    _servers: Vec<ChildServer>,
    _b_dir: tempfile::TempDir,
    _worker_dir: tempfile::TempDir,
    _data_dir: TestDataDir,
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

/// Starts the cluster, with `env` on every process (e.g. Redis, rate limits).
async fn cluster(env: &[(&str, &str)]) -> Cluster {
    let data_dir = data_dir_on(Database::Postgres, Storage::S3).await;
    let b_dir = tempfile::tempdir().expect("node B's data directory");
    let worker_dir = tempfile::tempdir().expect("the worker's data directory");
    let (port_a, port_b) = (free_port(), free_port());
    let public_url = format!("http://127.0.0.1:{port_a}");
    let secrets = data_dir.path().join("secrets");
    let secrets = secrets.to_str().expect("a UTF-8 path");
    let b_path = b_dir.path().to_str().expect("a UTF-8 path");
    let worker_path = worker_dir.path().to_str().expect("a UTF-8 path");
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
    let mut w_env = common.clone();
    w_env.push(("SHUTTER_DATA_DIR", worker_path));
    let worker = ChildServer::worker(data_dir.path(), &w_env).await;
    Cluster {
        a: Api::child(&a),
        b: Api::child(&b),
        _servers: vec![a, b, worker],
        _b_dir: b_dir,
        _worker_dir: worker_dir,
        _data_dir: data_dir,
    }
}

/// A photo uploaded through node A (ticket on A, `complete` on B) is processed by the worker,
/// and its `file.ready` reaches the owner's stream held on node B, whose token node A issued.
async fn an_upload_through_one_node_is_announced_on_another(cluster: &Cluster) {
    let (_, token) = cluster.a.register("crossing").await;
    let mut events_on_b = cluster.b.events(&token).await;
    let photo = testdata("photos/kleiber_1080x1080.jpg");
    let resp = cluster
        .a
        .post_json(
            "/v1/files",
            Some(&token),
            &media_spec("kleiber.jpg", "image/jpeg", &photo),
        )
        .await;
    let created = expect_status(resp, StatusCode::CREATED).await;
    let id = id_of(&created["file"]);
    let resp = send_to_ticket(
        &cluster.b.client,
        &cluster.b.base,
        &created["upload"],
        photo,
    )
    .await;
    let done = expect_status(resp, StatusCode::OK).await;
    assert_eq!(done["file"]["id"], id.as_str(), "{done}");
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
