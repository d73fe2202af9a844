//! Serving HTTP/1 with every connection bounded: what `axum::serve` does, plus the
//! limits it leaves out.
//!
//! - **Header timeout** ([`Limits::header_timeout`], 10 s): a connection must send a
//!   request's complete headers within it, or it is closed. hyper's timer starts when
//!   it waits for a request head, so the same bound closes a slowloris client (headers
//!   trickled a line at a time), a client that connects and sends nothing, and an idle
//!   keep-alive connection (waiting for its next request is waiting for headers).
//! - **Body timeout** ([`Limits::body_timeout`], 30 s): applied in the router, after
//!   the token check (see [`super::guard::read_body_within`]).
//! - **Connection limit** ([`Limits::max_connections`], by default the open-files
//!   limit less 256, see [`default_max_connections`]): kept under the open-files limit
//!   so the store, the rules watcher and outgoing SMTP and webhook connections always
//!   have descriptors. When every slot is taken, the connection
//!   that has waited longest without a request in a handler (slow or idle) is closed
//!   to make room, so a flood of idle sockets cannot lock a legitimate client out;
//!   only when every slot has a request being handled is a new connection refused,
//!   with a 503, at once (see [`slots`]).
//!
//! Shutdown: stop accepting, ask every connection to finish its request in flight
//! (hyper closes idle ones at once), and return once all are closed.

mod slots;

use std::convert::Infallible;
use std::future::Future;
use std::pin::{pin, Pin};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use axum::extract::Request;
use axum::response::Response;
use axum::Router;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::time::Instant;
use tower::ServiceExt;

use slots::{Admission, ConnId, Slots};

/// `RALLY_MAX_CONNECTIONS` when the open-files limit cannot be read.
pub const DEFAULT_MAX_CONNECTIONS: usize = 512;

/// Descriptors kept back from the open-files limit for everything but client
/// connections: the store's files, the rules watcher, outgoing SMTP and webhook
/// connections, logs.
const RESERVED_FILES: u64 = 256;

/// The most connections allowed by default, however high the open-files limit: past
/// this, memory per connection matters more than descriptors.
const MAX_DEFAULT_CONNECTIONS: u64 = 16_384;

/// `RALLY_MAX_CONNECTIONS` when unset: this process's open-files limit less what the
/// daemon needs for itself ([`RESERVED_FILES`]), so a flood of sockets can never starve
/// the store of descriptors; 512 when the limit cannot be read. With the common
/// 1,024-file limit that is 768; `rally run` first raises its soft limit to the hard
/// one (see `main.rs`), as Go's runtime and most servers do.
pub fn default_max_connections() -> usize {
    #[cfg(unix)]
    {
        let mut limit = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        // SAFETY: getrlimit(2) writes one plain struct we own.
        if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } == 0 {
            // `rlim_t` is u64 on Linux but not on every unix.
            #[allow(clippy::unnecessary_cast)]
            let open_files = limit.rlim_cur as u64;
            if open_files > RESERVED_FILES + 64 {
                return (open_files - RESERVED_FILES).min(MAX_DEFAULT_CONNECTIONS) as usize;
            }
            return 64;
        }
    }
    DEFAULT_MAX_CONNECTIONS
}
/// `RALLY_HEADER_TIMEOUT_MS` when unset.
pub const DEFAULT_HEADER_TIMEOUT: Duration = Duration::from_secs(10);
/// `RALLY_BODY_TIMEOUT_MS` when unset: 8 MiB at about 300 KB/s.
pub const DEFAULT_BODY_TIMEOUT: Duration = Duration::from_secs(30);

/// How many connections, and how long a request's headers may take.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// `RALLY_MAX_CONNECTIONS`: connections open at once.
    pub max_connections: usize,
    /// `RALLY_HEADER_TIMEOUT_MS`: time to send a request's headers, and the most a
    /// keep-alive connection stays open between requests.
    pub header_timeout: Duration,
    /// `RALLY_BODY_TIMEOUT_MS`: time to send a request's body once the headers are in
    /// (applied by [`super::guard::read_body_within`]).
    pub body_timeout: Duration,
    /// `RALLY_CACHE_MB`: sled's page cache, the bulk of the daemon's memory besides
    /// the members it holds.
    pub store_cache: crate::store::CacheSize,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            max_connections: default_max_connections(),
            header_timeout: DEFAULT_HEADER_TIMEOUT,
            body_timeout: DEFAULT_BODY_TIMEOUT,
            store_cache: crate::store::CacheSize::DEFAULT,
        }
    }
}

/// What a refused connection is told before it is closed.
const FULL: &str = r#"{"error":"too many connections with requests in progress; retry shortly"}"#;

