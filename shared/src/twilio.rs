//! Twilio's REST API for follow-ups: Messages (SMS) and Calls (a voice call with inline TwiML).
//!
//! `POST {base}/2010-04-01/Accounts/{AccountSid}/Messages.json` (form `To`, `From` or
//! `MessagingServiceSid`, `Body`) and `…/Calls.json` (form `To`, `From`, `Twiml`), HTTP Basic
//! `AccountSid:AuthToken` or `ApiKeySid:ApiKeySecret` → 201 `{"sid":"SM…"|"CA…","status":"queued"}`.
//! Errors are `{"code":21211,"message":"…","more_info":"…","status":400}`.
//!
//! Neither endpoint takes an idempotency key, so failures are classified like Vapi's (see
//! `vapi::client`): 429 (code 20429) / 5xx / no connection → retryable; other 4xx → terminal with
//! Twilio's message; a timeout or dropped connection after sending → `Ambiguous` (never resend;
//! the `sms#<callId>` guard goes to NEEDS_REVIEW).

use std::time::Duration;

use serde::Deserialize;
use serde_json::Value;

use crate::ids::E164Phone;
use crate::secrets::{error_chain, SecretString};

pub const DEFAULT_BASE_URL: &str = "https://api.twilio.com";

/// What the secret `TWILIO_SECRET_ARN` holds: `{"account_sid":"AC…","auth_token":"…"}`, or with an
/// API key `{"account_sid":"AC…","api_key_sid":"SK…","api_key_secret":"…"}`.
#[derive(Debug, Clone, Deserialize)]
pub struct TwilioSecret {
    pub account_sid: String,
    #[serde(default)]
    pub auth_token: Option<SecretString>,
    #[serde(default)]
    pub api_key_sid: Option<String>,
    #[serde(default)]
    pub api_key_secret: Option<SecretString>,
}

/// Validated credentials: the account in the URL, and who signs in.
#[derive(Debug, Clone)]
pub struct TwilioCredentials {
    account_sid: String,
    username: String,
    password: SecretString,
}

impl TwilioCredentials {
    pub fn from_secret(s: &TwilioSecret) -> Result<Self, TwilioError> {
        let sid = s.account_sid.trim();
        if !(sid.len() == 34
            && sid.starts_with("AC")
            && sid.bytes().all(|b| b.is_ascii_alphanumeric()))
        {
            return Err(TwilioError::Config(
                "account_sid must be AC followed by 32 characters".into(),
            ));
        }
        let (username, password) = match (&s.api_key_sid, &s.api_key_secret, &s.auth_token) {
            (Some(k), Some(secret), _) => (k.trim().to_owned(), secret.clone()),
            (None, None, Some(token)) => (sid.to_owned(), token.clone()),
            _ => {
                return Err(TwilioError::Config(
                    "give auth_token, or api_key_sid and api_key_secret".into(),
                ))
            }
        };
        Ok(Self {
            account_sid: sid.to_owned(),
            username,
            password,
        })
    }
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum TwilioError {
    #[error(
        "Twilio is rate limiting (HTTP 429, code {code:?}): {message}; nothing was sent, back off"
    )]
    RateLimited { code: Option<u32>, message: String },
    #[error("Twilio failed with HTTP {status}: {message}; nothing was sent, retry later")]
    ServerError { status: u16, message: String },
    #[error("could not connect to Twilio: {detail}; nothing was sent, retry later")]
    Connect { detail: String },
    #[error("Twilio rejected the request (HTTP {status}, code {code:?}): {message}")]
    Rejected {
        status: u16,
        code: Option<u32>,
        message: String,
        more_info: Option<String>,
    },
    #[error("outcome unknown ({detail}): the message or call may have been sent; do not resend")]
    Ambiguous { detail: String },
    #[error("the Twilio client is misconfigured: {0}")]
    Config(String),
}

impl TwilioError {
    /// Safe to try again: Twilio proved nothing was sent.
    pub fn is_retryable(&self) -> bool {
        matches!(
            self,
            Self::RateLimited { .. } | Self::ServerError { .. } | Self::Connect { .. }
        )
    }
}

/// Who an SMS comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Sender {
    /// A Twilio number (E.164), short code or alphanumeric sender id.
    From(String),
    /// `MGxxxxxxxx…`: Twilio picks the number from the service's pool.
    MessagingService(String),
}

#[derive(Debug, Clone)]
pub struct Sms {
    pub to: E164Phone,
    pub sender: Sender,
    pub body: String,
}

#[derive(Debug, Clone)]
pub struct VoiceCall {
    pub to: E164Phone,
    pub from: String,
    /// Inline TwiML, e.g. `<Response><Say>…</Say></Response>`.
    pub twiml: String,
}

/// A created Message (`SM…`) or Call (`CA…`).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Created {
    pub sid: String,
    #[serde(default)]
    pub status: String,
}

#[derive(Clone, Debug)]
pub struct TwilioClient {
    http: reqwest::Client,
    base_url: String,
}

impl TwilioClient {
    pub fn new(base_url: &str, timeout: Duration) -> Result<Self, TwilioError> {
        let base = url::Url::parse(base_url)
            .map_err(|e| TwilioError::Config(format!("TWILIO_BASE_URL {base_url:?}: {e}")))?;
        let http = crate::tls::reqwest_builder()
            .timeout(timeout)
            .connect_timeout(timeout.min(Duration::from_secs(3)))
            .build()
            .map_err(|e| TwilioError::Config(e.to_string()))?;
        Ok(Self {
            http,
            base_url: base.as_str().trim_end_matches('/').to_owned(),
        })
    }

