//! A minimal Lambda Runtime API on loopback, enough to run a release function binary as Lambda
//! would: `GET /2018-06-01/runtime/invocation/next` (long-polls for the next event),
//! `POST …/invocation/{id}/response|error`, `POST …/init/error`. It notes when the first `/next`
//! arrives (the function finished its init) and hands back every response.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio::sync::{mpsc, Notify};

#[derive(Debug, Clone)]
pub struct Completion {
    pub request_id: String,
    pub ok: bool,
    pub body: Bytes,
}

#[derive(Default)]
struct State {
    first_next: Option<Instant>,
    queue: VecDeque<(String, Bytes)>,
    init_error: Option<String>,
}

pub struct RuntimeApi {
    pub addr: SocketAddr,
    state: Arc<Mutex<State>>,
    queued: Arc<Notify>,
    done_rx: mpsc::UnboundedReceiver<Completion>,
    task: tokio::task::JoinHandle<()>,
}

fn lock(m: &Mutex<State>) -> std::sync::MutexGuard<'_, State> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl RuntimeApi {
    pub async fn start() -> std::io::Result<Self> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let state = Arc::new(Mutex::new(State::default()));
        let queued = Arc::new(Notify::new());
        let (done_tx, done_rx) = mpsc::unbounded_channel();
        let (st, q) = (state.clone(), queued.clone());
        let task = tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    return;
                };
                let (st, q, tx) = (st.clone(), q.clone(), done_tx.clone());
                tokio::spawn(async move {
                    let svc = hyper::service::service_fn(move |req| {
                        serve(req, st.clone(), q.clone(), tx.clone())
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), svc)
                        .await;
                });
            }
        });
        Ok(Self {
            addr,
            state,
            queued,
            done_rx,
            task,
        })
    }

    /// `host:port`, the value of `AWS_LAMBDA_RUNTIME_API`.
    pub fn host_port(&self) -> String {
        self.addr.to_string()
    }

    pub fn first_next(&self) -> Option<Instant> {
        lock(&self.state).first_next
    }

    pub fn init_error(&self) -> Option<String> {
        lock(&self.state).init_error.clone()
    }

    pub fn invoke(&self, request_id: String, event: Bytes) {
        lock(&self.state).queue.push_back((request_id, event));
        self.queued.notify_one();
    }

    /// The next completed invocation, or None after `timeout`.
    pub async fn completion(&mut self, timeout: std::time::Duration) -> Option<Completion> {
        tokio::time::timeout(timeout, self.done_rx.recv())
            .await
            .ok()
            .flatten()
    }
}

impl Drop for RuntimeApi {
    fn drop(&mut self) {
        self.task.abort();
    }
}

type Resp = Response<Full<Bytes>>;

fn status(code: u16) -> Resp {
    let mut r = Response::new(Full::new(Bytes::from_static(b"{}")));
    *r.status_mut() = hyper::StatusCode::from_u16(code).unwrap_or(hyper::StatusCode::OK);
    r
}

async fn serve(
    req: Request<Incoming>,
    state: Arc<Mutex<State>>,
    queued: Arc<Notify>,
    done: mpsc::UnboundedSender<Completion>,
) -> Result<Resp, std::convert::Infallible> {
    let path = req.uri().path().to_owned();
    let is_get = req.method() == hyper::Method::GET;
    let body = req
        .into_body()
        .collect()
        .await
        .map(|c| c.to_bytes())
        .unwrap_or_default();
    if is_get && path == "/2018-06-01/runtime/invocation/next" {
        {
            let mut s = lock(&state);
            s.first_next.get_or_insert_with(Instant::now);
        }
        // Long-poll as the real API does, for at most two minutes.
        let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(120);
        loop {
            let next = lock(&state).queue.pop_front();
            if let Some((id, event)) = next {
                let mut r = Response::new(Full::new(event));
                let h = r.headers_mut();
                let deadline = (sfvapi::now_millis() + 30_000).to_string();
                let pairs = [
                    ("lambda-runtime-aws-request-id", id.as_str()),
                    ("lambda-runtime-deadline-ms", deadline.as_str()),
                    (
                        "lambda-runtime-invoked-function-arn",
                        "arn:aws:lambda:us-east-1:123456789012:function:bench",
                    ),
                    (
                        "lambda-runtime-trace-id",
                        "Root=1-00000000-000000000000000000000000",
                    ),
                    ("content-type", "application/json"),
                ];
                for (k, v) in pairs {
                    if let Ok(v) = http::HeaderValue::from_str(v) {
                        h.insert(k, v);
                    }
                }
                return Ok(r);
            }
            if tokio::time::timeout_at(deadline, queued.notified())
                .await
                .is_err()
            {
                return Ok(status(503));
            }
        }
    }
    if let Some(rest) = path.strip_prefix("/2018-06-01/runtime/invocation/") {
        if let Some((id, kind)) = rest.split_once('/') {
            let _ = done.send(Completion {
                request_id: id.to_owned(),
                ok: kind == "response",
                body,
            });
            return Ok(status(202));
        }
    }
    if path == "/2018-06-01/runtime/init/error" {
        lock(&state).init_error = Some(String::from_utf8_lossy(&body).into_owned());
        return Ok(status(202));
    }
    Ok(status(404))
}
