//! Edge cases at the API's boundary: hostile `Range` headers, signed URLs that must not leak
//! whether a file exists, query strings and methods that do not fit, strict JSON bodies, and
//! who may unfollow or delete what.

use reqwest::{Method, StatusCode};

use crate::helpers::*;
use crate::upload_helpers::*;

/// A GET of `path` with `Range: range` as `token`.
async fn get_range(app: &TestApp, path: &str, token: &str, range: &str) -> reqwest::Response {
    app.authed(Method::GET, path, Some(token))
        .header("range", range)
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn ranges_never_overflow_and_unsatisfiable_ones_name_the_size() {
    let app = spawn_app().await;
    let (_, token) = user(&app, "alice").await;
    let bytes = pseudo_random(1000, 21);
    let file = upload(&app, &token, "data.bin", "application/octet-stream", &bytes).await;
    let path = format!("/v1/files/{}/content", id_of(&file));

    // An end past the object (even the largest number there is) is clamped to its last byte;
    // a suffix longer than the object is the whole object.
    for range in [
        "bytes=0-18446744073709551615",
        "bytes=0-99999999999999999999999999",
        "bytes=-18446744073709551615",
        "bytes=-5000",
    ] {
        let resp = get_range(&app, &path, &token, range).await;
        assert_eq!(resp.status(), StatusCode::PARTIAL_CONTENT, "{range}");
        assert_eq!(
            header(&resp, "content-range").as_deref(),
            Some("bytes 0-999/1000"),
            "{range}"
        );
        assert_eq!(header(&resp, "content-length").as_deref(), Some("1000"));
        assert_eq!(resp.bytes().await.unwrap().to_vec(), bytes, "{range}");
    }

    // Of several ranges, the one that overlaps the object is served alone.
    let resp = get_range(&app, &path, &token, "bytes=10-19, 5000-6000").await;
    assert_eq!(resp.status(), StatusCode::PARTIAL_CONTENT);
    assert_eq!(
        header(&resp, "content-range").as_deref(),
        Some("bytes 10-19/1000")
    );
    assert_eq!(resp.bytes().await.unwrap().to_vec(), bytes[10..20].to_vec());
    // Several satisfiable ranges: the whole representation, which RFC 9110 allows.
    let resp = get_range(&app, &path, &token, "bytes=0-1,10-11").await;
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(resp.bytes().await.unwrap().to_vec(), bytes);

    // Nothing overlaps: 416 with `Content-Range: bytes */<size>`.
    for range in [
        "bytes=18446744073709551615-",
        "bytes=18446744073709551615-18446744073709551615",
        "bytes=1000-",
        "bytes=-0",
        "bytes=2000-3000,4000-",
    ] {
        let resp = get_range(&app, &path, &token, range).await;
        assert_eq!(
            header(&resp, "content-range").as_deref(),
            Some("bytes */1000"),
            "{range}"
        );
        assert_problem(resp, 416, "range_not_satisfiable").await;
    }
}
