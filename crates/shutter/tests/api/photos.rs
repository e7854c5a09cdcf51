//! Posts with photos (SPEC 3 and 4): processing into variants, orientation, visibility of
//! unpublished posts, the limits a post's photos count against, attaching uploaded files,
//! idempotent creation, and deletion that takes the files and their bytes along.

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::helpers::*;
use crate::photo_helpers::*;
use crate::upload_helpers::{note_ticket_owners, sha256_hex, testdata};

const JPEG: &str = "photos/kleiber_1080x1080.jpg";
const GRAY_PNG: &str = "photos/path_gray_1200x750.png";
const WEBP: &str = "photos/onestandsout_1200x750.webp";
const ROTATED: &str = "photos/path_exif_orientation6_gps.jpg";

fn file_ids(post: &Value) -> Vec<String> {
    post["media"]
        .as_array()
        .expect("media")
        .iter()
        .map(|m| m["file_id"].as_str().expect("file_id").to_owned())
        .collect()
}

fn ticket_ids(tickets: &[Value]) -> Vec<String> {
    tickets
        .iter()
        .map(|t| t["file_id"].as_str().expect("ticket file_id").to_owned())
        .collect()
}

#[tokio::test]
async fn a_post_with_three_photos_goes_from_pending_to_published() {
    let app = spawn_app().await;
    let api = Api::of(&app);
    let (_, alice) = api.register("alice").await;
    let (_, bob) = api.register("bob").await;
    let mut events = api.events(&alice).await;

    let photos = [
        ("bird.jpg", "image/jpeg", testdata(JPEG), (1080, 1080)),
        ("path.png", "image/png", testdata(GRAY_PNG), (1200, 750)),
        ("moss.webp", "image/webp", testdata(WEBP), (1200, 750)),
    ];
    let declared: Vec<(&str, &str, &[u8])> = photos
        .iter()
        .map(|(n, ct, b, _)| (*n, *ct, b.as_slice()))
        .collect();
    let (post, tickets) = api
        .create_photo_post(&alice, "three photos", &declared)
        .await;
    let id = id_of(&post);
    assert_eq!(post["status"], "pending", "{post}");
    let ids = ticket_ids(&tickets);
    assert_eq!(file_ids(&post), ids, "media in the order given: {post}");
    for (m, (_, ct, _, _)) in post["media"].as_array().unwrap().iter().zip(&photos) {
        assert_eq!(m["content_type"], *ct, "{m}");
        assert_eq!(m["status"], "pending", "{m}");
        assert!(m["url"].is_null(), "no URL before the bytes: {m}");
    }
    // Not published yet: others do not see it.
    let resp = api.get(&format!("/v1/posts/{id}"), Some(&bob)).await;
    assert_problem(resp, 404, "not_found").await;

    // Upload the last photo first: the order of the post stays the order given.
    for (ticket, (_, _, bytes, _)) in tickets.iter().zip(&photos).rev() {
        api.put_ok(ticket, bytes).await;
    }
    let published = api.wait_settled(&alice, &id, "published").await;
    assert_eq!(file_ids(&published), ids, "order kept: {published}");
    for (m, (_, ct, bytes, (w, h))) in published["media"].as_array().unwrap().iter().zip(&photos) {
        assert_eq!(m["content_type"], *ct, "{m}");
        assert!(m["failure"].is_null(), "{m}");
        assert_processed(&api, m, *w, *h).await;
        // The original is kept byte for byte.
        let (status, _, original) = api.fetch(m["url"].as_str().unwrap()).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(
            sha256_hex(&original),
            sha256_hex(bytes),
            "the original is the uploaded bytes"
        );
    }

    // Now everyone sees it, with working variant URLs of their own.
    let seen_by_bob = api.post_of(Some(&bob), &id).await;
    assert_eq!(seen_by_bob["status"], "published");
    assert_eq!(file_ids(&seen_by_bob), ids);
    let anonymous = api.post_of(None, &id).await;
    let thumb = anonymous["media"][1]["variants"]["thumb"]["url"]
        .as_str()
        .expect("a thumb URL for anyone");
    let (status, _, bytes) = api.fetch(thumb).await;
    assert_eq!(status, StatusCode::OK);
    assert_clean_jpeg(&bytes, 150, 150, "anonymous thumb");

    // A processed image's File carries the variants and blurhash too.
    let file = api.file_of(&alice, &ids[1]).await;
    assert_processed(&api, &file, 1200, 750).await;

    // The event stream told the story: each photo processing then ready, then the post.
    let seen = events
        .until(Duration::from_secs(30), |e| {
            e["type"] == "post.published" && e["post_id"] == id.as_str()
        })
        .await;
    let published_at = seen.len() - 1;
    for file_id in &ids {
        assert_eq!(
            count_events(&seen, "file.processing", "file_id", file_id),
            1,
            "one file.processing for {file_id}: {seen:#?}"
        );
        let ready: Vec<usize> = seen
            .iter()
            .enumerate()
            .filter(|(_, e)| e["type"] == "file.ready" && e["file_id"] == file_id.as_str())
            .map(|(i, _)| i)
            .collect();
        assert_eq!(ready.len(), 1, "one file.ready for {file_id}: {seen:#?}");
        assert!(ready[0] < published_at, "ready before published: {seen:#?}");
    }
    assert_eq!(count_events(&seen, "post.published", "post_id", &id), 1);
    assert!(seen.iter().all(|e| e["type"] != "post.failed"), "{seen:#?}");
}

