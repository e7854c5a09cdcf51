//! Black-box API tests: each test starts the real application on port 0 with its own data
//! directory and speaks HTTP to it (or runs the `shutter` binary).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod admin;
mod auth;
mod authorization;
mod backend;
mod cli;
mod comments;
mod connections;
mod conventions;
mod crash_points;
mod edge_cases;
mod faults;
mod helpers;
mod idempotency;
mod memory;
mod multi_node;
mod oidc;
mod operations;
mod pagination;
mod posts;
mod rate_limits;
mod read_replica;
mod s3_storage;
mod tokens;
mod users;
mod web_app;

// File uploads (SPEC 4).
mod downloads;
mod files_api;
mod photo_helpers;
mod photo_hostile;
mod photo_jobs;
mod photos;
mod s3_direct;
mod tus_client;
mod tus_protocol;
mod upload_events;
mod upload_helpers;
mod upload_process;
mod uploads_put;

// Social graph, likes and feeds (SPEC 3).
mod feed;
mod feed_property;
mod follows;
mod likes;
mod post_changes;
mod social_helpers;
