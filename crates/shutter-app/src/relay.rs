//! Live events across nodes: [`RelayedEventBus`] delivers each event to this node's
//! subscribers at once and sends it through an [`EventRelay`] (PostgreSQL `NOTIFY`, Redis
//! pub/sub) to every other node, whose listener hands it to *its* subscribers. So a file
//! uploaded through one node fires `file.ready` on a stream held by another.
//!
//! Delivery stays best effort, as on one node: while the relay is unreachable this node's
//! subscribers still get this node's events, the failure is logged once (and its end once),
//! sends are skipped for a second after each failure (publishers do not wait on a relay that
//! is away), and the listener reconnects every second. Every node sends a heartbeat every
//! 10 s; a listener that hears nothing, not even its own, for 35 s takes its connection for
//! dead (a half-open connection never ends by itself) and listens again.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use futures::StreamExt;
use serde::{Deserialize, Serialize};
use shutter_core::model::Failure;
use shutter_core::{ErrorCode, Id, Timestamp};

use crate::backoff::FailurePause;
use crate::events::InProcessEventBus;
use crate::ports::{Event, EventBus, EventKind, EventRelay, EventStream};

/// How long the listener waits before listening again after the relay failed.
const RELISTEN_AFTER: Duration = Duration::from_secs(1);
/// How long sends are skipped after one failed.
const SEND_BACKOFF: Duration = Duration::from_secs(1);
/// How often each node says it is there.
const HEARTBEAT: Duration = Duration::from_secs(10);
/// Silence after which a listener's connection counts as dead.
const SILENCE: Duration = Duration::from_secs(35);
/// A heartbeat message (never an event: events are JSON objects).
const PING: &str = "ping";

/// An [`EventBus`] shared by every node that uses the same relay.
pub struct RelayedEventBus {
    local: Arc<InProcessEventBus>,
    relay: Arc<dyn EventRelay>,
    /// Tells this node's messages from the others' (the relay may echo them back).
    node: Id,
    /// Sends are skipped for a moment after one failed.
    sending: FailurePause,
    listener: tokio::task::JoinHandle<()>,
    heartbeat: tokio::task::JoinHandle<()>,
}

impl RelayedEventBus {
    /// Starts listening to the relay (on the current Tokio runtime).
    pub fn new(relay: Arc<dyn EventRelay>) -> Self {
        let local = Arc::new(InProcessEventBus::new());
        let node = Id::new();
        let listener = tokio::spawn(listen(relay.clone(), local.clone(), node));
        let heartbeat = tokio::spawn(beat(relay.clone()));
        RelayedEventBus {
            local,
            relay,
            node,
            sending: FailurePause::default(),
            listener,
            heartbeat,
        }
    }
}

impl Drop for RelayedEventBus {
    fn drop(&mut self) {
        self.listener.abort();
        self.heartbeat.abort();
    }
}

#[async_trait]
impl EventBus for RelayedEventBus {
    async fn publish(&self, event: Event) {
        let message = encode(self.node, &event);
        self.local.publish(event).await;
        if self.sending.paused() {
            return;
        }
        match self.relay.send(&message).await {
            Ok(()) => {
                if self.sending.answered() {
                    tracing::info!("live events reach the other nodes again");
                }
            }
            Err(e) => {
                if self.sending.failed(SEND_BACKOFF) {
                    tracing::warn!(
                        error = format!("{e:#}"),
                        "live events cannot reach the other nodes; this node's still arrive"
                    );
                }
            }
        }
    }

    async fn subscribe(&self, user_id: Id) -> EventStream {
        self.local.subscribe(user_id).await
    }
}

/// Hands every other node's events to this node's subscribers, listening again whenever
/// the relay's stream ends or fails.
async fn listen(relay: Arc<dyn EventRelay>, local: Arc<InProcessEventBus>, node: Id) {
    let mut failing = false;
    loop {
        match relay.listen().await {
            Ok(mut messages) => {
                if failing {
                    tracing::info!("listening to the other nodes' live events again");
                    failing = false;
                }
                loop {
                    let message = match tokio::time::timeout(SILENCE, messages.next()).await {
                        Ok(Some(message)) => message,
                        Ok(None) => break,
                        Err(_) => {
                            tracing::warn!("heard nothing from the relay, not even this node's heartbeat, for {SILENCE:?}; listening again");
                            break;
                        }
                    };
                    if message == PING {
                        continue;
                    }
                    match decode(&message) {
                        Some((from, event)) if from != node => local.publish(event).await,
                        Some(_) => {}
                        None => tracing::warn!(message, "an event from another node did not parse"),
                    }
                }
            }
            Err(e) => {
                if !failing {
                    tracing::warn!(
                        error = format!("{e:#}"),
                        "cannot listen to the other nodes' live events; retrying every second"
                    );
                    failing = true;
                }
            }
        }
        tokio::time::sleep(RELISTEN_AFTER).await;
    }
}