#[tokio::test]
async fn exif_orientation_gives_a_portrait_photo_and_variants_without_metadata() {
    let app = spawn_app().await;
    let api = Api::of(&app);
    let (_, alice) = api.register("alice").await;
    let photo = testdata(ROTATED);

    // The file itself is stored landscape, turned by EXIF, with GPS: the checks below see it.
    let stored = jpeg_info(&photo);
    assert_eq!((stored.width, stored.height), (1600, 1000));
    assert!(stored.markers.contains(&0xE1), "the original has APP1");
    let exif = exif_of(&photo).expect("the original has EXIF");
    let orientation = exif
        .get_field(exif::Tag::Orientation, exif::In::PRIMARY)
        .and_then(|f| f.value.get_uint(0));
    assert_eq!(orientation, Some(6));
    assert!(exif
        .get_field(exif::Tag::GPSLatitude, exif::In::PRIMARY)
        .is_some());

    let (post, tickets) = api
        .create_photo_post(&alice, "turned", &[("turned.jpg", "image/jpeg", &photo)])
        .await;
    let put = api.put_ok(&tickets[0], &photo).await;
    assert_eq!(
        (put["width"].clone(), put["height"].clone()),
        (json!(1000), json!(1600)),
        "the displayed size from the header: {put}"
    );
    let published = api.wait_settled(&alice, &id_of(&post), "published").await;
    let media = &published["media"][0];
    assert_processed(&api, media, 1000, 1600).await;
    for name in ["w640", "w1080"] {
        let v = &media["variants"][name];
        assert!(
            v["height"].as_u64() > v["width"].as_u64(),
            "{name} is portrait: {v}"
        );
    }
    assert_eq!(media["variants"]["w640"]["height"], 1024);
    assert_eq!(
        (
            media["variants"]["w1080"]["width"].clone(),
            media["variants"]["w1080"]["height"].clone()
        ),
        (json!(1000), json!(1600)),
        "never upscaled"
    );

    let file = api
        .file_of(&alice, tickets[0]["file_id"].as_str().unwrap())
        .await;
    assert_processed(&api, &file, 1000, 1600).await;
}

