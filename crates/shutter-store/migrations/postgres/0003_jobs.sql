-- The job queue (PostgreSQL). One row per job, from enqueue until it is pruned after being
-- done. A running job is leased: `locked_by` (the worker) and `locked_until` are set exactly
-- while it runs; a lease past `locked_until` may be taken over by another worker. Ids compare
-- bytewise (COLLATE "C", as in 0001); timestamps are BIGINT milliseconds since the epoch. The
-- payload stays TEXT (handed back byte for byte) but must parse as JSON.

CREATE TABLE jobs (
    id           TEXT COLLATE "C" PRIMARY KEY,
    kind         TEXT NOT NULL CHECK (kind <> ''),
    -- The job's arguments, a JSON document.
    payload      TEXT NOT NULL CHECK (CAST(payload AS jsonb) IS NOT NULL),
    -- Higher runs first.
    priority     INTEGER NOT NULL,
    status       TEXT NOT NULL CHECK (status IN ('queued', 'running', 'done', 'dead')),
    -- Attempts started so far, the running one included.
    attempts     BIGINT NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    max_attempts BIGINT NOT NULL CHECK (max_attempts >= 0),
    -- Not before this instant.
    run_at       BIGINT NOT NULL,
    locked_by    TEXT,
    locked_until BIGINT,
    last_error   TEXT,
    created_at   BIGINT NOT NULL,
    updated_at   BIGINT NOT NULL,
    CHECK ((status = 'running') = (locked_by IS NOT NULL)),
    CHECK ((status = 'running') = (locked_until IS NOT NULL))
);
-- The claim walks this in its order (priority first, then oldest run_at, then id) and takes
-- the first due row: queued and due, or running with an expired lease (few rows: one per
-- busy worker). The claim repeats the index's condition word for word, so the planner
-- knows the partial index applies.
CREATE INDEX jobs_claim ON jobs (priority DESC, run_at, id)
    WHERE status IN ('queued', 'running');
-- Leases that ran out (dead-lettering jobs whose last attempt never came back).
CREATE INDEX jobs_lease ON jobs (locked_until) WHERE status = 'running';
-- Listing by status newest first, and the counts of the queue's stats.
CREATE INDEX jobs_status_created ON jobs (status, created_at DESC, id DESC);
-- Listing every job newest first.
CREATE INDEX jobs_created ON jobs (created_at DESC, id DESC);
-- Pruning finished jobs.
CREATE INDEX jobs_done ON jobs (updated_at) WHERE status = 'done';
