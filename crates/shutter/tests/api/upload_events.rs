//! Live upload events (SPEC 4): `GET /v1/events` (SSE) and `GET /v1/ws` (WebSocket) stream
//! `file.progress` (at most every 100 ms per file) and then `file.ready` / `file.failed`, each
//! user only their own.

use std::time::Duration;

use bytes::Bytes;
use futures::{SinkExt, StreamExt};
use reqwest::StatusCode;
use serde_json::Value;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::Message;

use crate::helpers::*;
use crate::upload_helpers::*;

/// A Server-Sent Events stream read by hand.
struct Sse {
    resp: reqwest::Response,
    buf: String,
}

impl Sse {
    async fn open(
        app: &TestApp,
        token: Option<&str>,
        query_token: Option<&str>,
    ) -> reqwest::Response {
        let path = match query_token {
            Some(t) => format!("/v1/events?access_token={t}"),
            None => "/v1/events".to_owned(),
        };
        app.client
            .get(app.url(&path))
            .headers({
                let mut h = reqwest::header::HeaderMap::new();
                if let Some(t) = token {
                    h.insert("authorization", format!("Bearer {t}").parse().unwrap());
                }
                h
            })
            .timeout(Duration::from_secs(3600))
            .send()
            .await
            .expect("GET /v1/events")
    }

    async fn connect(app: &TestApp, token: Option<&str>, query_token: Option<&str>) -> Sse {
        let resp = Sse::open(app, token, query_token).await;
        assert_eq!(resp.status(), StatusCode::OK);
        let ct = header(&resp, "content-type").unwrap_or_default();
        assert!(ct.starts_with("text/event-stream"), "{ct}");
        Sse {
            resp,
            buf: String::new(),
        }
    }

    /// The next event's JSON, or `None` if none comes within `within`.
    async fn next(&mut self, within: Duration) -> Option<Value> {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            while let Some(end) = self.buf.find("\n\n") {
                let block: String = self.buf[..end].to_owned();
                self.buf.drain(..end + 2);
                let mut name = None;
                let mut data = String::new();
                for line in block.lines() {
                    if let Some(v) = line.strip_prefix("event:") {
                        name = Some(v.trim().to_owned());
                    } else if let Some(v) = line.strip_prefix("data:") {
                        data.push_str(v.trim_start());
                    }
                }
                if data.is_empty() {
                    continue; // a comment (keep-alive)
                }
                let event: Value = serde_json::from_str(&data).expect("event data is JSON");
                if let Some(name) = name {
                    assert_eq!(
                        event["type"],
                        name.as_str(),
                        "the SSE event name is the type"
                    );
                }
                return Some(event);
            }
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            match tokio::time::timeout(left, self.resp.chunk()).await {
                Err(_) => return None,
                Ok(chunk) => {
                    let chunk = chunk
                        .expect("SSE stream")
                        .expect("the SSE stream stays open");
                    self.buf
                        .push_str(&String::from_utf8_lossy(&chunk).replace("\r\n", "\n"));
                }
            }
        }
    }
}

/// PUTs `bytes` to the ticket in pieces of `piece` bytes, `pause` apart, in the background.
fn slow_put(
    app: &TestApp,
    ticket: &Value,
    bytes: Vec<u8>,
    piece: usize,
    pause: Duration,
) -> tokio::task::JoinHandle<reqwest::Response> {
    let (mut tx, rx) = futures::channel::mpsc::channel::<Result<Bytes, std::io::Error>>(1);
    let request = ticket_request(app, ticket).body(reqwest::Body::wrap_stream(rx));
    tokio::spawn(async move {
        let sending = async move {
            for part in bytes.chunks(piece) {
                tx.send(Ok(Bytes::copy_from_slice(part))).await.unwrap();
                tokio::time::sleep(pause).await;
            }
        };
        let (resp, ()) = tokio::join!(request.send(), sending);
        resp.expect("PUT")
    })
}