#[tokio::test]
async fn unpublished_posts_are_visible_to_their_author_only() {
    let app = spawn_app().await;
    let api = Api::of(&app);
    let (alice_id, alice) = api.register("alice").await;
    let (_, bob) = api.register("bob").await;
    let photo = testdata(JPEG);
    let truncated = testdata("hostile/truncated.jpg");
    let posts = format!("/v1/users/{alice_id}/posts");

    let (pending, pending_tickets) = api
        .create_photo_post(&alice, "soon", &[("a.jpg", "image/jpeg", &photo)])
        .await;
    let pending_id = id_of(&pending);
    let (failing, failing_tickets) = api
        .create_photo_post(&alice, "broken", &[("t.jpg", "image/jpeg", &truncated)])
        .await;
    let failing_id = id_of(&failing);
    api.put_ok(&failing_tickets[0], &truncated).await;
    let failed = api.wait_settled(&alice, &failing_id, "failed").await;
    assert_eq!(failed["media"][0]["status"], "failed", "{failed}");
    assert_eq!(
        failed["media"][0]["failure"]["code"], "content_mismatch",
        "{failed}"
    );
    assert!(failed["media"][0]["url"].is_null(), "{failed}");

    let own = api.post_of(Some(&alice), &pending_id).await;
    assert_eq!(own["status"], "pending");
    for id in [&pending_id, &failing_id] {
        for token in [Some(bob.as_str()), None] {
            let resp = api.get(&format!("/v1/posts/{id}"), token).await;
            assert_problem(resp, 404, "not_found").await;
            let resp = api.get(&format!("/v1/posts/{id}/comments"), token).await;
            assert_problem(resp, 404, "not_found").await;
        }
    }
    let resp = api
        .post_json(
            &format!("/v1/posts/{pending_id}/comments"),
            Some(&bob),
            &json!({"text": "first!"}),
        )
        .await;
    assert_problem(resp, 404, "not_found").await;

    let mine = api.list_ids(&posts, Some(&alice)).await;
    assert_eq!(
        mine,
        vec![failing_id.clone(), pending_id.clone()],
        "the author sees both"
    );
    assert!(api.list_ids(&posts, Some(&bob)).await.is_empty());
    assert!(api.list_ids(&posts, None).await.is_empty());

    // Published, it shows to everyone; the failed one still does not.
    api.put_ok(&pending_tickets[0], &photo).await;
    api.wait_settled(&alice, &pending_id, "published").await;
    assert_eq!(
        api.post_of(Some(&bob), &pending_id).await["status"],
        "published"
    );
    assert_eq!(api.post_of(None, &pending_id).await["status"], "published");
    assert_eq!(
        api.list_ids(&posts, Some(&bob)).await,
        vec![pending_id.clone()]
    );
    assert_eq!(api.list_ids(&posts, None).await, vec![pending_id.clone()]);
    let resp = api
        .get(&format!("/v1/posts/{failing_id}"), Some(&bob))
        .await;
    assert_problem(resp, 404, "not_found").await;
}

/// SPEC 3: "if any media fails, failed" — also when the photo is refused as it is uploaded.
#[tokio::test]
async fn a_photo_refused_at_upload_fails_its_post() {
    let app = spawn_app().await;
    let api = Api::of(&app);
    let (_, alice) = api.register("alice").await;
    let mut events = api.events(&alice).await;
    let text = testdata("hostile/text_named.jpg");
    let (post, tickets) = api
        .create_photo_post(&alice, "not a photo", &[("t.jpg", "image/jpeg", &text)])
        .await;
    let id = id_of(&post);
    let resp = api.put(&tickets[0], &text).await;
    assert_problem(resp, 422, "content_mismatch").await;
    let post = api
        .wait_post(&alice, &id, Duration::from_secs(15), |p| {
            p["status"] != "pending"
        })
        .await;
    assert_eq!(post["status"], "failed", "{post}");
    assert_eq!(post["media"][0]["failure"]["code"], "content_mismatch");
    let seen = events
        .until(Duration::from_secs(10), |e| e["type"] == "post.failed")
        .await;
    assert_eq!(seen.last().unwrap()["post_id"], id.as_str(), "{seen:#?}");
}

