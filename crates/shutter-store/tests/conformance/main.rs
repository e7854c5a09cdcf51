//! Backend conformance for the `Repo`, `FileRepo`, `JobQueue`, `MediaRepo` and `SocialRepo`
//! ports, after arrow-rs object_store's `integration.rs`: one set of scenarios (`scenarios.rs`,
//! `file_scenarios.rs`, `job_scenarios.rs`, `media_scenarios.rs`, `social_scenarios.rs`), each
//! run against every adapter on a fresh database (`backends.rs`).
//! SQLite always runs; PostgreSQL runs when `SHUTTER_TEST_POSTGRES_URL` is set, and then fails
//! loudly if the server cannot be reached.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod backends;
mod database_url;
mod file_scenarios;
mod job_scenarios;
mod media_scenarios;
mod scenarios;
mod social_scenarios;

/// Declares one test per scenario and backend: `sqlite::<scenario>` and
/// `postgres::<scenario>`, for the scenarios of each listed module. The database is dropped
/// even when the scenario panics.
macro_rules! conformance {
    ($($module:ident { $($scenario:ident),* $(,)? })*) => {
        mod sqlite {
            $($(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $scenario() {
                    let db = crate::backends::TestDb::sqlite().await;
                    db.run(crate::$module::$scenario(&db)).await;
                }
            )*)*
        }

        mod postgres {
            $($(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $scenario() {
                    let Some(db) = crate::backends::TestDb::postgres().await else {
                        return;
                    };
                    db.run(crate::$module::$scenario(&db)).await;
                }
            )*)*
        }
    };
}

conformance! {
    scenarios {
        ping_answers,
        users_are_created_and_found,
        duplicate_usernames_conflict,
        profiles_tiers_and_roles_change,
        external_identities_are_unique,
        deleted_external_identities_are_remembered,
        refresh_tokens_rotate_and_detect_reuse,
        refresh_token_families_are_revoked,
        racing_refresh_token_uses_have_one_winner,
        reusing_a_rotated_token_revokes_the_whole_family,
        posts_are_created_edited_and_deleted,
        liked_by_me_reads_likes,
        post_pages_are_stable_while_posts_arrive,
        unpublished_posts_show_only_when_asked,
        comments_are_counted_and_paged_oldest_first,
        latest_comments_are_the_newest_per_post,
        deleting_a_post_removes_its_comments_and_likes,
        deleting_a_user_fixes_everyone_elses_counters,
        idempotency_records_start_replay_and_mismatch,
        idempotency_records_expire_and_go_stale,
        racing_idempotency_begins_have_one_winner,
    }
    file_scenarios {
        files_are_created_with_their_metadata,
        file_limits_refuse_whole_batches,
        racing_file_creations_fit_under_the_limits,
        usage_counts_open_uploads_and_stored_bytes,
        file_filters_all_hold,
        file_pages_are_stable_while_files_arrive,
        upload_states_move_only_where_allowed,
        failing_works_from_any_state,
        expired_uploads_are_found,
        expiry_and_recovery_leave_moved_uploads_alone,
        file_changes_set_only_given_fields,
        deleting_a_user_removes_their_files,
    }
    job_scenarios {
        jobs_are_enqueued_claimed_and_completed,
        enqueued_jobs_keep_their_payload_and_are_checked,
        claims_go_by_priority_then_run_at_then_id,
        jobs_wait_for_their_run_at,
        expired_leases_pass_to_another_worker,
        lost_leases_on_the_last_attempt_are_dead_lettered,
        failed_attempts_retry_then_die,
        dead_jobs_are_retried,
        jobs_are_listed_by_status_newest_first,
        queue_stats_count_and_age,
        done_jobs_are_pruned,
        racing_workers_take_each_job_once,
        racing_workers_on_two_pools_take_each_job_once,
    }
    media_scenarios {
        uploads_complete_into_processing_with_their_job,
        processing_finishes_once_and_replaces_variants,
        posts_with_media_are_created_whole,
        posts_without_media_are_published_at_once,
        refused_posts_write_nothing,
        publishing_waits_for_every_photo,
        pending_posts_fail_once,
        racing_publishers_publish_once,
        deleting_a_post_deletes_its_photos_and_enqueues_their_objects,
        plain_post_deletes_unlink_their_photos,
        files_in_use_are_not_deleted,
        deleting_a_user_enqueues_all_their_objects,
        plain_user_deletes_are_not_blocked_by_media,
    }
    social_scenarios {
        follows_are_idempotent_with_exact_counters,
        racing_follows_keep_counters_exact,
        followers_and_following_are_paged_newest_first,
        follows_backfill_fanned_out_posts,
        unfollows_remove_feed_entries,
        likes_are_idempotent_and_counted_by_recount,
        racing_likes_are_all_counted,
        likers_are_paged_newest_first,
        fanout_goes_in_batches_and_is_idempotent,
        feeds_hold_only_published_posts_and_lose_deleted_ones,
        explore_lists_everyones_published_posts,
        feeds_merge_pushed_pulled_and_own_posts,
        crossing_the_threshold_keeps_feeds_right,
        racing_follows_and_fanouts_leave_exact_entries,
    }
}
