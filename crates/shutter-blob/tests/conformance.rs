//! Backend conformance for the `BlobStore` port, after arrow-rs object_store's
//! `integration.rs`: one set of scenarios (`scenarios`), each a `pub async fn` taking the
//! store, run against every adapter on a fresh, empty store: `local::<scenario>` on a temp
//! directory, `s3::<scenario>` on a new bucket of the S3 server that `SHUTTER_TEST_S3_ENDPOINT`
//! names (with `SHUTTER_TEST_S3_ACCESS_KEY` and `SHUTTER_TEST_S3_SECRET_KEY`). Without that
//! variable the S3 tests fail: they never pass by skipping.

#![allow(clippy::unwrap_used, clippy::expect_used)]

/// The S3 server the tests run against, from the environment, and a fresh bucket on it.
async fn s3_store() -> shutter_blob::S3BlobStore {
    let var = |name: &str| {
        std::env::var(name).unwrap_or_else(|_| {
            panic!("{name} is not set: the S3 conformance tests need an S3 server (.ci/run starts s3s-fs)")
        })
    };
    let config = shutter_core::config::S3StorageConfig {
        endpoint: Some(var("SHUTTER_TEST_S3_ENDPOINT")),
        bucket: Some(format!(
            "conformance-{}",
            shutter_core::Id::new().as_uuid().simple()
        )),
        region: Some("us-east-1".into()),
        access_key: Some(var("SHUTTER_TEST_S3_ACCESS_KEY")),
        secret_key: Some(var("SHUTTER_TEST_S3_SECRET_KEY")),
        session_token: None,
        path_style: true,
    };
    let store = shutter_blob::S3BlobStore::new(&config).expect("the S3 store configures");
    store.create_bucket().await.expect("the bucket is created");
    store
}

/// Declares one test per scenario and backend: `local::<scenario>` and `s3::<scenario>`.
macro_rules! conformance {
    ($($scenario:ident),* $(,)?) => {
        mod local {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $scenario() {
                    let dir = tempfile::tempdir().expect("a temp dir");
                    let store = shutter_blob::LocalBlobStore::new(dir.path().join("blobs"))
                        .expect("the store opens");
                    crate::scenarios::$scenario(&store).await;
                }
            )*
        }
        mod s3 {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $scenario() {
                    let store = crate::s3_store().await;
                    crate::scenarios::$scenario(&store).await;
                }
            )*
        }
    };
}

conformance!(
    ping_answers,
    partial_objects_append_and_resume,
    resuming_cuts_off_unacknowledged_bytes,
    resuming_past_the_end_is_not_found,
    unsynced_bytes_may_be_lost_but_synced_ones_stay,
    committing_makes_the_object_and_removes_the_partial,
    discarding_a_partial_is_idempotent,
    ranges_read_part_of_an_object,
    absent_objects_are_not_found,
    delete_is_idempotent_and_takes_the_variants,
    deleting_a_variant_leaves_the_rest,
    put_replaces_an_object_atomically,
    list_file_ids_finds_objects_variants_and_partials,
    malformed_keys_are_refused,
    large_objects_stream_in_bounded_chunks,
);

mod scenarios {
    use std::collections::HashMap;

    use bytes::Bytes;
    use futures::TryStreamExt;
    use shutter_app::ports::{BlobError, BlobRead, BlobStore};
    use shutter_core::{Id, Timestamp};

    fn file_key(id: Id) -> String {
        format!("files/{id}")
    }

    fn variant_key(id: Id, variant: &str) -> String {
        format!("files/{id}/{variant}")
    }

    /// A recognisable byte for every position, so misplaced ranges show.
    fn pattern_byte(at: u64) -> u8 {
        (at % 251) as u8
    }

    fn pattern(from: u64, len: usize) -> Vec<u8> {
        (from..from + len as u64).map(pattern_byte).collect()
    }

    async fn collect(read: BlobRead) -> Vec<u8> {
        let chunks: Vec<Bytes> = read.stream.try_collect().await.expect("the stream reads");
        chunks.concat()
    }

    async fn get_all(store: &dyn BlobStore, key: &str) -> Vec<u8> {
        collect(store.get(key, None).await.expect("the object reads")).await
    }

