//! Who may send us events: HMAC and shared-secret verification for every sender scheme.
//!
//! Salesforce has no native webhook signature, so we define two schemes (DESIGN.md, "Events in"):
//! - `v2` (default): `X-Sfvapi-Timestamp: <unix s>` + `X-Sfvapi-Signature: v1=<hex HMAC-SHA256(secret,
//!   "<ts>.<body>")>[,v1=…]`, rejected outside ±tolerance.
//! - `v1` (seed-compatible, legacy): `X-Salesforce-Signature: base64(HMAC-SHA256(secret, body))`.
//!
//! Vapi authenticates its server messages with one of its server-URL credential types
//! (`X-Vapi-Secret`, a bearer token, or HMAC with configurable headers/prefix/payload/encoding),
//! or the seed's legacy `x-vapi-signature`. Every comparison of a secret or MAC is constant-time.
//!
//! Every failure is one opaque `401` to the caller; the variant only goes to our logs and metrics.

use base64::Engine as _;
use hmac::{Hmac, KeyInit, Mac};
use http::HeaderMap;
use subtle::ConstantTimeEq;

use crate::secrets::SecretString;

/// Why a request was not authenticated. Logged, never returned to the sender.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    #[error("header {0} is missing")]
    MissingHeader(String),
    #[error("header {0} is malformed")]
    Malformed(String),
    #[error("timestamp is outside the allowed window")]
    StaleTimestamp,
    #[error("no configured secret produces this signature")]
    Mismatch,
    #[error("no signing secret is configured")]
    NoSecret,
}

pub const SF_V1_HEADER: &str = "x-salesforce-signature";
pub const SF_V2_TIMESTAMP: &str = "x-sfvapi-timestamp";
pub const SF_V2_SIGNATURE: &str = "x-sfvapi-signature";

/// How Salesforce senders sign their requests in this deployment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SalesforceScheme {
    /// Timestamped, hex, `v1=` prefix. The default.
    V2,
    /// base64 over the body, no timestamp: replay is bounded only by dedup.
    V1,
}

impl std::str::FromStr for SalesforceScheme {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "v2" => Ok(Self::V2),
            "v1" => Ok(Self::V1),
            other => Err(format!("unknown scheme {other:?}, expected v2 or v1")),
        }
    }
}

/// Verify a Salesforce event against any of the active secrets (rotation keeps two or more).
pub fn verify_salesforce(
    scheme: SalesforceScheme,
    headers: &HeaderMap,
    body: &[u8],
    secrets: &[SecretString],
    now_secs: i64,
    tolerance_secs: i64,
) -> Result<(), SignatureError> {
    if secrets.is_empty() {
        return Err(SignatureError::NoSecret);
    }
    match scheme {
        SalesforceScheme::V1 => {
            let given = header(headers, SF_V1_HEADER)?;
            let given = base64::engine::general_purpose::STANDARD
                .decode(given.trim())
                .map_err(|_| SignatureError::Malformed(SF_V1_HEADER.into()))?;
            any_secret_matches(secrets, &[&given], |key| {
                hmac_parts(Algorithm::Sha256, key, &[body])
            })
        }
        SalesforceScheme::V2 => {
            let ts_raw = header(headers, SF_V2_TIMESTAMP)?;
            let ts: i64 = ts_raw
                .trim()
                .parse()
                .map_err(|_| SignatureError::Malformed(SF_V2_TIMESTAMP.into()))?;
            check_window(ts, now_secs, tolerance_secs)?;
            let sig_header = header(headers, SF_V2_SIGNATURE)?;
            let given: Vec<Vec<u8>> = sig_header
                .split(',')
                .filter_map(|part| part.trim().strip_prefix("v1="))
                .filter_map(|hex_sig| hex::decode(hex_sig.trim()).ok())
                .collect();
            if given.is_empty() {
                return Err(SignatureError::Malformed(SF_V2_SIGNATURE.into()));
            }
            let given: Vec<&[u8]> = given.iter().map(Vec::as_slice).collect();
            let ts_bytes = ts_raw.trim().as_bytes();
            any_secret_matches(secrets, &given, |key| {
                hmac_parts(Algorithm::Sha256, key, &[ts_bytes, b".", body])
            })
        }
    }
}

/// Produce the v2 headers for a body: what a correct sender (Apex, Flow, our tools) attaches.
pub fn sign_salesforce_v2(secret: &[u8], body: &[u8], ts_secs: i64) -> (String, String) {
    let ts = ts_secs.to_string();
    let mac = hmac_parts(Algorithm::Sha256, secret, &[ts.as_bytes(), b".", body]);
    (ts, format!("v1={}", hex::encode(mac)))
}

