//! Salesforce OAuth: the four token flows, PKCE for the one-time connect, token introspection,
//! and the parsing of token answers and errors into typed values.
//!
//! Facts encoded here (checked against Salesforce's docs, see DESIGN.md "Salesforce facts"):
//! the token endpoint is `POST {base}/services/oauth2/token` with a form body; the answer has
//! `issued_at` in milliseconds *as a string* and **no `expires_in`**, so a token's lifetime is the
//! org's session timeout (configured) or the `exp` of `POST /services/oauth2/introspect`.
//! JWT bearer: https://help.salesforce.com/s/articleView?id=sf.remoteaccess_oauth_jwt_flow.htm
//! Web server flow + PKCE: https://help.salesforce.com/HTViewHelpDoc?id=remoteaccess_oauth_web_server_flow.htm

use std::fmt;
use std::sync::Arc;

use base64::Engine as _;
use rand::RngCore as _;
use serde::{Deserialize, Serialize};
use sha2::Digest as _;

use crate::config::{SalesforceConfig, SalesforceFlow};
use crate::secrets::{error_chain, SecretString};

pub const JWT_BEARER_GRANT: &str = "urn:ietf:params:oauth:grant-type:jwt-bearer";
/// Salesforce rejects assertions valid for longer than 3 minutes.
pub const JWT_LIFETIME_SECS: i64 = 180;

/// What the connection secret (`SF_CONNECTION_SECRET_ARN`) holds. Only `client_id` is always
/// required; each flow needs its own parts (see [`OAuthClient::grant`]).
#[derive(Clone, Deserialize)]
pub struct ConnectionSecret {
    pub client_id: String,
    #[serde(default)]
    pub client_secret: Option<SecretString>,
    #[serde(default)]
    pub refresh_token: Option<SecretString>,
    #[serde(default)]
    pub private_key_pem: Option<SecretString>,
    #[serde(default)]
    pub username: Option<String>,
}

impl fmt::Debug for ConnectionSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ConnectionSecret")
            .field("client_secret", &self.client_secret.is_some())
            .field("refresh_token", &self.refresh_token.is_some())
            .field("private_key_pem", &self.private_key_pem.is_some())
            .field("username", &self.username.is_some())
            .finish_non_exhaustive()
    }
}

/// A usable access token and where to use it.
#[derive(Clone, PartialEq, Eq)]
pub struct AccessToken {
    pub access_token: SecretString,
    pub instance_url: String,
    /// When Salesforce issued it (its `issued_at`), ms since the epoch.
    pub issued_at_ms: i64,
    /// When we stop using it: `issued_at` + session timeout, or the introspected `exp`.
    pub expires_at_ms: i64,
}

impl fmt::Debug for AccessToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AccessToken")
            .field("instance_url", &self.instance_url)
            .field("issued_at_ms", &self.issued_at_ms)
            .field("expires_at_ms", &self.expires_at_ms)
            .finish_non_exhaustive()
    }
}

impl AccessToken {
    pub fn remaining_ms(&self, now_ms: i64) -> i64 {
        self.expires_at_ms - now_ms
    }
}

/// A token endpoint's success answer.
#[derive(Debug, Clone)]
pub struct TokenGrant {
    pub token: AccessToken,
    /// Present for the code flow, and on refresh only when the app rotates refresh tokens.
    pub refresh_token: Option<SecretString>,
}

#[derive(Deserialize)]
struct RawTokenResponse {
    access_token: SecretString,
    instance_url: String,
    issued_at: Option<String>,
    #[serde(default)]
    refresh_token: Option<SecretString>,
}

/// Parse a token answer. `issued_at` is a decimal string of milliseconds; a missing one means
/// "now" (some flows have omitted it historically), a malformed one is an error.
pub fn parse_token_response(
    body: &[u8],
    lifetime_ms: i64,
    now_ms: i64,
) -> Result<TokenGrant, TokenError> {
    let raw: RawTokenResponse =
        serde_json::from_slice(body).map_err(|e| TokenError::Malformed {
            detail: format!(
                "token response: {}",
                e.to_string().split(" at line").next().unwrap_or("")
            ),
        })?;
    let issued_at_ms = match raw.issued_at.as_deref() {
        None => now_ms,
        Some(s) => s.trim().parse::<i64>().map_err(|_| TokenError::Malformed {
            detail: "token response: issued_at is not milliseconds as a decimal string".into(),
        })?,
    };
    let instance_url = raw.instance_url.trim_end_matches('/').to_owned();
    if url::Url::parse(&instance_url).is_err() {
        return Err(TokenError::Malformed {
            detail: "token response: instance_url is not a URL".into(),
        });
    }
    Ok(TokenGrant {
        token: AccessToken {
            access_token: raw.access_token,
            instance_url,
            issued_at_ms,
            expires_at_ms: issued_at_ms + lifetime_ms,
        },
        refresh_token: raw.refresh_token,
    })
}