#[tokio::test]
async fn a_posts_photos_count_against_the_upload_limits_all_or_nothing() {
    let app = spawn_app_with(|c| {
        c.tiers.basic.max_concurrent_uploads = 2;
        c.tiers.basic.storage_quota = shutter_core::config::ByteSize(1_000_000);
    })
    .await;
    let api = Api::of(&app);
    let (alice_id, alice) = api.register("alice").await;
    let (bob_id, bob) = api.register("bob").await;
    let photo = |n: usize, size: u64| json!({"filename": format!("p{n}.jpg"), "content_type": "image/jpeg", "size": size});
    let nothing_created = |user_id: String, token: String, files: usize| {
        let api = api.clone();
        async move {
            let posts = api
                .list_ids(&format!("/v1/users/{user_id}/posts"), Some(&token))
                .await;
            assert!(posts.is_empty(), "no post was created: {posts:?}");
            let listed = api.list_ids("/v1/files", Some(&token)).await;
            assert_eq!(listed.len(), files, "files: {listed:?}");
            let me =
                expect_status(api.get("/v1/users/me", Some(&token)).await, StatusCode::OK).await;
            assert_eq!(me["posts_count"], 0, "{me}");
        }
    };

    // Eleven photos are too many, however they come.
    let eleven: Vec<Value> = (0..11).map(|n| photo(n, 100)).collect();
    let resp = api
        .post_json(
            "/v1/posts",
            Some(&alice),
            &json!({"caption": "many", "media": eleven}),
        )
        .await;
    assert_invalid_field(resp, "media").await;
    let ghosts: Vec<String> = (0..3).map(|_| uuid::Uuid::now_v7().to_string()).collect();
    let eight: Vec<Value> = (0..8).map(|n| photo(n, 100)).collect();
    let resp = api
        .post_json(
            "/v1/posts",
            Some(&alice),
            &json!({"caption": "many", "media": eight, "file_ids": ghosts}),
        )
        .await;
    assert_problem(resp, 400, "validation_failed").await;
    nothing_created(alice_id.clone(), alice.clone(), 0).await;

    // Three photos with room for two open uploads: refused whole.
    let three: Vec<Value> = (0..3).map(|n| photo(n, 100)).collect();
    let resp = api
        .post_json(
            "/v1/posts",
            Some(&alice),
            &json!({"caption": "three", "media": three}),
        )
        .await;
    let body = assert_problem(resp, 429, "too_many_uploads").await;
    assert_eq!(
        body["limit"],
        json!({"name": "max_concurrent_uploads", "value": 2, "actual": 3}),
        "{body}"
    );
    nothing_created(alice_id.clone(), alice.clone(), 0).await;

    // One upload already open and two photos: over as well.
    let resp = api
        .post_json(
            "/v1/files",
            Some(&alice),
            &json!({"filename": "open.bin", "size": 10, "content_type": "application/octet-stream"}),
        )
        .await;
    expect_status(resp, StatusCode::CREATED).await;
    let two: Vec<Value> = (0..2).map(|n| photo(n, 100)).collect();
    let resp = api
        .post_json(
            "/v1/posts",
            Some(&alice),
            &json!({"caption": "two", "media": two}),
        )
        .await;
    let body = assert_problem(resp, 429, "too_many_uploads").await;
    assert_eq!(body["limit"]["actual"], 3, "{body}");
    nothing_created(alice_id, alice, 1).await;

    // Over the quota, counted with the declared sizes: refused whole too.
    let big: Vec<Value> = (0..2).map(|n| photo(n, 600_000)).collect();
    let resp = api
        .post_json(
            "/v1/posts",
            Some(&bob),
            &json!({"caption": "big", "media": big}),
        )
        .await;
    let body = assert_problem(resp, 403, "quota_exceeded").await;
    assert_eq!(
        body["limit"],
        json!({"name": "storage_quota", "value": 1_000_000, "actual": 1_200_000}),
        "{body}"
    );
    nothing_created(bob_id.clone(), bob.clone(), 0).await;

    // Within both limits it goes through.
    let fits: Vec<Value> = (0..2).map(|n| photo(n, 400_000)).collect();
    let resp = api
        .post_json(
            "/v1/posts",
            Some(&bob),
            &json!({"caption": "fits", "media": fits}),
        )
        .await;
    let body = expect_status(resp, StatusCode::CREATED).await;
    assert_eq!(body["uploads"].as_array().unwrap().len(), 2, "{body}");
    assert_eq!(api.list_ids("/v1/files", Some(&bob)).await.len(), 2);
}

