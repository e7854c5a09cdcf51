//! `EventBus` scenarios: each runs with two nodes' buses (one bus twice when in process).

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use shutter_app::events::InProcessEventBus;
use shutter_app::ports::{Event, EventBus, EventKind, EventRelay, EventStream};
use shutter_app::relay::RelayedEventBus;
use shutter_core::model::Failure;
use shutter_core::{ErrorCode, Id, Timestamp};

use crate::{redis, service_url, POSTGRES_URL_VAR};

/// Two nodes of one deployment.
struct Nodes {
    a: Arc<dyn EventBus>,
    b: Arc<dyn EventBus>,
}

fn in_process() -> Nodes {
    let bus: Arc<dyn EventBus> = Arc::new(InProcessEventBus::new());
    Nodes {
        a: bus.clone(),
        b: bus,
    }
}

fn relayed(relay: impl Fn() -> Arc<dyn EventRelay>) -> Nodes {
    Nodes {
        a: Arc::new(RelayedEventBus::new(relay())),
        b: Arc::new(RelayedEventBus::new(relay())),
    }
}

async fn postgres() -> Option<Nodes> {
    let url = service_url(POSTGRES_URL_VAR)?;
    let db = shutter_store::open(&url, 4)
        .await
        .unwrap_or_else(|e| panic!("PostgreSQL at {url} cannot be used: {e:#}"));
    Some(relayed(|| {
        db.event_relay().expect("PostgreSQL relays events")
    }))
}

async fn redis_nodes() -> Option<Nodes> {
    let redis = redis().await?;
    Some(relayed(|| {
        Arc::new(shutter_redis::RedisEventRelay::new(redis.clone()))
    }))
}

fn event(user_id: Id, kind: EventKind, bytes: u64) -> Event {
    Event {
        user_id,
        kind,
        file_id: Some(Id::new()),
        post_id: None,
        bytes_received: Some(bytes),
        size: Some(1000),
        failure: (kind == EventKind::FileFailed).then(|| Failure {
            code: ErrorCode::ChecksumMismatch,
            detail: "the bytes do not match".into(),
        }),
        at: Timestamp::now(),
    }
}

async fn next(stream: &mut EventStream) -> Option<Event> {
    tokio::time::timeout(Duration::from_secs(5), stream.next())
        .await
        .ok()
        .flatten()
}

async fn nothing_more(stream: &mut EventStream) {
    let extra = tokio::time::timeout(Duration::from_millis(300), stream.next()).await;
    assert!(extra.is_err(), "no more events: {extra:?}");
}

/// Subscribing is asynchronous on a relay (its listener connects in the background):
/// publishes until the first event arrives, so scenarios start from a listening node.
async fn settle(nodes: &Nodes, stream: &mut EventStream, user: Id) {
    for _ in 0..100 {
        nodes
            .a
            .publish(event(user, EventKind::FileProcessing, 0))
            .await;
        if tokio::time::timeout(Duration::from_millis(100), stream.next())
            .await
            .is_ok()
        {
            // Drain the rest of the warm-up events.
            while tokio::time::timeout(Duration::from_millis(200), stream.next())
                .await
                .is_ok()
            {}
            return;
        }
    }
    panic!("the relay never delivered an event");
}

/// An event published on one node reaches the user's streams on both nodes exactly once,
/// and no one else's.
async fn an_event_reaches_the_users_streams_on_every_node_once(nodes: Nodes) {
    let (user, other) = (Id::new(), Id::new());
    let mut on_b = nodes.b.subscribe(user).await;
    settle(&nodes, &mut on_b, user).await;
    let mut on_a = nodes.a.subscribe(user).await;
    let mut others = nodes.b.subscribe(other).await;
    let sent = event(user, EventKind::FileFailed, 10);
    nodes.a.publish(sent.clone()).await;
    assert_eq!(next(&mut on_a).await.as_ref(), Some(&sent));
    assert_eq!(next(&mut on_b).await.as_ref(), Some(&sent));
    nothing_more(&mut on_a).await;
    nothing_more(&mut on_b).await;
    nothing_more(&mut others).await;
}

/// Events of one node arrive at another in the order they were published.
async fn events_keep_their_order_between_nodes(nodes: Nodes) {
    let user = Id::new();
    let mut on_b = nodes.b.subscribe(user).await;
    settle(&nodes, &mut on_b, user).await;
    for bytes in 1..=50 {
        nodes
            .a
            .publish(event(user, EventKind::FileProgress, bytes))
            .await;
    }
    for bytes in 1..=50 {
        let got = next(&mut on_b).await.expect("every event arrives");
        assert_eq!(got.bytes_received, Some(bytes));
    }
}

/// A stream that ends stops nothing else: the node's other streams keep receiving.
async fn a_closed_stream_does_not_stop_the_others(nodes: Nodes) {
    let user = Id::new();
    let mut kept = nodes.b.subscribe(user).await;
    settle(&nodes, &mut kept, user).await;
    let dropped = nodes.b.subscribe(user).await;
    drop(dropped);
    let sent = event(user, EventKind::FileReady, 1000);
    nodes.a.publish(sent.clone()).await;
    assert_eq!(next(&mut kept).await, Some(sent));
}

macro_rules! event_bus_conformance {
    ($($scenario:ident),* $(,)?) => {
        mod in_process {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $scenario() {
                    super::$scenario(super::in_process()).await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $scenario() {
                    if let Some(nodes) = super::postgres().await {
                        super::$scenario(nodes).await;
                    }
                }
            )*
        }
        mod redis {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $scenario() {
                    if let Some(nodes) = super::redis_nodes().await {
                        super::$scenario(nodes).await;
                    }
                }
            )*
        }
    };
}

event_bus_conformance!(
    an_event_reaches_the_users_streams_on_every_node_once,
    events_keep_their_order_between_nodes,
    a_closed_stream_does_not_stop_the_others,
);
