//! What only the S3 store does: targets for clients to upload to directly (a presigned `PUT`,
//! or a multipart upload with presigned parts), taking those bytes into the partial object,
//! and presigned downloads. Runs against the S3 server `SHUTTER_TEST_S3_*` names, on a new
//! bucket per test; fails without one.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use bytes::Bytes;
use futures::TryStreamExt;
use shutter_app::ports::{BlobError, BlobStore};
use shutter_blob::S3BlobStore;
use shutter_core::Id;

async fn store() -> S3BlobStore {
    let var = |name: &str| {
        std::env::var(name).unwrap_or_else(|_| {
            panic!("{name} is not set: these tests need an S3 server (scripts/s3-server.sh)")
        })
    };
    let config = shutter_core::config::S3StorageConfig {
        endpoint: Some(var("SHUTTER_TEST_S3_ENDPOINT")),
        bucket: Some(format!("direct-{}", Id::new().as_uuid().simple())),
        region: Some("us-east-1".into()),
        access_key: Some(var("SHUTTER_TEST_S3_ACCESS_KEY")),
        secret_key: Some(var("SHUTTER_TEST_S3_SECRET_KEY")),
        session_token: None,
        path_style: true,
    };
    let store = S3BlobStore::new(&config).unwrap();
    store.create_bucket().await.unwrap();
    store
}

fn pattern(len: usize, seed: u8) -> Vec<u8> {
    (0..len).map(|i| (i % 251) as u8 ^ seed).collect()
}

async fn read_partial(store: &S3BlobStore, key: &str) -> Vec<u8> {
    let read = store.read_partial(key).await.unwrap();
    let chunks: Vec<Bytes> = read.stream.try_collect().await.unwrap();
    chunks.concat()
}

const HOUR: Duration = Duration::from_secs(3600);

#[tokio::test]
async fn a_presigned_put_is_taken_into_the_partial_object_and_committed() {
    let store = store().await;
    let key = format!("files/{}", Id::new());
    let bytes = pattern(100_000, 1);
    let target = store
        .direct_upload(&key, bytes.len() as u64, "text/plain", HOUR, u64::MAX)
        .await
        .unwrap()
        .expect("S3 takes uploads directly");
    assert!(target.multipart.is_none());
    assert_eq!(store.direct_upload_progress(&key).await.unwrap(), None);
    assert!(matches!(
        store.take_direct_upload(&key, None).await,
        Err(BlobError::NotFound)
    ));

    let http = reqwest::Client::new();
    let resp = http
        .put(&target.url)
        .header("content-type", "text/plain")
        .body(bytes.clone())
        .send()
        .await
        .unwrap();
    assert!(resp.status().is_success(), "{:?}", resp.text().await);
    assert_eq!(
        store.direct_upload_progress(&key).await.unwrap(),
        Some(bytes.len() as u64)
    );

    store.take_direct_upload(&key, None).await.unwrap();
    assert_eq!(
        store.partial_len(&key).await.unwrap(),
        Some(bytes.len() as u64)
    );
    assert_eq!(read_partial(&store, &key).await, bytes);
    // Taken: the direct target is empty again.
    assert_eq!(store.direct_upload_progress(&key).await.unwrap(), None);
    store.commit_partial(&key).await.unwrap();
    let read = store.get(&key, None).await.unwrap();
    let got: Vec<Bytes> = read.stream.try_collect().await.unwrap();
    assert_eq!(got.concat(), bytes);

    // A presigned GET serves the object with the headers asked for.
    let url = store
        .presigned_get(
            &key,
            Duration::from_secs(60),
            "text/plain",
            "attachment; filename=\"a.txt\"",
        )
        .unwrap();
    let resp = http.get(&url).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(
        resp.headers()["content-disposition"],
        "attachment; filename=\"a.txt\""
    );
    assert_eq!(resp.bytes().await.unwrap().to_vec(), bytes);
}

