//! What every `JobQueue` adapter must do. Each scenario gets a fresh, migrated database.

use std::collections::HashSet;
use std::sync::Arc;

use futures::future::join_all;
use shutter_app::ports::{Job, JobFailure, JobQueue, JobStatus, NewJob, QueueStats, RepoError};
use shutter_core::Id;

use crate::backends::TestDb;
use crate::scenarios::{at, early_id};

/// The lease of most claims: longer than any scenario's clock runs.
const LEASE_MS: i64 = 600_000;

fn new_job(priority: i32, run_at_ms: i64) -> NewJob {
    NewJob {
        id: Id::new(),
        kind: "process_file".to_owned(),
        payload: format!(r#"{{"run_at":{run_at_ms}}}"#),
        priority,
        run_at: at(run_at_ms),
        max_attempts: 3,
        created_at: at(0),
    }
}

/// A job with a chosen id, so ties in the claim order are known in advance.
fn job_with_id(n: u8, priority: i32, run_at_ms: i64) -> NewJob {
    NewJob {
        id: early_id(n),
        ..new_job(priority, run_at_ms)
    }
}

async fn enqueue(jobs: &dyn JobQueue, job: NewJob) -> NewJob {
    jobs.enqueue(job.clone()).await.expect("job enqueued");
    job
}

async fn stored(jobs: &dyn JobQueue, id: Id) -> Job {
    jobs.list_jobs(None, 10_000)
        .await
        .unwrap()
        .into_iter()
        .find(|job| job.id == id)
        .expect("job stored")
}

async fn claim(jobs: &dyn JobQueue, worker: &str, ms: i64) -> Option<Job> {
    jobs.claim(worker, at(ms), LEASE_MS).await.unwrap()
}

fn ids(jobs: &[Job]) -> Vec<Id> {
    jobs.iter().map(|job| job.id).collect()
}

pub async fn jobs_are_enqueued_claimed_and_completed(db: &TestDb) {
    let jobs = db.jobs();
    assert_eq!(claim(jobs, "w1", 0).await, None, "nothing to claim yet");

    let new = enqueue(jobs, new_job(0, 5)).await;
    let queued = stored(jobs, new.id).await;
    assert_eq!(
        queued,
        Job {
            id: new.id,
            kind: "process_file".into(),
            payload: r#"{"run_at":5}"#.into(),
            priority: 0,
            status: JobStatus::Queued,
            attempts: 0,
            max_attempts: 3,
            run_at: at(5),
            locked_by: None,
            locked_until: None,
            last_error: None,
            created_at: at(0),
            updated_at: at(0),
        }
    );

    let claimed = claim(jobs, "w1", 10).await.expect("the job is due");
    assert_eq!(
        claimed,
        Job {
            status: JobStatus::Running,
            attempts: 1,
            locked_by: Some("w1".into()),
            locked_until: Some(at(10 + LEASE_MS)),
            updated_at: at(10),
            ..queued
        }
    );
    assert_eq!(stored(jobs, new.id).await, claimed);
    assert_eq!(
        claim(jobs, "w2", 11).await,
        None,
        "a held job is not claimed"
    );

    // Only the lease holder extends and completes.
    assert!(!jobs.extend_lease(new.id, "w2", at(99_999)).await.unwrap());
    assert!(jobs.extend_lease(new.id, "w1", at(50_000)).await.unwrap());
    assert_eq!(stored(jobs, new.id).await.locked_until, Some(at(50_000)));
    assert!(!jobs.complete(new.id, "w2", at(20)).await.unwrap());
    assert!(!jobs.complete(Id::new(), "w1", at(20)).await.unwrap());
    assert!(jobs.complete(new.id, "w1", at(20)).await.unwrap());
    let done = stored(jobs, new.id).await;
    assert_eq!(
        done,
        Job {
            status: JobStatus::Done,
            locked_by: None,
            locked_until: None,
            updated_at: at(20),
            ..claimed
        }
    );

    // A done job is nobody's any more.
    assert!(!jobs.complete(new.id, "w1", at(21)).await.unwrap());
    assert!(!jobs.extend_lease(new.id, "w1", at(60_000)).await.unwrap());
    assert_eq!(
        jobs.fail(new.id, "w1", "late", at(30), at(30))
            .await
            .unwrap(),
        JobFailure::LeaseLost
    );
    assert_eq!(claim(jobs, "w1", 10 * LEASE_MS).await, None);
    assert_eq!(stored(jobs, new.id).await, done);
}

pub async fn enqueued_jobs_keep_their_payload_and_are_checked(db: &TestDb) {
    let jobs = db.jobs();
    let payload = "{ \"name\": \"café.jpg\",\n  \"sizes\": [64, 256] }";
    let job = enqueue(
        jobs,
        NewJob {
            payload: payload.into(),
            ..new_job(-3, 0)
        },
    )
    .await;
    let back = stored(jobs, job.id).await;
    assert_eq!((back.payload.as_str(), back.priority), (payload, -3));

    assert!(matches!(
        jobs.enqueue(NewJob {
            kind: "other".into(),
            ..job.clone()
        })
        .await,
        Err(RepoError::Conflict(rule)) if rule == "duplicate"
    ));
    assert!(
        jobs.enqueue(NewJob {
            payload: "not json".into(),
            ..new_job(0, 0)
        })
        .await
        .is_err(),
        "a payload must be JSON"
    );
    assert_eq!(jobs.list_jobs(None, 10).await.unwrap().len(), 1);
}

pub async fn claims_go_by_priority_then_run_at_then_id(db: &TestDb) {
    let jobs = db.jobs();
    // Enqueued out of order; `late` has the top priority but is not due until 500.
    let low_late = enqueue(jobs, job_with_id(1, 0, 5)).await;
    let high_9 = enqueue(jobs, job_with_id(2, 10, 9)).await;
    let high_3_second = enqueue(jobs, job_with_id(4, 10, 3)).await;
    let high_3_first = enqueue(jobs, job_with_id(3, 10, 3)).await;
    let low_early = enqueue(jobs, job_with_id(5, 0, 1)).await;
    let negative = enqueue(jobs, job_with_id(6, -5, 0)).await;
    let late = enqueue(jobs, job_with_id(7, 99, 500)).await;

    let mut order = Vec::new();
    while let Some(job) = claim(jobs, "w1", 100).await {
        order.push(job.id);
    }
    assert_eq!(
        order,
        vec![
            high_3_first.id,
            high_3_second.id,
            high_9.id,
            low_early.id,
            low_late.id,
            negative.id
        ]
    );
    assert_eq!(
        claim(jobs, "w1", 500).await.map(|job| job.id),
        Some(late.id)
    );
}

pub async fn jobs_wait_for_their_run_at(db: &TestDb) {
    let jobs = db.jobs();
    let job = enqueue(jobs, new_job(0, 100)).await;
    assert_eq!(claim(jobs, "w1", 99).await, None);
    assert_eq!(stats_queued(jobs, 99).await, 1);
    let claimed = claim(jobs, "w1", 100).await.expect("due at its run_at");
    assert_eq!((claimed.id, claimed.run_at), (job.id, at(100)));
}

async fn stats_queued(jobs: &dyn JobQueue, ms: i64) -> u64 {
    jobs.stats(at(ms)).await.unwrap().queued
}

pub async fn expired_leases_pass_to_another_worker(db: &TestDb) {
    let jobs = db.jobs();
    let job = enqueue(
        jobs,
        NewJob {
            max_attempts: 5,
            ..new_job(0, 0)
        },
    )
    .await;
    let first = jobs.claim("w1", at(0), 1_000).await.unwrap().unwrap();
    assert_eq!((first.attempts, first.locked_until), (1, Some(at(1_000))));

    // The lease holds up to its last millisecond.
    assert_eq!(jobs.claim("w2", at(1_000), 1_000).await.unwrap(), None);
    let second = jobs
        .claim("w2", at(1_001), 1_000)
        .await
        .unwrap()
        .expect("the lease expired");
    assert_eq!(
        (
            second.id,
            second.attempts,
            second.locked_by.as_deref(),
            second.locked_until
        ),
        (job.id, 2, Some("w2"), Some(at(2_001)))
    );

    // The first worker comes back too late and changes nothing.
    assert!(!jobs.complete(job.id, "w1", at(1_500)).await.unwrap());
    assert!(!jobs.extend_lease(job.id, "w1", at(9_000)).await.unwrap());
    assert_eq!(
        jobs.fail(job.id, "w1", "too late", at(5_000), at(1_500))
            .await
            .unwrap(),
        JobFailure::LeaseLost
    );
    assert_eq!(stored(jobs, job.id).await, second);

    // An extended lease is not taken over.
    assert!(jobs.extend_lease(job.id, "w2", at(10_000)).await.unwrap());
    assert_eq!(jobs.claim("w3", at(5_000), 1_000).await.unwrap(), None);
    assert!(jobs.complete(job.id, "w2", at(6_000)).await.unwrap());
    let done = stored(jobs, job.id).await;
    assert_eq!((done.status, done.attempts), (JobStatus::Done, 2));
}

pub async fn lost_leases_on_the_last_attempt_are_dead_lettered(db: &TestDb) {
    let jobs = db.jobs();
    let job = enqueue(
        jobs,
        NewJob {
            max_attempts: 2,
            ..new_job(0, 0)
        },
    )
    .await;
    assert!(jobs.claim("w1", at(0), 1_000).await.unwrap().is_some());
    let last = jobs.claim("w2", at(1_001), 1_000).await.unwrap().unwrap();
    assert_eq!(last.attempts, 2);

    // w2 never reports back: a third attempt would exceed max_attempts.
    assert_eq!(jobs.claim("w3", at(2_002), 1_000).await.unwrap(), None);
    let dead = stored(jobs, job.id).await;
    assert_eq!(
        (
            dead.status,
            dead.attempts,
            dead.locked_by,
            dead.locked_until,
            dead.updated_at
        ),
        (JobStatus::Dead, 2, None, None, at(2_002))
    );
    let error = dead.last_error.expect("why it died");
    assert!(error.contains("w2"), "{error}");
    assert!(!jobs.complete(job.id, "w2", at(2_003)).await.unwrap());
    let stats = jobs.stats(at(2_003)).await.unwrap();
    assert_eq!((stats.running, stats.dead), (0, 1));
}

pub async fn failed_attempts_retry_then_die(db: &TestDb) {
    let jobs = db.jobs();
    let job = enqueue(jobs, new_job(0, 0)).await;
    let worker = "w1";

    assert_eq!(claim(jobs, worker, 0).await.unwrap().attempts, 1);
    assert_eq!(
        jobs.fail(job.id, "w2", "not mine", at(1), at(1))
            .await
            .unwrap(),
        JobFailure::LeaseLost
    );
    assert_eq!(
        jobs.fail(job.id, worker, "boom 1", at(500), at(10))
            .await
            .unwrap(),
        JobFailure::Retrying
    );
    let retrying = stored(jobs, job.id).await;
    assert_eq!(
        retrying,
        Job {
            status: JobStatus::Queued,
            attempts: 1,
            run_at: at(500),
            locked_by: None,
            locked_until: None,
            last_error: Some("boom 1".into()),
            updated_at: at(10),
            ..retrying.clone()
        }
    );

    // Not before retry_at.
    assert_eq!(claim(jobs, worker, 499).await, None);
    assert_eq!(claim(jobs, worker, 500).await.unwrap().attempts, 2);
    assert_eq!(
        jobs.fail(job.id, worker, "boom 2", at(1_500), at(510))
            .await
            .unwrap(),
        JobFailure::Retrying
    );
    assert_eq!(claim(jobs, worker, 1_500).await.unwrap().attempts, 3);
    assert_eq!(
        jobs.fail(job.id, worker, "boom 3", at(9_000), at(1_510))
            .await
            .unwrap(),
        JobFailure::Dead
    );
    let dead = stored(jobs, job.id).await;
    assert_eq!(
        (
            dead.status,
            dead.attempts,
            dead.run_at,
            dead.last_error.as_deref(),
            dead.locked_by.as_deref(),
            dead.updated_at
        ),
        (
            JobStatus::Dead,
            3,
            at(1_500),
            Some("boom 3"),
            None,
            at(1_510)
        )
    );
    assert_eq!(claim(jobs, worker, 100 * LEASE_MS).await, None);
    assert_eq!(
        jobs.fail(job.id, worker, "boom 4", at(9_000), at(9_000))
            .await
            .unwrap(),
        JobFailure::LeaseLost
    );
}

/// Claims the next job and fails it for good (its `max_attempts` is 1).
async fn kill_next(jobs: &dyn JobQueue, expected: Id) {
    let job = claim(jobs, "w1", 0).await.expect("a job to kill");
    assert_eq!(job.id, expected);
    assert_eq!(
        jobs.fail(job.id, "w1", "boom", at(10), at(10))
            .await
            .unwrap(),
        JobFailure::Dead
    );
}

pub async fn dead_jobs_are_retried(db: &TestDb) {
    let jobs = db.jobs();
    let once = |n| NewJob {
        max_attempts: 1,
        ..job_with_id(n, 0, 0)
    };
    let a = enqueue(jobs, once(1)).await;
    let b = enqueue(jobs, once(2)).await;
    let waiting = enqueue(jobs, job_with_id(3, 0, 5_000)).await;
    kill_next(jobs, a.id).await;
    kill_next(jobs, b.id).await;
    let waiting_before = stored(jobs, waiting.id).await;

    assert_eq!(jobs.retry_dead(Some(Id::new()), at(50)).await.unwrap(), 0);
    assert_eq!(jobs.retry_dead(Some(waiting.id), at(50)).await.unwrap(), 0);
    assert_eq!(jobs.retry_dead(Some(a.id), at(50)).await.unwrap(), 1);
    let again = stored(jobs, a.id).await;
    assert_eq!(
        (
            again.status,
            again.attempts,
            again.run_at,
            again.last_error.as_deref(),
            again.updated_at
        ),
        (JobStatus::Queued, 0, at(50), Some("boom"), at(50))
    );
    assert_eq!(jobs.retry_dead(Some(a.id), at(55)).await.unwrap(), 0);
    assert_eq!(stored(jobs, b.id).await.status, JobStatus::Dead);

    assert_eq!(jobs.retry_dead(None, at(60)).await.unwrap(), 1);
    let b_again = stored(jobs, b.id).await;
    assert_eq!(
        (b_again.status, b_again.attempts, b_again.run_at),
        (JobStatus::Queued, 0, at(60))
    );
    assert_eq!(jobs.retry_dead(None, at(70)).await.unwrap(), 0);
    assert_eq!(stored(jobs, waiting.id).await, waiting_before);

    // Fresh attempts: each may fail once more.
    let first = claim(jobs, "w1", 60).await.unwrap();
    assert_eq!((first.id, first.attempts), (a.id, 1));
}

pub async fn jobs_are_listed_by_status_newest_first(db: &TestDb) {
    let jobs = db.jobs();
    let created = |n, ms| NewJob {
        created_at: at(ms),
        ..job_with_id(n, 0, 0)
    };
    let j1 = enqueue(jobs, created(1, 10)).await;
    let j2 = enqueue(jobs, created(2, 20)).await;
    let j3 = enqueue(jobs, created(3, 20)).await;
    let j4 = enqueue(jobs, created(4, 30)).await;
    assert_eq!(claim(jobs, "w1", 0).await.unwrap().id, j1.id);
    assert!(jobs.complete(j1.id, "w1", at(40)).await.unwrap());
    assert_eq!(claim(jobs, "w1", 0).await.unwrap().id, j2.id);

    let list = |status, limit| async move { ids(&jobs.list_jobs(status, limit).await.unwrap()) };
    assert_eq!(list(None, 10).await, vec![j4.id, j3.id, j2.id, j1.id]);
    assert_eq!(list(None, 2).await, vec![j4.id, j3.id]);
    assert_eq!(list(None, 0).await, Vec::<Id>::new());
    assert_eq!(list(Some(JobStatus::Queued), 10).await, vec![j4.id, j3.id]);
    assert_eq!(list(Some(JobStatus::Queued), 1).await, vec![j4.id]);
    assert_eq!(list(Some(JobStatus::Running), 10).await, vec![j2.id]);
    assert_eq!(list(Some(JobStatus::Done), 10).await, vec![j1.id]);
    assert_eq!(list(Some(JobStatus::Dead), 10).await, Vec::<Id>::new());
}

pub async fn queue_stats_count_and_age(db: &TestDb) {
    let jobs = db.jobs();
    assert_eq!(jobs.stats(at(0)).await.unwrap(), QueueStats::default());

    enqueue(jobs, new_job(0, 100)).await;
    enqueue(jobs, new_job(0, 300)).await;
    enqueue(jobs, new_job(0, 10_000)).await;
    let doomed = enqueue(
        jobs,
        NewJob {
            max_attempts: 1,
            ..new_job(9, 50)
        },
    )
    .await;
    let busy = enqueue(jobs, new_job(5, 60)).await;
    kill_next_at(jobs, doomed.id, 70).await;
    assert_eq!(claim(jobs, "w1", 70).await.unwrap().id, busy.id);

    let stats = |ms| async move { jobs.stats(at(ms)).await.unwrap() };
    assert_eq!(
        stats(1_000).await,
        QueueStats {
            queued: 3,
            running: 1,
            dead: 1,
            oldest_due_ms: 900,
        }
    );
    // Queued jobs count whether due or not; the age only looks at due ones.
    assert_eq!(stats(99).await.oldest_due_ms, 0);
    assert_eq!(stats(99).await.queued, 3);
    assert_eq!(stats(100).await.oldest_due_ms, 0);
    assert_eq!(stats(100_000).await.oldest_due_ms, 99_900);

    // Done jobs are not counted.
    assert!(jobs.complete(busy.id, "w1", at(80)).await.unwrap());
    assert_eq!(stats(1_000).await.running, 0);
}

async fn kill_next_at(jobs: &dyn JobQueue, expected: Id, ms: i64) {
    let job = claim(jobs, "w1", ms).await.expect("a job to kill");
    assert_eq!(job.id, expected);
    assert_eq!(
        jobs.fail(job.id, "w1", "boom", at(ms), at(ms))
            .await
            .unwrap(),
        JobFailure::Dead
    );
}

pub async fn done_jobs_are_pruned(db: &TestDb) {
    let jobs = db.jobs();
    let a = enqueue(jobs, job_with_id(1, 0, 0)).await;
    let b = enqueue(jobs, job_with_id(2, 0, 0)).await;
    let c = enqueue(
        jobs,
        NewJob {
            max_attempts: 1,
            ..job_with_id(3, 0, 0)
        },
    )
    .await;
    let d = enqueue(jobs, job_with_id(4, 0, 0)).await;
    for (job, ms) in [(&a, 100), (&b, 200)] {
        assert_eq!(claim(jobs, "w1", 0).await.unwrap().id, job.id);
        assert!(jobs.complete(job.id, "w1", at(ms)).await.unwrap());
    }
    kill_next(jobs, c.id).await;

    assert_eq!(
        jobs.prune_done(at(100)).await.unwrap(),
        0,
        "strictly before"
    );
    assert_eq!(jobs.prune_done(at(101)).await.unwrap(), 1);
    assert_eq!(jobs.prune_done(at(10_000)).await.unwrap(), 1);
    assert_eq!(jobs.prune_done(at(10_000)).await.unwrap(), 0);
    let left: HashSet<Id> = ids(&jobs.list_jobs(None, 10).await.unwrap())
        .into_iter()
        .collect();
    assert_eq!(left, HashSet::from([c.id, d.id]));
}

const RACE_JOBS: usize = 200;

/// Concurrent claim loops per worker, like a worker process's task slots.
const SLOTS: usize = 4;

/// One worker: claims and completes until nothing is left; the jobs it completed.
async fn drain(jobs: Arc<dyn JobQueue>, worker: &'static str) -> Vec<Id> {
    let slots = (0..SLOTS).map(|slot| {
        let jobs = Arc::clone(&jobs);
        async move {
            let name = format!("{worker}/{slot}");
            let mut completed = Vec::new();
            while let Some(job) = jobs.claim(&name, at(1_000), LEASE_MS).await.unwrap() {
                assert_eq!(job.attempts, 1, "{name} claimed {} a second time", job.id);
                assert!(
                    jobs.complete(job.id, &name, at(1_001)).await.unwrap(),
                    "{name} lost the lease of {}",
                    job.id
                );
                completed.push(job.id);
            }
            completed
        }
    });
    join_all(slots).await.into_iter().flatten().collect()
}

/// Two workers, each a task of its own, drain the same queue through `a` and `b`: every job
/// is completed exactly once.
async fn race(db: &TestDb, a: Arc<dyn JobQueue>, b: Arc<dyn JobQueue>) {
    let mut all = HashSet::new();
    for n in 0..RACE_JOBS {
        let job = NewJob {
            priority: (n % 3) as i32,
            ..new_job(0, n as i64)
        };
        all.insert(job.id);
        a.enqueue(job).await.unwrap();
    }
    let first = tokio::spawn(drain(a, "a"));
    let second = tokio::spawn(drain(b, "b"));
    let (by_a, by_b) = (first.await.unwrap(), second.await.unwrap());
    assert!(
        !by_a.is_empty() && !by_b.is_empty(),
        "both workers took part ({} and {})",
        by_a.len(),
        by_b.len()
    );

    let mut completed = HashSet::new();
    for id in by_a.iter().chain(&by_b) {
        assert!(completed.insert(*id), "{id} was completed twice");
    }
    assert_eq!(completed, all, "every job was completed");
    assert_eq!(
        db.count("SELECT COUNT(*) FROM jobs WHERE status = 'done' AND attempts = 1")
            .await,
        RACE_JOBS as i64
    );
    assert_eq!(
        db.jobs().stats(at(1_001)).await.unwrap(),
        QueueStats::default()
    );
}

pub async fn racing_workers_take_each_job_once(db: &TestDb) {
    race(db, db.shared_jobs(), db.shared_jobs()).await;
}

/// As two processes would: each worker has a pool of its own.
pub async fn racing_workers_on_two_pools_take_each_job_once(db: &TestDb) {
    let other = db.second_pool().await;
    race(db, db.shared_jobs(), other.job_queue()).await;
    other.close().await;
}