    async fn write_partial(store: &dyn BlobStore, key: &str, offset: u64, bytes: &[u8]) -> u64 {
        let mut writer = store
            .open_partial(key, offset)
            .await
            .expect("partial opens");
        writer.write(bytes).await.expect("partial write");
        writer.sync().await.expect("partial sync")
    }

    fn is_not_found<T>(result: Result<T, BlobError>) -> bool {
        matches!(result, Err(BlobError::NotFound))
    }

    pub async fn ping_answers(store: &dyn BlobStore) {
        store.ping().await.expect("a fresh store answers");
    }

    pub async fn partial_objects_append_and_resume(store: &dyn BlobStore) {
        let key = file_key(Id::new());
        assert_eq!(store.partial_len(&key).await.unwrap(), None);

        let mut writer = store.open_partial(&key, 0).await.unwrap();
        writer.write(b"hello").await.unwrap();
        writer.write(b", ").await.unwrap();
        assert_eq!(writer.sync().await.unwrap(), 7);
        drop(writer);
        assert_eq!(store.partial_len(&key).await.unwrap(), Some(7));

        // Resumed where the last sync left it, as tus does after a dropped connection.
        assert_eq!(write_partial(store, &key, 7, b"world").await, 12);
        assert_eq!(store.partial_len(&key).await.unwrap(), Some(12));
        let read = store.read_partial(&key).await.unwrap();
        assert_eq!(read.total_len, 12);
        assert_eq!(collect(read).await, b"hello, world");

        // Not an object until committed.
        assert!(is_not_found(store.get(&key, None).await));

        // Opening at 0 starts over.
        assert_eq!(write_partial(store, &key, 0, b"again").await, 5);
        assert_eq!(
            collect(store.read_partial(&key).await.unwrap()).await,
            b"again"
        );
    }

    pub async fn resuming_cuts_off_unacknowledged_bytes(store: &dyn BlobStore) {
        let key = file_key(Id::new());
        assert_eq!(write_partial(store, &key, 0, b"0123456789").await, 10);
        // Only 4 bytes were acknowledged to the client: the rest are cut off and sent again.
        assert_eq!(write_partial(store, &key, 4, b"XY").await, 6);
        assert_eq!(store.partial_len(&key).await.unwrap(), Some(6));
        assert_eq!(
            collect(store.read_partial(&key).await.unwrap()).await,
            b"0123XY"
        );

        // Resuming at exactly the length appends nothing until written.
        let mut writer = store.open_partial(&key, 6).await.unwrap();
        assert_eq!(writer.sync().await.unwrap(), 6);
    }

    pub async fn resuming_past_the_end_is_not_found(store: &dyn BlobStore) {
        let key = file_key(Id::new());
        write_partial(store, &key, 0, b"12345").await;
        assert!(is_not_found(store.open_partial(&key, 6).await));
        // Nothing was harmed by the refusal.
        assert_eq!(store.partial_len(&key).await.unwrap(), Some(5));

        let absent = file_key(Id::new());
        assert!(is_not_found(store.open_partial(&absent, 3).await));
        assert_eq!(store.partial_len(&absent).await.unwrap(), None);
        assert!(is_not_found(store.read_partial(&absent).await));
        assert!(is_not_found(store.commit_partial(&absent).await));
    }

    pub async fn unsynced_bytes_may_be_lost_but_synced_ones_stay(store: &dyn BlobStore) {
        let key = file_key(Id::new());
        let mut writer = store.open_partial(&key, 0).await.unwrap();
        writer.write(b"durable").await.unwrap();
        assert_eq!(writer.sync().await.unwrap(), 7);
        writer.write(b" maybe").await.unwrap();
        drop(writer);

        let len = store.partial_len(&key).await.unwrap().unwrap();
        assert!((7..=13).contains(&len), "{len}");
        let bytes = collect(store.read_partial(&key).await.unwrap()).await;
        assert_eq!(&bytes[..7], b"durable");
        // Whatever survived, resuming at the acknowledged offset gives a clean object.
        assert_eq!(write_partial(store, &key, 7, b"!").await, 8);
        assert_eq!(
            collect(store.read_partial(&key).await.unwrap()).await,
            b"durable!"
        );
    }

