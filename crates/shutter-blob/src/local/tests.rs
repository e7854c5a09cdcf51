//! What is particular to the local directory; what every store must do is in
//! `tests/conformance.rs`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use super::*;

fn store() -> (tempfile::TempDir, LocalBlobStore) {
    let dir = tempfile::tempdir().unwrap();
    let store = LocalBlobStore::new(dir.path().join("nested/blobs")).unwrap();
    (dir, store)
}

fn names_in(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

#[tokio::test]
async fn objects_variants_and_partials_live_where_the_layout_says() {
    let (_dir, store) = store();
    let id = Id::new();
    store
        .put(&format!("files/{id}"), Bytes::from_static(b"original"))
        .await
        .unwrap();
    store
        .put(&format!("files/{id}/thumb"), Bytes::from_static(b"thumb"))
        .await
        .unwrap();
    let mut writer = store.open_partial(&format!("files/{id}"), 0).await.unwrap();
    writer.write(b"partial").await.unwrap();
    writer.sync().await.unwrap();

    let simple = id.as_uuid().simple().to_string();
    let dir = store
        .root()
        .join("objects")
        .join(&simple[30..])
        .join(id.to_string());
    assert_eq!(names_in(&dir), ["original", "variants"]);
    assert_eq!(std::fs::read(dir.join("original")).unwrap(), b"original");
    assert_eq!(std::fs::read(dir.join("variants/thumb")).unwrap(), b"thumb");
    assert_eq!(
        std::fs::read(store.root().join("partial").join(id.to_string())).unwrap(),
        b"partial"
    );
}

#[tokio::test]
async fn a_crashed_puts_temp_file_goes_with_the_file() {
    let (_dir, store) = store();
    let id = Id::new();
    store
        .put(&format!("files/{id}"), Bytes::from_static(b"x"))
        .await
        .unwrap();
    let dir = store.object_dir(id);
    std::fs::write(dir.join(format!("{TMP_PREFIX}{}", Id::new())), b"half").unwrap();
    // Still counted as the file's, so the sweeper sees it...
    assert_eq!(store.list_file_ids().await.unwrap().len(), 1);
    // ...and gone with it.
    store.delete(&format!("files/{id}")).await.unwrap();
    assert!(!dir.exists());
}

#[tokio::test]
async fn strays_in_the_directories_are_not_listed() {
    let (_dir, store) = store();
    let id = Id::new();
    store
        .put(&format!("files/{id}"), Bytes::from_static(b"x"))
        .await
        .unwrap();
    let root = store.root();
    std::fs::write(root.join("objects/README"), b"").unwrap();
    std::fs::create_dir_all(root.join("objects/zz/not-an-id")).unwrap();
    std::fs::write(root.join("partial/.tmp-upload"), b"").unwrap();
    let upper = Id::new().to_string().to_uppercase();
    std::fs::write(root.join("partial").join(upper), b"").unwrap();
    let listed: Vec<Id> = store
        .list_file_ids()
        .await
        .unwrap()
        .into_iter()
        .map(|(id, _)| id)
        .collect();
    assert_eq!(listed, [id]);
}

#[tokio::test]
async fn a_vanished_root_is_unavailable_and_not_recreated() {
    let (_dir, store) = store();
    store.ping().await.unwrap();
    std::fs::remove_dir_all(store.root()).unwrap();

    assert!(matches!(store.ping().await, Err(BlobError::Unavailable(_))));
    assert!(matches!(
        store.list_file_ids().await,
        Err(BlobError::Unavailable(_))
    ));
    let key = format!("files/{}", Id::new());
    assert!(matches!(
        store.put(&key, Bytes::from_static(b"x")).await,
        Err(BlobError::Unavailable(_))
    ));
    assert!(matches!(
        store.open_partial(&key, 0).await,
        Err(BlobError::Unavailable(_))
    ));
    assert!(!store.root().exists());
}

#[tokio::test]
async fn a_root_that_is_a_file_is_unavailable() {
    let dir = tempfile::tempdir().unwrap();
    let store = LocalBlobStore::new(dir.path().join("blobs")).unwrap();
    std::fs::remove_dir_all(store.root()).unwrap();
    std::fs::write(store.root(), b"not a directory").unwrap();
    assert!(matches!(store.ping().await, Err(BlobError::Unavailable(_))));
    assert!(LocalBlobStore::new(store.root().to_path_buf()).is_err());
}
