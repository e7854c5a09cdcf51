//! Live events: the in-process [`EventBus`] (one small channel per watching user, so a busy
//! user never pushes anyone else's events out), the per-user cap on open streams, and the
//! per-file gate that keeps progress events at most one per 100 ms whatever the number of
//! requests carrying the bytes.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use futures::StreamExt;
use shutter_core::{ErrorCode, Id};
use tokio::sync::broadcast;

use crate::accounts::Principal;
use crate::ports::{Event, EventBus, EventStream};
use crate::{AppError, AppResult, Shutter};

/// Events buffered per watching user. A subscriber that falls this far behind skips what it
/// missed (live progress is only worth having when it is current); other users are untouched.
const PER_USER_CAPACITY: usize = 256;

/// How often progress of one file is announced, at most.
pub const PROGRESS_INTERVAL: Duration = Duration::from_millis(100);

pub struct InProcessEventBus {
    channels: Mutex<HashMap<Id, broadcast::Sender<Event>>>,
}

impl InProcessEventBus {
    pub fn new() -> Self {
        InProcessEventBus {
            channels: Mutex::new(HashMap::new()),
        }
    }

    /// Users with a channel now (for tests: channels of users nobody watches are dropped).
    pub fn watched_users(&self) -> usize {
        let mut channels = self.channels.lock().unwrap_or_else(PoisonError::into_inner);
        channels.retain(|_, sender| sender.receiver_count() > 0);
        channels.len()
    }
}

impl Default for InProcessEventBus {
    fn default() -> Self {
        Self::new()
    }
}

#[async_trait]
impl EventBus for InProcessEventBus {
    async fn publish(&self, event: Event) {
        let mut channels = self.channels.lock().unwrap_or_else(PoisonError::into_inner);
        let Some(sender) = channels.get(&event.user_id) else {
            return; // nobody is watching
        };
        if sender.send(event.clone()).is_err() {
            // Every stream of this user has ended.
            channels.remove(&event.user_id);
        }
    }

    async fn subscribe(&self, user_id: Id) -> EventStream {
        let receiver = {
            let mut channels = self.channels.lock().unwrap_or_else(PoisonError::into_inner);
            // Drop the channels whose streams have all ended, so the map holds watched users only.
            channels.retain(|_, sender| sender.receiver_count() > 0);
            channels
                .entry(user_id)
                .or_insert_with(|| broadcast::channel(PER_USER_CAPACITY).0)
                .subscribe()
        };
        Box::pin(futures::stream::unfold(receiver, |mut rx| async move {
            loop {
                match rx.recv().await {
                    Ok(event) => return Some((event, rx)),
                    Err(broadcast::error::RecvError::Lagged(_)) => continue,
                    Err(broadcast::error::RecvError::Closed) => return None,
                }
            }
        }))
    }
}

/// Counts each user's open event streams (SSE and WebSocket together) on this node.
#[derive(Default)]
pub(crate) struct StreamSlots {
    open: Arc<Mutex<HashMap<Id, usize>>>,
}

/// One open stream; gives its slot back when dropped.
struct StreamSlot {
    open: Arc<Mutex<HashMap<Id, usize>>>,
    user_id: Id,
}

impl StreamSlots {
    fn take(&self, user_id: Id, max: usize) -> Result<StreamSlot, usize> {
        let mut open = self.open.lock().unwrap_or_else(PoisonError::into_inner);
        let count = open.entry(user_id).or_insert(0);
        if *count >= max {
            return Err(*count);
        }
        *count += 1;
        Ok(StreamSlot {
            open: self.open.clone(),
            user_id,
        })
    }
}

impl Drop for StreamSlot {
    fn drop(&mut self) {
        let mut open = self.open.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(count) = open.get_mut(&self.user_id) {
            *count -= 1;
            if *count == 0 {
                open.remove(&self.user_id);
            }
        }
    }
}

/// Admits at most one progress event per file per [`PROGRESS_INTERVAL`], across all the
/// requests that carry the file's bytes (a tus client may send a PATCH every few ms).
#[derive(Default)]
pub(crate) struct ProgressGate {
    last: Mutex<HashMap<Id, Instant>>,
}

impl ProgressGate {
    /// Entries kept before stale ones (older than the interval, so useless) are dropped.
    const PRUNE_AT: usize = 1024;

    pub(crate) fn admit(&self, file_id: Id) -> bool {
        self.admit_at(file_id, Instant::now())
    }

    fn admit_at(&self, file_id: Id, now: Instant) -> bool {
        let mut last = self.last.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(at) = last.get(&file_id) {
            if now.saturating_duration_since(*at) < PROGRESS_INTERVAL {
                return false;
            }
        }
        if last.len() >= Self::PRUNE_AT {
            last.retain(|_, at| now.saturating_duration_since(*at) < PROGRESS_INTERVAL);
        }
        last.insert(file_id, now);
        true
    }
}