    pub async fn committing_makes_the_object_and_removes_the_partial(store: &dyn BlobStore) {
        let id = Id::new();
        let key = file_key(id);
        let bytes = pattern(0, 300_000);
        let mut writer = store.open_partial(&key, 0).await.unwrap();
        for chunk in bytes.chunks(64 * 1024 + 7) {
            writer.write(chunk).await.unwrap();
        }
        assert_eq!(writer.sync().await.unwrap(), bytes.len() as u64);
        drop(writer);

        store.commit_partial(&key).await.unwrap();
        let read = store.get(&key, None).await.unwrap();
        assert_eq!(read.total_len, bytes.len() as u64);
        assert_eq!(collect(read).await, bytes);
        assert_eq!(store.partial_len(&key).await.unwrap(), None);
        assert!(is_not_found(store.read_partial(&key).await));
        assert!(is_not_found(store.commit_partial(&key).await));

        // A later upload of the same key replaces the object when it commits.
        write_partial(store, &key, 0, b"replacement").await;
        assert_eq!(get_all(store, &key).await, bytes);
        store.commit_partial(&key).await.unwrap();
        assert_eq!(get_all(store, &key).await, b"replacement");
    }

    pub async fn discarding_a_partial_is_idempotent(store: &dyn BlobStore) {
        let key = file_key(Id::new());
        write_partial(store, &key, 0, b"abandoned").await;
        store.discard_partial(&key).await.unwrap();
        assert_eq!(store.partial_len(&key).await.unwrap(), None);
        store.discard_partial(&key).await.unwrap();
        store.discard_partial(&file_key(Id::new())).await.unwrap();
    }

    pub async fn ranges_read_part_of_an_object(store: &dyn BlobStore) {
        let key = file_key(Id::new());
        let bytes = pattern(0, 1000);
        store.put(&key, Bytes::from(bytes.clone())).await.unwrap();

        for (start, end) in [(0, 10), (990, 1000), (123, 877), (0, 1000), (500, 500)] {
            let read = store.get(&key, Some((start, end))).await.unwrap();
            assert_eq!(read.total_len, 1000, "{start}..{end}");
            assert_eq!(
                collect(read).await,
                &bytes[start as usize..end as usize],
                "{start}..{end}"
            );
        }
        // An end past the object is clamped, as an HTTP range is.
        let read = store.get(&key, Some((900, 5000))).await.unwrap();
        assert_eq!(collect(read).await, &bytes[900..]);
        let read = store.get(&key, Some((1000, 1001))).await.unwrap();
        assert_eq!(collect(read).await, b"");
        // A start past the end (or past the range's end) is the caller's mistake.
        assert!(matches!(
            store.get(&key, Some((1001, 2000))).await,
            Err(BlobError::Other(_))
        ));
        assert!(matches!(
            store.get(&key, Some((20, 10))).await,
            Err(BlobError::Other(_))
        ));
    }

    pub async fn absent_objects_are_not_found(store: &dyn BlobStore) {
        let id = Id::new();
        assert!(is_not_found(store.get(&file_key(id), None).await));
        assert!(is_not_found(store.get(&file_key(id), Some((0, 1))).await));
        assert!(is_not_found(
            store.get(&variant_key(id, "thumb"), None).await
        ));
        store
            .put(&file_key(id), Bytes::from_static(b"x"))
            .await
            .unwrap();
        assert!(is_not_found(
            store.get(&variant_key(id, "thumb"), None).await
        ));
    }

