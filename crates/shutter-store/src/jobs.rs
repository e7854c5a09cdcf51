//! The [`JobQueue`] port on SQLite and PostgreSQL, written once (`job_queue_adapter!`) like
//! the other adapters (see [`crate::repo`] for the per-dialect blocks it uses).
//!
//! A job is claimed in one statement (`UPDATE … WHERE id = (SELECT … LIMIT 1) RETURNING …`,
//! with `FOR UPDATE SKIP LOCKED` on PostgreSQL), so workers in any number of processes each
//! get a different job. Completing, failing and extending a lease are single statements
//! guarded by `locked_by = worker AND status = 'running'`: a worker whose lease was taken
//! over changes nothing.
//!
//! Jobs are also enqueued inside other adapters' transactions (the transactional outbox):
//! `insert_job` takes any executor of the dialect, so a method that changes state in a
//! transaction `tx` enqueues the job that must follow with `Self::insert_job(&mut *tx, &job)`
//! and both commit or neither does.

use async_trait::async_trait;
use shutter_app::ports::{
    Job, JobFailure, JobQueue, JobStatus, NewJob, QueueStats, RepoError, RepoResult,
};
use shutter_core::{Id, Timestamp};
use sqlx::{Postgres, Row, Sqlite};

use crate::error::repo_error;
use crate::queries as q;
use crate::repo::{corrupt, parse_id, PgRepo, SqliteRepo};
use crate::rows::{Bind, Columns};
use crate::write::WriteTx;

fn count_from_db(what: &str, n: i64) -> RepoResult<u32> {
    u32::try_from(n).map_err(|_| corrupt(what, &n.to_string()))
}

fn total_from_db(what: &str, n: i64) -> RepoResult<u64> {
    u64::try_from(n).map_err(|_| corrupt(what, &n.to_string()))
}

/// How long the oldest due job has waited: 0 when none is due (or the clock went back).
fn waited_ms(now: Timestamp, oldest_due: Option<i64>) -> u64 {
    oldest_due.map_or(0, |run_at| {
        u64::try_from(now.millis().saturating_sub(run_at)).unwrap_or(0)
    })
}

/// A job from one row of `JOB_COLUMNS`.
fn job(row: &dyn Columns) -> RepoResult<Job> {
    let status = row.text("status")?;
    let priority = row.int("priority")?;
    Ok(Job {
        id: parse_id(&row.text("id")?)?,
        kind: row.text("kind")?,
        payload: row.text("payload")?,
        priority: i32::try_from(priority)
            .map_err(|_| corrupt("job priority", &priority.to_string()))?,
        status: JobStatus::parse(&status).ok_or_else(|| corrupt("job status", &status))?,
        attempts: count_from_db("attempts", row.int("attempts")?)?,
        max_attempts: count_from_db("max_attempts", row.int("max_attempts")?)?,
        run_at: Timestamp::from_millis(row.int("run_at")?),
        locked_by: row.opt_text("locked_by")?,
        locked_until: row.opt_int("locked_until")?.map(Timestamp::from_millis),
        last_error: row.opt_text("last_error")?,
        created_at: Timestamp::from_millis(row.int("created_at")?),
        updated_at: Timestamp::from_millis(row.int("updated_at")?),
    })
}

/// What `INSERT_JOB` binds for `job`.
fn job_binds(job: &NewJob) -> Vec<Bind> {
    vec![
        Bind::Text(job.id.to_string()),
        Bind::Text(job.kind.clone()),
        Bind::Text(job.payload.clone()),
        Bind::Int(i64::from(job.priority)),
        Bind::Int(i64::from(job.max_attempts)),
        Bind::Int(job.run_at.millis()),
        Bind::Int(job.created_at.millis()),
        Bind::Int(job.created_at.millis()),
    ]
}