impl Shutter {
    /// The signed-in user's live events from now on, as one of at most
    /// `server.max_event_streams_per_user` open streams on this node (else 429 `rate_limited`).
    pub async fn watch_events(&self, who: &Principal) -> AppResult<EventStream> {
        let max = self.config.server.max_event_streams_per_user;
        let slot = self.event_streams.take(who.id(), max).map_err(|open| {
            AppError {
                retry_after: Some(5),
                ..AppError::new(
                    ErrorCode::RateLimited,
                    format!("at most {max} live event streams may be open at once"),
                )
            }
            .with_limit("event_streams", max as u64, open as u64 + 1)
        })?;
        let events = self.events.subscribe(who.id()).await;
        // The slot lives as long as the stream.
        Ok(Box::pin(events.map(move |event| {
            let _held = &slot;
            event
        })))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use futures::StreamExt;
    use shutter_core::Timestamp;

    use super::*;
    use crate::ports::EventKind;

    fn event(user_id: Id, kind: EventKind) -> Event {
        Event {
            user_id,
            kind,
            file_id: None,
            post_id: None,
            bytes_received: None,
            size: None,
            failure: None,
            at: Timestamp::now(),
        }
    }

    #[tokio::test]
    async fn each_subscriber_sees_only_its_own_users_events() {
        let bus = InProcessEventBus::new();
        let (alice, bob) = (Id::new(), Id::new());
        let mut alice_events = bus.subscribe(alice).await;
        bus.publish(event(bob, EventKind::FileReady)).await;
        bus.publish(event(alice, EventKind::FileProgress)).await;
        let got = alice_events.next().await;
        assert_eq!(
            got.map(|e| (e.user_id, e.kind)),
            Some((alice, EventKind::FileProgress))
        );
    }

    #[tokio::test]
    async fn a_busy_user_does_not_push_out_anyone_elses_events() {
        let bus = InProcessEventBus::new();
        let (alice, bob) = (Id::new(), Id::new());
        let mut alice_events = bus.subscribe(alice).await;
        let _bob_events = bus.subscribe(bob).await;
        bus.publish(event(alice, EventKind::FileReady)).await;
        // Bob's uploads announce far more than any buffer holds while Alice reads nothing.
        for _ in 0..PER_USER_CAPACITY * 20 {
            bus.publish(event(bob, EventKind::FileProgress)).await;
        }
        let got = alice_events.next().await;
        assert_eq!(got.map(|e| e.kind), Some(EventKind::FileReady));
    }

    #[tokio::test]
    async fn channels_of_users_nobody_watches_are_dropped() {
        let bus = InProcessEventBus::new();
        for _ in 0..100 {
            let user = Id::new();
            let stream = bus.subscribe(user).await;
            drop(stream);
            bus.publish(event(user, EventKind::FileReady)).await;
        }
        let watched = bus.subscribe(Id::new()).await;
        assert_eq!(bus.watched_users(), 1);
        drop(watched);
        assert_eq!(bus.watched_users(), 0);
    }

    #[test]
    fn stream_slots_are_capped_per_user_and_given_back() {
        let slots = StreamSlots::default();
        let (alice, bob) = (Id::new(), Id::new());
        let first = slots.take(alice, 2).expect("first");
        let _second = slots.take(alice, 2).expect("second");
        assert_eq!(slots.take(alice, 2).err(), Some(2));
        assert!(slots.take(bob, 2).is_ok(), "another user is not affected");
        drop(first);
        assert!(
            slots.take(alice, 2).is_ok(),
            "a closed stream frees its slot"
        );
    }

    #[test]
    fn progress_is_admitted_once_per_interval_per_file() {
        let gate = ProgressGate::default();
        let (a, b) = (Id::new(), Id::new());
        let start = Instant::now();
        assert!(gate.admit_at(a, start));
        assert!(gate.admit_at(b, start), "files are gated separately");
        assert!(!gate.admit_at(a, start + Duration::from_millis(40)));
        assert!(!gate.admit_at(a, start + Duration::from_millis(99)));
        assert!(gate.admit_at(a, start + PROGRESS_INTERVAL));
    }

    #[test]
    fn the_gate_forgets_stale_files() {
        let gate = ProgressGate::default();
        let start = Instant::now();
        for _ in 0..ProgressGate::PRUNE_AT * 3 {
            gate.admit_at(Id::new(), start);
        }
        let later = start + PROGRESS_INTERVAL;
        gate.admit_at(Id::new(), later);
        let held = gate.last.lock().unwrap().len();
        assert!(held <= ProgressGate::PRUNE_AT, "held {held}");
    }
}