/// The `error` of a token endpoint failure, typed where we act on it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OAuthErrorCode {
    InvalidGrant,
    InactiveUser,
    InactiveOrg,
    InvalidClient,
    InvalidClientId,
    RateLimitExceeded,
    Other(String),
}

impl OAuthErrorCode {
    pub fn parse(s: &str) -> Self {
        match s {
            "invalid_grant" => Self::InvalidGrant,
            "inactive_user" => Self::InactiveUser,
            "inactive_org" => Self::InactiveOrg,
            "invalid_client" => Self::InvalidClient,
            "invalid_client_id" => Self::InvalidClientId,
            "rate_limit_exceeded" => Self::RateLimitExceeded,
            other => Self::Other(other.chars().take(64).collect()),
        }
    }
    pub fn as_str(&self) -> &str {
        match self {
            Self::InvalidGrant => "invalid_grant",
            Self::InactiveUser => "inactive_user",
            Self::InactiveOrg => "inactive_org",
            Self::InvalidClient => "invalid_client",
            Self::InvalidClientId => "invalid_client_id",
            Self::RateLimitExceeded => "rate_limit_exceeded",
            Self::Other(s) => s,
        }
    }
}

/// Why no token could be obtained. [`TokenError::is_retryable`] tells a caller whether trying
/// later can help (RETRY) or a human must act (FAILED + alarm).
#[derive(Debug, Clone, thiserror::Error)]
pub enum TokenError {
    /// Salesforce refused the grant; terminal unless `rate_limit_exceeded`. `invalid_grant` means
    /// an expired/revoked refresh token, an unapproved JWT user or a wrong login URL: reconnect.
    #[error("Salesforce refused the token request ({status} {}): {description}", code.as_str())]
    Rejected {
        status: u16,
        code: OAuthErrorCode,
        description: String,
    },
    /// The token endpoint failed (5xx, 429): try again later.
    #[error("Salesforce token endpoint answered {status}; retry later")]
    Upstream { status: u16 },
    #[error("Salesforce token endpoint timed out; retry later")]
    Timeout,
    #[error("could not reach the Salesforce token endpoint: {detail}")]
    Network { detail: String },
    /// A 2xx we cannot use, or an unexpected answer: wrong URL or proxy. Terminal.
    #[error("unexpected answer from Salesforce: {detail}")]
    Malformed { detail: String },
    /// The connection secret lacks what the configured flow needs. Terminal: fix the secret.
    #[error("connection secret is missing {what} needed by the {flow} flow")]
    MissingCredential {
        what: &'static str,
        flow: &'static str,
    },
    #[error("cannot sign the JWT assertion: {detail} (check private_key_pem)")]
    Signing { detail: String },
    /// Secrets Manager or DynamoDB failed; the `retryable` flag follows the cause.
    #[error("{detail}")]
    Dependency { detail: String, retryable: bool },
    /// Another process holds the refresh lease and did not finish in time.
    #[error("another process is refreshing the token and did not finish in time; retry")]
    LeaseWait,
}

impl TokenError {
    pub fn is_retryable(&self) -> bool {
        match self {
            Self::Rejected { code, status, .. } => {
                *code == OAuthErrorCode::RateLimitExceeded || *status >= 500 || *status == 429
            }
            Self::Upstream { .. } | Self::Timeout | Self::Network { .. } | Self::LeaseWait => true,
            Self::Dependency { retryable, .. } => *retryable,
            Self::Malformed { .. } | Self::MissingCredential { .. } | Self::Signing { .. } => false,
        }
    }
    pub fn is_terminal(&self) -> bool {
        !self.is_retryable()
    }
}