    pub async fn send_sms(
        &self,
        creds: &TwilioCredentials,
        sms: &Sms,
    ) -> Result<Created, TwilioError> {
        let (sender_key, sender) = match &sms.sender {
            Sender::From(f) => ("From", f.as_str()),
            Sender::MessagingService(s) => ("MessagingServiceSid", s.as_str()),
        };
        let form = [
            ("To", sms.to.expose()),
            (sender_key, sender),
            ("Body", sms.body.as_str()),
        ];
        self.post(creds, "Messages.json", &form).await
    }

    pub async fn create_call(
        &self,
        creds: &TwilioCredentials,
        call: &VoiceCall,
    ) -> Result<Created, TwilioError> {
        let form = [
            ("To", call.to.expose()),
            ("From", call.from.as_str()),
            ("Twiml", call.twiml.as_str()),
        ];
        self.post(creds, "Calls.json", &form).await
    }

    /// `GET /2010-04-01/Accounts/{sid}.json`: whether the credentials work, and the account's
    /// `status` (`active`, `suspended`, `closed`)
    /// (<https://www.twilio.com/docs/iam/api/account#fetch-an-account-resource>).
    pub async fn fetch_account_status(
        &self,
        creds: &TwilioCredentials,
    ) -> Result<String, TwilioError> {
        let url = format!(
            "{}/2010-04-01/Accounts/{}.json",
            self.base_url, creds.account_sid
        );
        let resp = self
            .http
            .get(url)
            .basic_auth(&creds.username, Some(creds.password.expose()))
            .send()
            .await
            .map_err(send_error)?;
        let status = resp.status().as_u16();
        let body: Value = resp.json().await.unwrap_or(Value::Null);
        if (200..300).contains(&status) {
            return Ok(body
                .get("status")
                .and_then(Value::as_str)
                .unwrap_or("unknown")
                .to_owned());
        }
        let code = body
            .get("code")
            .and_then(Value::as_u64)
            .and_then(|c| u32::try_from(c).ok());
        let message = body
            .get("message")
            .and_then(Value::as_str)
            .map_or_else(|| format!("HTTP {status}"), str::to_owned);
        Err(TwilioError::Rejected {
            status,
            code,
            message,
            more_info: None,
        })
    }

    async fn post(
        &self,
        creds: &TwilioCredentials,
        resource: &str,
        form: &[(&str, &str)],
    ) -> Result<Created, TwilioError> {
        let url = format!(
            "{}/2010-04-01/Accounts/{}/{resource}",
            self.base_url, creds.account_sid
        );
        let resp = self
            .http
            .post(url)
            .basic_auth(&creds.username, Some(creds.password.expose()))
            .form(form)
            .send()
            .await
            .map_err(send_error)?;
        let status = resp.status().as_u16();
        let body = resp.bytes().await;
        if (200..300).contains(&status) {
            let body = body.map_err(|e| TwilioError::Ambiguous {
                detail: format!("HTTP {status} but the body was lost: {e}"),
            })?;
            return serde_json::from_slice::<Created>(&body)
                .ok()
                .filter(|c| !c.sid.is_empty())
                .ok_or_else(|| TwilioError::Ambiguous {
                    detail: format!("HTTP {status} but no sid in the answer"),
                });
        }
        let err = body
            .ok()
            .and_then(|b| serde_json::from_slice::<Value>(&b).ok())
            .unwrap_or(Value::Null);
        let code = err
            .get("code")
            .and_then(Value::as_u64)
            .and_then(|c| u32::try_from(c).ok());
        let message = err
            .get("message")
            .and_then(Value::as_str)
            // Twilio's messages quote the number ("The 'To' number +1415… is not valid").
            .map_or_else(|| format!("HTTP {status}"), crate::ids::mask_phones_in);
        Err(match status {
            429 => TwilioError::RateLimited { code, message },
            // A gateway's 502/504/52x means Twilio may still have queued the message.
            502 | 504 | 520..=599 => TwilioError::Ambiguous {
                detail: format!("HTTP {status} from a gateway: {message}"),
            },
            500..=599 => TwilioError::ServerError { status, message },
            _ if code == Some(20429) => TwilioError::RateLimited { code, message },
            _ => TwilioError::Rejected {
                status,
                code,
                message,
                more_info: err
                    .get("more_info")
                    .and_then(Value::as_str)
                    .map(str::to_owned),
            },
        })
    }
}

fn send_error(e: reqwest::Error) -> TwilioError {
    if e.is_connect() {
        TwilioError::Connect {
            detail: error_chain(&e),
        }
    } else if e.is_builder() {
        TwilioError::Config(error_chain(&e))
    } else if e.is_timeout() {
        TwilioError::Ambiguous {
            detail: "timed out after the request was sent".into(),
        }
    } else {
        TwilioError::Ambiguous {
            detail: error_chain(&e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_need_a_valid_account_and_one_secret() {
        let sid = format!("AC{}", "0".repeat(32));
        let ok: TwilioSecret =
            serde_json::from_value(serde_json::json!({"account_sid": sid, "auth_token": "t"}))
                .unwrap();
        let c = TwilioCredentials::from_secret(&ok).unwrap();
        assert_eq!(c.username, sid);
        let key: TwilioSecret = serde_json::from_value(serde_json::json!(
            {"account_sid": sid, "api_key_sid": "SKabc", "api_key_secret": "s"}))
        .unwrap();
        assert_eq!(
            TwilioCredentials::from_secret(&key).unwrap().username,
            "SKabc"
        );
        let none: TwilioSecret =
            serde_json::from_value(serde_json::json!({"account_sid": sid})).unwrap();
        assert!(TwilioCredentials::from_secret(&none).is_err());
        let bad: TwilioSecret =
            serde_json::from_value(serde_json::json!({"account_sid": "AC1", "auth_token": "t"}))
                .unwrap();
        assert!(TwilioCredentials::from_secret(&bad).is_err());
    }
}
