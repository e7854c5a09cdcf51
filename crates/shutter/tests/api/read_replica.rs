//! `database.read_url`: the reads that may lag go to a PostgreSQL read replica, everything a
//! request must see its own writes in stays on the primary, and the replica going away only
//! degrades the node.
//!
//! The stand-in replica is a second database with the same schema and none of the primary's
//! rows — a replica that has not caught up at all — so where a read went shows in what it
//! answers. Needs `SHUTTER_TEST_POSTGRES_URL` (without it the test says so and does not run).

use reqwest::StatusCode;
use serde_json::Value;

use crate::backend::{data_dir_on, Database, ScratchDatabase, Storage};
use crate::helpers::{assert_problem, assert_success, expect_status, run_shutter, spawn_app_in};
use crate::social_helpers::{follow, member};

#[tokio::test]
async fn lagging_reads_go_to_the_replica_and_losing_it_only_degrades() {
    if std::env::var("SHUTTER_TEST_POSTGRES_URL").map_or(true, |u| u.trim().is_empty()) {
        eprintln!("SHUTTER_TEST_POSTGRES_URL is not set: the read-replica test does not run");
        return;
    }
    let data_dir = data_dir_on(Database::Postgres, Storage::Requested).await;
    let replica = ScratchDatabase::create().await;
    let out = run_shutter(
        data_dir.path(),
        &["migrate"],
        &[("SHUTTER_DATABASE__URL", replica.url())],
    )
    .await;
    assert_success(&out, "shutter migrate on the replica");
    let replica_url = replica.url().to_owned();
    let app = spawn_app_in(data_dir, |c| c.database.read_url = Some(replica_url)).await;

    let alice = member(&app, "alice").await;
    let bob = member(&app, "bob").await;
    follow(&app, &bob, &alice).await;

    // What a request must see its own writes in comes from the primary.
    let me = expect_status(
        app.get("/v1/users/me", Some(&bob.token)).await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(me["following_count"], 1, "{me}");
    let profile = expect_status(
        app.get(&format!("/v1/users/{}", alice.id()), None).await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(profile["followers_count"], 1, "{profile}");

    // Lists and feeds come from the replica, which has none of it yet.
    let followers = expect_status(
        app.get(&format!("/v1/users/{}/followers", alice.id()), None)
            .await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(followers["items"], Value::Array(Vec::new()), "{followers}");
    let feed = expect_status(app.get("/v1/feed", Some(&bob.token)).await, StatusCode::OK).await;
    assert_eq!(feed["items"], Value::Array(Vec::new()), "{feed}");

    let ready = expect_status(app.get("/readyz", None).await, StatusCode::OK).await;
    assert_eq!(
        ready["checks"]["database_replica"]["status"], "ok",
        "{ready}"
    );

    // The replica goes away: its reads are 503 with Retry-After, the rest answers, and the
    // node stays ready, degraded.
    replica.drop_now().await;
    let resp = app
        .get(&format!("/v1/users/{}/followers", alice.id()), None)
        .await;
    assert!(resp.headers().contains_key("retry-after"), "{resp:?}");
    assert_problem(resp, 503, "service_unavailable").await;
    let me = expect_status(
        app.get("/v1/users/me", Some(&bob.token)).await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(me["following_count"], 1, "{me}");
    let ready = expect_status(app.get("/readyz", None).await, StatusCode::OK).await;
    assert_eq!(ready["status"], "degraded", "{ready}");
    assert_eq!(
        ready["checks"]["database_replica"]["status"], "error",
        "{ready}"
    );
    assert_eq!(ready["checks"]["database"]["status"], "ok", "{ready}");
}
