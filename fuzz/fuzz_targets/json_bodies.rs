//! Every JSON request body the API accepts, parsed as its handler parses it (`parse_json`, or
//! `parse_optional_json` where the body may be absent), then checked by the validation that
//! runs before any database is touched: the request's own `validate`, and the domain rules
//! (`shutter_core::domain`) the use cases apply to its fields. A refusal is rendered to the
//! problem+json response the client would get.

#![no_main]

use axum::response::IntoResponse;
use libfuzzer_sys::fuzz_target;
use serde::de::DeserializeOwned;
use shutter_api::dto::*;
use shutter_api::error::ApiError;
use shutter_api::extract::{parse_json, parse_optional_json};
use shutter_core::domain::{
    parse_hex_digest, Bio, Caption, CommentText, ContentType, DisplayName, FileName, Password, Tag,
    Username,
};
use shutter_core::Id;

/// A refused body becomes a problem response; building it must not fail either.
fn refused(err: ApiError) {
    let response = err.into_response();
    let status = response.status().as_u16();
    assert!((400..500).contains(&status), "a body refused with {status}");
}

fn body<T: DeserializeOwned>(data: &[u8]) -> Option<T> {
    parse_json(data).map_err(refused).ok()
}

fn optional_body<T: DeserializeOwned + Default>(data: &[u8]) -> Option<T> {
    parse_optional_json::<T>(data)
        .map_err(refused)
        .ok()
        .map(Option::unwrap_or_default)
}

/// What `create_file` and `create_post` check of each declared file.
fn new_file(filename: &str, content_type: &str, sha256: Option<&str>, md5: Option<&str>) {
    let _ = FileName::parse("filename", filename);
    let _ = ContentType::parse("content_type", content_type).map(|ct| ct.is_processable_image());
    let _ = sha256.map(|s| parse_hex_digest("sha256", s, 32));
    let _ = md5.map(|s| parse_hex_digest("md5", s, 16));
}

fn tags(list: Option<&[String]>) {
    if let Some(list) = list {
        if let Ok(tags) = Tag::parse_list("tags", list) {
            assert!(tags.len() <= list.len());
        }
    }
}

fuzz_target!(|data: &[u8]| {
    if let Some(r) = body::<RegisterRequest>(data) {
        let _ = Username::parse("username", &r.username);
        let _ = Password::parse("password", &r.password);
        let _ = r
            .display_name
            .map(|d| DisplayName::parse("display_name", &d));
    }
    if let Some(r) = body::<LoginRequest>(data) {
        let _ = Username::parse("username", &r.username);
    }
    let _ = body::<RefreshRequest>(data);
    if let Some(r) = body::<UpdateProfileRequest>(data) {
        let _ = r
            .display_name
            .map(|d| DisplayName::parse("display_name", &d));
        let _ = r.bio.map(|b| Bio::parse("bio", &b));
    }
    let _ = optional_body::<DeleteAccountRequest>(data);
    let _ = body::<AdminUpdateUserRequest>(data).map(|r| {
        (
            r.tier.map(shutter_core::domain::Tier::from),
            r.role.map(shutter_core::domain::Role::from),
        )
    });
    if let Some(r) = body::<CreatePostRequest>(data) {
        let _ = Caption::parse("caption", &r.caption);
        for m in r.media.iter().flatten() {
            new_file(
                &m.filename,
                &m.content_type,
                m.sha256.as_deref(),
                m.md5.as_deref(),
            );
        }
        for id in r.file_ids.iter().flatten() {
            let _ = id.parse::<Id>();
        }
    }
    if let Some(r) = body::<UpdatePostRequest>(data) {
        let _ = Caption::parse("caption", &r.caption);
    }
    if let Some(r) = body::<CreateCommentRequest>(data) {
        let _ = CommentText::parse("text", &r.text);
    }
    if let Some(r) = body::<CreateFileRequest>(data) {
        new_file(
            &r.filename,
            &r.content_type,
            r.sha256.as_deref(),
            r.md5.as_deref(),
        );
        tags(r.tags.as_deref());
        let _ = r.visibility.map(shutter_core::domain::Visibility::from);
    }
    if let Some(r) = body::<UpdateFileRequest>(data) {
        let _ = r.filename.map(|f| FileName::parse("filename", &f));
        tags(r.tags.as_deref());
    }
    if let Some(r) = optional_body::<CompleteUploadRequest>(data) {
        if let Err(err) = r.validate() {
            refused(err.into());
        }
    }
});
