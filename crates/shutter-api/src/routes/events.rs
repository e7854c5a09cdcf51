//! Live events: `GET /v1/events` (Server-Sent Events) and `GET /v1/ws` (WebSocket), each
//! streaming the signed-in user's own events as JSON.

use std::convert::Infallible;
use std::time::Duration;

use axum::extract::ws::rejection::WebSocketUpgradeRejection;
use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use futures::{SinkExt, StreamExt};
use serde::Deserialize;
use shutter_app::accounts::Principal;
use shutter_app::ports::EventStream;
use shutter_app::AppError;
use shutter_core::ErrorCode;

use crate::dto::EventDto;
use crate::error::{ApiError, ApiResult, Problem};
use crate::extract::ApiQuery;
use crate::AppState;

#[derive(Debug, Deserialize)]
pub struct TokenQuery {
    access_token: Option<String>,
}

/// Browsers cannot set headers on `EventSource` or WebSocket requests, so the token may also
/// come as `?access_token=`; an `Authorization` header, when sent, is the one that counts.
async fn principal(
    state: &AppState,
    headers: &HeaderMap,
    query: &TokenQuery,
) -> ApiResult<Principal> {
    let token = crate::extract::bearer(headers)?
        .or_else(|| query.access_token.clone())
        .ok_or_else(|| ApiError::new(ErrorCode::Unauthenticated, "authentication is required"))?;
    Ok(state.app.authenticate(&token).await?)
}

#[utoipa::path(get, path = "/v1/events", tag = "events", security(("bearer" = [])),
    params(("access_token" = Option<String>, Query, description = "Alternative to the Authorization header")),
    responses(
        (status = 200, description = "text/event-stream of the user's events; each `data:` is an EventDto", body = EventDto, content_type = "text/event-stream"),
        (status = 429, description = "too many open event streams", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "unauthenticated", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn sse(
    State(state): State<AppState>,
    headers: HeaderMap,
    ApiQuery(q): ApiQuery<TokenQuery>,
) -> ApiResult<Response> {
    let who = principal(&state, &headers, &q).await?;
    let events: EventStream = state.app.watch_events(&who).await?;
    let stream = events.map(|e| {
        let dto = EventDto::from(e);
        let event = SseEvent::default()
            .event(dto.type_.clone())
            .json_data(&dto)
            .unwrap_or_else(|_| SseEvent::default().comment("unserialisable event"));
        Ok::<_, Infallible>(event)
    });
    Ok(Sse::new(stream)
        .keep_alive(KeepAlive::new().interval(Duration::from_secs(15)))
        .into_response())
}

#[utoipa::path(get, path = "/v1/ws", tag = "events", security(("bearer" = [])),
    params(
        ("access_token" = Option<String>, Query, description = "Alternative to the Authorization header"),
        ("Connection" = String, Header, description = "A WebSocket opening handshake (RFC 6455)", pattern = "^[Uu]pgrade$"),
        ("Upgrade" = String, Header, pattern = "^[Ww]eb[Ss]ocket$"),
        ("Sec-WebSocket-Version" = String, Header, pattern = "^13$"),
        ("Sec-WebSocket-Key" = String, Header, description = "16 random bytes, base64", pattern = "^[A-Za-z0-9+/]{21}[AQgw]==$"),
    ),
    responses(
        (status = 101, description = "WebSocket; each text message is an EventDto"),
        (status = 400, description = "validation_failed: not a WebSocket upgrade request", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "rate_limited: too many open event streams", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "unauthenticated", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn ws(
    State(state): State<AppState>,
    headers: HeaderMap,
    ApiQuery(q): ApiQuery<TokenQuery>,
    upgrade: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> ApiResult<Response> {
    // Who is asking comes first: a request without a token is 401 whatever its headers.
    let who = principal(&state, &headers, &q).await?;
    let upgrade = upgrade.map_err(|rejection| {
        AppError::field(
            "upgrade",
            &format!(
                "a WebSocket upgrade request is required: {}",
                rejection.body_text()
            ),
        )
    })?;
    // RFC 6455 4.1: the key is 16 random bytes in base64; anything else is not a handshake.
    let key = headers
        .get("sec-websocket-key")
        .and_then(|k| STANDARD.decode(k.as_bytes()).ok());
    if key.is_none_or(|k| k.len() != 16) {
        return Err(AppError::field("Sec-WebSocket-Key", "must be 16 bytes in base64").into());
    }
    // Subscribe before upgrading so nothing published meanwhile is missed.
    let events = state.app.watch_events(&who).await?;
    let idle = state.app.config().server.idle_timeout.get();
    // Clients only ever send pings and a close; anything large is refused by the protocol.
    Ok(upgrade
        .max_message_size(MAX_CLIENT_MESSAGE)
        .max_frame_size(MAX_CLIENT_MESSAGE)
        .on_upgrade(move |socket| forward(socket, events, idle)))
}

/// The largest message a client may send on `/v1/ws` (the stream is server to client).
const MAX_CLIENT_MESSAGE: usize = 4096;

/// Sends the user's events; pings every `idle / 3` (at most 15 s) and closes the socket when
/// the client has sent nothing, not even a pong, for `idle` (`server.idle_timeout`).
async fn forward(socket: WebSocket, mut events: EventStream, idle: Duration) {
    let (mut sink, mut incoming) = socket.split();
    let mut ping = tokio::time::interval((idle / 3).min(Duration::from_secs(15)));
    ping.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut heard = tokio::time::Instant::now();
    loop {
        tokio::select! {
            event = events.next() => {
                let Some(event) = event else { break };
                let Ok(text) = serde_json::to_string(&EventDto::from(event)) else { continue };
                if sink.send(Message::Text(text.into())).await.is_err() {
                    break;
                }
            }
            message = incoming.next() => match message {
                Some(Ok(Message::Close(_))) | None | Some(Err(_)) => break,
                Some(Ok(_)) => heard = tokio::time::Instant::now(),
            },
            _ = ping.tick() => {
                if heard.elapsed() >= idle {
                    let _ = sink.send(Message::Close(None)).await;
                    break;
                }
                if sink.send(Message::Ping(Default::default())).await.is_err() {
                    break;
                }
            }
        }
    }
}