/// Serves `router` on `listener` until `stop` completes, then shuts down gracefully.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    limits: Limits,
    stop: impl Future<Output = ()> + Send + 'static,
) {
    let slots = Arc::new(Mutex::new(Slots::new(limits.max_connections)));
    // `stopping` tells connections to finish; `open_tx.closed()` says they all have.
    let (stopping_tx, stopping_rx) = watch::channel(false);
    let (open_tx, open_rx) = watch::channel(());
    let mut stop = pin!(stop);
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            () = &mut stop => break,
        };
        let stream = match accepted {
            Ok((stream, _)) => stream,
            Err(e) => {
                accept_failed(e).await;
                continue;
            }
        };
        let admission = lock(&slots).admit(Instant::now());
        match admission {
            Admission::Full => refuse(stream),
            Admission::Admitted { id, evict } => {
                let connection = Connection {
                    id,
                    slots: Arc::clone(&slots),
                    router: router.clone(),
                    limits,
                };
                let stopping = stopping_rx.clone();
                let open = open_rx.clone();
                tokio::spawn(async move {
                    connection.run(stream, evict, stopping).await;
                    drop(open);
                });
            }
        }
    }
    drop(listener);
    let _ = stopping_tx.send(true);
    drop(open_rx);
    open_tx.closed().await;
}

/// Per-connection accept errors (the client gave up) are nothing; anything else (out
/// of file descriptors) is logged, and accepting pauses instead of spinning.
async fn accept_failed(e: std::io::Error) {
    use std::io::ErrorKind::{ConnectionAborted, ConnectionRefused, ConnectionReset};
    if matches!(
        e.kind(),
        ConnectionAborted | ConnectionRefused | ConnectionReset
    ) {
        return;
    }
    tracing::error!(error = %e, "cannot accept a connection; pausing for a second");
    tokio::time::sleep(Duration::from_secs(1)).await;
}

/// Tells the client why, if its socket takes the bytes at once (never waiting on it),
/// and closes it.
fn refuse(stream: TcpStream) {
    let answer = format!(
        "HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\n\
         connection: close\r\ncontent-length: {}\r\n\r\n{FULL}",
        FULL.len()
    );
    let _ = stream.try_write(answer.as_bytes());
}

fn lock(slots: &Mutex<Slots>) -> std::sync::MutexGuard<'_, Slots> {
    slots.lock().unwrap_or_else(PoisonError::into_inner)
}

/// One accepted connection and its slot.
struct Connection {
    id: ConnId,
    slots: Arc<Mutex<Slots>>,
    router: Router,
    limits: Limits,
}

impl Connection {
    async fn run(
        self,
        stream: TcpStream,
        evict: Arc<tokio::sync::Notify>,
        mut stopping: watch::Receiver<bool>,
    ) {
        let service = Handlers {
            id: self.id,
            slots: Arc::clone(&self.slots),
            router: self.router.clone(),
        };
        let mut builder = hyper::server::conn::http1::Builder::new();
        builder
            .timer(TokioTimer::new())
            .header_read_timeout(self.limits.header_timeout);
        let mut conn = pin!(builder.serve_connection(TokioIo::new(stream), service));
        let mut asked_to_finish = false;
        loop {
            tokio::select! {
                // Errors here are the client's (a timeout, a reset, a bad request).
                _ = conn.as_mut() => break,
                // Dropping the connection closes the socket: no request is in a handler.
                () = evict.notified() => break,
                _ = stopping.wait_for(|stop| *stop), if !asked_to_finish => {
                    asked_to_finish = true;
                    conn.as_mut().graceful_shutdown();
                }
            }
        }
        lock(&self.slots).close(self.id);
    }
}

/// The router, with each request's time in a handler recorded on its slot: a
/// connection is only ever closed for another while none of its requests is there.
#[derive(Clone)]
struct Handlers {
    id: ConnId,
    slots: Arc<Mutex<Slots>>,
    router: Router,
}

impl hyper::service::Service<Request<Incoming>> for Handlers {
    type Response = Response;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Response, Infallible>> + Send>>;

    fn call(&self, request: Request<Incoming>) -> Self::Future {
        let handling = Handling::start(self.id, Arc::clone(&self.slots));
        let router = self.router.clone();
        Box::pin(async move {
            let response = router.oneshot(request.map(axum::body::Body::new)).await;
            drop(handling);
            response
        })
    }
}

/// A request inside its handler; dropping it (done, or the client went away) says so.
struct Handling {
    id: ConnId,
    slots: Arc<Mutex<Slots>>,
}

impl Handling {
    fn start(id: ConnId, slots: Arc<Mutex<Slots>>) -> Handling {
        lock(&slots).handling(id);
        Handling { id, slots }
    }
}

impl Drop for Handling {
    fn drop(&mut self) {
        lock(&self.slots).handled(self.id, Instant::now());
    }
}
