//! Vapi's `POST /call` (Vapi API reference, "Create Call"): place one outbound phone call.
//!
//! The endpoint has no idempotency key, so every failure is classified by what it proves:
//! - 429 and 5xx answers, and a connection that was never established: no call was created,
//!   retrying is safe (`is_retryable`).
//! - other 4xx: the request is wrong (bad number, unknown assistant); terminal, with Vapi's message.
//! - a timeout or dropped connection after the request was sent, or a 2xx we cannot read:
//!   `Ambiguous` — a call may exist; the caller must not resend (the job goes to NEEDS_REVIEW).

use std::time::Duration;

use serde::Deserialize;
use serde_json::{json, Map, Value};

use crate::ids::{E164Phone, SalesforceEventId, SalesforceId, VapiCallId};
use crate::secrets::SecretString;
use crate::vapi::messages::CallStatus;

pub const DEFAULT_BASE_URL: &str = "https://api.vapi.ai";

/// Vapi's OpenAPI (CreateCallDTO) caps the call's `name` and the customer's `name` at 40
/// characters (`maxLength: 40`); longer values are a 400. The full event id travels in the
/// metadata, so the name is only cut for display.
const MAX_NAME_CHARS: usize = 40;

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum VapiError {
    #[error("Vapi is rate limiting (429): {message}; no call was created, back off and retry")]
    RateLimited {
        message: String,
        retry_after: Option<Duration>,
    },
    #[error("Vapi failed with HTTP {status}: {message}; no call was created, retry later")]
    ServerError { status: u16, message: String },
    #[error("could not connect to Vapi: {detail}; no call was created, retry later")]
    Connect { detail: String },
    /// A 400 about a limit (Vapi's OpenAPI: 400 is "client/policy failure (limits, validation,
    /// missing resources)"): nothing was dialled, and the limit frees up with time.
    #[error("Vapi refused the call for a limit (HTTP {status}): {message}; no call was created, retry later")]
    LimitReached { status: u16, message: String },
    #[error("Vapi rejected the call (HTTP {status}): {message}")]
    Rejected { status: u16, message: String },
    #[error("outcome unknown ({detail}): a call may have been placed; do not resend before Vapi's call list shows none")]
    Ambiguous { detail: String },
    #[error("the Vapi client is misconfigured: {0}")]
    Config(String),
}

impl VapiError {
    /// Safe to try again later: Vapi proved no call was created.
    pub fn is_retryable(&self) -> bool {
        matches!(
            self,
            Self::RateLimited { .. }
                | Self::ServerError { .. }
                | Self::Connect { .. }
                | Self::LimitReached { .. }
        )
    }
}

/// One call to place.
#[derive(Debug, Clone)]
pub struct CreateCall {
    pub assistant_id: String,
    pub phone_number_id: String,
    pub customer_number: E164Phone,
    pub customer_name: Option<String>,
    pub event_id: SalesforceEventId,
    pub contact_id: SalesforceId,
    pub case_id: Option<SalesforceId>,
    /// `assistantOverrides.variableValues`: `{{customerName}}`, `{{caseId}}`, … in the prompt.
    pub variable_values: Map<String, Value>,
    /// `metadata.sfvapiContextSig` (`crate::vapi::context::sign`), so the webhook can trust the ids.
    pub context_sig: Option<String>,
}

impl CreateCall {
    /// The request body.
    pub fn body(&self) -> Value {
        let name: String = format!("sfvapi {}", self.event_id)
            .chars()
            .take(MAX_NAME_CHARS)
            .collect();
        let mut customer = json!({"number": self.customer_number.expose()});
        if let Some(n) = &self.customer_name {
            customer["name"] = json!(n.chars().take(MAX_NAME_CHARS).collect::<String>());
        }
        let mut metadata = json!({
            "sfvapiEventId": self.event_id.as_str(),
            "contactId": self.contact_id.as_str(),
        });
        if let Some(c) = &self.case_id {
            metadata["caseId"] = json!(c.as_str());
        }
        if let Some(s) = &self.context_sig {
            metadata[crate::vapi::context::SIG_FIELD] = json!(s);
        }
        json!({
            "assistantId": self.assistant_id,
            "phoneNumberId": self.phone_number_id,
            "customer": customer,
            "name": name,
            "assistantOverrides": {
                "variableValues": self.variable_values,
                "metadata": metadata,
            }
        })
    }
}

