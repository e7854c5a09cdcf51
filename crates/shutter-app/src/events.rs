//! The in-process [`EventBus`]: one broadcast channel, each subscriber keeping only its own
//! user's events. A subscriber that falls more than the channel's capacity behind skips the
//! events it missed (live progress is only worth having when it is current).

use async_trait::async_trait;
use shutter_core::Id;
use tokio::sync::broadcast;

use crate::ports::{Event, EventBus, EventStream};

const CAPACITY: usize = 4096;

pub struct InProcessEventBus {
    sender: broadcast::Sender<Event>,
}

impl InProcessEventBus {
    pub fn new() -> Self {
        InProcessEventBus {
            sender: broadcast::channel(CAPACITY).0,
        }
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
        // No subscribers is not an error: nobody is watching.
        let _ = self.sender.send(event);
    }

    async fn subscribe(&self, user_id: Id) -> EventStream {
        let receiver = self.sender.subscribe();
        Box::pin(futures::stream::unfold(
            receiver,
            move |mut rx| async move {
                loop {
                    match rx.recv().await {
                        Ok(event) if event.user_id == user_id => return Some((event, rx)),
                        Ok(_) | Err(broadcast::error::RecvError::Lagged(_)) => continue,
                        Err(broadcast::error::RecvError::Closed) => return None,
                    }
                }
            },
        ))
    }
}

#[cfg(test)]
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
}