/// Where events come from: the SSE stream or the WebSocket.
trait Events {
    /// The next event's JSON, or `None` if none comes within `within`.
    async fn next_event(&mut self, within: Duration) -> Option<Value>;
}

impl Events for Sse {
    async fn next_event(&mut self, within: Duration) -> Option<Value> {
        self.next(within).await
    }
}

type WsStream =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

struct Ws(WsStream);

impl Events for Ws {
    async fn next_event(&mut self, within: Duration) -> Option<Value> {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            match tokio::time::timeout(left, self.0.next()).await {
                Err(_) => return None,
                Ok(None) => panic!("the WebSocket closed"),
                Ok(Some(msg)) => match msg.expect("a WebSocket message") {
                    Message::Text(text) => {
                        return Some(serde_json::from_str(text.as_str()).expect("JSON"))
                    }
                    Message::Close(_) => panic!("the WebSocket closed"),
                    _ => continue,
                },
            }
        }
    }
}

/// Reads events until `file.ready`/`file.failed` of `id`; returns them all.
async fn events_until_done(source: &mut impl Events, id: &str, within: Duration) -> Vec<Value> {
    let mut events = Vec::new();
    loop {
        let event = source.next_event(within).await.unwrap_or_else(|| {
            panic!("no file.ready/file.failed for {id} within the time; got {events:?}")
        });
        let done = event["file_id"] == id
            && (event["type"] == "file.ready" || event["type"] == "file.failed");
        events.push(event);
        if done {
            return events;
        }
    }
}

/// Progress then ready, for one file of `size` bytes, throttled to one per 100 ms.
fn check_progress_then_ready(events: &[Value], id: &str, size: usize) {
    let mine: Vec<&Value> = events.iter().filter(|e| e["file_id"] == id).collect();
    assert_eq!(
        mine.len(),
        events.len(),
        "only this file's events: {events:?}"
    );
    let (last, progress) = mine.split_last().unwrap();
    assert_eq!(last["type"], "file.ready", "{last}");
    assert_eq!(last["bytes_received"], size, "{last}");
    assert_eq!(last["size"], size, "{last}");
    assert_timestamp(&last["at"]);
    assert!(
        progress.len() >= 2,
        "a slow upload reports progress: {events:?}"
    );
    let mut previous_bytes = 0;
    let mut previous_at: Option<i64> = None;
    for p in progress {
        assert_eq!(p["type"], "file.progress", "{p}");
        assert_eq!(p["size"], size, "{p}");
        let bytes = p["bytes_received"].as_u64().expect("bytes_received");
        assert!(bytes >= previous_bytes && bytes <= size as u64, "{p}");
        previous_bytes = bytes;
        let at = millis(&p["at"]);
        // The bytes arrive every 25 ms; progress is throttled to one per 100 ms (the
        // margin is for the time each announcement takes to record).
        if let Some(before) = previous_at {
            assert!(
                at - before >= 50,
                "progress at most every 100 ms: {} ms apart in {events:?}",
                at - before
            );
        }
        previous_at = Some(at);
    }
    let span = millis(&progress[progress.len() - 1]["at"]) - millis(&progress[0]["at"]);
    assert!(
        progress.len() as i64 <= span / 100 + 2,
        "{} progress events in {span} ms is more than one per 100 ms: {events:?}",
        progress.len()
    );
}

/// Milliseconds of an RFC 3339 `…T10:00:00.123Z` within its day (enough to compare).
fn millis(value: &Value) -> i64 {
    assert_timestamp(value);
    let text = value.as_str().unwrap();
    let time = &text[11..23];
    let h: i64 = time[0..2].parse().unwrap();
    let m: i64 = time[3..5].parse().unwrap();
    let s: i64 = time[6..8].parse().unwrap();
    let ms: i64 = time[9..12].parse().unwrap();
    ((h * 60 + m) * 60 + s) * 1000 + ms
}