/// What Vapi answered (the rest of the call object is not needed).
#[derive(Debug, Clone, PartialEq)]
pub struct CreatedCall {
    pub id: VapiCallId,
    pub status: CallStatus,
    /// `Call.subscriptionLimits`, when Vapi sent it.
    pub limits: Option<SubscriptionLimits>,
}

impl CreatedCall {
    /// A 201 is not proof of a call: `subscriptionLimits.concurrencyBlocked = true` means the org's
    /// concurrency limit refused it and nothing was dialled (docs.vapi.ai/calls/call-concurrency:
    /// "New calls receive a `concurrencyBlocked: true` response and do not connect").
    pub fn concurrency_blocked(&self) -> bool {
        self.limits.as_ref().is_some_and(|l| l.concurrency_blocked)
    }
}

/// Vapi OpenAPI `SubscriptionLimits`, returned with every `POST /call`
/// (docs.vapi.ai/calls/call-concurrency, "View concurrency in call responses").
#[derive(Debug, Clone, Copy, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SubscriptionLimits {
    #[serde(default)]
    pub concurrency_blocked: bool,
    /// Total concurrent call slots of the org (shared by inbound, outbound and web calls).
    #[serde(default)]
    pub concurrency_limit: Option<f64>,
    /// Slots open when the call was created.
    #[serde(default)]
    pub remaining_concurrent_calls: Option<f64>,
}

#[derive(Clone, Debug)]
pub struct VapiClient {
    http: reqwest::Client,
    base_url: String,
}

impl VapiClient {
    /// `base_url` is `https://api.vapi.ai` in production (a loopback server in tests and the
    /// sandbox); `timeout` bounds the whole request.
    pub fn new(base_url: &str, timeout: Duration) -> Result<Self, VapiError> {
        let base = url::Url::parse(base_url)
            .map_err(|e| VapiError::Config(format!("VAPI_BASE_URL {base_url:?}: {e}")))?;
        let http = crate::tls::reqwest_builder()
            .timeout(timeout)
            .connect_timeout(timeout.min(Duration::from_secs(3)))
            .build()
            .map_err(|e| VapiError::Config(e.to_string()))?;
        Ok(Self {
            http,
            base_url: base.as_str().trim_end_matches('/').to_owned(),
        })
    }

    /// `POST {base}/call` with `Authorization: Bearer <private key>`; 201 → the call's id.
    pub async fn create_call(
        &self,
        api_key: &SecretString,
        call: &CreateCall,
    ) -> Result<CreatedCall, VapiError> {
        let resp = self
            .http
            .post(format!("{}/call", self.base_url))
            .bearer_auth(api_key.expose())
            .json(&call.body())
            .send()
            .await
            .map_err(send_error)?;
        let status = resp.status().as_u16();
        let retry_after = resp
            .headers()
            .get("retry-after")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok())
            .map(Duration::from_secs);
        let body = resp.bytes().await;
        if (200..300).contains(&status) {
            let body = body.map_err(|e| VapiError::Ambiguous {
                detail: format!("HTTP {status} but the body was lost: {e}"),
            })?;
            return parse_created(&body);
        }
        let message = body
            .map(|b| error_message(&b))
            .unwrap_or_else(|e| format!("(body unreadable: {e})"));
        Err(match status {
            429 => VapiError::RateLimited {
                message,
                retry_after,
            },
            // A gateway's 502/504/52x means the origin may still be creating the call.
            502 | 504 | 520..=599 => VapiError::Ambiguous {
                detail: format!("HTTP {status} from a gateway: {message}"),
            },
            500..=599 => VapiError::ServerError { status, message },
            400 if is_limit_message(&message) => VapiError::LimitReached { status, message },
            _ => VapiError::Rejected { status, message },
        })
    }
}

/// How a read of Vapi (`GET /call`, `GET /call/{id}`) failed. Reads have no side effect, so
/// every failure is just "try again later" or "this is wrong".
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum VapiReadError {
    #[error("Vapi could not be asked ({detail}); try again later")]
    Unavailable { detail: String },
    #[error("Vapi refused the read (HTTP {status}): {message}")]
    Rejected { status: u16, message: String },
}

/// `GET /call` with the filters sfvapi uses (Vapi OpenAPI `CallController_findAll`: `assistantId`,
/// `createdAtGe`, `limit` ≤ 1000): the assistant's calls created since a moment.
#[derive(Debug, Clone)]
pub struct CallQuery<'a> {
    pub assistant_id: &'a str,
    pub created_at_ge_ms: i64,
    pub limit: u32,
}