/// Sends a heartbeat every [`HEARTBEAT`] (failures show in the listener's silence).
async fn beat(relay: Arc<dyn EventRelay>) {
    let mut tick = tokio::time::interval(HEARTBEAT);
    loop {
        tick.tick().await;
        let _ = relay.send(PING).await;
    }
}

/// An event as it travels between nodes (compact JSON; PostgreSQL's `NOTIFY` takes 8000 bytes).
#[derive(Serialize, Deserialize)]
struct Wire {
    node: Id,
    user: Id,
    kind: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    file: Option<Id>,
    #[serde(skip_serializing_if = "Option::is_none")]
    post: Option<Id>,
    #[serde(skip_serializing_if = "Option::is_none")]
    received: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    size: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    code: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    detail: Option<String>,
    at: i64,
}

const KINDS: [EventKind; 6] = [
    EventKind::FileProgress,
    EventKind::FileProcessing,
    EventKind::FileReady,
    EventKind::FileFailed,
    EventKind::PostPublished,
    EventKind::PostFailed,
];

/// Longest failure detail sent between nodes, so a message stays far below 8000 bytes.
const MAX_DETAIL: usize = 2000;

fn encode(node: Id, event: &Event) -> String {
    let (code, detail) = match &event.failure {
        Some(f) => {
            let mut detail = f.detail.clone();
            if detail.len() > MAX_DETAIL {
                let mut end = MAX_DETAIL;
                while !detail.is_char_boundary(end) {
                    end -= 1;
                }
                detail.truncate(end);
            }
            (Some(f.code.as_str().to_owned()), Some(detail))
        }
        None => (None, None),
    };
    let wire = Wire {
        node,
        user: event.user_id,
        kind: event.kind.as_str().to_owned(),
        file: event.file_id,
        post: event.post_id,
        received: event.bytes_received,
        size: event.size,
        code,
        detail,
        at: event.at.millis(),
    };
    serde_json::to_string(&wire).unwrap_or_default()
}

fn decode(message: &str) -> Option<(Id, Event)> {
    let wire: Wire = serde_json::from_str(message).ok()?;
    let kind = *KINDS.iter().find(|k| k.as_str() == wire.kind)?;
    let failure = match wire.code {
        Some(code) => Some(Failure {
            code: *ErrorCode::ALL.iter().find(|c| c.as_str() == code)?,
            detail: wire.detail.unwrap_or_default(),
        }),
        None => None,
    };
    let event = Event {
        user_id: wire.user,
        kind,
        file_id: wire.file,
        post_id: wire.post,
        bytes_received: wire.received,
        size: wire.size,
        failure,
        at: Timestamp::from_millis(wire.at),
    };
    Some((wire.node, event))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;

    #[test]
    fn every_event_survives_the_trip_between_nodes() {
        let node = Id::new();
        for kind in KINDS {
            let event = Event {
                user_id: Id::new(),
                kind,
                file_id: Some(Id::new()),
                post_id: (kind == EventKind::PostFailed).then(Id::new),
                bytes_received: Some(5),
                size: Some(10),
                failure: (kind == EventKind::FileFailed).then(|| Failure {
                    code: ErrorCode::ChecksumMismatch,
                    detail: "é".repeat(MAX_DETAIL),
                }),
                at: Timestamp::from_millis(1_795_860_000_123),
            };
            let message = encode(node, &event);
            assert!(message.len() < 8000, "{}", message.len());
            let (from, back) = decode(&message).expect("decodes");
            assert_eq!(from, node);
            let mut expected = event.clone();
            if let Some(f) = expected.failure.as_mut() {
                f.detail.truncate(MAX_DETAIL);
            }
            assert_eq!(back, expected);
        }
        assert!(decode("{\"not\":\"an event\"}").is_none());
    }
}