/// Produce the v1 header for a body.
pub fn sign_salesforce_v1(secret: &[u8], body: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(hmac_parts(Algorithm::Sha256, secret, &[body]))
}

/// HMAC digest algorithms Vapi's HMAC credential offers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Algorithm {
    Sha256,
    Sha512,
    Sha1,
}

impl std::str::FromStr for Algorithm {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "sha256" => Ok(Self::Sha256),
            "sha512" => Ok(Self::Sha512),
            "sha1" => Ok(Self::Sha1),
            other => Err(format!(
                "unknown algorithm {other:?}, expected sha256, sha512 or sha1"
            )),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encoding {
    Hex,
    Base64,
}

impl std::str::FromStr for Encoding {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "hex" => Ok(Self::Hex),
            "base64" => Ok(Self::Base64),
            other => Err(format!(
                "unknown encoding {other:?}, expected hex or base64"
            )),
        }
    }
}

/// What the HMAC covers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PayloadFormat {
    /// `"{timestamp}.{body}"`, Vapi's default.
    TimestampDotBody,
    /// The body alone (no replay window).
    Body,
}

impl std::str::FromStr for PayloadFormat {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim() {
            "{timestamp}.{body}" => Ok(Self::TimestampDotBody),
            "{body}" => Ok(Self::Body),
            other => Err(format!(
                "unknown payload format {other:?}, expected {{timestamp}}.{{body}} or {{body}}"
            )),
        }
    }
}

/// Vapi's HMAC credential, field for field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VapiHmac {
    pub algorithm: Algorithm,
    pub signature_header: String,
    pub timestamp_header: String,
    pub signature_prefix: String,
    pub payload_format: PayloadFormat,
    pub encoding: Encoding,
}

impl Default for VapiHmac {
    fn default() -> Self {
        Self {
            algorithm: Algorithm::Sha256,
            signature_header: "x-signature".into(),
            timestamp_header: "x-timestamp".into(),
            signature_prefix: String::new(),
            payload_format: PayloadFormat::TimestampDotBody,
            encoding: Encoding::Hex,
        }
    }
}

/// One way Vapi may authenticate a server message. A deployment enables one or more.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VapiAuth {
    /// `X-Vapi-Secret: <secret>`: a bearer credential with header `X-Vapi-Secret` and no prefix
    /// (successor of the removed `server.secret`).
    Secret,
    /// `<header>: Bearer <token>`; header defaults to `authorization`.
    Bearer {
        header: String,
    },
    Hmac(VapiHmac),
    /// The seed's `x-vapi-signature: hex(HMAC-SHA256(secret, body))`; no timestamp.
    Legacy,
}

/// Accept when any enabled mode accepts with any of the secrets. The error is the first mode's,
/// which is enough for a log line.
pub fn verify_vapi(
    modes: &[VapiAuth],
    headers: &HeaderMap,
    body: &[u8],
    secrets: &[SecretString],
    now_ms: i64,
    tolerance_secs: i64,
) -> Result<(), SignatureError> {
    if secrets.is_empty() {
        return Err(SignatureError::NoSecret);
    }
    let mut first_err = None;
    for mode in modes {
        match verify_vapi_mode(mode, headers, body, secrets, now_ms, tolerance_secs) {
            Ok(()) => return Ok(()),
            Err(e) => {
                first_err.get_or_insert(e);
            }
        }
    }
    Err(first_err.unwrap_or(SignatureError::NoSecret))
}