impl VapiClient {
    /// The calls matching `q`, as Vapi's `Call` objects.
    pub async fn list_calls(
        &self,
        api_key: &SecretString,
        q: &CallQuery<'_>,
    ) -> Result<Vec<Value>, VapiReadError> {
        let since = iso_millis(q.created_at_ge_ms);
        let limit = q.limit.min(1000).to_string();
        let req = self
            .http
            .get(format!("{}/call", self.base_url))
            .bearer_auth(api_key.expose())
            .query(&[
                ("assistantId", q.assistant_id),
                ("createdAtGe", since.as_str()),
                ("limit", limit.as_str()),
            ]);
        match self.read(req).await? {
            Some(Value::Array(calls)) => Ok(calls),
            Some(other) => Err(VapiReadError::Unavailable {
                detail: format!(
                    "GET /call answered {} instead of a list",
                    if other.is_object() {
                        "an object"
                    } else {
                        "a scalar"
                    }
                ),
            }),
            // The list route always exists: a 404 is a wrong base URL, never "no calls".
            None => Err(VapiReadError::Rejected {
                status: 404,
                message: "GET /call not found (check VAPI_BASE_URL)".into(),
            }),
        }
    }

    /// One call (`GET /call/{id}`); `None` when Vapi does not know it (404).
    pub async fn get_call(
        &self,
        api_key: &SecretString,
        id: &VapiCallId,
    ) -> Result<Option<Value>, VapiReadError> {
        let req = self
            .http
            .get(format!("{}/call/{}", self.base_url, id.as_str()))
            .bearer_auth(api_key.expose());
        self.read(req).await
    }

    async fn read(&self, req: reqwest::RequestBuilder) -> Result<Option<Value>, VapiReadError> {
        let resp = req.send().await.map_err(|e| VapiReadError::Unavailable {
            detail: crate::secrets::error_chain(&e),
        })?;
        let status = resp.status().as_u16();
        let body = resp.bytes().await.map_err(|e| VapiReadError::Unavailable {
            detail: format!("HTTP {status}, body lost: {e}"),
        })?;
        match status {
            200..=299 => {
                serde_json::from_slice(&body)
                    .map(Some)
                    .map_err(|e| VapiReadError::Unavailable {
                        detail: format!("HTTP {status} with an unreadable body: {e}"),
                    })
            }
            404 => Ok(None),
            429 | 500..=599 => Err(VapiReadError::Unavailable {
                detail: format!("HTTP {status}: {}", error_message(&body)),
            }),
            _ => Err(VapiReadError::Rejected {
                status,
                message: error_message(&body),
            }),
        }
    }
}

