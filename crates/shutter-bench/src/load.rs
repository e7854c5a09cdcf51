//! The load generator: a fixed number of HTTP/1.1 keep-alive connections (hyper's low-level
//! client, one connection per task, one request in flight on each: a closed loop), latencies
//! in HDR histograms per request kind.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use hdrhistogram::Histogram;
use http::{header, Method, Request};
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;
use rand::rngs::StdRng;
use rand::SeedableRng;
use tokio::net::TcpStream;
use tokio::sync::Barrier;

/// Highest latency the histograms hold (larger ones are clamped to it): two minutes, in µs.
const MAX_LATENCY_US: u64 = 120_000_000;

/// One request to send.
pub struct Req {
    /// Index into the kinds given to [`run`]: which histogram gets its latency.
    pub kind: usize,
    pub method: Method,
    /// Path and query.
    pub path: String,
    pub token: Option<Arc<str>>,
    /// A JSON body.
    pub body: Option<Bytes>,
}

impl Req {
    pub fn get(kind: usize, path: String, token: Option<Arc<str>>) -> Self {
        Req {
            kind,
            method: Method::GET,
            path,
            token,
            body: None,
        }
    }
}

/// When the load stops.
#[derive(Clone, Copy, Debug)]
pub enum Stop {
    /// Issue requests for this long (requests in flight at the end complete and count).
    For(Duration),
    /// Issue exactly this many requests, numbered 0.. (each number given out once).
    Count(u64),
}

/// What a run measured.
pub struct Report {
    /// Latency in µs of successful (2xx) responses, per kind.
    pub per_kind: Vec<Histogram<u64>>,
    /// All kinds together.
    pub all: Histogram<u64>,
    /// 2xx responses.
    pub ok: u64,
    /// Responses with another status, by status.
    pub statuses: BTreeMap<u16, u64>,
    /// Connection or protocol failures (the connection is reopened).
    pub io_errors: u64,
    /// From the moment every connection was open until the last response.
    pub elapsed: Duration,
}

impl Report {
    pub fn errors(&self) -> u64 {
        self.statuses.values().sum::<u64>() + self.io_errors
    }

    /// Successful responses per second.
    pub fn rps(&self) -> f64 {
        self.ok as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }

    /// A quantile (0..=1) of all successful requests, in milliseconds.
    pub fn quantile_ms(&self, q: f64) -> f64 {
        quantile_ms(&self.all, q)
    }
}

/// A quantile of a µs histogram, in ms (0 when empty).
pub fn quantile_ms(h: &Histogram<u64>, q: f64) -> f64 {
    if h.is_empty() {
        return 0.0;
    }
    h.value_at_quantile(q) as f64 / 1000.0
}

fn histogram() -> anyhow::Result<Histogram<u64>> {
    Ok(Histogram::new_with_bounds(1, MAX_LATENCY_US, 3)?)
}

struct TaskResult {
    per_kind: Vec<Histogram<u64>>,
    ok: u64,
    statuses: BTreeMap<u16, u64>,
    io_errors: u64,
}

async fn connect(addr: SocketAddr) -> anyhow::Result<SendRequest<Full<Bytes>>> {
    let stream = TcpStream::connect(addr).await?;
    stream.set_nodelay(true)?;
    let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
    tokio::spawn(async move {
        // Ends when the sender is dropped or the server closes the connection.
        let _ = conn.await;
    });
    Ok(sender)
}