    pub async fn delete_is_idempotent_and_takes_the_variants(store: &dyn BlobStore) {
        let id = Id::new();
        let other = Id::new();
        store
            .put(&file_key(id), Bytes::from_static(b"o"))
            .await
            .unwrap();
        for variant in ["thumb", "w1080"] {
            store
                .put(&variant_key(id, variant), Bytes::from_static(b"v"))
                .await
                .unwrap();
        }
        write_partial(store, &file_key(id), 0, b"re-upload").await;
        store
            .put(&file_key(other), Bytes::from_static(b"other"))
            .await
            .unwrap();

        store.delete(&file_key(id)).await.unwrap();
        assert!(is_not_found(store.get(&file_key(id), None).await));
        assert!(is_not_found(
            store.get(&variant_key(id, "thumb"), None).await
        ));
        assert!(is_not_found(
            store.get(&variant_key(id, "w1080"), None).await
        ));
        assert_eq!(store.partial_len(&file_key(id)).await.unwrap(), None);
        assert_eq!(get_all(store, &file_key(other)).await, b"other");

        store.delete(&file_key(id)).await.unwrap();
        store.delete(&variant_key(id, "thumb")).await.unwrap();
        store.delete(&file_key(Id::new())).await.unwrap();
    }

    pub async fn deleting_a_variant_leaves_the_rest(store: &dyn BlobStore) {
        let id = Id::new();
        store
            .put(&file_key(id), Bytes::from_static(b"o"))
            .await
            .unwrap();
        store
            .put(&variant_key(id, "a"), Bytes::from_static(b"a"))
            .await
            .unwrap();
        store
            .put(&variant_key(id, "b"), Bytes::from_static(b"b"))
            .await
            .unwrap();
        store.delete(&variant_key(id, "a")).await.unwrap();
        assert!(is_not_found(store.get(&variant_key(id, "a"), None).await));
        assert_eq!(get_all(store, &variant_key(id, "b")).await, b"b");
        assert_eq!(get_all(store, &file_key(id)).await, b"o");
    }

    pub async fn put_replaces_an_object_atomically(store: &dyn BlobStore) {
        // Two versions told apart by length and content: a reader racing the writer must
        // see one of them whole, never a mix or a prefix.
        let key = variant_key(Id::new(), "thumb");
        let small = Bytes::from(vec![b'a'; 256 * 1024]);
        let large = Bytes::from(vec![b'b'; 3 * 1024 * 1024]);
        store.put(&key, small.clone()).await.unwrap();

        let writer = async {
            for round in 0..16 {
                let version = if round % 2 == 0 { &large } else { &small };
                store.put(&key, version.clone()).await.unwrap();
            }
        };
        let reader = async {
            let mut seen = HashMap::new();
            for _ in 0..48 {
                let read = store.get(&key, None).await.unwrap();
                let total = read.total_len;
                let bytes = collect(read).await;
                assert_eq!(bytes.len() as u64, total);
                let whole = (bytes.len() == small.len() && bytes.iter().all(|&b| b == b'a'))
                    || (bytes.len() == large.len() && bytes.iter().all(|&b| b == b'b'));
                assert!(whole, "a reader saw {} mixed bytes", bytes.len());
                *seen.entry(bytes.len()).or_insert(0) += 1;
                tokio::task::yield_now().await;
            }
            seen
        };
        let ((), seen) = tokio::join!(writer, reader);
        assert!(!seen.is_empty());
        assert_eq!(get_all(store, &key).await, small);
    }

    pub async fn list_file_ids_finds_objects_variants_and_partials(store: &dyn BlobStore) {
        assert_eq!(store.list_file_ids().await.unwrap(), []);
        // Modification times have coarse granularity on some file systems.
        let before = Timestamp::from_millis(Timestamp::now().millis() - 2_000);
        let committed = Id::new();
        let variant_only = Id::new();
        let uploading = Id::new();
        let mut expected = vec![committed, variant_only, uploading];
        expected.sort();

        store
            .put(&file_key(committed), Bytes::from_static(b"c"))
            .await
            .unwrap();
        store
            .put(&variant_key(committed, "thumb"), Bytes::from_static(b"t"))
            .await
            .unwrap();
        store
            .put(
                &variant_key(variant_only, "thumb"),
                Bytes::from_static(b"v"),
            )
            .await
            .unwrap();
        write_partial(store, &file_key(uploading), 0, b"u").await;
        let after = Timestamp::from_millis(Timestamp::now().millis() + 2_000);

        let listed = store.list_file_ids().await.unwrap();
        assert_eq!(
            listed.iter().map(|(id, _)| *id).collect::<Vec<_>>(),
            expected
        );
        for (id, at) in &listed {
            assert!(
                *at >= before && *at <= after,
                "{id}: {at} not in {before}..{after}"
            );
        }

        store.delete(&file_key(committed)).await.unwrap();
        store.delete(&file_key(variant_only)).await.unwrap();
        store.discard_partial(&file_key(uploading)).await.unwrap();
        assert_eq!(store.list_file_ids().await.unwrap(), []);
    }

