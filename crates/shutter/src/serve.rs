//! The HTTP/1.1 accept loop: every connection gets a header-read deadline (a client that
//! trickles its headers, or sends none, is cut off) and an idle deadline (no byte either way
//! for `server.idle_timeout`), which `axum::serve` does not offer. Graceful shutdown stops
//! accepting, lets each connection finish its request in flight and waits for them all.

use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use axum::extract::ConnectInfo;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, watch};
use tower::ServiceExt;

const KEEPALIVE: socket2::TcpKeepalive = socket2::TcpKeepalive::new()
    .with_time(Duration::from_secs(30))
    .with_interval(Duration::from_secs(10))
    .with_retries(3);

/// Connection deadlines.
#[derive(Clone, Copy, Debug)]
pub struct Timeouts {
    pub header_read: Duration,
    pub idle: Duration,
}

/// Serves `router` on `listener` until `stop` turns true, then drains the open connections.
pub async fn serve(
    listener: TcpListener,
    router: axum::Router,
    timeouts: Timeouts,
    mut stop: watch::Receiver<bool>,
) -> io::Result<()> {
    let mut builder = http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(timeouts.header_read);
    // Every connection task holds a sender; when all are gone, every connection has closed.
    let (open_tx, mut open_rx) = mpsc::channel::<()>(1);
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    // Out of file descriptors and the like: wait a little rather than spin.
                    tracing::warn!(error = %e, "accepting a connection failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = stopped(&mut stop) => break,
        };
        tune(&stream);
        let service =
            router
                .clone()
                .map_request(move |mut request: axum::http::Request<Incoming>| {
                    request.extensions_mut().insert(ConnectInfo(peer));
                    request
                });
        let activity = Arc::new(Activity::new());
        let io = TokioIo::new(Watched {
            inner: stream,
            activity: activity.clone(),
        });
        let connection = builder
            .serve_connection(io, TowerToHyperService::new(service))
            .with_upgrades();
        let mut stop = stop.clone();
        let open = open_tx.clone();
        tokio::spawn(async move {
            let _open = open;
            let mut connection = std::pin::pin!(connection);
            let idle = idle_deadline(&activity, timeouts.idle);
            let mut idle = std::pin::pin!(idle);
            tokio::select! {
                result = connection.as_mut() => log_end(peer, result),
                () = &mut idle => {
                    tracing::debug!(%peer, "closing an idle connection");
                }
                () = stopped(&mut stop) => {
                    connection.as_mut().graceful_shutdown();
                    tokio::select! {
                        result = connection.as_mut() => log_end(peer, result),
                        () = &mut idle => {}
                    }
                }
            }
        });
    }
    drop(listener);
    drop(open_tx);
    // Every connection has finished (the caller bounds how long this may take).
    let _ = open_rx.recv().await;
    Ok(())
}

/// Socket options of every accepted connection.
fn tune(stream: &TcpStream) {
    let _ = stream.set_nodelay(true);
    // A peer that vanished (no FIN, no RST) is found by TCP keep-alive probes within about
    // a minute, even on a connection that only the server writes to (an event stream), and
    // written bytes the peer never acknowledges give up after a minute too.
    let socket = socket2::SockRef::from(stream);
    let _ = socket.set_tcp_keepalive(&KEEPALIVE);
    #[cfg(target_os = "linux")]
    let _ = socket.set_tcp_user_timeout(Some(Duration::from_secs(60)));
}

async fn stopped(stop: &mut watch::Receiver<bool>) {
    let _ = stop.wait_for(|stopped| *stopped).await;
}

fn log_end(peer: SocketAddr, result: Result<(), hyper::Error>) {
    // Clients going away mid-request and header deadlines are routine: debug only.
    if let Err(e) = result {
        tracing::debug!(%peer, error = %e, "connection ended with an error");
    }
}

/// Resolves once no byte has moved for `idle`.
async fn idle_deadline(activity: &Activity, idle: Duration) {
    loop {
        let since = activity.since_last();
        if since >= idle {
            return;
        }
        tokio::time::sleep(idle - since).await;
    }
}

/// The time of a connection's last read or write, as nanoseconds since an arbitrary start.
struct Activity {
    last: AtomicU64,
}

fn epoch() -> Instant {
    static EPOCH: OnceLock<Instant> = OnceLock::new();
    *EPOCH.get_or_init(Instant::now)
}

fn now_nanos() -> u64 {
    u64::try_from(epoch().elapsed().as_nanos()).unwrap_or(u64::MAX)
}

impl Activity {
    fn new() -> Self {
        Activity {
            last: AtomicU64::new(now_nanos()),
        }
    }

    fn touch(&self) {
        self.last.store(now_nanos(), Ordering::Relaxed);
    }

    fn since_last(&self) -> Duration {
        Duration::from_nanos(now_nanos().saturating_sub(self.last.load(Ordering::Relaxed)))
    }
}

/// A TCP stream that records when bytes last moved.
struct Watched {
    inner: TcpStream,
    activity: Arc<Activity>,
}

impl AsyncRead for Watched {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.inner).poll_read(cx, buf);
        if matches!(polled, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            self.activity.touch();
        }
        polled
    }
}

impl AsyncWrite for Watched {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let polled = Pin::new(&mut self.inner).poll_write(cx, buf);
        if matches!(polled, Poll::Ready(Ok(n)) if n > 0) {
            self.activity.touch();
        }
        polled
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let polled = Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        if matches!(polled, Poll::Ready(Ok(n)) if n > 0) {
            self.activity.touch();
        }
        polled
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn accepted_sockets_probe_for_vanished_peers() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let _client = TcpStream::connect(addr).await.unwrap();
        let (stream, _) = listener.accept().await.unwrap();
        tune(&stream);
        let socket = socket2::SockRef::from(&stream);
        assert!(socket.keepalive().unwrap());
        assert_eq!(
            socket.tcp_keepalive_time().unwrap(),
            Duration::from_secs(30)
        );
        assert_eq!(
            socket.tcp_keepalive_interval().unwrap(),
            Duration::from_secs(10)
        );
        assert_eq!(socket.tcp_keepalive_retries().unwrap(), 3);
        #[cfg(target_os = "linux")]
        assert_eq!(
            socket.tcp_user_timeout().unwrap(),
            Some(Duration::from_secs(60))
        );
        assert!(stream.nodelay().unwrap());
    }
}