#[tokio::test]
async fn a_multipart_target_shows_progress_and_completes_with_listed_or_given_parts() {
    let store = store().await;
    for given in [false, true] {
        let key = format!("files/{}", Id::new());
        let bytes = pattern(17 * 1024 * 1024 + 5, 2);
        let target = store
            .direct_upload(
                &key,
                bytes.len() as u64,
                "application/octet-stream",
                HOUR,
                1,
            )
            .await
            .unwrap()
            .unwrap();
        let multipart = target.multipart.expect("a multipart target");
        let part_size = multipart.part_size as usize;
        assert_eq!(multipart.parts.len(), bytes.len().div_ceil(part_size));
        let http = reqwest::Client::new();
        let mut etags = Vec::new();
        for (number, url) in &multipart.parts {
            let at = (*number as usize - 1) * part_size;
            let part = bytes[at..(at + part_size).min(bytes.len())].to_vec();
            let resp = http.put(url).body(part).send().await.unwrap();
            assert!(resp.status().is_success(), "{:?}", resp.text().await);
            let etag = resp.headers()["etag"].to_str().unwrap().to_owned();
            etags.push((*number, etag));
            if *number == 1 {
                assert_eq!(
                    store.direct_upload_progress(&key).await.unwrap(),
                    Some(part_size as u64)
                );
            }
        }
        store
            .take_direct_upload(&key, given.then_some(etags))
            .await
            .unwrap();
        assert_eq!(
            read_partial(&store, &key).await,
            bytes,
            "given parts: {given}"
        );
        store.delete(&key).await.unwrap();
        assert_eq!(store.partial_len(&key).await.unwrap(), None);
    }
}

#[tokio::test]
async fn deleting_a_file_abandons_its_open_multipart_upload() {
    let store = store().await;
    let key = format!("files/{}", Id::new());
    let target = store
        .direct_upload(&key, 20 * 1024 * 1024, "application/octet-stream", HOUR, 1)
        .await
        .unwrap()
        .unwrap();
    let multipart = target.multipart.unwrap();
    let http = reqwest::Client::new();
    let resp = http
        .put(&multipart.parts[0].1)
        .body(pattern(multipart.part_size as usize, 3))
        .send()
        .await
        .unwrap();
    assert!(resp.status().is_success());
    store.delete(&key).await.unwrap();
    assert_eq!(store.direct_upload_progress(&key).await.unwrap(), None);
    assert!(store.list_file_ids().await.unwrap().is_empty());
    // The part URL now addresses an upload that no longer exists.
    let resp = http
        .put(&multipart.parts[1].1)
        .body(pattern(1000, 3))
        .send()
        .await
        .unwrap();
    assert!(resp.status().is_client_error(), "{}", resp.status());
}

/// However many uploads stream at once, only `BUFFERING_WRITERS` hold bytes in memory: one
/// more waits (its client's body unread) until another's part is sent or it ends.
#[tokio::test]
async fn uploads_beyond_the_buffer_limit_wait_for_one_to_finish() {
    let store = store().await;
    let mut writers = Vec::new();
    for _ in 0..shutter_blob::BUFFERING_WRITERS {
        let mut writer = store
            .open_partial(&format!("files/{}", Id::new()), 0)
            .await
            .unwrap();
        writer.write(b"held").await.unwrap();
        writers.push(writer);
    }
    let key = format!("files/{}", Id::new());
    let mut waiting = store.open_partial(&key, 0).await.unwrap();
    {
        let write = waiting.write(b"waits");
        tokio::pin!(write);
        assert!(
            tokio::time::timeout(Duration::from_millis(200), &mut write)
                .await
                .is_err(),
            "a write beyond the limit went ahead"
        );
        // A writer that ends gives its leave to the one waiting.
        drop(writers.pop());
        tokio::time::timeout(Duration::from_secs(30), write)
            .await
            .expect("the waiting write goes ahead")
            .unwrap();
    }
    assert_eq!(waiting.sync().await.unwrap(), 5);
    assert_eq!(read_partial(&store, &key).await, b"waits");
}