macro_rules! job_queue_adapter {
    ($repo:ident, $db:ty) => {
        impl $repo {
            /// Adds `job`, queued, through `ex`: the pool, or a transaction of another
            /// adapter's method that must not commit without the job (transactional outbox).
            pub(crate) async fn insert_job(
                conn: &mut impl WriteTx,
                job: &NewJob,
            ) -> RepoResult<()> {
                conn.execute(q::INSERT_JOB, job_binds(job)).await?;
                Ok(())
            }

            fn job_from_row(row: &<$db as sqlx::Database>::Row) -> RepoResult<Job> {
                job(row)
            }
        }

        #[async_trait]
        impl JobQueue for $repo {
            async fn enqueue(&self, job: NewJob) -> RepoResult<()> {
                self.write_once(q::INSERT_JOB, job_binds(&job)).await?;
                Ok(())
            }

            /// Jobs whose lease ran out on their last attempt are dead-lettered first (a
            /// separate statement, idempotent), so the claim never hands out an attempt
            /// beyond `max_attempts`.
            async fn claim(
                &self,
                worker: &str,
                now: Timestamp,
                lease_ms: i64,
            ) -> RepoResult<Option<Job>> {
                let binds = vec![Bind::Int(now.millis()), Bind::Int(now.millis())];
                self.write_once(q::DEAD_LETTER_LOST_LEASES, binds).await?;
                let sql = [
                    q::CLAIM_JOB_HEAD,
                    Self::CLAIM_LOCK,
                    q::CLAIM_JOB_TAIL,
                    q::JOB_COLUMNS,
                ]
                .concat();
                let binds = vec![
                    Bind::Text(worker.to_owned()),
                    Bind::Int(now.millis().saturating_add(lease_ms)),
                    Bind::Int(now.millis()),
                    Bind::Int(now.millis()),
                    Bind::Int(now.millis()),
                ];
                Ok(self.write_fetch(&sql, binds, job).await?.pop())
            }

            async fn extend_lease(
                &self,
                id: Id,
                worker: &str,
                until: Timestamp,
            ) -> RepoResult<bool> {
                let binds = vec![
                    Bind::Int(until.millis()),
                    Bind::Text(id.to_string()),
                    Bind::Text(worker.to_owned()),
                ];
                Ok(self.write_once(q::EXTEND_JOB_LEASE, binds).await? > 0)
            }

            async fn complete(&self, id: Id, worker: &str, now: Timestamp) -> RepoResult<bool> {
                let binds = vec![
                    Bind::Int(now.millis()),
                    Bind::Text(id.to_string()),
                    Bind::Text(worker.to_owned()),
                ];
                Ok(self.write_once(q::COMPLETE_JOB, binds).await? > 0)
            }

            /// The last error is recorded either way; a dead job keeps its `run_at`.
            async fn fail(
                &self,
                id: Id,
                worker: &str,
                error: &str,
                retry_at: Timestamp,
                now: Timestamp,
            ) -> RepoResult<JobFailure> {
                let row = sqlx::query(&Self::sql(q::FAIL_JOB))
                    .bind(retry_at.millis())
                    .bind(error)
                    .bind(now.millis())
                    .bind(id.to_string())
                    .bind(worker)
                    .fetch_optional(&mut *self.write_conn().await?)
                    .await
                    .map_err(repo_error)?;
                let Some(row) = row else {
                    return Ok(JobFailure::LeaseLost);
                };
                let status: String = row.try_get("status").map_err(repo_error)?;
                match JobStatus::parse(&status) {
                    Some(JobStatus::Queued) => Ok(JobFailure::Retrying),
                    Some(JobStatus::Dead) => Ok(JobFailure::Dead),
                    _ => Err(RepoError::Other(anyhow::anyhow!(
                        "job {id} is {status:?} after a failed attempt"
                    ))),
                }
            }

            async fn list_jobs(
                &self,
                status: Option<JobStatus>,
                limit: u32,
            ) -> RepoResult<Vec<Job>> {
                if limit == 0 {
                    return Ok(Vec::new());
                }
                let mut sql = [q::SELECT_JOBS, q::JOB_COLUMNS, q::FROM_JOBS].concat();
                if status.is_some() {
                    sql.push_str(q::JOBS_WITH_STATUS);
                }
                sql.push_str(q::JOBS_NEWEST_FIRST);
                let sql = Self::sql(&sql);
                let mut query = sqlx::query(&sql);
                if let Some(status) = status {
                    query = query.bind(status.as_str());
                }
                let rows = query
                    .bind(i64::from(limit))
                    .fetch_all(&self.pool)
                    .await
                    .map_err(repo_error)?;
                rows.iter().map(Self::job_from_row).collect()
            }

            async fn retry_dead(&self, id: Option<Id>, now: Timestamp) -> RepoResult<u64> {
                let mut sql = q::RETRY_DEAD_JOBS.to_owned();
                if id.is_some() {
                    sql.push_str(q::AND_JOB_ID);
                }
                let sql = Self::sql(&sql);
                let mut query = sqlx::query(&sql).bind(now.millis()).bind(now.millis());
                if let Some(id) = id {
                    query = query.bind(id.to_string());
                }
                let done = query
                    .execute(&mut *self.write_conn().await?)
                    .await
                    .map_err(repo_error)?;
                Ok(done.rows_affected())
            }

            async fn stats(&self, now: Timestamp) -> RepoResult<QueueStats> {
                let row = sqlx::query(&Self::sql(q::JOB_STATS))
                    .bind(now.millis())
                    .fetch_one(&self.pool)
                    .await
                    .map_err(repo_error)?;
                Ok(QueueStats {
                    queued: total_from_db("queued", row.try_get("queued").map_err(repo_error)?)?,
                    running: total_from_db("running", row.try_get("running").map_err(repo_error)?)?,
                    dead: total_from_db("dead", row.try_get("dead").map_err(repo_error)?)?,
                    oldest_due_ms: waited_ms(now, row.try_get("oldest_due").map_err(repo_error)?),
                })
            }

            async fn prune_done(&self, before: Timestamp) -> RepoResult<u64> {
                let done = sqlx::query(&Self::sql(q::PRUNE_DONE_JOBS))
                    .bind(before.millis())
                    .execute(&mut *self.write_conn().await?)
                    .await
                    .map_err(repo_error)?;
                Ok(done.rows_affected())
            }
        }
    };
}

