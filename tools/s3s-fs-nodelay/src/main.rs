//! s3s-fs's server, with `TCP_NODELAY` on every accepted connection, over s3s-fs's storage
//! patched where it cost more than a real S3 service would (`vendor/s3s-fs/PATCHES.md`).
//!
//! The stock `s3s-fs` binary leaves Nagle's algorithm on. A streamed response body then waits
//! for the client's delayed acknowledgement of the headers, so every request after the first
//! on a kept-alive connection takes about 40 ms on Linux, whatever its size (a 1 kB `GET`:
//! 0.7 ms on a new connection, 41 ms on a reused one). AWS, MinIO and the other S3 servers
//! Shutter is run against do not do this; measuring Shutter against it would measure the
//! stall.

use std::path::PathBuf;

use clap::Parser;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto::Builder as ConnBuilder;
use s3s::auth::SimpleAuth;
use s3s::service::S3ServiceBuilder;
use s3s_fs::FileSystem;
use tokio::net::TcpListener;

/// The same options as `s3s-fs` (without virtual-hosted-style domains).
#[derive(Debug, Parser)]
#[command(version)]
struct Opt {
    /// Host name to listen on.
    #[arg(long, default_value = "localhost")]
    host: String,
    /// Port number to listen on.
    #[arg(long, default_value = "8014")]
    port: u16,
    /// Access key used for authentication.
    #[arg(long, requires = "secret_key")]
    access_key: Option<String>,
    /// Secret key used for authentication.
    #[arg(long, requires = "access_key")]
    secret_key: Option<String>,
    /// Root directory of stored data.
    root: PathBuf,
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    let opt = Opt::parse();
    let fs = FileSystem::new(&opt.root).map_err(|e| format!("{e:?}"))?;
    let mut builder = S3ServiceBuilder::new(fs);
    if let (Some(ak), Some(sk)) = (opt.access_key, opt.secret_key) {
        builder.set_auth(SimpleAuth::from_single(ak, sk));
    }
    let service = builder.build();

    let listener = TcpListener::bind((opt.host.as_str(), opt.port)).await?;
    println!("server is running at http://{}", listener.local_addr()?);
    let http = ConnBuilder::new(TokioExecutor::new());
    let mut ctrl_c = std::pin::pin!(tokio::signal::ctrl_c());
    loop {
        let socket = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((socket, _)) => socket,
                Err(e) => {
                    eprintln!("error accepting a connection: {e}");
                    continue;
                }
            },
            _ = ctrl_c.as_mut() => return Ok(()),
        };
        if let Err(e) = socket.set_nodelay(true) {
            eprintln!("could not set TCP_NODELAY: {e}");
        }
        let conn = http
            .serve_connection(TokioIo::new(socket), service.clone())
            .into_owned();
        tokio::spawn(async move {
            let _ = conn.await;
        });
    }
}
