//! Connection deadlines: a client that sends its request headers too slowly, or holds a
//! connection open without using it, is cut off (`server.header_read_timeout`,
//! `server.idle_timeout`), so idle sockets cannot pile up.

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::helpers::*;

/// Reads until the server closes the connection; `Err` if it is still open after `within`.
async fn closed_within(stream: &mut TcpStream, within: Duration) -> Result<Vec<u8>, Vec<u8>> {
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    let deadline = tokio::time::Instant::now() + within;
    loop {
        match tokio::time::timeout_at(deadline, stream.read(&mut buf)).await {
            Err(_) => return Err(got),
            Ok(Ok(0)) | Ok(Err(_)) => return Ok(got),
            Ok(Ok(n)) => got.extend_from_slice(&buf[..n]),
        }
    }
}

fn address(app: &TestApp) -> String {
    app.address.trim_start_matches("http://").to_owned()
}

#[tokio::test]
async fn a_client_trickling_its_headers_is_cut_off() {
    let app = spawn_app_with(|c| {
        c.server.header_read_timeout = shutter_core::config::DurationValue::secs(1);
    })
    .await;
    let mut stream = TcpStream::connect(address(&app)).await.unwrap();
    stream
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: shutter\r\n")
        .await
        .unwrap();
    // One more header line every 300 ms would keep the socket busy forever without a
    // deadline for the whole header block.
    let trickle = async {
        for i in 0..30 {
            tokio::time::sleep(Duration::from_millis(300)).await;
            if stream
                .write_all(format!("X-Slow-{i}: 1\r\n").as_bytes())
                .await
                .is_err()
            {
                return true;
            }
        }
        false
    };
    let cut_off = tokio::time::timeout(Duration::from_secs(6), trickle).await;
    let mut rest = Vec::new();
    let closed = matches!(cut_off, Ok(true))
        || tokio::time::timeout(Duration::from_secs(1), stream.read_to_end(&mut rest))
            .await
            .is_ok();
    assert!(closed, "the server kept a header-trickling connection open");

    // A client that connects and sends nothing is cut off as well.
    let mut silent = TcpStream::connect(address(&app)).await.unwrap();
    let outcome = closed_within(&mut silent, Duration::from_secs(5)).await;
    assert!(outcome.is_ok(), "a silent connection stayed open");

    // Well-behaved requests are unaffected.
    let resp = app.get("/healthz", None).await;
    assert_eq!(resp.status(), reqwest::StatusCode::OK);
}

#[tokio::test]
async fn an_idle_kept_alive_connection_is_closed() {
    let app = spawn_app_with(|c| {
        c.server.idle_timeout = shutter_core::config::DurationValue::secs(1);
    })
    .await;
    let mut stream = TcpStream::connect(address(&app)).await.unwrap();
    stream
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: shutter\r\n\r\n")
        .await
        .unwrap();
    // The response comes, the connection is kept alive, and then nothing moves.
    let outcome = closed_within(&mut stream, Duration::from_secs(5)).await;
    let got = match outcome {
        Ok(got) => got,
        Err(got) => panic!(
            "an idle connection stayed open after its response: {}",
            String::from_utf8_lossy(&got)
        ),
    };
    let text = String::from_utf8_lossy(&got);
    assert!(text.starts_with("HTTP/1.1 200"), "{text}");
}