#[tokio::test]
async fn uploaded_images_can_be_attached_once_and_only_by_their_owner() {
    let app = spawn_app().await;
    let api = Api::of(&app);
    let (alice_id, alice) = api.register("alice").await;
    let (_, bob) = api.register("bob").await;
    let jpeg = testdata(JPEG);
    let webp = testdata(WEBP);

    let ready = api
        .upload_image(&alice, "bird.jpg", "image/jpeg", &jpeg)
        .await;
    let ready_id = id_of(&ready);
    let resp = api
        .post_json(
            "/v1/posts",
            Some(&alice),
            &json!({"caption": "attached", "file_ids": [ready_id]}),
        )
        .await;
    let body = expect_status(resp, StatusCode::CREATED).await;
    assert_eq!(body["uploads"], json!([]), "nothing to upload: {body}");
    let post = &body["post"];
    assert_eq!(post["status"], "published", "published at once: {post}");
    assert_eq!(file_ids(post), vec![ready_id.clone()]);
    assert_processed(&api, &post["media"][0], 1080, 1080).await;
    let seen_by_bob = api.post_of(Some(&bob), &id_of(post)).await;
    assert_eq!(seen_by_bob["status"], "published");

    // What cannot be attached, each named by its index; nothing is created.
    let bobs = id_of(
        &api.upload_image(&bob, "moss.webp", "image/webp", &webp)
            .await,
    );
    let spare = id_of(
        &api.upload_image(&alice, "moss.webp", "image/webp", &webp)
            .await,
    );
    let resp = api
        .post_json(
            "/v1/files",
            Some(&alice),
            &media_spec("later.jpg", "image/jpeg", &jpeg),
        )
        .await;
    let pending = id_of(&expect_status(resp, StatusCode::CREATED).await["file"]);
    let gif = crate::upload_helpers::upload(
        &app,
        &alice,
        "anim.gif",
        "image/gif",
        &testdata("hostile/animated.gif"),
    )
    .await;
    assert_eq!(
        gif["status"], "ready",
        "a GIF is fine as a plain file: {gif}"
    );
    let (_, photo_of_pending_post) = api
        .create_photo_post(&alice, "waiting", &[("w.jpg", "image/jpeg", &jpeg)])
        .await;
    let on_pending_post = photo_of_pending_post[0]["file_id"]
        .as_str()
        .unwrap()
        .to_owned();
    for bad in [&bobs, &pending, &ready_id, &id_of(&gif), &on_pending_post] {
        let resp = api
            .post_json(
                "/v1/posts",
                Some(&alice),
                &json!({"caption": "nope", "file_ids": [spare, bad]}),
            )
            .await;
        assert_invalid_field(resp, "file_ids[1]").await;
    }
    let posts = api
        .list_ids(&format!("/v1/users/{alice_id}/posts"), Some(&alice))
        .await;
    assert_eq!(
        posts.len(),
        2,
        "the attached and the waiting post only: {posts:?}"
    );

    // The spare, untouched by the refusals, still attaches.
    let resp = api
        .post_json(
            "/v1/posts",
            Some(&alice),
            &json!({"caption": "spare", "file_ids": [spare]}),
        )
        .await;
    let body = expect_status(resp, StatusCode::CREATED).await;
    assert_eq!(body["post"]["status"], "published", "{body}");
}