#[derive(Deserialize)]
struct RawOAuthError {
    error: String,
    #[serde(default)]
    error_description: Option<String>,
}

/// Map a non-2xx token answer to a typed error.
pub fn parse_token_error(status: u16, body: &[u8]) -> TokenError {
    match serde_json::from_slice::<RawOAuthError>(body) {
        Ok(e) => TokenError::Rejected {
            status,
            code: OAuthErrorCode::parse(&e.error),
            description: e
                .error_description
                .unwrap_or_default()
                .chars()
                .take(200)
                .collect(),
        },
        Err(_) if status >= 500 || status == 429 => TokenError::Upstream { status },
        Err(_) => TokenError::Malformed {
            detail: format!("token endpoint answered {status} without an OAuth error body"),
        },
    }
}

pub(crate) fn map_reqwest(e: &reqwest::Error) -> TokenError {
    if e.is_timeout() {
        TokenError::Timeout
    } else {
        TokenError::Network {
            detail: error_chain(e),
        }
    }
}

/// The claims of a JWT bearer assertion.
#[derive(Debug, Serialize, Deserialize)]
pub struct JwtClaims {
    pub iss: String,
    pub sub: String,
    pub aud: String,
    pub exp: i64,
}

/// A PKCE verifier and its S256 challenge, and the `state` of one connect attempt.
#[derive(Clone)]
pub struct PkcePair {
    pub verifier: SecretString,
    pub challenge: String,
}

pub fn random_token(bytes: usize) -> String {
    let mut buf = vec![0u8; bytes];
    rand::rng().fill_bytes(&mut buf);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(buf)
}

impl PkcePair {
    /// 64 random bytes → an 86-char verifier (RFC 7636 allows 43–128).
    pub fn generate() -> Self {
        Self::from_verifier(random_token(64))
    }
    pub fn from_verifier(verifier: String) -> Self {
        let challenge = s256(&verifier);
        Self {
            verifier: SecretString::new(verifier),
            challenge,
        }
    }
}

/// `BASE64URL(SHA256(verifier))` without padding (RFC 7636 §4.2).
pub fn s256(verifier: &str) -> String {
    let digest = sha2::Sha256::digest(verifier.as_bytes());
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(digest.as_slice())
}

/// Talks to the token, authorize and introspect endpoints of one connection.
#[derive(Clone)]
pub struct OAuthClient {
    http: reqwest::Client,
    config: Arc<SalesforceConfig>,
}

fn endpoint(base: &url::Url, path: &str) -> String {
    format!("{}{path}", base.as_str().trim_end_matches('/'))
}

impl OAuthClient {
    pub fn new(http: reqwest::Client, config: Arc<SalesforceConfig>) -> Self {
        Self { http, config }
    }

    pub fn config(&self) -> &SalesforceConfig {
        &self.config
    }

    fn lifetime_ms(&self) -> i64 {
        self.config.session_timeout.as_millis() as i64
    }

    /// The token endpoint of the configured flow: client credentials must use My Domain.
    pub fn token_url(&self) -> String {
        let base = match self.config.flow {
            SalesforceFlow::ClientCredentials => self
                .config
                .my_domain_url
                .as_ref()
                .unwrap_or(&self.config.login_url),
            _ => &self.config.login_url,
        };
        endpoint(base, "/services/oauth2/token")
    }

    /// Obtain a new access token with the configured flow.
    pub async fn grant(&self, secret: &ConnectionSecret) -> Result<TokenGrant, TokenError> {
        let form = self.grant_form(secret)?;
        let grant = self.post_token(&self.token_url(), &form).await?;
        self.finish(secret, grant).await
    }

