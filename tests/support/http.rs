//! A real HTTP server for webhook tests: answers every request as scripted and hands
//! each request it received to the test.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::Router;
use tokio::sync::mpsc;

/// How the server answers.
#[derive(Clone, Copy, Debug)]
pub enum Reply {
    Status(u16),
    /// Reads the request, then never answers.
    Never,
}

/// A request as the server saw it.
#[derive(Debug)]
pub struct Received {
    pub method: Method,
    pub path: String,
    pub headers: HeaderMap,
    pub body: String,
}

/// A running server on 127.0.0.1; stopped on drop.
pub struct HookServer {
    pub url: String,
    reply: Arc<Mutex<Reply>>,
    requests: mpsc::UnboundedReceiver<Received>,
    task: tokio::task::JoinHandle<()>,
}

#[derive(Clone)]
struct Script {
    reply: Arc<Mutex<Reply>>,
    requests: mpsc::UnboundedSender<Received>,
}

impl HookServer {
    pub async fn start(reply: Reply) -> HookServer {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind 127.0.0.1:0");
        let addr = listener.local_addr().expect("local address");
        let (tx, requests) = mpsc::unbounded_channel();
        let reply = Arc::new(Mutex::new(reply));
        let app = Router::new().fallback(answer).with_state(Script {
            reply: Arc::clone(&reply),
            requests: tx,
        });
        let task = tokio::spawn(async move {
            axum::serve(listener, app).await.expect("serve");
        });
        HookServer {
            url: format!("http://{addr}/hook"),
            reply,
            requests,
            task,
        }
    }

    /// Answers requests from now on with `reply` (a receiver that recovers).
    pub fn reply_with(&self, reply: Reply) {
        *self.reply.lock().expect("reply lock") = reply;
    }

    /// The next request received (waits up to 5 s).
    pub async fn received(&mut self) -> Received {
        tokio::time::timeout(Duration::from_secs(5), self.requests.recv())
            .await
            .expect("no request within 5 s")
            .expect("server stopped")
    }
}

impl HookServer {
    /// Every request received so far, without waiting.
    pub fn received_so_far(&mut self) -> Vec<Received> {
        let mut all = Vec::new();
        while let Ok(request) = self.requests.try_recv() {
            all.push(request);
        }
        all
    }
}

impl Drop for HookServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn answer(
    State(script): State<Script>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: String,
) -> Response {
    let _ = script.requests.send(Received {
        method,
        path: uri.path().to_string(),
        headers,
        body,
    });
    let reply = *script.reply.lock().expect("reply lock");
    match reply {
        Reply::Status(code) => {
            let status = StatusCode::from_u16(code).expect("status code");
            (status, format!("scripted {code}")).into_response()
        }
        Reply::Never => std::future::pending().await,
    }
}
