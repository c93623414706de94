//! The local runner: the Lambdas' handler functions served over real HTTP on loopback.
//!
//! Each hyper request is turned into exactly the event API Gateway's HTTP API (payload v2) would
//! deliver (lower-case headers, repeated headers joined with commas, cookies in `cookies`, a
//! text body as-is with `isBase64Encoded: false`, a binary body base64-encoded) and parsed with
//! `lambda_http::request::from_str`, so the handler sees the same `Request` type as on Lambda.
//! Its `Response` goes back to the client unchanged (status, headers, exact body bytes).
//!
//! Routes (as `template.yaml`'s HttpApi):
//! - `POST /salesforce/events`, `POST /salesforce/outbound-message/{token}` → `IngestApp::handle`
//! - `POST /vapi/webhook` → `VapiWebhookApp::handle`
//! - `GET /oauth/salesforce/{login,callback}` → `RefresherApp::handle` (its Lambda takes the raw
//!   JSON event and answers an API Gateway v2 response object, so it gets the event JSON too)
//! - anything else → 404 `{"error":"not_found"}`, as the API would.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

use base64::Engine as _;
use bytes::Bytes;
use http::{HeaderMap, HeaderValue, StatusCode};
use http_body_util::{BodyExt as _, Full, Limited};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use serde_json::Value;
use sfvapi::http::{apigw_v2_event, body_bytes, ApiError};
use sfvapi::ingest::IngestApp;
use sfvapi::salesforce::connect::RefresherApp;
use sfvapi::vapi::webhook::VapiWebhookApp;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// API Gateway refuses larger payloads with 413 before any Lambda runs.
pub const MAX_PAYLOAD: usize = 10 * 1024 * 1024;

/// The handlers the runner serves, built once like a Lambda's cold start.
pub struct Apps {
    pub ingest: IngestApp,
    pub vapi: VapiWebhookApp,
    /// The token refresher's connect routes; `None` leaves them 404.
    pub refresher: Option<Arc<RefresherApp>>,
}

/// A bound, not yet serving, listener: its URL is known before the apps are built, so the
/// sandbox can be told where to send Vapi's server messages.
pub struct Bound {
    listener: TcpListener,
    pub url: String,
}

impl Bound {
    pub async fn bind(addr: SocketAddr) -> std::io::Result<Self> {
        let listener = TcpListener::bind(addr).await?;
        let local = listener.local_addr()?;
        Ok(Self {
            listener,
            url: format!("http://{local}"),
        })
    }

    /// Start serving `apps`; returns at once.
    pub fn serve(self, apps: Arc<Apps>) -> Runner {
        let (tx, rx) = watch::channel(false);
        let task = tokio::spawn(accept_loop(self.listener, apps, rx));
        Runner {
            url: self.url,
            shutdown: tx,
            task,
        }
    }
}

/// The running runner.
pub struct Runner {
    pub url: String,
    shutdown: watch::Sender<bool>,
    task: JoinHandle<()>,
}

impl Runner {
    pub async fn shutdown(self) {
        let _ = self.shutdown.send(true);
        let _ = self.task.await;
    }
}

async fn accept_loop(listener: TcpListener, apps: Arc<Apps>, mut shutdown: watch::Receiver<bool>) {
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let stream = match accepted {
                    Ok((stream, _)) => stream,
                    Err(e) => {
                        tracing::warn!(error = %e, "runner: accept failed");
                        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                        continue;
                    }
                };
                let apps = apps.clone();
                tokio::spawn(async move {
                    let svc = hyper::service::service_fn(move |req| {
                        let apps = apps.clone();
                        async move { Ok::<_, Infallible>(handle(&apps, req).await) }
                    });
                    if let Err(e) = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), svc)
                        .await
                    {
                        tracing::debug!(error = %e, "runner: connection ended with an error");
                    }
                });
            }
            _ = shutdown.changed() => break,
        }
    }
}

/// Which function a path belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route {
    Ingest,
    Vapi,
    Refresher,
    None,
}

pub fn route(path: &str) -> Route {
    let p = path.trim_end_matches('/');
    if p == "/salesforce/events" || p.starts_with("/salesforce/outbound-message/") {
        Route::Ingest
    } else if p == "/vapi/webhook" {
        Route::Vapi
    } else if p == "/oauth/salesforce/login" || p == "/oauth/salesforce/callback" {
        Route::Refresher
    } else {
        Route::None
    }
}

