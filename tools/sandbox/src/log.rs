//! The request log: every request a fake answered and every server message the fake Vapi sent.
//!
//! Bounded (oldest entries dropped past `CAPACITY`) so a long demo cannot grow without limit.
//! Credentials never enter it: `Authorization` keeps only its scheme, `X-Vapi-Secret` is hidden.

use std::collections::{BTreeMap, VecDeque};
use std::sync::Mutex;

use http::HeaderMap;
use serde::Serialize;

const CAPACITY: usize = 10_000;

/// Which fake an entry belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Service {
    Salesforce,
    Vapi,
    Twilio,
}

impl Service {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Salesforce => "salesforce",
            Self::Vapi => "vapi",
            Self::Twilio => "twilio",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "salesforce" => Some(Self::Salesforce),
            "vapi" => Some(Self::Vapi),
            "twilio" => Some(Self::Twilio),
            _ => None,
        }
    }
}

/// `in`: a request the fake received. `out`: a server message the fake Vapi sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Direction {
    In,
    Out,
}

/// The verdict on a webhook's answer (tool-call answers are checked).
#[derive(Debug, Clone, Serialize)]
pub struct Check {
    pub ok: bool,
    pub detail: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct Entry {
    /// Increasing from 1; `?since=N` returns entries after N.
    pub seq: u64,
    pub service: Service,
    pub direction: Direction,
    pub method: String,
    pub path: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub query: Option<String>,
    /// `out` only: the full URL the message went to.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    pub headers: BTreeMap<String, String>,
    pub body: String,
    /// The status answered (`in`) or received (`out`); null when the connection failed.
    pub status: Option<u16>,
    pub response_body: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Unix ms when the request started.
    pub time_ms: i64,
    pub duration_ms: u64,
    /// `out` only: the server message type, 1-based delivery (2 with --deliver-twice) and attempt.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message_type: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub call_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub delivery: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub attempt: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub check: Option<Check>,
}

impl Entry {
    pub fn new(service: Service, direction: Direction, method: &str, path: &str) -> Self {
        Self {
            seq: 0,
            service,
            direction,
            method: method.to_owned(),
            path: path.to_owned(),
            query: None,
            url: None,
            headers: BTreeMap::new(),
            body: String::new(),
            status: None,
            response_body: String::new(),
            error: None,
            time_ms: sfvapi::now_millis(),
            duration_ms: 0,
            message_type: None,
            call_id: None,
            delivery: None,
            attempt: None,
            check: None,
        }
    }
}

/// Headers as a name → value map, credentials redacted; repeated headers are joined with ", ".
pub fn redacted_headers(headers: &HeaderMap) -> BTreeMap<String, String> {
    let mut out: BTreeMap<String, String> = BTreeMap::new();
    for (name, value) in headers {
        let value = String::from_utf8_lossy(value.as_bytes()).into_owned();
        let shown = match name.as_str() {
            // Keep the scheme: "Bearer" vs "Basic" is what one debugs; the credential never shows.
            "authorization" | "proxy-authorization" => match value.split_once(' ') {
                Some((scheme, _)) => format!("{scheme} [redacted]"),
                None => "[redacted]".into(),
            },
            "x-vapi-secret" | "cookie" => "[redacted]".into(),
            _ => value,
        };
        out.entry(name.as_str().to_owned())
            .and_modify(|v| {
                v.push_str(", ");
                v.push_str(&shown);
            })
            .or_insert(shown);
    }
    out
}

/// A form body with the values of `keys` replaced (OAuth secrets, refresh tokens, assertions).
pub fn redact_form(body: &[u8], keys: &[&str]) -> String {
    let mut out = url::form_urlencoded::Serializer::new(String::new());
    for (k, v) in url::form_urlencoded::parse(body) {
        if keys.contains(&k.as_ref()) {
            out.append_pair(&k, "[redacted]");
        } else {
            out.append_pair(&k, &v);
        }
    }
    out.finish()
}

/// A JSON object body with the top-level `keys` replaced; anything else is returned as text.
pub fn redact_json(body: &[u8], keys: &[&str]) -> String {
    match serde_json::from_slice::<serde_json::Value>(body) {
        Ok(serde_json::Value::Object(mut m)) => {
            for k in keys {
                if let Some(v) = m.get_mut(*k) {
                    *v = serde_json::Value::String("[redacted]".into());
                }
            }
            serde_json::Value::Object(m).to_string()
        }
        _ => String::from_utf8_lossy(body).into_owned(),
    }
}

#[derive(Default)]
pub struct RequestLog {
    inner: Mutex<Inner>,
}

#[derive(Default)]
struct Inner {
    next_seq: u64,
    entries: VecDeque<Entry>,
}

impl RequestLog {
    pub fn push(&self, mut entry: Entry) {
        let mut inner = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        inner.next_seq += 1;
        entry.seq = inner.next_seq;
        if inner.entries.len() >= CAPACITY {
            inner.entries.pop_front();
        }
        inner.entries.push_back(entry);
    }

    pub fn query(&self, service: Option<Service>, since: u64) -> Vec<Entry> {
        let inner = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        inner
            .entries
            .iter()
            .filter(|e| service.is_none_or(|s| e.service == s) && e.seq > since)
            .cloned()
            .collect()
    }

    /// Drops every entry; sequence numbers keep increasing so `since` stays meaningful.
    pub fn clear(&self) -> usize {
        let mut inner = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        let n = inner.entries.len();
        inner.entries.clear();
        n
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_are_redacted_but_scheme_kept() {
        let mut h = HeaderMap::new();
        h.insert("authorization", "Bearer s3cr3t".parse().unwrap());
        h.insert("x-vapi-secret", "s3cr3t".parse().unwrap());
        h.insert("x-signature", "abc".parse().unwrap());
        let r = redacted_headers(&h);
        assert_eq!(r["authorization"], "Bearer [redacted]");
        assert_eq!(r["x-vapi-secret"], "[redacted]");
        assert_eq!(r["x-signature"], "abc");
        assert!(!format!("{r:?}").contains("s3cr3t"));
    }
}
