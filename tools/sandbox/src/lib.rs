//! sfvapi-sandbox: a local fake of Salesforce, Vapi and Twilio for `make demo` and end-to-end tests.
//!
//! Three HTTP/1 listeners (one per service) answer like the real APIs as `DESIGN.md` and
//! `shared/tests/fixtures/` describe them, status codes and error bodies included. The fake Vapi
//! also calls back: after `POST /call` it sends signed server messages to `--vapi-server-url`.
//! The fake Vapi checks `POST /call` and `POST /assistant` against Vapi's published OpenAPI
//! contract (`tools/vapi-schema`), answers in its shapes, enforces the org's concurrency limit
//! (`--vapi-concurrency-limit`, default 10) and, like Vapi without a `server.backoffPlan`, sends
//! each message once (`--delivery-attempts N` retries like a backoff plan).
//! What `sfvapi-admin doctor` and `setup` ask is answered too: Salesforce's
//! `sobjects/{object}/describe`, its Tooling API for Event Relay (channels, members, the named
//! credential, relays; `EventRelayFeedback` through `/query`; creating a relay creates its partner
//! event source in EventBridge at `AWS_ENDPOINT_URL_EVENTBRIDGE`, i.e. moto), Vapi's credentials
//! (`GET|POST /credential`, `GET|PATCH|DELETE /credential/{id}`), assistant list / update /
//! delete, phone numbers (`GET /phone-number`, `GET|PATCH /phone-number/{id}`) and the org
//! (`GET /org/{id}`) (`vapi::admin`, which also seeds the HMAC credential, the outbound assistant
//! and the phone number), Twilio's account fetch.
//! Built on plain hyper 1 (already in the dependency tree) rather than axum: there are a dozen
//! routes, matched on path segments, and no extractors or middleware are needed.
//!
//! # Finding the ports
//! The binary prints one JSON line on stdout once all three listeners are bound:
//! `{"salesforce":"http://127.0.0.1:P1","vapi":"http://127.0.0.1:P2","twilio":"http://127.0.0.1:P3"}`.
//! In-process, [`serve`] returns the same URLs in [`Handles`].
//!
//! # The `/_sandbox` API (on every listener; all three share one state and one log)
//! - `GET /_sandbox/health` → `{"ok":true}`.
//! - `GET /_sandbox/requests[?service=salesforce|vapi|twilio][&since=SEQ]` → JSON array of
//!   entries, oldest first (see [`log::Entry`]): `seq, service, direction ("in" = a request the fake
//!   answered, "out" = a server message the fake Vapi sent), method, path, query?, url? (out),
//!   headers (Authorization reduced to its scheme, X-Vapi-Secret hidden), body (text), status
//!   (null if the connection failed), response_body, error?, time_ms (unix ms), duration_ms,
//!   message_type?, call_id?, delivery?, attempt?, check? {ok, detail}` (out: tool-call answers).
//!   `/_sandbox` requests themselves are not logged.
//! - `DELETE /_sandbox/requests` → `{"cleared":N}`.
//! - `GET /_sandbox/salesforce/files` → the Salesforce Files kept (`ContentVersion`s, their text
//!   and their `ContentDocumentLink`s).
//! - `POST /_sandbox/inbound-call` `{"from": "+14155550123"}`: a customer calls the phone number;
//!   the fake Vapi sends `assistant-request` to `--vapi-server-url` and runs the call with the
//!   assistant it answers (see `vapi::inbound`). Answers `{"ok", "callId", "assistantRequest",
//!   "firstMessage"?, "endedReason"?}` once the assistant is settled.
//! - `GET /_sandbox/control` → the current switches.
//! - `POST /_sandbox/control` with a JSON object; every key is optional, unknown keys are a 400:
//!   ```json
//!   {
//!     "reset": true,
//!     "salesforce": {
//!       "fail_next": {"status": 401, "count": 1},
//!       "token_error": {"error": "invalid_grant", "count": 1},
//!       "revoke_tokens": true,
//!       "api_usage": 14990,
//!       "hang_next": 1,
//!       "hang_ms": 5000,
//!       "task_external_id_unique": true
//!     },
//!     "vapi": {
//!       "scenario": "normal",
//!       "outage_count": 2,
//!       "deliver_twice": false,
//!       "delay_ms": 100,
//!       "fail_next": {"status": 429, "count": 1},
//!       "concurrency_limit": 10,
//!       "recording_bytes": 48044,
//!       "recordings_gone": false,
//!       "recordings_fail_next": 0
//!     },
//!     "twilio": {"fail_next": {"status": 429, "count": 1}}
//!   }
//!   ```
//!   `reset` (applied first) restores the switches to the startup configuration.
//!   Salesforce `fail_next.status` ∈ 401 (`INVALID_SESSION_ID`), 403 (`REQUEST_LIMIT_EXCEEDED`),
//!   500, 503 and applies to the next `count` REST (`/services/data`) calls; `token_error.error` ∈
//!   `invalid_grant`, `inactive_user`, `inactive_org`, `rate_limit_exceeded` (400) or
//!   `invalid_client` (401) for the next `count` token requests; `revoke_tokens` invalidates
//!   every issued access token (a dead session: REST answers 401 until a new token is fetched);
//!   `api_usage` sets N of `Sforce-Limit-Info: api-usage=N/M` (beyond M, REST answers 403);
//!   `hang_next` makes the next N REST calls answer only after `hang_ms` (default 10 s);
//!   `task_external_id_unique: false` makes Task's describe show the external-id field without
//!   Unique (what `sfvapi-admin doctor` must catch); `relay_error: {"code","message"}` makes every
//!   event relay's `EventRelayFeedback` report that error (`null` clears it).
//!   Vapi `scenario` ∈ `normal`, `no-answer`, `outage`, `opt-out`, `transfer` (the customer asks
//!   for a person: `transfer-destination-request`, then `transfer-update` when the answer names a
//!   destination); `scenario: "outage"` re-arms `outage_count` failures; `fail_next.status` ∈ 400 (a limit:
//!   `{"message":["Over Concurrency Limit."],"error":"Bad Request","statusCode":400}`), 429, 500,
//!   503 for the next `POST /call`s; `concurrency_limit` sets how many calls may be live at once
//!   (beyond it `POST /call` is a 201 with `subscriptionLimits.concurrencyBlocked: true`, status
//!   `ended`, no messages). `state.vapi` also reports `live` (calls between their 201 and their
//!   end; freed before the `ended` status-update is sent), `peak_live`, `created` (calls placed)
//!   and `blocked` (201s refused by the limit); `reset` zeroes `created` and `blocked` and sets
//!   `peak_live` to `live`. `recording_bytes` sets the size of each call's recording (a WAV the
//!   fake Vapi serves at `GET /recordings/<call id>.wav`, the report's `artifact.recordingUrl`;
//!   at most 64 MiB), `recordings_gone: true` makes every recording answer 404 (Vapi's retention
//!   has passed), `recordings_fail_next: N` makes the next N recording requests answer 503.
//!   Twilio `fail_next.status` ∈ 429 (code 20429), 500, 503.
//!   `count: 0` clears a switch. The answer is `{"ok":true,"state":{…}}`.