#[tokio::test]
async fn sse_streams_progress_then_ready_to_the_owner_only() {
    let app = spawn_local_storage_app().await;
    let (_, alice) = user(&app, "alice").await;
    let (_, bob) = user(&app, "bob").await;
    let mut alice_events = Sse::connect(&app, Some(&alice), None).await;
    let mut bob_events = Sse::connect(&app, None, Some(&bob)).await;

    let bytes = pseudo_random(2 * 1024 * 1024, 31);
    let (file, ticket) = create_file(
        &app,
        &alice,
        &file_request("slow.bin", "application/octet-stream", bytes.len()),
    )
    .await;
    let id = id_of(&file);
    let put = slow_put(
        &app,
        &ticket,
        bytes.clone(),
        64 * 1024,
        Duration::from_millis(25),
    );
    let events = events_until_done(&mut alice_events, &id, Duration::from_secs(15)).await;
    let resp = put.await.unwrap();
    expect_status(resp, StatusCode::OK).await;
    check_progress_then_ready(&events, &id, bytes.len());

    // A failed upload ends with file.failed and its code.
    let (failing, ticket) =
        create_file(&app, &alice, &file_request("short.bin", "text/plain", 100)).await;
    let resp = put_ticket(&app, &ticket, b"short".to_vec()).await;
    assert_problem(resp, 422, "size_mismatch").await;
    let failing = id_of(&failing);
    let events = events_until_done(&mut alice_events, &failing, Duration::from_secs(5)).await;
    let last = events.last().unwrap();
    assert_eq!(last["type"], "file.failed", "{last}");
    assert_eq!(last["failure"]["code"], "size_mismatch", "{last}");

    // Bob saw none of it.
    let seen = bob_events.next(Duration::from_millis(500)).await;
    assert!(seen.is_none(), "bob sees only his own events: {seen:?}");

    // Without a token there is no stream.
    let resp = Sse::open(&app, None, None).await;
    assert_problem(resp, 401, "unauthenticated").await;
    let resp = Sse::open(&app, None, Some("not-a-token")).await;
    assert_problem(resp, 401, "unauthenticated").await;
}

#[tokio::test]
async fn websocket_streams_progress_then_ready_to_the_owner_only() {
    let app = spawn_local_storage_app().await;
    let (_, alice) = user(&app, "alice").await;
    let (_, bob) = user(&app, "bob").await;
    let ws_base = app.address.replacen("http://", "ws://", 1);

    let (alice_ws, _) =
        tokio_tungstenite::connect_async(format!("{ws_base}/v1/ws?access_token={alice}"))
            .await
            .expect("alice's WebSocket");
    let mut alice_ws = Ws(alice_ws);
    let mut request = format!("{ws_base}/v1/ws").into_client_request().unwrap();
    request
        .headers_mut()
        .insert("authorization", format!("Bearer {bob}").parse().unwrap());
    let (bob_ws, _) = tokio_tungstenite::connect_async(request)
        .await
        .expect("bob's WebSocket, authorised by header");
    let mut bob_ws = Ws(bob_ws);

    let bytes = pseudo_random(2 * 1024 * 1024, 32);
    let (file, ticket) = create_file(
        &app,
        &alice,
        &file_request("slow.bin", "application/octet-stream", bytes.len()),
    )
    .await;
    let id = id_of(&file);
    let put = slow_put(
        &app,
        &ticket,
        bytes.clone(),
        64 * 1024,
        Duration::from_millis(25),
    );
    let events = events_until_done(&mut alice_ws, &id, Duration::from_secs(15)).await;
    expect_status(put.await.unwrap(), StatusCode::OK).await;
    check_progress_then_ready(&events, &id, bytes.len());

    let seen = bob_ws.next_event(Duration::from_millis(500)).await;
    assert!(seen.is_none(), "bob sees only his own events: {seen:?}");

    // tus uploads report too.
    let (url, tus_id) =
        tus_create(&app, &alice, 1000, &tus_metadata(&[("filename", "t.bin")])).await;
    let resp = tus_patch(&app, &url, &alice, 0, &pseudo_random(1000, 1)).await;
    assert_eq!(resp.status(), StatusCode::NO_CONTENT);
    let events = events_until_done(&mut alice_ws, &tus_id, Duration::from_secs(5)).await;
    assert_eq!(events.last().unwrap()["type"], "file.ready");

    alice_ws.0.close(None).await.ok();
    bob_ws.0.send(Message::Close(None)).await.ok();

    let refused = tokio_tungstenite::connect_async(format!("{ws_base}/v1/ws")).await;
    match refused {
        Err(tokio_tungstenite::tungstenite::Error::Http(resp)) => {
            assert_eq!(resp.status().as_u16(), 401)
        }
        other => panic!("a WebSocket without a token is refused with 401: {other:?}"),
    }
}

