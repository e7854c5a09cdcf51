//! The tus request headers: `Upload-Metadata`, `Upload-Checksum`, `Upload-Offset` /
//! `Upload-Length` and the PATCH `Content-Type`, through the parsers the handlers call.
//!
//! The input is one header value. It is parsed as every header (the parsers do not share
//! state), once as the handlers see it (a `HeaderMap` built from raw bytes) and, for
//! `Upload-Metadata`, also as any UTF-8 text, which the handler never passes but the parser
//! must take.

#![no_main]

use axum::http::{HeaderMap, HeaderValue};
use libfuzzer_sys::fuzz_target;
use shutter_api::fuzzing::{tus_checksum, tus_metadata, tus_offset_content_type, tus_u64};

fn check_metadata(raw: &str) {
    if let Ok(pairs) = tus_metadata(raw) {
        assert!(pairs.len() <= raw.split(',').count());
        for (key, _) in &pairs {
            assert!(!key.is_empty(), "empty key from {raw:?}");
            assert!(!key.contains(','), "key {key:?} holds a comma");
            assert!(!key.contains(' '), "key {key:?} holds a space");
        }
    }
}

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        check_metadata(text);
    }
    let Ok(value) = HeaderValue::from_bytes(data) else {
        return;
    };
    let mut headers = HeaderMap::new();
    for name in [
        "upload-metadata",
        "upload-checksum",
        "upload-offset",
        "upload-length",
        "content-type",
    ] {
        headers.insert(name, value.clone());
    }
    // As `POST /v1/tus` reads it: only a visible-ASCII value reaches the parser.
    if let Ok(text) = value.to_str() {
        check_metadata(text);
    }
    let _ = tus_checksum(&headers);
    for name in ["upload-offset", "upload-length"] {
        if let Ok(n) = tus_u64(&headers, name) {
            assert!(n.is_some(), "{name} is present but parsed as absent");
        }
    }
    let _ = tus_offset_content_type(&headers);
});