pub mod config;
mod control;
pub mod log;
mod salesforce;
mod twilio;
mod util;
mod vapi;

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};

use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Method, StatusCode};
use http_body_util::{BodyExt as _, Full, Limited};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

pub use config::{Config, ConfigError, Scenario};
pub use log::{Direction, Entry, Service};
pub use vapi::{
    SEED_ASSISTANT_ID, SEED_CREDENTIAL_ID, SEED_CREDENTIAL_NAME, SEED_PHONE_NUMBER,
    SEED_PHONE_NUMBER_ID,
};

const OAUTH_SECRET_FIELDS: &[&str] = &[
    "client_secret",
    "refresh_token",
    "assertion",
    "code",
    "code_verifier",
    "token",
    "access_token",
    "signature",
];

/// Request bodies above this are refused with 413 (the real APIs' limits are in the MBs too).
const MAX_BODY: usize = 4 * 1024 * 1024;

/// The running sandbox. Dropping it leaves the listeners running until the runtime stops;
/// call [`Handles::shutdown`] to stop them.
pub struct Handles {
    pub salesforce_url: String,
    pub vapi_url: String,
    pub twilio_url: String,
    shutdown: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
}

impl Handles {
    /// The line the binary prints: `{"salesforce":…,"vapi":…,"twilio":…}`.
    pub fn urls_json(&self) -> String {
        serde_json::json!({
            "salesforce": self.salesforce_url,
            "vapi": self.vapi_url,
            "twilio": self.twilio_url,
        })
        .to_string()
    }