/// The path as it may be logged: the Outbound Message token is a credential.
pub fn loggable_path(path: &str) -> String {
    match path.split_once("/salesforce/outbound-message/") {
        Some((prefix, _)) => format!("{prefix}/salesforce/outbound-message/<token>"),
        None => path.to_owned(),
    }
}

async fn handle(apps: &Apps, req: hyper::Request<Incoming>) -> hyper::Response<Full<Bytes>> {
    let started = Instant::now();
    let (parts, body) = req.into_parts();
    let path = parts.uri.path().to_owned();
    let shown = loggable_path(&path);
    let body = match Limited::new(body, MAX_PAYLOAD).collect().await {
        Ok(b) => b.to_bytes(),
        Err(_) => {
            return to_hyper(
                ApiError::TooLarge { limit: MAX_PAYLOAD }.to_response(),
                StatusCode::PAYLOAD_TOO_LARGE,
            )
        }
    };
    let event = apigw_event(
        parts.method.as_str(),
        &path,
        parts.uri.query(),
        &parts.headers,
        &body,
    );
    let resp = match route(&path) {
        Route::Ingest => match lambda_http::request::from_str(&event.to_string()) {
            Ok(r) => apps.ingest.handle(r).await,
            Err(e) => bad_event(e),
        },
        Route::Vapi => match lambda_http::request::from_str(&event.to_string()) {
            Ok(r) => apps.vapi.handle(r).await,
            Err(e) => bad_event(e),
        },
        Route::Refresher => match &apps.refresher {
            Some(app) => match Box::pin(app.handle(event)).await {
                Ok(v) => apigw_response_to_lambda(&v),
                Err(e) => ApiError::Unavailable(e.to_string()).to_response(),
            },
            None => ApiError::NotFound.to_response(),
        },
        Route::None => ApiError::NotFound.to_response(),
    };
    let status = resp.status();
    tracing::info!(
        method = %parts.method,
        path = %shown,
        status = status.as_u16(),
        ms = started.elapsed().as_millis() as u64,
        "runner: request"
    );
    to_hyper(resp, status)
}

/// The event can only fail to parse if this module built it wrong: answer 500 like a broken
/// integration would, and say so in the log.
fn bad_event(e: impl std::fmt::Display) -> lambda_http::Response<lambda_http::Body> {
    tracing::error!(error = %e, "runner: built an API Gateway event lambda_http cannot parse");
    sfvapi::http::json_response(
        StatusCode::INTERNAL_SERVER_ERROR,
        &serde_json::json!({"message": "Internal Server Error"}),
    )
}

static REQUEST_SEQ: AtomicU64 = AtomicU64::new(1);

/// The API Gateway HTTP API v2 event for one request.
pub fn apigw_event(
    method: &str,
    path: &str,
    query: Option<&str>,
    headers: &HeaderMap,
    body: &[u8],
) -> Value {
    // API Gateway joins repeated headers with commas and moves cookies to their own array.
    let mut joined: Vec<(String, String)> = Vec::new();
    let mut cookies: Vec<String> = Vec::new();
    for (name, value) in headers {
        let value = String::from_utf8_lossy(value.as_bytes()).into_owned();
        if name.as_str() == "cookie" {
            cookies.extend(value.split(';').map(|c| c.trim().to_owned()));
            continue;
        }
        match joined.iter_mut().find(|(n, _)| n == name.as_str()) {
            Some((_, v)) => {
                v.push(',');
                v.push_str(&value);
            }
            None => joined.push((name.as_str().to_owned(), value)),
        }
    }
    let pairs: Vec<(&str, &str)> = joined
        .iter()
        .map(|(n, v)| (n.as_str(), v.as_str()))
        .collect();
    // A text body travels as-is; anything that is not UTF-8 is base64, as the gateway does.
    let binary = std::str::from_utf8(body).is_err();
    let mut event = apigw_v2_event(method, path, &pairs, body, binary);
    let seq = REQUEST_SEQ.fetch_add(1, Ordering::Relaxed);
    let now = sfvapi::now_millis();
    event["requestContext"]["requestId"] = Value::String(format!("local-{now}-{seq}"));
    event["requestContext"]["timeEpoch"] = Value::from(now);
    if let Some(q) = query.filter(|q| !q.is_empty()) {
        event["rawQueryString"] = Value::String(q.to_owned());
        let mut params = serde_json::Map::new();
        for (k, v) in url_pairs(q) {
            match params.get_mut(&k) {
                Some(Value::String(existing)) => {
                    existing.push(',');
                    existing.push_str(&v);
                }
                _ => {
                    params.insert(k, Value::String(v));
                }
            }
        }
        event["queryStringParameters"] = Value::Object(params);
    }
    if !cookies.is_empty() {
        event["cookies"] = Value::from(cookies);
    }
    event
}