#[tokio::test]
async fn tus_progress_is_throttled_per_file_not_per_patch() {
    let app = spawn_app().await;
    let (_, alice) = user(&app, "alice").await;
    let mut events = Sse::connect(&app, Some(&alice), None).await;

    // Many small PATCHes, each shorter than the progress interval: a tus client with a small
    // chunk size. The file's progress still comes at most once per 100 ms.
    let chunk = 32 * 1024;
    let bytes = pseudo_random(40 * chunk, 33);
    let (url, id) = tus_create(
        &app,
        &alice,
        bytes.len(),
        &tus_metadata(&[("filename", "chunks.bin")]),
    )
    .await;
    for (i, piece) in bytes.chunks(chunk).enumerate() {
        let resp = tus_patch(&app, &url, &alice, i * chunk, piece).await;
        assert_eq!(resp.status(), StatusCode::NO_CONTENT, "PATCH {i}");
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    let seen = events_until_done(&mut events, &id, Duration::from_secs(15)).await;
    check_progress_then_ready(&seen, &id, bytes.len());
}

#[tokio::test]
async fn live_event_streams_are_capped_per_user() {
    let app = spawn_app_with(|c| c.server.max_event_streams_per_user = 2).await;
    let (_, alice) = user(&app, "alice").await;
    let (_, bob) = user(&app, "bob").await;
    let first = Sse::connect(&app, Some(&alice), None).await;
    let ws_base = app.address.replacen("http://", "ws://", 1);
    let (second, _) =
        tokio_tungstenite::connect_async(format!("{ws_base}/v1/ws?access_token={alice}"))
            .await
            .expect("a second stream, on the WebSocket");

    // A third, of either kind, is refused while two are open.
    let problem = assert_problem(
        Sse::open(&app, Some(&alice), None).await,
        429,
        "rate_limited",
    )
    .await;
    assert_eq!(problem["limit"]["name"], "event_streams", "{problem}");
    assert_eq!(problem["limit"]["value"], 2, "{problem}");
    match tokio_tungstenite::connect_async(format!("{ws_base}/v1/ws?access_token={alice}")).await {
        Err(tokio_tungstenite::tungstenite::Error::Http(resp)) => {
            assert_eq!(resp.status().as_u16(), 429)
        }
        other => panic!("a third stream is refused with 429: {other:?}"),
    }
    // Another user is not affected.
    let _bob_stream = Sse::connect(&app, Some(&bob), None).await;

    // A closed stream gives its place back.
    drop(second);
    drop(first);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let resp = Sse::open(&app, Some(&alice), None).await;
        if resp.status() == StatusCode::OK {
            break;
        }
        assert_problem(resp, 429, "rate_limited").await;
        assert!(
            tokio::time::Instant::now() < deadline,
            "closed streams never gave their place back"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test]
async fn a_websocket_client_may_not_send_large_messages() {
    let app = spawn_app().await;
    let (_, alice) = user(&app, "alice").await;
    let ws_base = app.address.replacen("http://", "ws://", 1);
    let (mut ws, _) =
        tokio_tungstenite::connect_async(format!("{ws_base}/v1/ws?access_token={alice}"))
            .await
            .expect("WebSocket");
    ws.send(Message::Text("x".repeat(1024 * 1024).into()))
        .await
        .expect("sent");
    // The server closes the connection rather than buffering the megabyte.
    assert!(
        closes_within(&mut ws, Duration::from_secs(5)).await,
        "a 1 MiB message from the client closes the WebSocket"
    );
}

#[tokio::test]
async fn a_websocket_client_that_stops_answering_pings_is_dropped() {
    let app = spawn_app_with(|c| {
        c.server.idle_timeout = shutter_core::config::DurationValue::secs(1);
    })
    .await;
    let (_, alice) = user(&app, "alice").await;
    let ws_base = app.address.replacen("http://", "ws://", 1);
    let url = format!("{ws_base}/v1/ws?access_token={alice}");

    // A client that keeps reading answers the server's pings and stays connected.
    let (live, _) = tokio_tungstenite::connect_async(&url)
        .await
        .expect("WebSocket");
    let mut live = Ws(live);
    assert!(live.next_event(Duration::from_secs(3)).await.is_none());
    live.0
        .send(Message::Text("still here".into()))
        .await
        .expect("still open");

    // One that reads nothing never pongs: the server closes it.
    let (mut silent, _) = tokio_tungstenite::connect_async(&url)
        .await
        .expect("WebSocket");
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert!(
        closes_within(&mut silent, Duration::from_secs(5)).await,
        "a silent WebSocket client is dropped"
    );
}

/// Whether the server ends the WebSocket within `within` (reading, and so answering pings).
async fn closes_within(ws: &mut WsStream, within: Duration) -> bool {
    let closed = async {
        loop {
            match ws.next().await {
                None | Some(Err(_)) | Some(Ok(Message::Close(_))) => return,
                Some(Ok(_)) => continue,
            }
        }
    };
    tokio::time::timeout(within, closed).await.is_ok()
}

#[tokio::test]
async fn an_authorization_header_of_another_scheme_is_401_even_with_a_query_token() {
    let app = spawn_app().await;
    let (_, token, _) = app.register("schemer").await;
    for path in ["/v1/events", "/v1/ws"] {
        let resp = app
            .request(
                reqwest::Method::GET,
                &format!("{path}?access_token={token}"),
            )
            .header("Authorization", "Basic c2NoZW1lcjpwYXNzd29yZA==")
            .send()
            .await
            .unwrap();
        assert_problem(resp, 401, "unauthenticated").await;
    }
    // The query token alone still works for browsers.
    Sse::connect(&app, None, Some(&token)).await;
}

#[tokio::test]
async fn a_websocket_request_that_is_no_handshake_is_a_problem() {
    let app = spawn_app().await;
    let (_, token, _) = app.register("handshaker").await;
    // Anonymous first: 401 whatever the headers.
    let resp = app.get("/v1/ws", None).await;
    assert_problem(resp, 401, "unauthenticated").await;
    // Signed in, but a plain GET: 400 problem+json, not a plain-text rejection.
    let resp = app.get("/v1/ws", Some(&token)).await;
    assert_invalid_field(resp, "upgrade").await;
    // A key that is not 16 bytes in base64 is no handshake either (RFC 6455 4.1).
    for key in ["not base64!", "c2hvcnQ=", ""] {
        let resp = app
            .authed(reqwest::Method::GET, "/v1/ws", Some(&token))
            .header("Connection", "Upgrade")
            .header("Upgrade", "websocket")
            .header("Sec-WebSocket-Version", "13")
            .header("Sec-WebSocket-Key", key)
            .send()
            .await
            .unwrap();
        assert_invalid_field(resp, "Sec-WebSocket-Key").await;
    }
}