    /// Stop accepting connections and wait for the accept loops to end.
    pub async fn shutdown(self) {
        let _ = self.shutdown.send(true);
        for t in self.tasks {
            let _ = t.await;
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error("cannot bind the {service} listener on {addr}: {source}; pick another port or 0")]
    Bind {
        service: &'static str,
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("cannot build the HTTP client for Vapi server messages: {0}")]
    Client(#[from] reqwest::Error),
}

/// Bind the three listeners and start serving. Returns once every port is bound.
pub async fn serve(config: Config) -> Result<Handles, ServeError> {
    let bind = |service: &'static str, port: u16| {
        let addr = SocketAddr::new(config.bind_host, port);
        async move {
            TcpListener::bind(addr)
                .await
                .map_err(|source| ServeError::Bind {
                    service,
                    addr,
                    source,
                })
        }
    };
    let sf = bind("salesforce", config.salesforce_port).await?;
    let vp = bind("vapi", config.vapi_port).await?;
    let tw = bind("twilio", config.twilio_port).await?;
    let host = config.advertised_host();
    let url_of = |l: &TcpListener| -> Result<String, ServeError> {
        let addr = l.local_addr().map_err(|source| ServeError::Bind {
            service: "sandbox",
            addr: SocketAddr::new(config.bind_host, 0),
            source,
        })?;
        Ok(format!("http://{host}:{}", addr.port()))
    };
    let urls = Urls {
        salesforce: url_of(&sf)?,
        vapi: url_of(&vp)?,
        twilio: url_of(&tw)?,
    };
    let http = reqwest::Client::builder()
        .timeout(config.vapi.delivery_timeout)
        .build()?;
    let app = Arc::new(App {
        sf: Mutex::new(salesforce::State::new(&config.salesforce)),
        vapi: Mutex::new(vapi::State::new(&config.vapi, &config.twilio.account_sid)),
        twilio: Mutex::new(twilio::State::default()),
        log: log::RequestLog::default(),
        urls: urls.clone(),
        config,
        http,
    });
    let (tx, rx) = watch::channel(false);
    let tasks = vec![
        tokio::spawn(accept_loop(
            sf,
            Service::Salesforce,
            app.clone(),
            rx.clone(),
        )),
        tokio::spawn(accept_loop(vp, Service::Vapi, app.clone(), rx.clone())),
        tokio::spawn(accept_loop(tw, Service::Twilio, app, rx)),
    ];
    Ok(Handles {
        salesforce_url: urls.salesforce,
        vapi_url: urls.vapi,
        twilio_url: urls.twilio,
        shutdown: tx,
        tasks,
    })
}

#[derive(Debug, Clone)]
pub(crate) struct Urls {
    pub salesforce: String,
    pub vapi: String,
    pub twilio: String,
}

/// Everything the handlers share.
pub(crate) struct App {
    pub config: Config,
    pub urls: Urls,
    pub log: log::RequestLog,
    pub sf: Mutex<salesforce::State>,
    pub vapi: Mutex<vapi::State>,
    pub twilio: Mutex<twilio::State>,
    pub http: reqwest::Client,
}

/// A poisoned lock only means another handler panicked mid-update; the state is still usable
/// for a fake, and refusing every later request would be worse.
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// A buffered request, as every handler sees it.
pub(crate) struct Req {
    pub method: Method,
    pub path: String,
    pub query: Option<String>,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl Req {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
    pub fn query_param(&self, name: &str) -> Option<String> {
        let q = self.query.as_deref()?;
        url::form_urlencoded::parse(q.as_bytes())
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.into_owned())
    }
    /// `Authorization: Bearer <token>` → the token.
    pub fn bearer(&self) -> Option<&str> {
        let v = self.header("authorization")?.trim();
        let (scheme, token) = v.split_once(' ')?;
        scheme
            .eq_ignore_ascii_case("bearer")
            .then(|| token.trim())
            .filter(|t| !t.is_empty())
    }
}

/// A complete answer.
pub(crate) struct Resp {
    pub status: StatusCode,
    pub headers: Vec<(&'static str, String)>,
    pub body: Vec<u8>,
    /// Answer only after this long (a slow upstream; the work behind it is already done).
    pub delay: Option<std::time::Duration>,
}

impl Resp {
    pub fn json(status: u16, body: &serde_json::Value) -> Self {
        Self {
            status: StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
            headers: vec![("content-type", "application/json;charset=UTF-8".into())],
            body: body.to_string().into_bytes(),
            delay: None,
        }
    }
    pub fn empty(status: u16) -> Self {
        Self {
            status: StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
            headers: Vec::new(),
            body: Vec::new(),
            delay: None,
        }
    }
    pub fn after(mut self, d: std::time::Duration) -> Self {
        self.delay = Some(d);
        self
    }