/// Unix ms as Vapi writes dates (`2026-11-26T10:00:05.000Z`, OpenAPI `format: date-time`).
pub fn iso_millis(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .unwrap_or_default()
        .to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

/// Whether a `Call` object is the one sfvapi placed for `event_id`: the metadata of our
/// `POST /call` names the event; the call's `name` does too when the full name fits Vapi's 40
/// characters (a cut name could belong to another event).
pub fn call_is_for_event(call: &Value, event_id: &SalesforceEventId) -> bool {
    let meta = call
        .pointer("/assistantOverrides/metadata/sfvapiEventId")
        .and_then(Value::as_str);
    if let Some(m) = meta {
        return m == event_id.as_str();
    }
    let full = format!("sfvapi {event_id}");
    full.chars().count() <= MAX_NAME_CHARS
        && call.get("name").and_then(Value::as_str) == Some(full.as_str())
}

fn send_error(e: reqwest::Error) -> VapiError {
    if e.is_connect() {
        VapiError::Connect {
            detail: crate::secrets::error_chain(&e),
        }
    } else if e.is_builder() {
        VapiError::Config(crate::secrets::error_chain(&e))
    } else if e.is_timeout() {
        VapiError::Ambiguous {
            detail: "timed out after the request was sent".into(),
        }
    } else {
        VapiError::Ambiguous {
            detail: crate::secrets::error_chain(&e),
        }
    }
}

/// Vapi documents no error code for its limit 400s, only that 400 covers "limits, validation,
/// missing resources" (OpenAPI `POST /call` responses), so the message decides: one about a
/// limit or concurrency is retried, every other 400 (validation, unknown assistant) fails.
fn is_limit_message(message: &str) -> bool {
    let m = message.to_ascii_lowercase();
    m.contains("concurrency") || m.contains("limit")
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawCreated {
    id: String,
    #[serde(default)]
    status: Option<String>,
    #[serde(default)]
    subscription_limits: Option<SubscriptionLimits>,
}

fn parse_created(body: &[u8]) -> Result<CreatedCall, VapiError> {
    let raw: RawCreated = serde_json::from_slice(body).map_err(|e| VapiError::Ambiguous {
        detail: format!("call created but the answer is unreadable: {e}"),
    })?;
    let id = VapiCallId::parse("id", &raw.id).map_err(|e| VapiError::Ambiguous {
        detail: format!("call created but its id is unusable: {e}"),
    })?;
    Ok(CreatedCall {
        id,
        status: CallStatus::parse(raw.status.as_deref().unwrap_or("queued")),
        limits: raw.subscription_limits,
    })
}

/// Vapi's errors are `{"message": "…" | ["…", …], "error": "Bad Request", "statusCode": 400}`.
/// Vapi's error text, with any phone number in it masked (it ends up in logs and on the job).
fn error_message(body: &[u8]) -> String {
    crate::ids::mask_phones_in(&raw_error_message(body))
}

fn raw_error_message(body: &[u8]) -> String {
    let text = || {
        let t = String::from_utf8_lossy(body);
        let t = t.trim();
        if t.is_empty() {
            "(empty body)".to_owned()
        } else {
            t.chars().take(500).collect()
        }
    };
    let Ok(v) = serde_json::from_slice::<Value>(body) else {
        return text();
    };
    message_of(&v).unwrap_or_else(|| {
        v.get("error")
            .and_then(Value::as_str)
            .map_or_else(text, str::to_owned)
    })
}

/// The `message` of a Vapi error answer, a string or NestJS's list of validation messages (joined
/// with "; "), or `None` when the body has none. Also what `doctor` and `setup vapi` show.
pub fn message_of(body: &Value) -> Option<String> {
    match body.get("message") {
        Some(Value::String(s)) => Some(s.clone()),
        Some(Value::Array(a)) => Some(
            a.iter()
                .map(|m| m.as_str().map_or_else(|| m.to_string(), str::to_owned))
                .collect::<Vec<_>>()
                .join("; "),
        ),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_messages_from_vapi_shapes() {
        assert_eq!(
            error_message(br#"{"message":["a","b"],"error":"Bad Request","statusCode":400}"#),
            "a; b"
        );
        assert_eq!(error_message(br#"{"message":"nope"}"#), "nope");
        assert_eq!(error_message(b"gateway"), "gateway");
    }

    #[test]
    fn a_201_can_be_a_blocked_call() {
        // The example of docs.vapi.ai/calls/call-concurrency, blocked.
        let c = parse_created(
            br#"{"subscriptionLimits":{"concurrencyBlocked":true,"concurrencyLimit":10,"remainingConcurrentCalls":0},"id":"019a9046-121e-766d-bd1f-84f3ccc309c1","status":"ended"}"#,
        )
        .unwrap();
        assert!(c.concurrency_blocked());
        assert_eq!(c.limits.unwrap().concurrency_limit, Some(10.0));
        let c =
            parse_created(br#"{"id":"019a9046-121e-766d-bd1f-84f3ccc309c1","status":"queued"}"#)
                .unwrap();
        assert!(!c.concurrency_blocked());
        assert!(c.limits.is_none());
    }

    #[test]
    fn limit_400s_are_told_from_validation_400s() {
        assert!(is_limit_message("Over Concurrency Limit."));
        assert!(is_limit_message("Daily outbound call limit reached"));
        assert!(!is_limit_message(
            "customer.number must be a valid phone number in the E.164 format"
        ));
    }

    #[test]
    fn call_name_fits_vapis_limit() {
        let c = CreateCall {
            assistant_id: "a".into(),
            phone_number_id: "p".into(),
            customer_number: E164Phone::parse("n", "+14155550123").unwrap(),
            customer_name: None,
            event_id: SalesforceEventId::parse("e", &"x".repeat(100)).unwrap(),
            contact_id: SalesforceId::parse("c", "0035e00000XyZ12AAF").unwrap(),
            case_id: None,
            variable_values: Map::new(),
            context_sig: None,
        };
        let b = c.body();
        assert_eq!(b["name"].as_str().unwrap().chars().count(), 40);
        assert_eq!(
            b["assistantOverrides"]["metadata"]["sfvapiEventId"],
            "x".repeat(100)
        );
        assert!(b["customer"].get("name").is_none());
    }
}
