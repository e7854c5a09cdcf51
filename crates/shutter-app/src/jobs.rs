//! Background work: workers claim jobs from the durable queue with a lease, keep the lease
//! alive while they run, and record the outcome. A failed attempt is retried with exponential
//! back-off until the job's attempts run out; then it is dead-lettered (`shutter jobs`).
//! Every handler is idempotent: a crashed worker's job runs again after its lease expires.

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::Deserialize;
use shutter_core::{Id, Timestamp};
use tokio::sync::watch;

use crate::ports::{job_kinds, Job, JobFailure, NewJob};
use crate::{AppError, AppResult, Shutter};

/// How long to wait for work when the queue is empty (new work in this process wakes the
/// workers at once).
const IDLE_POLL: Duration = Duration::from_millis(500);

/// An attempt's failure: retried unless the error says it never can succeed.
#[derive(Debug)]
pub struct JobError {
    pub message: String,
}

impl From<AppError> for JobError {
    fn from(e: AppError) -> Self {
        let cause = e
            .cause
            .as_ref()
            .map(|c| format!(": {c:#}"))
            .unwrap_or_default();
        JobError {
            message: format!("{}{cause}", e.detail),
        }
    }
}

/// Seconds to wait before attempt `attempts + 1`: 2, 4, 8, … capped at 5 minutes, with a
/// little jitter so retries of a burst do not arrive together.
pub fn backoff_secs(attempts: u32) -> i64 {
    let base = 2i64.saturating_pow(attempts.clamp(1, 16)).min(300);
    let jitter = rand::random::<u64>() % (base as u64 / 4 + 1);
    base + jitter as i64
}

#[derive(Deserialize)]
struct FilePayload {
    file_id: Id,
}

#[derive(Deserialize)]
struct FilesPayload {
    file_ids: Vec<Id>,
}

impl Shutter {
    /// Enqueues a job and wakes one of this process's workers. (`notify_one` keeps a permit
    /// when no worker is waiting at that instant, so a wake-up is never lost to a worker
    /// that was busy claiming.)
    pub async fn enqueue(&self, job: NewJob) -> AppResult<()> {
        self.jobs.enqueue(job).await?;
        self.job_signal.notify_one();
        Ok(())
    }

    /// Wakes one of this process's workers (after a transaction that enqueued a job).
    pub(crate) fn wake_workers(&self) {
        self.job_signal.notify_one();
    }

    /// Runs `count` workers until `shutdown` turns true; each finishes its current job first.
    pub async fn run_workers(self: Arc<Self>, count: usize, shutdown: watch::Receiver<bool>) {
        let host = std::env::var("HOSTNAME").unwrap_or_else(|_| "shutter".to_owned());
        let handles: Vec<_> = (0..count)
            .map(|n| {
                let app = self.clone();
                let name = format!("{host}:{}:{n}:{}", std::process::id(), Id::new());
                let shutdown = shutdown.clone();
                tokio::spawn(async move { app.worker_loop(name, shutdown).await })
            })
            .collect();
        for h in handles {
            let _ = h.await;
        }
    }

    async fn worker_loop(self: Arc<Self>, name: String, mut shutdown: watch::Receiver<bool>) {
        tracing::info!(worker = %name, "worker started");
        while !*shutdown.borrow() {
            match self.run_one_job(&name).await {
                Ok(true) => continue,
                Ok(false) => {}
                Err(e) => {
                    tracing::warn!(worker = %name, error = %e.detail, "claiming a job failed")
                }
            }
            tokio::select! {
                () = self.job_signal.notified() => {}
                () = tokio::time::sleep(IDLE_POLL) => {}
                _ = shutdown.changed() => {}
            }
        }
        tracing::info!(worker = %name, "worker stopped");
    }

