//! The memory store on its own: expiry, claims, the mirror and its bound.

use super::*;
use crate::store::WorkQueue;
use serde_json::value::RawValue;
use std::collections::HashSet;

/// No one watches these stores' jobs.
struct Nobody;

impl Publisher for Nobody {
    fn publish_job(&self, _: &Job) {}
}

fn pending_job(ttl_secs: u64) -> Job {
    let input = RawValue::from_string("{}".to_owned()).unwrap();
    Job::new("test", input, Timestamp::now(), ttl_secs)
}

#[tokio::test(start_paused = true)]
async fn a_job_expires_after_its_ttl_and_cleanup_purges_it() {
    let store = MemoryStore::new(Arc::new(Nobody), 60, usize::MAX);
    let job = pending_job(60);
    store.create(&job).await.unwrap();
    store.enqueue(job.job_id, job.priority).await.unwrap();

    tokio::time::advance(Duration::from_secs(59)).await;
    assert!(store.get(job.job_id).await.unwrap().is_some());

    tokio::time::advance(Duration::from_secs(2)).await;
    assert!(store.get(job.job_id).await.unwrap().is_none());
    assert_eq!(store.purge_expired(), 1);
    assert_eq!(store.purge_orphans().await.unwrap(), 1);
}

#[tokio::test(start_paused = true)]
async fn every_change_renews_the_ttl() {
    let store = MemoryStore::new(Arc::new(Nobody), 60, usize::MAX);
    let job = pending_job(60);
    store.create(&job).await.unwrap();
    tokio::time::advance(Duration::from_secs(50)).await;
    let change = Change::Progress {
        progress: 10,
        step: Some("Working".into()),
        fence: None,
    };
    store.apply(job.job_id, change).await.unwrap();
    tokio::time::advance(Duration::from_secs(50)).await;
    assert!(store.get(job.job_id).await.unwrap().is_some());
}

#[tokio::test]
async fn each_queued_job_is_claimed_once() {
    let store = MemoryStore::new(Arc::new(Nobody), 60, usize::MAX);
    for _ in 0..10 {
        store
            .enqueue(JobId::new(), Priority::default())
            .await
            .unwrap();
    }
    let lease = Duration::from_secs(30);
    let mut claimed = Vec::new();
    while let Some(id) = store.claim(lease).await.unwrap() {
        claimed.push(id);
    }
    assert_eq!(claimed.iter().collect::<HashSet<_>>().len(), 10);
}

#[tokio::test]
async fn when_full_the_oldest_mirrored_copies_go_and_what_only_memory_holds_stays() {
    let one = footprint(&pending_job(60));
    let store = MemoryStore::new(Arc::new(Nobody), 60, 10 * one);
    let own: Vec<Job> = (0..4).map(|_| pending_job(60)).collect();
    for job in &own {
        store.create(job).await.unwrap(); // made here during an outage
    }
    let mirrored: Vec<Job> = (0..1_000).map(|_| pending_job(60)).collect();
    for job in &mirrored {
        store.mirror(job);
    }
    assert!(
        store.bytes() <= 10 * one,
        "{} > {}",
        store.bytes(),
        10 * one
    );
    for job in &own {
        assert!(store.get(job.job_id).await.unwrap().is_some());
    }
    let kept = store.jobs(None).len();
    assert_eq!(kept, 10);
    let newest = &mirrored[mirrored.len() - 1];
    assert!(store.get(newest.job_id).await.unwrap().is_some());
    assert!(store.get(mirrored[0].job_id).await.unwrap().is_none());

    for job in (0..6).map(|_| pending_job(60)) {
        store.create(&job).await.unwrap(); // displaces the mirrored copies
    }
    let refused = store.create(&pending_job(60)).await;
    assert!(matches!(refused, Err(StoreError::Full)), "{refused:?}");
    assert_eq!(store.bytes(), 10 * one);
}

#[tokio::test]
async fn a_mirror_never_replaces_a_newer_state() {
    let store = MemoryStore::new(Arc::new(Nobody), 60, usize::MAX);
    let mut job = pending_job(60);
    job.seq = 5;
    store.mirror(&job);
    let mut older = job.clone();
    older.seq = 3;
    store.mirror(&older);
    assert_eq!(store.get(job.job_id).await.unwrap().unwrap().seq, 5);
}

#[tokio::test]
async fn finished_jobs_are_kept_in_the_history_until_pruned_and_only_when_kept() {
    use crate::store::History;
    use crate::store::listing::HistoryQuery;
    let store = MemoryStore::new(Arc::new(Nobody), 60, usize::MAX);
    let unkept = MemoryStore::new(Arc::new(Nobody), 60, usize::MAX).keeping_history(false);
    let fail = || Change::Fail {
        error: "gone".into(),
        fence: None,
    };
    let mut ids = Vec::new();
    for memory in [&store, &unkept] {
        for _ in 0..2 {
            let job = pending_job(60);
            memory.create(&job).await.unwrap();
            memory.apply(job.job_id, fail()).await.unwrap();
            ids.push(job.job_id);
            tokio::time::sleep(Duration::from_millis(2)).await; // finished in distinct ms
        }
    }
    let query = HistoryQuery {
        limit: 10,
        ..HistoryQuery::default()
    };
    let listed = |page: crate::store::listing::HistoryPage| {
        page.records.iter().map(|r| r.job_id).collect::<Vec<_>>()
    };
    assert_eq!(
        listed(store.history_page(&query).await.unwrap()),
        [ids[1], ids[0]]
    );
    assert!(
        unkept
            .history_page(&query)
            .await
            .unwrap()
            .records
            .is_empty()
    );

    let first = store.history_record(ids[0]).await.unwrap().unwrap();
    let pruned = store
        .prune_history(first.finished_ms() + 1, 1)
        .await
        .unwrap();
    assert_eq!(pruned, 1);
    assert_eq!(listed(store.history_page(&query).await.unwrap()), [ids[1]]);
}