job_queue_adapter!(SqliteRepo, Sqlite);
job_queue_adapter!(PgRepo, Postgres);

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::DatabasePool;

    pub(crate) fn job() -> NewJob {
        NewJob {
            id: Id::new(),
            kind: "process_file".into(),
            payload: "{}".into(),
            priority: 0,
            run_at: Timestamp::from_millis(0),
            max_attempts: 3,
            created_at: Timestamp::from_millis(0),
        }
    }

    /// The transactional outbox: a job inserted in a transaction exists exactly when the
    /// transaction commits.
    #[tokio::test]
    async fn jobs_inserted_in_a_transaction_share_its_fate() -> anyhow::Result<()> {
        let dir = tempfile::tempdir()?;
        let db = crate::open(
            &format!("sqlite://{}", dir.path().join("s.db").display()),
            2,
        )
        .await?;
        db.migrate().await?;
        let DatabasePool::Sqlite(pool) = db.pool() else {
            anyhow::bail!("not SQLite");
        };
        let repo = SqliteRepo::new(pool.clone(), pool.clone());

        let mut tx = repo.begin_write().await?;
        SqliteRepo::insert_job(&mut *tx, &job()).await?;
        tx.rollback().await?;
        assert!(repo.list_jobs(None, 10).await?.is_empty());

        let kept = job();
        let mut tx = repo.begin_write().await?;
        SqliteRepo::insert_job(&mut *tx, &kept).await?;
        tx.commit().await?;
        let listed = repo.list_jobs(None, 10).await?;
        assert_eq!(
            listed.iter().map(|j| j.id).collect::<Vec<_>>(),
            vec![kept.id]
        );
        db.close().await;
        Ok(())
    }

    #[test]
    fn the_wait_of_the_oldest_due_job_is_never_negative() {
        let now = Timestamp::from_millis(10_000);
        assert_eq!(waited_ms(now, None), 0);
        assert_eq!(waited_ms(now, Some(4_000)), 6_000);
        assert_eq!(waited_ms(now, Some(12_000)), 0);
    }
}