fn url_pairs(q: &str) -> Vec<(String, String)> {
    url::form_urlencoded::parse(q.as_bytes())
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect()
}

/// An API Gateway v2 response object (`statusCode`, `headers`, `body`, `isBase64Encoded`), as the
/// refresher's Lambda answers, back into an HTTP response.
fn apigw_response_to_lambda(v: &Value) -> lambda_http::Response<lambda_http::Body> {
    let status = v["statusCode"]
        .as_u64()
        .and_then(|s| StatusCode::from_u16(s as u16).ok())
        .unwrap_or(StatusCode::OK);
    let text = v["body"].as_str().unwrap_or_default();
    let body = if v["isBase64Encoded"].as_bool() == Some(true) {
        match base64::engine::general_purpose::STANDARD.decode(text) {
            Ok(b) => lambda_http::Body::Binary(b),
            Err(_) => lambda_http::Body::Text(text.to_owned()),
        }
    } else {
        lambda_http::Body::Text(text.to_owned())
    };
    let mut resp = lambda_http::Response::new(body);
    *resp.status_mut() = status;
    if let Some(h) = v["headers"].as_object() {
        for (k, val) in h {
            if let (Ok(name), Some(val)) = (
                http::HeaderName::from_bytes(k.as_bytes()),
                val.as_str().and_then(|s| HeaderValue::from_str(s).ok()),
            ) {
                resp.headers_mut().insert(name, val);
            }
        }
    }
    resp
}

fn to_hyper(
    resp: lambda_http::Response<lambda_http::Body>,
    status: StatusCode,
) -> hyper::Response<Full<Bytes>> {
    let (parts, body) = resp.into_parts();
    let mut out = hyper::Response::new(Full::new(Bytes::copy_from_slice(body_bytes(&body))));
    *out.status_mut() = status;
    *out.headers_mut() = parts.headers;
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_bodies_keep_their_exact_bytes_and_binary_ones_are_base64() {
        let mut h = HeaderMap::new();
        h.insert("Content-Type", HeaderValue::from_static("application/json"));
        h.append("X-Multi", HeaderValue::from_static("a"));
        h.append("X-Multi", HeaderValue::from_static("b"));
        h.insert("cookie", HeaderValue::from_static("a=1; b=2"));
        let body = "{\"k\":\"é\"}\r\n  ";
        let ev = apigw_event("POST", "/salesforce/events", None, &h, body.as_bytes());
        assert_eq!(ev["isBase64Encoded"], false);
        assert_eq!(ev["headers"]["x-multi"], "a,b");
        assert_eq!(ev["headers"]["content-type"], "application/json");
        assert_eq!(ev["cookies"], serde_json::json!(["a=1", "b=2"]));
        let req = lambda_http::request::from_str(&ev.to_string()).unwrap();
        assert_eq!(body_bytes(req.body()), body.as_bytes());
        assert_eq!(req.uri().path(), "/salesforce/events");

        let raw = [0xff_u8, 0x00, 0x80, b'x'];
        let ev = apigw_event("POST", "/vapi/webhook", Some("a=1&b=x%20y"), &h, &raw);
        assert_eq!(ev["isBase64Encoded"], true);
        assert_eq!(ev["queryStringParameters"]["b"], "x y");
        let req = lambda_http::request::from_str(&ev.to_string()).unwrap();
        assert_eq!(body_bytes(req.body()), &raw);
    }

    #[test]
    fn routes_and_loggable_paths() {
        assert_eq!(route("/salesforce/events"), Route::Ingest);
        assert_eq!(route("/salesforce/outbound-message/tok"), Route::Ingest);
        assert_eq!(route("/vapi/webhook/"), Route::Vapi);
        assert_eq!(route("/oauth/salesforce/callback"), Route::Refresher);
        assert_eq!(route("/nope"), Route::None);
        assert_eq!(
            loggable_path("/salesforce/outbound-message/local-outbound-token"),
            "/salesforce/outbound-message/<token>"
        );
    }
}