    pub fn with_header(mut self, name: &'static str, value: String) -> Self {
        self.headers.push((name, value));
        self
    }
}

async fn accept_loop(
    listener: TcpListener,
    service: Service,
    app: Arc<App>,
    mut shutdown: watch::Receiver<bool>,
) {
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let stream = match accepted {
                    Ok((stream, _)) => stream,
                    Err(e) => {
                        // Out of file descriptors and the like: wait a moment rather than spin.
                        tracing::warn!(service = service.as_str(), error = %e, "accept failed");
                        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                        continue;
                    }
                };
                let app = app.clone();
                tokio::spawn(async move {
                    let svc = hyper::service::service_fn(move |req| {
                        let app = app.clone();
                        async move { Ok::<_, Infallible>(handle(app, service, req).await) }
                    });
                    if let Err(e) = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), svc)
                        .await
                    {
                        tracing::debug!(service = service.as_str(), error = %e, "connection ended with an error");
                    }
                });
            }
            _ = shutdown.changed() => break,
        }
    }
}

async fn handle(
    app: Arc<App>,
    service: Service,
    req: hyper::Request<Incoming>,
) -> hyper::Response<Full<Bytes>> {
    let started = std::time::Instant::now();
    let mut entry = Entry::new(
        service,
        Direction::In,
        req.method().as_str(),
        req.uri().path(),
    );
    let (parts, body) = req.into_parts();
    let path = parts.uri.path().to_owned();
    let query = parts.uri.query().map(str::to_owned);
    let resp = match Limited::new(body, MAX_BODY).collect().await {
        Err(e) => {
            let too_big = e.is::<http_body_util::LengthLimitError>();
            let (status, detail) = if too_big {
                (413, "request body too large")
            } else {
                (400, "could not read the request body")
            };
            Resp::json(status, &serde_json::json!({"error": detail}))
        }
        Ok(collected) => {
            let req = Req {
                method: parts.method,
                path,
                query,
                headers: parts.headers,
                body: collected.to_bytes(),
            };
            if req.path.trim_end_matches('/') == "/_sandbox/inbound-call" {
                return to_hyper(vapi::inbound::place(&app, &req).await);
            }
            if req.path == "/_sandbox" || req.path.starts_with("/_sandbox/") {
                return to_hyper(control::handle(&app, &req));
            }
            entry.query = req.query.clone();
            entry.headers = log::redacted_headers(&req.headers);
            entry.body = String::from_utf8_lossy(&req.body).into_owned();
            match service {
                Service::Salesforce => salesforce::handle(&app, &req),
                Service::Vapi => vapi::handle(&app, &req),
                Service::Twilio => twilio::handle(&app, &req),
            }
        }
    };
    entry.status = Some(resp.status.as_u16());
    // A recording is audio, not text for the log: its size stands for it.
    entry.response_body = match resp.headers.iter().find(|(k, _)| *k == "content-type") {
        Some((_, ct)) if ct.starts_with("audio/") => format!("<{} bytes of {ct}>", resp.body.len()),
        _ => String::from_utf8_lossy(&resp.body).into_owned(),
    };
    // OAuth credentials and tokens stay out of the log, even fake ones: the log is for humans.
    if service == Service::Salesforce && entry.path.starts_with("/services/oauth2/") {
        entry.body = log::redact_form(entry.body.as_bytes(), OAUTH_SECRET_FIELDS);
        entry.response_body = log::redact_json(&resp.body, OAUTH_SECRET_FIELDS);
    }
    if let Some(d) = resp.delay {
        tokio::time::sleep(d).await;
    }
    entry.duration_ms = started.elapsed().as_millis() as u64;
    app.log.push(entry);
    to_hyper(resp)
}

fn to_hyper(resp: Resp) -> hyper::Response<Full<Bytes>> {
    let mut out = hyper::Response::new(Full::new(Bytes::from(resp.body)));
    *out.status_mut() = resp.status;
    for (name, value) in resp.headers {
        if let Ok(v) = HeaderValue::from_str(&value) {
            out.headers_mut().append(name, v);
        }
    }
    out
}