fn verify_vapi_mode(
    mode: &VapiAuth,
    headers: &HeaderMap,
    body: &[u8],
    secrets: &[SecretString],
    now_ms: i64,
    tolerance_secs: i64,
) -> Result<(), SignatureError> {
    match mode {
        VapiAuth::Secret => {
            let given = header(headers, "x-vapi-secret")?;
            any_secret_equals(secrets, given.trim().as_bytes())
        }
        VapiAuth::Bearer { header: name } => {
            let given = header(headers, name)?;
            let token = given
                .trim()
                .strip_prefix("Bearer ")
                .or_else(|| given.trim().strip_prefix("bearer "))
                .ok_or_else(|| SignatureError::Malformed(name.clone()))?;
            any_secret_equals(secrets, token.trim().as_bytes())
        }
        VapiAuth::Legacy => {
            let given = header(headers, "x-vapi-signature")?;
            let given = hex::decode(given.trim())
                .map_err(|_| SignatureError::Malformed("x-vapi-signature".into()))?;
            any_secret_matches(secrets, &[&given], |key| {
                hmac_parts(Algorithm::Sha256, key, &[body])
            })
        }
        VapiAuth::Hmac(cfg) => {
            let raw = header(headers, &cfg.signature_header)?;
            let raw = raw.trim();
            let raw = raw
                .strip_prefix(cfg.signature_prefix.as_str())
                .ok_or_else(|| SignatureError::Malformed(cfg.signature_header.clone()))?;
            let given = match cfg.encoding {
                Encoding::Hex => hex::decode(raw).ok(),
                Encoding::Base64 => base64::engine::general_purpose::STANDARD.decode(raw).ok(),
            }
            .ok_or_else(|| SignatureError::Malformed(cfg.signature_header.clone()))?;
            match cfg.payload_format {
                PayloadFormat::Body => any_secret_matches(secrets, &[&given], |key| {
                    hmac_parts(cfg.algorithm, key, &[body])
                }),
                PayloadFormat::TimestampDotBody => {
                    let ts_raw = header(headers, &cfg.timestamp_header)?;
                    let ts_raw = ts_raw.trim();
                    let ts: i64 = ts_raw
                        .parse()
                        .map_err(|_| SignatureError::Malformed(cfg.timestamp_header.clone()))?;
                    // Vapi documents no unit: a value above 10^12 can only be milliseconds.
                    let ts_secs = if ts > 1_000_000_000_000 {
                        ts / 1000
                    } else {
                        ts
                    };
                    check_window(ts_secs, now_ms / 1000, tolerance_secs)?;
                    any_secret_matches(secrets, &[&given], |key| {
                        hmac_parts(cfg.algorithm, key, &[ts_raw.as_bytes(), b".", body])
                    })
                }
            }
        }
    }
}

fn header<'a>(headers: &'a HeaderMap, name: &str) -> Result<&'a str, SignatureError> {
    let value = headers
        .get(name)
        .ok_or_else(|| SignatureError::MissingHeader(name.to_owned()))?;
    value
        .to_str()
        .map_err(|_| SignatureError::Malformed(name.to_owned()))
}

fn check_window(ts_secs: i64, now_secs: i64, tolerance_secs: i64) -> Result<(), SignatureError> {
    if now_secs.abs_diff(ts_secs) > tolerance_secs.unsigned_abs() {
        return Err(SignatureError::StaleTimestamp);
    }
    Ok(())
}

fn any_secret_matches(
    secrets: &[SecretString],
    given: &[&[u8]],
    mac_of: impl Fn(&[u8]) -> Vec<u8>,
) -> Result<(), SignatureError> {
    // Evaluate every pair so timing does not reveal which secret or which signature matched.
    let mut ok = subtle::Choice::from(0u8);
    for secret in secrets {
        let expected = mac_of(secret.expose().as_bytes());
        for g in given {
            ok |= expected.as_slice().ct_eq(g);
        }
    }
    if bool::from(ok) {
        Ok(())
    } else {
        Err(SignatureError::Mismatch)
    }
}

fn any_secret_equals(secrets: &[SecretString], given: &[u8]) -> Result<(), SignatureError> {
    let mut ok = subtle::Choice::from(0u8);
    for secret in secrets {
        ok |= secret.expose().as_bytes().ct_eq(given);
    }
    if bool::from(ok) {
        Ok(())
    } else {
        Err(SignatureError::Mismatch)
    }
}

/// Constant-time equality of two byte strings (for path tokens and the like).
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    bool::from(a.ct_eq(b))
}

pub fn hmac_parts(algorithm: Algorithm, key: &[u8], parts: &[&[u8]]) -> Vec<u8> {
    fn run<M: Mac + KeyInit>(key: &[u8], parts: &[&[u8]]) -> Vec<u8> {
        // HMAC accepts keys of any length, so this cannot fail; an empty MAC would never verify.
        let Ok(mut mac) = <M as KeyInit>::new_from_slice(key) else {
            return Vec::new();
        };
        for p in parts {
            mac.update(p);
        }
        mac.finalize().into_bytes().to_vec()
    }
    match algorithm {
        Algorithm::Sha256 => run::<Hmac<sha2::Sha256>>(key, parts),
        Algorithm::Sha512 => run::<Hmac<sha2::Sha512>>(key, parts),
        Algorithm::Sha1 => run::<Hmac<sha1::Sha1>>(key, parts),
    }
}