    /// The exact form fields each flow posts.
    pub fn grant_form(
        &self,
        secret: &ConnectionSecret,
    ) -> Result<Vec<(&'static str, String)>, TokenError> {
        let client_id = secret.client_id.clone();
        match self.config.flow {
            SalesforceFlow::RefreshToken | SalesforceFlow::AuthorizationCode => {
                let flow = "refresh_token";
                let rt = secret
                    .refresh_token
                    .as_ref()
                    .ok_or(TokenError::MissingCredential {
                        what: "refresh_token (run the connect flow)",
                        flow,
                    })?;
                let mut form = vec![
                    ("grant_type", "refresh_token".to_owned()),
                    ("refresh_token", rt.expose().to_owned()),
                    ("client_id", client_id),
                ];
                // Optional: only apps with "Require Secret for Refresh Token Flow" need it.
                if let Some(cs) = &secret.client_secret {
                    form.push(("client_secret", cs.expose().to_owned()));
                }
                Ok(form)
            }
            SalesforceFlow::ClientCredentials => {
                let cs = secret
                    .client_secret
                    .as_ref()
                    .ok_or(TokenError::MissingCredential {
                        what: "client_secret",
                        flow: "client_credentials",
                    })?;
                Ok(vec![
                    ("grant_type", "client_credentials".to_owned()),
                    ("client_id", client_id),
                    ("client_secret", cs.expose().to_owned()),
                ])
            }
            SalesforceFlow::JwtBearer => Ok(vec![
                ("grant_type", JWT_BEARER_GRANT.to_owned()),
                ("assertion", self.jwt_assertion(secret, crate::now_secs())?),
            ]),
        }
    }