#[tokio::test]
async fn an_idempotent_photo_post_replays_its_tickets() {
    let app = spawn_app().await;
    let api = Api::of(&app);
    let (alice_id, alice) = api.register("alice").await;
    let jpeg = testdata(JPEG);
    let body = json!({"caption": "once", "media": [media_spec("a.jpg", "image/jpeg", &jpeg)]});
    let send = || {
        api.client
            .post(api.url("/v1/posts"))
            .bearer_auth(&alice)
            .header("Idempotency-Key", "photo-post-1")
            .json(&body)
            .send()
    };
    let first = note_ticket_owners("/v1/posts", Some(&alice), send().await.unwrap()).await;
    let first = expect_status(first, StatusCode::CREATED).await;
    let resp = send().await.unwrap();
    assert_eq!(
        header(&resp, "idempotent-replayed").as_deref(),
        Some("true")
    );
    let second = expect_status(resp, StatusCode::CREATED).await;
    assert_eq!(second, first, "the same post and tickets");
    let posts = api
        .list_ids(&format!("/v1/users/{alice_id}/posts"), Some(&alice))
        .await;
    assert_eq!(posts, vec![id_of(&first["post"])]);
    assert_eq!(api.list_ids("/v1/files", Some(&alice)).await.len(), 1);
    // The replayed ticket works.
    api.put_ok(&second["uploads"][0], &jpeg).await;
    api.wait_settled(&alice, &id_of(&first["post"]), "published")
        .await;
}

#[tokio::test]
async fn deleting_a_post_takes_its_files_and_their_bytes() {
    let app = spawn_app().await;
    let api = Api::of(&app);
    let (_, alice) = api.register("alice").await;
    let jpeg = testdata(JPEG);
    let (post, tickets) = api
        .create_photo_post(&alice, "short-lived", &[("a.jpg", "image/jpeg", &jpeg)])
        .await;
    let post_id = id_of(&post);
    api.put_ok(&tickets[0], &jpeg).await;
    let post = api.wait_settled(&alice, &post_id, "published").await;
    let file_id = post["media"][0]["file_id"].as_str().unwrap().to_owned();
    let urls = urls_of(&post["media"][0]);
    for url in &urls {
        assert_eq!(api.fetch(url).await.0, StatusCode::OK, "{url}");
    }
    assert!(original_stored(app.data_dir.path(), &file_id).await);

    // A file a post uses cannot go alone.
    let resp = api
        .delete(&format!("/v1/files/{file_id}"), Some(&alice), None)
        .await;
    assert_problem(resp, 409, "conflict").await;
    // Nor through tus termination (the same rule, the same answer).
    let resp = crate::upload_helpers::tus(&app, "DELETE", &format!("/v1/tus/{file_id}"), &alice)
        .send()
        .await
        .unwrap();
    assert_problem(resp, 409, "conflict").await;
    assert_eq!(api.fetch(&urls[0]).await.0, StatusCode::OK);

    // An attached file goes with its post too.
    let attached = id_of(
        &api.upload_image(&alice, "b.webp", "image/webp", &testdata(WEBP))
            .await,
    );
    let resp = api
        .post_json(
            "/v1/posts",
            Some(&alice),
            &json!({"caption": "attached", "file_ids": [attached]}),
        )
        .await;
    let attached_post = expect_status(resp, StatusCode::CREATED).await["post"].clone();
    let attached_urls = urls_of(&attached_post["media"][0]);

    for (pid, fid) in [(&post_id, &file_id), (&id_of(&attached_post), &attached)] {
        let resp = api
            .delete(&format!("/v1/posts/{pid}"), Some(&alice), None)
            .await;
        assert_eq!(resp.status(), StatusCode::NO_CONTENT);
        let resp = api.get(&format!("/v1/posts/{pid}"), Some(&alice)).await;
        assert_problem(resp, 404, "not_found").await;
        let resp = api.get(&format!("/v1/files/{fid}"), Some(&alice)).await;
        assert_problem(resp, 404, "not_found").await;
    }
    for url in urls.iter().chain(&attached_urls) {
        api.wait_gone(url, Duration::from_secs(10)).await;
    }
    assert!(api.list_ids("/v1/files", Some(&alice)).await.is_empty());
    let me = expect_status(api.get("/v1/users/me", Some(&alice)).await, StatusCode::OK).await;
    assert_eq!(me["posts_count"], 0, "{me}");
    for fid in [&file_id, &attached] {
        wait_bytes_erased(app.data_dir.path(), fid, Duration::from_secs(20)).await;
    }
}

