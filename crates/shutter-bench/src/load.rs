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
    /// Open loop only: requests that found no free connection for over 1 ms.
    pub late: u64,
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

/// One connection's tally.
struct Tally {
    per_kind: Vec<Histogram<u64>>,
    ok: u64,
    statuses: BTreeMap<u16, u64>,
    io_errors: u64,
}

impl Tally {
    fn new(kinds: usize) -> anyhow::Result<Self> {
        Ok(Tally {
            per_kind: (0..kinds)
                .map(|_| histogram())
                .collect::<anyhow::Result<_>>()?,
            ok: 0,
            statuses: BTreeMap::new(),
            io_errors: 0,
        })
    }
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

/// A keep-alive connection of the load generator, reopened when it fails.
struct Conn {
    addr: SocketAddr,
    host: String,
    sender: Option<SendRequest<Full<Bytes>>>,
}

impl Conn {
    async fn open(addr: SocketAddr, tally: &mut Tally) -> Self {
        let sender = match connect(addr).await {
            Ok(s) => Some(s),
            Err(_) => {
                tally.io_errors += 1;
                None
            }
        };
        Conn {
            addr,
            host: addr.to_string(),
            sender,
        }
    }

    /// Sends `req` and records it in `tally`, its latency counted from `since` (when it was
    /// sent, or when it was due in an open loop). A request whose connection failed is
    /// retried (up to 3 attempts) on a new connection, so a counted run still sends every
    /// numbered request.
    async fn send(
        &mut self,
        req: &Req,
        since: Option<Instant>,
        tally: &mut Tally,
    ) -> anyhow::Result<()> {
        for _attempt in 0..3 {
            let s = match self.sender.as_mut() {
                Some(s) => s,
                None => match connect(self.addr).await {
                    Ok(s) => self.sender.insert(s),
                    Err(_) => {
                        tally.io_errors += 1;
                        tokio::time::sleep(Duration::from_millis(10)).await;
                        continue;
                    }
                },
            };
            let request = build(req, &self.host)?;
            let started = since.unwrap_or_else(Instant::now);
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
                    if let Some(h) = tally.per_kind.get_mut(req.kind) {
                        h.saturating_record(us.max(1));
                    }
                    tally.ok += 1;
                    return Ok(());
                }
                Ok(status) => {
                    *tally.statuses.entry(status.as_u16()).or_default() += 1;
                    return Ok(());
                }
                Err(_) => {
                    tally.io_errors += 1;
                    self.sender = None;
                }
            }
        }
        Ok(())
    }
}

/// Adds up the connections' tallies.
async fn collect(
    kinds: usize,
    tasks: Vec<tokio::task::JoinHandle<anyhow::Result<Tally>>>,
    started: Instant,
) -> anyhow::Result<Report> {
    let mut report = Report {
        per_kind: (0..kinds)
            .map(|_| histogram())
            .collect::<anyhow::Result<_>>()?,
        all: histogram()?,
        ok: 0,
        statuses: BTreeMap::new(),
        io_errors: 0,
        elapsed: Duration::ZERO,
        late: 0,
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
    let mut tasks = Vec::with_capacity(connections);
    for c in 0..connections {
        let make = make.clone();
        let next = next.clone();
        let barrier = barrier.clone();
        let n_kinds = kinds.len();
        tasks.push(tokio::spawn(async move {
            let mut tally = Tally::new(n_kinds)?;
            let mut rng = StdRng::seed_from_u64(0xbe4c_0000 + c as u64);
            let mut conn = Conn::open(addr, &mut tally).await;
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
                conn.send(&req, None, &mut tally).await?;
            }
            Ok::<_, anyhow::Error>(tally)
        }));
    }
    barrier.wait().await;
    collect(kinds.len(), tasks, Instant::now()).await
}

/// Runs an open loop: requests fall due at a fixed `rate` per second for `duration`, whether
/// or not earlier ones have been answered, and go out on whichever of `connections`
/// keep-alive connections is free. Each latency is counted from when its request fell due,
/// so a stalled server shows as latency instead of as fewer requests (no coordinated
/// omission). `Report::late` counts requests that waited over 1 ms for a free connection
/// (after they were handed over: the timer's own granularity, up to 1 ms, is not counted).
pub async fn run_at_rate<F>(
    addr: SocketAddr,
    connections: usize,
    rate: f64,
    duration: Duration,
    kinds: &[&'static str],
    make: F,
) -> anyhow::Result<Report>
where
    F: Fn(u64, &mut StdRng) -> Req + Send + Sync + 'static,
{
    let connections = connections.max(1);
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel::<(Instant, Instant, Req)>();
    let rx = Arc::new(tokio::sync::Mutex::new(rx));
    let late = Arc::new(AtomicU64::new(0));
    let barrier = Arc::new(Barrier::new(connections + 1));
    let mut tasks = Vec::with_capacity(connections);
    for _ in 0..connections {
        let rx = rx.clone();
        let late = late.clone();
        let barrier = barrier.clone();
        let n_kinds = kinds.len();
        tasks.push(tokio::spawn(async move {
            let mut tally = Tally::new(n_kinds)?;
            let mut conn = Conn::open(addr, &mut tally).await;
            barrier.wait().await;
            loop {
                let next = rx.lock().await.recv().await;
                let Some((due, handed, req)) = next else {
                    break;
                };
                if handed.elapsed() > Duration::from_millis(1) {
                    late.fetch_add(1, Ordering::Relaxed);
                }
                conn.send(&req, Some(due), &mut tally).await?;
            }
            Ok::<_, anyhow::Error>(tally)
        }));
    }
    barrier.wait().await;
    let started = Instant::now();
    let mut rng = StdRng::seed_from_u64(0xfeed_0000);
    let total = (rate * duration.as_secs_f64()).round() as u64;
    for seq in 0..total {
        let due = started + Duration::from_secs_f64(seq as f64 / rate);
        tokio::time::sleep_until(due.into()).await;
        let req = make(seq, &mut rng);
        if tx.send((due, Instant::now(), req)).is_err() {
            break;
        }
    }
    drop(tx);
    let mut report = collect(kinds.len(), tasks, started).await?;
    report.late = late.load(Ordering::Relaxed);
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
