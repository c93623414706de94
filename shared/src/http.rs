//! The HTTP contract of the public endpoints (DESIGN.md, "HTTP contract"), in one place: every
//! error a handler can meet maps here to one status code and one JSON body.

use lambda_http::http::{header, StatusCode};
use lambda_http::{Body, Response};
use serde_json::json;

/// Everything a public endpoint can answer besides success.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ApiError {
    /// Missing/invalid signature or stale timestamp. The body says nothing that helps a forger.
    #[error("invalid signature")]
    InvalidSignature,
    /// The body is not what the endpoint accepts; `detail` names the field.
    #[error("invalid payload: {0}")]
    InvalidPayload(String),
    #[error("payload larger than {limit} bytes")]
    TooLarge { limit: usize },
    #[error("no such route")]
    NotFound,
    #[error("method not allowed")]
    MethodNotAllowed { allow: &'static str },
    /// A dependency (DynamoDB, Secrets Manager) failed: nothing was accepted, the sender retries.
    #[error("temporarily unavailable: {0}")]
    Unavailable(String),
}

impl ApiError {
    pub fn status(&self) -> StatusCode {
        match self {
            Self::InvalidSignature => StatusCode::UNAUTHORIZED,
            Self::InvalidPayload(_) => StatusCode::BAD_REQUEST,
            Self::TooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            Self::NotFound => StatusCode::NOT_FOUND,
            Self::MethodNotAllowed { .. } => StatusCode::METHOD_NOT_ALLOWED,
            Self::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
        }
    }

    /// The JSON answer. Internal details of `Unavailable` stay in the logs.
    pub fn to_response(&self) -> Response<Body> {
        let body = match self {
            Self::InvalidSignature => json!({"error": "invalid_signature"}),
            Self::InvalidPayload(detail) => json!({"error": "invalid_payload", "detail": detail}),
            Self::TooLarge { limit } => json!({"error": "payload_too_large", "limit": limit}),
            Self::NotFound => json!({"error": "not_found"}),
            Self::MethodNotAllowed { .. } => json!({"error": "method_not_allowed"}),
            Self::Unavailable(_) => {
                json!({"error": "unavailable", "detail": "temporarily unavailable, retry later"})
            }
        };
        let mut resp = json_response(self.status(), &body);
        match self {
            Self::MethodNotAllowed { allow } => {
                resp.headers_mut()
                    .insert(header::ALLOW, header::HeaderValue::from_static(allow));
            }
            Self::Unavailable(_) => {
                resp.headers_mut()
                    .insert(header::RETRY_AFTER, header::HeaderValue::from_static("5"));
            }
            _ => {}
        }
        resp
    }
}

pub fn json_response(status: StatusCode, body: &serde_json::Value) -> Response<Body> {
    let mut resp = Response::new(Body::Text(body.to_string()));
    *resp.status_mut() = status;
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static("application/json"),
    );
    resp
}

pub fn xml_response(status: StatusCode, body: String) -> Response<Body> {
    let mut resp = Response::new(Body::Text(body));
    *resp.status_mut() = status;
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static("text/xml; charset=utf-8"),
    );
    resp
}

/// The exact bytes the sender sent. lambda_http has already decoded an `isBase64Encoded` body,
/// so the MAC is checked over what was signed, not over its transport encoding.
pub fn body_bytes(body: &Body) -> &[u8] {
    match body {
        Body::Empty => &[],
        Body::Text(t) => t.as_bytes(),
        Body::Binary(b) => b,
        _ => &[],
    }
}

/// An API Gateway HTTP API (payload v2) request event, as the gateway would deliver it. Used to
/// write `events/*.json`, by the demo, and by tests that drive the real handlers.
pub fn apigw_v2_event(
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
    base64: bool,
) -> serde_json::Value {
    use base64::Engine as _;
    let headers: serde_json::Map<String, serde_json::Value> = headers
        .iter()
        .map(|(k, v)| {
            (
                k.to_ascii_lowercase(),
                serde_json::Value::String((*v).to_owned()),
            )
        })
        .collect();
    let body = if base64 {
        base64::engine::general_purpose::STANDARD.encode(body)
    } else {
        String::from_utf8_lossy(body).into_owned()
    };
    json!({
        "version": "2.0",
        "routeKey": "$default",
        "rawPath": path,
        "rawQueryString": "",
        "headers": headers,
        "requestContext": {
            "accountId": "123456789012",
            "apiId": "local",
            "domainName": "localhost",
            "domainPrefix": "localhost",
            "http": {"method": method, "path": path, "protocol": "HTTP/1.1", "sourceIp": "127.0.0.1", "userAgent": "sfvapi"},
            "requestId": "local-request",
            "routeKey": "$default",
            "stage": "$default",
            "time": "26/Nov/2026:12:00:00 +0000",
            "timeEpoch": 1795690000000i64
        },
        "body": body,
        "isBase64Encoded": base64
    })
}