#[tokio::test]
async fn deleting_an_account_takes_its_photos_files_and_bytes() {
    let app = spawn_app().await;
    let api = Api::of(&app);
    let (_, alice) = api.register("alice").await;
    let (_, bob) = api.register("bob").await;
    let jpeg = testdata(JPEG);
    let (post, tickets) = api
        .create_photo_post(&alice, "mine", &[("a.jpg", "image/jpeg", &jpeg)])
        .await;
    let post_id = id_of(&post);
    api.put_ok(&tickets[0], &jpeg).await;
    let post = api.wait_settled(&alice, &post_id, "published").await;
    let photo_id = post["media"][0]["file_id"].as_str().unwrap().to_owned();
    let loose = api
        .upload_image(&alice, "loose.webp", "image/webp", &testdata(WEBP))
        .await;
    let loose_id = id_of(&loose);
    let mut urls = urls_of(&post["media"][0]);
    urls.extend(urls_of(&loose));
    // Bob's view of the post carries URLs signed for him.
    urls.extend(urls_of(
        &api.post_of(Some(&bob), &post_id).await["media"][0],
    ));
    for url in &urls {
        assert_eq!(api.fetch(url).await.0, StatusCode::OK, "{url}");
    }

    let resp = api
        .delete(
            "/v1/users/me",
            Some(&alice),
            Some(&json!({"password": PASSWORD})),
        )
        .await;
    assert_eq!(resp.status(), StatusCode::NO_CONTENT);
    let resp = api
        .get(&format!("/v1/files/{loose_id}"), Some(&alice))
        .await;
    assert_problem(resp, 401, "unauthenticated").await;
    let resp = api.get(&format!("/v1/posts/{post_id}"), Some(&bob)).await;
    assert_problem(resp, 404, "not_found").await;
    for url in &urls {
        api.wait_gone(url, Duration::from_secs(10)).await;
    }
    for id in [&photo_id, &loose_id] {
        wait_bytes_erased(app.data_dir.path(), id, Duration::from_secs(30)).await;
    }
}

#[tokio::test]
async fn a_renamed_or_shared_image_is_answered_with_its_variants() {
    let app = spawn_app().await;
    let api = Api::of(&app);
    let (_, alice) = api.register("alice").await;
    let file = api
        .upload_image(&alice, "bird.jpg", "image/jpeg", &testdata(JPEG))
        .await;
    let id = id_of(&file);
    assert_eq!(
        file["variants"].as_object().map(|v| v.len()),
        Some(3),
        "{file}"
    );

    for change in [
        json!({"filename": "nuthatch.jpg"}),
        json!({"visibility": "public"}),
        json!({"tags": ["birds"]}),
    ] {
        let resp = app
            .patch_json(&format!("/v1/files/{id}"), Some(&alice), &change)
            .await;
        let patched = expect_status(resp, StatusCode::OK).await;
        let read = api.file_of(&alice, &id).await;
        for name in ["thumb", "w640", "w1080"] {
            let variant = &patched["variants"][name];
            assert_eq!(
                variant["width"], read["variants"][name]["width"],
                "{change}"
            );
            assert_eq!(
                variant["height"], read["variants"][name]["height"],
                "{change}"
            );
            let url = variant["url"].as_str().expect("a variant URL");
            if read["visibility"] == "public" {
                assert_eq!(url, read["variants"][name]["url"], "{change}");
            }
        }
        assert_eq!(patched["blurhash"], read["blurhash"], "{change}");
    }
}
