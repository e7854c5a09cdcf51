//! Backend conformance for the `Repo` and `FileRepo` ports, after arrow-rs object_store's
//! `integration.rs`: one set of scenarios (`scenarios.rs`, `file_scenarios.rs`), each run
//! against every adapter on a fresh database (`backends.rs`). SQLite always runs; PostgreSQL runs when `SHUTTER_TEST_POSTGRES_URL` is
//! set, and then fails loudly if the server cannot be reached.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod backends;
mod file_scenarios;
mod scenarios;

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
        refresh_tokens_rotate_and_detect_reuse,
        refresh_token_families_are_revoked,
        racing_refresh_token_uses_have_one_winner,
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
        file_changes_set_only_given_fields,
        deleting_a_user_removes_their_files,
    }
}