    /// An RS256 assertion: iss = client id, sub = username, aud = `SF_JWT_AUDIENCE` (not the token
    /// endpoint: Salesforce wants login/test.salesforce.com or a site URL there), exp ≤ 3 min.
    pub fn jwt_assertion(
        &self,
        secret: &ConnectionSecret,
        now_secs: i64,
    ) -> Result<String, TokenError> {
        let flow = "jwt_bearer";
        let pem = secret
            .private_key_pem
            .as_ref()
            .ok_or(TokenError::MissingCredential {
                what: "private_key_pem",
                flow,
            })?;
        let sub = secret
            .username
            .clone()
            .ok_or(TokenError::MissingCredential {
                what: "username",
                flow,
            })?;
        let claims = JwtClaims {
            iss: secret.client_id.clone(),
            sub,
            aud: self.config.jwt_audience.clone(),
            exp: now_secs + JWT_LIFETIME_SECS,
        };
        let key =
            jsonwebtoken::EncodingKey::from_rsa_pem(pem.expose().as_bytes()).map_err(|e| {
                TokenError::Signing {
                    detail: e.to_string(),
                }
            })?;
        jsonwebtoken::encode(
            &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::RS256),
            &claims,
            &key,
        )
        .map_err(|e| TokenError::Signing {
            detail: e.to_string(),
        })
    }

    /// Where the operator's browser goes to approve the app (web server flow with PKCE).
    pub fn authorize_url(
        &self,
        client_id: &str,
        redirect_uri: &str,
        state: &str,
        code_challenge: &str,
    ) -> String {
        let mut u = self.config.login_url.clone();
        u.set_path("/services/oauth2/authorize");
        u.query_pairs_mut()
            .append_pair("response_type", "code")
            .append_pair("client_id", client_id)
            .append_pair("redirect_uri", redirect_uri)
            .append_pair("scope", &self.config.scopes)
            .append_pair("state", state)
            .append_pair("code_challenge", code_challenge)
            .append_pair("code_challenge_method", "S256");
        u.into()
    }

    /// Exchange an authorization code (one-time connect) for tokens.
    pub async fn exchange_code(
        &self,
        secret: &ConnectionSecret,
        code: &str,
        verifier: &str,
        redirect_uri: &str,
    ) -> Result<TokenGrant, TokenError> {
        let mut form = vec![
            ("grant_type", "authorization_code".to_owned()),
            ("code", code.to_owned()),
            ("client_id", secret.client_id.clone()),
            ("redirect_uri", redirect_uri.to_owned()),
            ("code_verifier", verifier.to_owned()),
        ];
        if let Some(cs) = &secret.client_secret {
            form.push(("client_secret", cs.expose().to_owned()));
        }
        let url = endpoint(&self.config.login_url, "/services/oauth2/token");
        let grant = self.post_token(&url, &form).await?;
        self.finish(secret, grant).await
    }

    async fn post_token(
        &self,
        url: &str,
        form: &[(&'static str, String)],
    ) -> Result<TokenGrant, TokenError> {
        let resp = self
            .http
            .post(url)
            .header(reqwest::header::ACCEPT, "application/json")
            .form(form)
            .send()
            .await
            .map_err(|e| map_reqwest(&e))?;
        let status = resp.status().as_u16();
        let body = resp.bytes().await.map_err(|e| map_reqwest(&e))?;
        if !(200..300).contains(&status) {
            return Err(parse_token_error(status, &body));
        }
        parse_token_response(&body, self.lifetime_ms(), crate::now_millis())
    }

    /// With introspection on, replace the assumed expiry by the token's real `exp`. A failed
    /// introspection keeps the configured lifetime: the token itself is good.
    async fn finish(
        &self,
        secret: &ConnectionSecret,
        mut grant: TokenGrant,
    ) -> Result<TokenGrant, TokenError> {
        if self.config.introspection {
            match self.introspect(secret, &grant.token.access_token).await {
                Ok(exp_secs) => grant.token.expires_at_ms = exp_secs * 1000,
                Err(e) => {
                    tracing::warn!(error = %e, "token introspection failed; using SF_SESSION_TIMEOUT_SECS")
                }
            }
        }
        Ok(grant)
    }

    /// `POST /services/oauth2/introspect` (RFC 7662): the token's `exp` in unix seconds.
    pub async fn introspect(
        &self,
        secret: &ConnectionSecret,
        token: &SecretString,
    ) -> Result<i64, TokenError> {
        #[derive(Deserialize)]
        struct Introspection {
            active: bool,
            #[serde(default)]
            exp: Option<i64>,
        }
        let base = self
            .config
            .my_domain_url
            .as_ref()
            .unwrap_or(&self.config.login_url);
        let mut form = vec![
            ("token", token.expose().to_owned()),
            ("token_type_hint", "access_token".to_owned()),
            ("client_id", secret.client_id.clone()),
        ];
        if let Some(cs) = &secret.client_secret {
            form.push(("client_secret", cs.expose().to_owned()));
        }
        let resp = self
            .http
            .post(endpoint(base, "/services/oauth2/introspect"))
            .header(reqwest::header::ACCEPT, "application/json")
            .form(&form)
            .send()
            .await
            .map_err(|e| map_reqwest(&e))?;
        let status = resp.status().as_u16();
        let body = resp.bytes().await.map_err(|e| map_reqwest(&e))?;
        if !(200..300).contains(&status) {
            return Err(parse_token_error(status, &body));
        }
        let i: Introspection =
            serde_json::from_slice(&body).map_err(|_| TokenError::Malformed {
                detail: "introspection answer is not JSON with `active`".into(),
            })?;
        match (i.active, i.exp) {
            (true, Some(exp)) => Ok(exp),
            (true, None) => Err(TokenError::Malformed {
                detail: "introspection answer has no exp".into(),
            }),
            (false, _) => Err(TokenError::Malformed {
                detail: "introspection says the new token is not active".into(),
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn s256_matches_rfc7636_example() {
        // RFC 7636 Appendix B.
        assert_eq!(
            s256("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"),
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
        );
    }

    #[test]
    fn issued_at_is_a_string_of_millis_and_there_is_no_expires_in() {
        let body = br#"{"access_token":"x","instance_url":"https://a.my.salesforce.com/","issued_at":"1795690000000","token_type":"Bearer"}"#;
        let g = parse_token_response(body, 7_200_000, 0).unwrap();
        assert_eq!(g.token.issued_at_ms, 1_795_690_000_000);
        assert_eq!(g.token.expires_at_ms, 1_795_697_200_000);
        assert_eq!(g.token.instance_url, "https://a.my.salesforce.com");
        let bad = br#"{"access_token":"x","instance_url":"https://a","issued_at":1795690000000}"#;
        assert!(parse_token_response(bad, 1, 0).is_err());
    }

    #[test]
    fn token_errors_are_typed() {
        let e = parse_token_error(
            400,
            br#"{"error":"invalid_grant","error_description":"expired access/refresh token"}"#,
        );
        assert!(e.is_terminal(), "{e:?}");
        let e = parse_token_error(
            401,
            br#"{"error":"invalid_client","error_description":"x"}"#,
        );
        assert!(e.is_terminal());
        let e = parse_token_error(400, br#"{"error":"rate_limit_exceeded"}"#);
        assert!(e.is_retryable());
        assert!(parse_token_error(503, b"<html>").is_retryable());
        assert!(parse_token_error(404, b"<html>").is_terminal());
    }
}
