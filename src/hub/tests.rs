//! The hub's own tests: delivery, lag, the relay's interest, and closing.

use super::*;
use crate::job::{EventFields, Frames, JobStatus, Timestamp};
use bytes::Bytes;
use std::time::Duration;

fn event(job_id: JobId, seq: u64) -> JobEvent {
    JobEvent::from(EventFields {
        job_id,
        seq,
        status: JobStatus::Processing,
        updated_at: Timestamp::now(),
        expires_at: Timestamp::now(),
        json: Bytes::from_static(b"{}"),
        frames: Frames::default(),
    })
}

#[tokio::test]
async fn a_subscriber_receives_what_is_published_and_the_topic_is_pruned_after() {
    let hub = Hub::default();
    let id = JobId::new();
    let mut subscription = hub.subscribe(id);
    hub.publish(event(id, 2));
    assert_eq!(subscription.next().await.unwrap().seq, 2);
    assert_eq!(hub.watched(), [Scope::Job(id)]);
    drop(subscription);
    assert!(hub.watched().is_empty());
}

#[tokio::test]
async fn a_lagging_subscriber_skips_to_the_newest_event() {
    let hub = Hub::default();
    let id = JobId::new();
    let mut subscription = hub.subscribe(id);
    let total = SUBSCRIBER_BUFFER as u64 * 3;
    for seq in 1..=total {
        hub.publish(event(id, seq));
    }
    assert_eq!(subscription.next().await.unwrap().seq, total);
}

#[tokio::test]
async fn the_relay_hears_of_the_first_watcher_and_the_last_leaving() {
    let hub = Hub::default();
    let mut interest = hub.attach_relay();
    let id = JobId::new();
    let mut first = hub.subscribe(id);
    let second = hub.subscribe(id);
    assert_eq!(interest.recv().await, Some(Interest::Watch(Scope::Job(id))));
    assert!(!first.relayed(Duration::from_millis(10)).await);
    hub.set_relayed(Scope::Job(id), true);
    assert!(first.relayed(Duration::from_millis(10)).await);
    drop(first);
    drop(second);
    assert_eq!(
        interest.recv().await,
        Some(Interest::Unwatch(Scope::Job(id)))
    );
    assert!(interest.try_recv().is_err());
}

#[tokio::test]
async fn closing_ends_every_subscription_after_what_it_has_buffered_and_every_later_one() {
    let hub = Hub::default();
    let id = JobId::new();
    let mut subscription = hub.subscribe(id);
    let mut everything = hub.subscribe(Scope::All);
    hub.publish(event(id, 2));
    hub.close();
    assert_eq!(subscription.next().await.unwrap().seq, 2);
    assert!(subscription.next().await.is_none());
    assert!(everything.next().await.is_none());
    assert!(hub.subscribe(id).next().await.is_none());
    assert!(hub.subscribe(Scope::All).next().await.is_none());
    assert!(hub.watched().is_empty());
}
