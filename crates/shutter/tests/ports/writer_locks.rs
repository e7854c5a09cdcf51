//! `WriterLocks` on PostgreSQL (the only adapter: one node on SQLite needs none): two nodes'
//! locks on one database, as two `shutter` processes have.

use shutter_core::Id;

use crate::{service_url, POSTGRES_URL_VAR};

async fn node(url: &str) -> std::sync::Arc<dyn shutter_app::ports::WriterLocks> {
    let db = shutter_store::open(url, 2)
        .await
        .unwrap_or_else(|e| panic!("PostgreSQL at {url} cannot be used: {e:#}"));
    db.writer_locks().expect("PostgreSQL has writer locks")
}

/// One node at a time holds an upload's lock; a lock given back, or held by a node whose
/// connection is gone, can be taken by another; different uploads do not collide.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_node_at_a_time_holds_an_uploads_lock() {
    let Some(url) = service_url(POSTGRES_URL_VAR) else {
        return;
    };
    let (a, b) = (node(&url).await, node(&url).await);
    let (upload, other) = (Id::new(), Id::new());
    assert!(a.try_lock(upload).await.unwrap());
    assert!(!b.try_lock(upload).await.unwrap(), "held by A");
    assert!(b.try_lock(other).await.unwrap(), "another upload is free");
    // A node's locks count: taken twice, given back twice.
    assert!(a.try_lock(upload).await.unwrap());
    a.unlock(upload).await;
    assert!(!b.try_lock(upload).await.unwrap(), "still held once by A");
    a.unlock(upload).await;
    assert!(b.try_lock(upload).await.unwrap(), "given back by A");
    // A node that goes away (its connection closes) gives its locks back with it.
    drop(b);
    let c = node(&url).await;
    let mut taken = false;
    for _ in 0..50 {
        if c.try_lock(upload).await.unwrap() && c.try_lock(other).await.unwrap() {
            taken = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(taken, "B's locks went with its connection");
}