    pub async fn malformed_keys_are_refused(store: &dyn BlobStore) {
        let id = Id::new();
        let bad_keys = [
            String::new(),
            "files".to_owned(),
            "files/".to_owned(),
            "files/not-an-id".to_owned(),
            format!("other/{id}"),
            format!("/files/{id}"),
            format!("files/../{id}"),
            format!("files/{id}/../../escape"),
            format!("files/{id}/.."),
            format!("files/{id}/a/b"),
            format!("files/{id}/UPPER"),
            format!("files/{}", id.to_string().to_uppercase()),
        ];
        let refused = |result: Result<(), BlobError>, what: &str, key: &str| {
            assert!(
                matches!(result, Err(BlobError::Other(_))),
                "{what}({key:?}) was not refused: {result:?}"
            );
        };
        for key in &bad_keys {
            let key = key.as_str();
            refused(store.put(key, Bytes::from_static(b"x")).await, "put", key);
            refused(store.get(key, None).await.map(drop), "get", key);
            refused(store.delete(key).await, "delete", key);
            refused(
                store.open_partial(key, 0).await.map(drop),
                "open_partial",
                key,
            );
            refused(store.partial_len(key).await.map(drop), "partial_len", key);
            refused(store.read_partial(key).await.map(drop), "read_partial", key);
            refused(store.commit_partial(key).await, "commit_partial", key);
            refused(store.discard_partial(key).await, "discard_partial", key);
        }
        // Uploads write a file's own bytes, never a variant's.
        let variant = variant_key(id, "thumb");
        refused(
            store.open_partial(&variant, 0).await.map(drop),
            "open_partial",
            &variant,
        );
        assert_eq!(store.list_file_ids().await.unwrap(), []);
    }

    pub async fn large_objects_stream_in_bounded_chunks(store: &dyn BlobStore) {
        const SIZE: u64 = 300 * 1024 * 1024;
        const WRITE: usize = 1024 * 1024;
        const MAX_CHUNK: usize = 1024 * 1024;
        let key = file_key(Id::new());

        let mut writer = store.open_partial(&key, 0).await.unwrap();
        let mut written = 0u64;
        while written < SIZE {
            let len = WRITE.min((SIZE - written) as usize);
            writer.write(&pattern(written, len)).await.unwrap();
            written += len as u64;
        }
        assert_eq!(writer.sync().await.unwrap(), SIZE);
        drop(writer);
        store.commit_partial(&key).await.unwrap();

        // Consumed chunk by chunk, checked and dropped: what the stream holds at any time is
        // one chunk, which is what bounds a server's memory per download.
        let read = store.get(&key, None).await.unwrap();
        assert_eq!(read.total_len, SIZE);
        let (len, largest) = check_stream(read, 0).await;
        assert_eq!(len, SIZE);
        assert!(largest <= MAX_CHUNK, "a chunk of {largest} bytes");

        let start = SIZE - 5 * 1024 * 1024 - 3;
        let read = store.get(&key, Some((start, SIZE - 1))).await.unwrap();
        assert_eq!(read.total_len, SIZE);
        let (len, largest) = check_stream(read, start).await;
        assert_eq!(len, SIZE - 1 - start);
        assert!(largest <= MAX_CHUNK, "a chunk of {largest} bytes");

        store.delete(&key).await.unwrap();
    }

    /// Reads a stream to its end, checking every byte against the pattern from `start`;
    /// returns the length and the largest chunk.
    async fn check_stream(mut read: BlobRead, start: u64) -> (u64, usize) {
        let mut at = start;
        let mut largest = 0;
        while let Some(chunk) = read.stream.try_next().await.unwrap() {
            largest = largest.max(chunk.len());
            let expected = pattern(at, chunk.len());
            assert!(chunk[..] == expected[..], "wrong bytes near offset {at}");
            at += chunk.len() as u64;
        }
        (at - start, largest)
    }
}
