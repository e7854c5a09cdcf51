//! Hostile photos (shared/testdata/hostile) posted against the real binary: each fails with
//! its code, keeps no bytes, and the server stays healthy with bounded memory.

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::*;
use crate::photo_helpers::*;
use crate::upload_helpers::{testdata, ChildServer};

const MIB: u64 = 1024;

/// The file name of a test data path.
fn base(path: &str) -> &str {
    path.rsplit('/').next().unwrap_or(path)
}

#[tokio::test]
async fn hostile_photos_fail_with_their_codes_and_the_server_stays_healthy() {
    let data = crate::backend::data_dir().await;
    let server = ChildServer::start(data.path(), free_port(), &[]).await;
    let api = Api::child(&server);
    let (alice_id, alice) = api.register("alice").await;
    let mut created = 0;

    // Headers fine, data broken: accepted at upload, failed by processing; the post fails.
    for (name, ct) in [
        ("hostile/truncated.jpg", "image/jpeg"),
        ("hostile/bad_crc.png", "image/png"),
    ] {
        let bytes = testdata(name);
        let file = base(name);
        let (post, tickets) = api
            .create_photo_post(&alice, name, &[(file, ct, &bytes)])
            .await;
        created += 1;
        let file_id = tickets[0]["file_id"].as_str().unwrap().to_owned();
        api.put_ok(&tickets[0], &bytes).await;
        let post = api.wait_settled(&alice, &id_of(&post), "failed").await;
        let media = &post["media"][0];
        assert_eq!(media["status"], "failed", "{name}: {media}");
        assert_eq!(
            media["failure"]["code"], "content_mismatch",
            "{name}: {media}"
        );
        assert!(media["url"].is_null(), "{name}: {media}");
        assert!(media["variants"].is_null(), "{name}: {media}");
        let file = api.file_of(&alice, &file_id).await;
        assert_eq!(file["status"], "failed", "{name}: {file}");
        assert_eq!(
            file["failure"]["code"], "content_mismatch",
            "{name}: {file}"
        );
        wait_bytes_erased(data.path(), &file_id, Duration::from_secs(10)).await;
    }

    // Refused as the bytes arrive, before any decoding.
    for (name, ct, code, pixels) in [
        (
            "hostile/text_named.jpg",
            "image/jpeg",
            "content_mismatch",
            None,
        ),
        (
            "hostile/png_named.jpg",
            "image/jpeg",
            "content_mismatch",
            None,
        ),
        ("hostile/empty.jpg", "image/jpeg", "content_mismatch", None),
        (
            "hostile/bomb_20000x20000.png",
            "image/png",
            "image_too_large",
            Some(20_000u64 * 20_000),
        ),
        (
            "hostile/header_bomb_65000x65000.jpg",
            "image/jpeg",
            "image_too_large",
            Some(65_000u64 * 65_000),
        ),
    ] {
        let bytes = testdata(name);
        let (_, tickets) = api
            .create_photo_post(&alice, name, &[(base(name), ct, &bytes)])
            .await;
        created += 1;
        let file_id = tickets[0]["file_id"].as_str().unwrap().to_owned();
        let body = assert_problem(api.put(&tickets[0], &bytes).await, 422, code).await;
        if let Some(actual) = pixels {
            assert_eq!(
                body["limit"],
                json!({"name": "max_pixels", "value": 100_000_000u64, "actual": actual}),
                "{name}: {body}"
            );
        }
        let file = api.file_of(&alice, &file_id).await;
        assert_eq!(file["status"], "failed", "{name}: {file}");
        assert_eq!(file["failure"]["code"], code, "{name}: {file}");
        assert!(file["url"].is_null(), "{name}: {file}");
        assert!(
            !bytes_kept(data.path(), &file_id).await,
            "{name}: no bytes kept"
        );
    }

    // Never post media, whatever they are declared as.
    for (name, ct) in [
        ("hostile/animated.gif", "image/gif"),
        ("hostile/script.svg", "image/svg+xml"),
        ("hostile/polyglot_gif_html.gif", "image/gif"),
        ("hostile/polyglot_gif_html.gif", "text/html"),
    ] {
        let bytes = testdata(name);
        let resp = api
            .post_json(
                "/v1/posts",
                Some(&alice),
                &json!({"caption": name, "media": [media_spec(base(name), ct, &bytes)]}),
            )
            .await;
        assert_problem(resp, 415, "unsupported_media_type").await;
    }
    let posts = api
        .list_ids(&format!("/v1/users/{alice_id}/posts"), Some(&alice))
        .await;
    assert_eq!(posts.len(), created, "the refused media created no post");
    assert_eq!(api.list_ids("/v1/files", Some(&alice)).await.len(), created);

    // Healthy, and a real photo still goes through.
    assert_eq!(api.get("/healthz", None).await.status(), StatusCode::OK);
    assert_eq!(api.get("/readyz", None).await.status(), StatusCode::OK);
    let jpeg = testdata("photos/kleiber_1080x1080.jpg");
    let (post, tickets) = api
        .create_photo_post(&alice, "fine", &[("fine.jpg", "image/jpeg", &jpeg)])
        .await;
    api.put_ok(&tickets[0], &jpeg).await;
    let post = api.wait_settled(&alice, &id_of(&post), "published").await;
    assert_processed(&api, &post["media"][0], 1080, 1080).await;

    // A 400-megapixel decode would have needed well over a gigabyte.
    let peak = server.proc_kib("VmHWM");
    assert!(
        peak < 300 * MIB,
        "the server's peak memory stays under 300 MiB: {} MiB",
        peak / MIB
    );
}