/// Runs a closed loop of `connections` connections to `addr`; `make` builds the request with
/// the given sequence number (unique across connections) and the connection's random source.
pub async fn run<F>(
    addr: SocketAddr,
    connections: usize,
    stop: Stop,
    kinds: &[&'static str],
    make: F,
) -> anyhow::Result<Report>
where
    F: Fn(u64, &mut StdRng) -> Req + Send + Sync + 'static,
{
    let connections = connections.max(1);
    let make = Arc::new(make);
    let next = Arc::new(AtomicU64::new(0));
    let barrier = Arc::new(Barrier::new(connections + 1));
    let host = addr.to_string();
    let mut tasks = Vec::with_capacity(connections);
    for c in 0..connections {
        let make = make.clone();
        let next = next.clone();
        let barrier = barrier.clone();
        let host = host.clone();
        let n_kinds = kinds.len();
        tasks.push(tokio::spawn(async move {
            let mut result = TaskResult {
                per_kind: (0..n_kinds)
                    .map(|_| histogram())
                    .collect::<anyhow::Result<_>>()?,
                ok: 0,
                statuses: BTreeMap::new(),
                io_errors: 0,
            };
            let mut rng = StdRng::seed_from_u64(0xbe4c_0000 + c as u64);
            let mut sender = match connect(addr).await {
                Ok(s) => Some(s),
                Err(_) => {
                    result.io_errors += 1;
                    None
                }
            };
            barrier.wait().await;
            let deadline = match stop {
                Stop::For(d) => Some(Instant::now() + d),
                Stop::Count(_) => None,
            };
            loop {
                if deadline.is_some_and(|d| Instant::now() >= d) {
                    break;
                }
                let seq = next.fetch_add(1, Ordering::Relaxed);
                if let Stop::Count(n) = stop {
                    if seq >= n {
                        break;
                    }
                }
                let req = make(seq, &mut rng);
                // A request whose connection failed is retried (up to 3 attempts) on a new
                // connection, so a Count run still sends every numbered request.
                for _attempt in 0..3 {
                    let s = match sender.as_mut() {
                        Some(s) => s,
                        None => match connect(addr).await {
                            Ok(s) => sender.insert(s),
                            Err(_) => {
                                result.io_errors += 1;
                                tokio::time::sleep(Duration::from_millis(10)).await;
                                continue;
                            }
                        },
                    };
                    let request = build(&req, &host)?;
                    let started = Instant::now();
                    let outcome = async {
                        s.ready().await?;
                        let resp = s.send_request(request).await?;
                        let status = resp.status();
                        resp.into_body().collect().await?;
                        Ok::<_, hyper::Error>(status)
                    }
                    .await;
                    match outcome {
                        Ok(status) if status.is_success() => {
                            let us = started.elapsed().as_micros() as u64;
                            if let Some(h) = result.per_kind.get_mut(req.kind) {
                                h.saturating_record(us.max(1));
                            }
                            result.ok += 1;
                            break;
                        }
                        Ok(status) => {
                            *result.statuses.entry(status.as_u16()).or_default() += 1;
                            break;
                        }
                        Err(_) => {
                            result.io_errors += 1;
                            sender = None;
                        }
                    }
                }
            }
            Ok::<_, anyhow::Error>(result)
        }));
    }
    barrier.wait().await;
    let started = Instant::now();
    let mut report = Report {
        per_kind: (0..kinds.len())
            .map(|_| histogram())
            .collect::<anyhow::Result<_>>()?,
        all: histogram()?,
        ok: 0,
        statuses: BTreeMap::new(),
        io_errors: 0,
        elapsed: Duration::ZERO,
    };
    for task in tasks {
        let r = task.await??;
        for (mine, theirs) in report.per_kind.iter_mut().zip(&r.per_kind) {
            mine.add(theirs)?;
            report.all.add(theirs)?;
        }
        report.ok += r.ok;
        report.io_errors += r.io_errors;
        for (status, n) in r.statuses {
            *report.statuses.entry(status).or_default() += n;
        }
    }
    report.elapsed = started.elapsed();
    Ok(report)
}

fn build(req: &Req, host: &str) -> anyhow::Result<Request<Full<Bytes>>> {
    let mut builder = Request::builder()
        .method(req.method.clone())
        .uri(req.path.as_str())
        .header(header::HOST, host);
    if let Some(token) = &req.token {
        builder = builder.header(header::AUTHORIZATION, format!("Bearer {token}"));
    }
    if req.body.is_some() {
        builder = builder.header(header::CONTENT_TYPE, "application/json");
    }
    Ok(builder.body(Full::new(req.body.clone().unwrap_or_default()))?)
}