    /// Claims and runs one job; `false` when none was due.
    pub async fn run_one_job(&self, worker: &str) -> AppResult<bool> {
        let lease = self.config.jobs.lease.get();
        let lease_ms = lease.as_millis() as i64;
        let Some(job) = self.jobs.claim(worker, self.clock.now(), lease_ms).await? else {
            return Ok(false);
        };
        let started = Instant::now();
        let waited_ms = (self.clock.now().millis() - job.run_at.millis()).max(0);
        metrics::histogram!("job_wait_seconds", "kind" => job.kind.clone())
            .record(waited_ms as f64 / 1000.0);
        let heartbeat = self.keep_lease(&job, worker, lease);
        let outcome = tokio::select! {
            outcome = self.run_job(&job) => outcome,
            () = heartbeat => Err(JobError { message: "lease lost".into() }),
        };
        let elapsed = started.elapsed().as_secs_f64();
        metrics::histogram!("job_duration_seconds", "kind" => job.kind.clone()).record(elapsed);
        let now = self.clock.now();
        match outcome {
            Ok(()) => {
                if self.jobs.complete(job.id, worker, now).await? {
                    tracing::info!(job.id = %job.id, kind = %job.kind, priority = job.priority, elapsed_ms = (elapsed * 1000.0) as u64, "job done");
                } else {
                    tracing::warn!(job.id = %job.id, kind = %job.kind, "job finished after its lease was lost");
                }
                metrics::counter!("jobs_completed_total", "kind" => job.kind.clone()).increment(1);
            }
            Err(err) => {
                let retry_at = now.plus_secs(backoff_secs(job.attempts));
                let fate = self
                    .jobs
                    .fail(job.id, worker, &err.message, retry_at, now)
                    .await?;
                metrics::counter!("jobs_failed_total", "kind" => job.kind.clone()).increment(1);
                match fate {
                    JobFailure::Dead => {
                        metrics::counter!("jobs_dead_total", "kind" => job.kind.clone())
                            .increment(1);
                        tracing::error!(job.id = %job.id, kind = %job.kind, attempts = job.attempts, error = %err.message, "job dead-lettered");
                    }
                    JobFailure::Retrying => {
                        metrics::counter!("jobs_retried_total", "kind" => job.kind.clone())
                            .increment(1);
                        tracing::warn!(job.id = %job.id, kind = %job.kind, attempts = job.attempts, error = %err.message, "job failed; will retry")
                    }
                    JobFailure::LeaseLost => {}
                }
            }
        }
        Ok(true)
    }

    /// Extends the job's lease every third of its length; finishes only if the lease is lost.
    async fn keep_lease(&self, job: &Job, worker: &str, lease: Duration) {
        let mut tick = tokio::time::interval(lease / 3);
        tick.tick().await;
        loop {
            tick.tick().await;
            let until = self.clock.now().plus_millis(lease.as_millis() as i64);
            match self.jobs.extend_lease(job.id, worker, until).await {
                Ok(true) => {}
                Ok(false) => return,
                Err(e) => {
                    tracing::warn!(job.id = %job.id, error = %e, "could not extend a job's lease")
                }
            }
        }
    }

    async fn run_job(&self, job: &Job) -> Result<(), JobError> {
        let bad_payload = |e: serde_json::Error| JobError {
            message: format!("unreadable payload: {e}"),
        };
        match job.kind.as_str() {
            job_kinds::PROCESS_FILE => {
                let p: FilePayload = serde_json::from_str(&job.payload).map_err(bad_payload)?;
                self.process_file(p.file_id).await
            }
            job_kinds::FANOUT_POST => self.fanout_post(&job.payload).await,
            job_kinds::DELETE_OBJECTS => {
                let p: FilesPayload = serde_json::from_str(&job.payload).map_err(bad_payload)?;
                self.delete_objects(&p.file_ids).await
            }
            other => Err(JobError {
                message: format!("unknown job kind {other}"),
            }),
        }
    }

    /// Erases the stored bytes (and variants) of files whose rows are gone. Idempotent.
    async fn delete_objects(&self, file_ids: &[Id]) -> Result<(), JobError> {
        for id in file_ids {
            self.blobs
                .delete(&crate::files::blob_key(*id))
                .await
                .map_err(|e| JobError {
                    message: format!("deleting files/{id}: {e}"),
                })?;
        }
        Ok(())
    }

    /// Publishes queue depth and age to the metrics.
    pub async fn record_queue_metrics(&self) {
        match self.jobs.stats(self.clock.now()).await {
            Ok(stats) => {
                metrics::gauge!("jobs_queued").set(stats.queued as f64);
                metrics::gauge!("jobs_running").set(stats.running as f64);
                metrics::gauge!("jobs_dead").set(stats.dead as f64);
                metrics::gauge!("jobs_oldest_due_seconds").set(stats.oldest_due_ms as f64 / 1000.0);
            }
            Err(e) => tracing::warn!(error = %e, "could not read queue statistics"),
        }
    }

    /// `shutter jobs list`.
    pub async fn list_jobs(
        &self,
        status: Option<crate::ports::JobStatus>,
        limit: u32,
    ) -> AppResult<Vec<Job>> {
        Ok(self.jobs.list_jobs(status, limit).await?)
    }

    /// `shutter jobs retry`: dead jobs queued again.
    pub async fn retry_dead_jobs(&self, id: Option<Id>) -> AppResult<u64> {
        let n = self.jobs.retry_dead(id, self.clock.now()).await?;
        self.wake_workers();
        Ok(n)
    }

    pub fn now_ts(&self) -> Timestamp {
        self.clock.now()
    }
}
