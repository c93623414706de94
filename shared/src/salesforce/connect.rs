//! The token-refresher Lambda's logic: the scheduled refresh, and the one-time connect
//! (`GET /oauth/salesforce/login` → Salesforce → `GET /oauth/salesforce/callback`).
//!
//! The function receives either an EventBridge scheduled event or an API Gateway HTTP API (v2)
//! event; [`RefresherApp::handle`] tells them apart by shape.
//!
//! Connect security: `/login` requires the operator key (header `X-Sfvapi-Operator-Key`, or query
//! `key` for a browser), kept in its own secret (`SF_OPERATOR_SECRET_ARN`,
//! `{"operator_key":"…"}`) that only this function can read. It stores `oauth_state#<state>` with the
//! PKCE verifier and a short TTL; `/callback` consumes that item with a conditional delete, so an
//! unknown, expired or replayed `state` gets 400 and nothing is stored.

use std::collections::HashMap;
use std::sync::Arc;

use aws_sdk_dynamodb::error::SdkError;
use aws_sdk_dynamodb::types::{AttributeValue, ReturnValue};
use serde_json::{json, Value};
use tracing::{error, info, warn};

use super::oauth::{ConnectionSecret, OAuthClient, PkcePair, TokenError};
use super::token::{store_refresh_token, Obtained, TokenProvider};
use crate::config::{ConfigError, Env, TokenRefresherConfig};
use crate::secrets::SecretsCache;
use crate::signature::constant_time_eq;
use crate::store::{attr, unavailable, PutOutcome, Store, EXPIRES_AT, PK};
use crate::telemetry::{metric, Unit};

pub const OPERATOR_KEY_HEADER: &str = "x-sfvapi-operator-key";

/// What `SF_OPERATOR_SECRET_ARN` holds.
#[derive(Debug, Clone, serde::Deserialize)]
pub struct OperatorSecret {
    /// ≥ 32 characters; absent disables the connect routes.
    #[serde(default, deserialize_with = "crate::secrets::operator_key")]
    pub operator_key: Option<crate::secrets::SecretString>,
}

pub fn state_pk(state: &str) -> String {
    format!("oauth_state#{state}")
}

/// The parts of an API Gateway v2 request the connect routes use.
#[derive(Debug, Clone)]
pub struct HttpRequest {
    pub method: String,
    pub path: String,
    pub query: HashMap<String, String>,
    /// Lower-cased names.
    pub headers: HashMap<String, String>,
}

impl HttpRequest {
    /// From an API Gateway HTTP API (payload 2.0) event.
    pub fn from_apigw_v2(event: &Value) -> Option<Self> {
        let http = event.get("requestContext")?.get("http")?;
        let method = http.get("method")?.as_str()?.to_ascii_uppercase();
        let path = event
            .get("rawPath")
            .and_then(Value::as_str)
            .or_else(|| http.get("path").and_then(Value::as_str))?
            .to_owned();
        let raw_query = event
            .get("rawQueryString")
            .and_then(Value::as_str)
            .unwrap_or("");
        let query = url::form_urlencoded::parse(raw_query.as_bytes())
            .into_owned()
            .collect();
        let headers = event
            .get("headers")
            .and_then(Value::as_object)
            .map(|h| {
                h.iter()
                    .filter_map(|(k, v)| Some((k.to_ascii_lowercase(), v.as_str()?.to_owned())))
                    .collect()
            })
            .unwrap_or_default();
        Some(Self {
            method,
            path,
            query,
            headers,
        })
    }
}

/// An API Gateway v2 response.
#[derive(Debug, Clone)]
pub struct HttpResponse {
    pub status: u16,
    pub headers: Vec<(&'static str, String)>,
    pub body: String,
}

impl HttpResponse {
    fn page(status: u16, title: &str, message: &str) -> Self {
        let body = format!(
            "<!doctype html><html><head><meta charset=\"utf-8\"><title>{t}</title></head>\
             <body><h1>{t}</h1><p>{m}</p></body></html>",
            t = html_escape(title),
            m = html_escape(message)
        );
        Self {
            status,
            headers: vec![
                ("content-type", "text/html; charset=utf-8".into()),
                ("cache-control", "no-store".into()),
            ],
            body,
        }
    }
    fn failure(status: u16, message: &str) -> Self {
        Self::page(status, "Salesforce connection failed", message)
    }
    pub fn to_apigw_v2(&self) -> Value {
        let headers: serde_json::Map<String, Value> = self
            .headers
            .iter()
            .map(|(k, v)| ((*k).to_owned(), Value::String(v.clone())))
            .collect();
        json!({
            "statusCode": self.status,
            "headers": headers,
            "body": self.body,
            "isBase64Encoded": false
        })
    }
}

fn html_escape(s: &str) -> String {
    s.chars()
        .map(|c| match c {
            '<' => "&lt;".into(),
            '>' => "&gt;".into(),
            '&' => "&amp;".into(),
            '"' => "&quot;".into(),
            '\'' => "&#39;".into(),
            c => c.to_string(),
        })
        .collect()
}

/// What one scheduled run did for one connection.
#[derive(Debug, Clone)]
pub struct RefreshReport {
    pub connection: String,
    pub result: Result<RefreshDone, TokenError>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefreshDone {
    pub refreshed: bool,
    pub expires_at_ms: i64,
}

impl RefreshReport {
    pub fn to_json(&self) -> Value {
        match &self.result {
            Ok(d) => json!({
                "connection": self.connection,
                "status": if d.refreshed { "refreshed" } else { "fresh" },
                "expiresAtMs": d.expires_at_ms,
            }),
            Err(e) => json!({
                "connection": self.connection,
                "status": if e.is_retryable() { "retryable_error" } else { "terminal_error" },
                "error": e.to_string(),
            }),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum RefresherError {
    #[error("event is neither a scheduled event nor an API Gateway HTTP request")]
    UnknownEvent,
}

/// Built once per cold start.
pub struct RefresherApp {
    config: Arc<TokenRefresherConfig>,
    store: Store,
    secrets: SecretsCache,
    tokens: Arc<TokenProvider>,
}

impl RefresherApp {
    pub fn new(
        config: TokenRefresherConfig,
        store: Store,
        secrets: SecretsCache,
    ) -> Result<Self, ConfigError> {
        let conn =
            super::Connection::new(config.salesforce.clone(), store.clone(), secrets.clone())?;
        Ok(Self {
            config: Arc::new(config),
            store,
            secrets,
            tokens: conn.tokens,
        })
    }

    pub async fn from_env() -> Result<Self, ConfigError> {
        let config = TokenRefresherConfig::from_env(&Env::process())?;
        let (store, secrets) = crate::store::connect(&config.common).await;
        Self::new(config, store, secrets)
    }

    /// The connection's token cache (the one the connect callback replaces on a reconnect).
    pub fn tokens(&self) -> &Arc<TokenProvider> {
        &self.tokens
    }

    fn oauth(&self) -> &OAuthClient {
        self.tokens.oauth()
    }

    /// One Lambda event in, one answer out.
    pub async fn handle(&self, event: Value) -> Result<Value, RefresherError> {
        if let Some(req) = HttpRequest::from_apigw_v2(&event) {
            // Boxed: the SDK futures nest deep enough to overflow rustc's layout depth limit
            // in the bootstrap crate otherwise.
            return Ok(Box::pin(self.handle_http(&req)).await.to_apigw_v2());
        }
        let scheduled = event.get("source").and_then(Value::as_str) == Some("aws.events")
            || event.get("detail-type").and_then(Value::as_str) == Some("Scheduled Event")
            // EventBridge Scheduler / `cargo lambda invoke` with an explicit input.
            || event.get("action").and_then(Value::as_str) == Some("refresh");
        if scheduled {
            let reports = Box::pin(self.run_schedule()).await;
            return Ok(
                json!({"connections": reports.iter().map(RefreshReport::to_json).collect::<Vec<_>>()}),
            );
        }
        Err(RefresherError::UnknownEvent)
    }

    /// Refresh every configured connection whose token has less than the margin left.
    pub async fn run_schedule(&self) -> Vec<RefreshReport> {
        let sf = &self.config.salesforce;
        let result = self
            .tokens
            .ensure_remaining(sf.refresh_margin)
            .await
            .map(|(t, how)| RefreshDone {
                refreshed: how == Obtained::Refreshed,
                expires_at_ms: t.expires_at_ms,
            });
        match &result {
            Ok(d) => {
                info!(connection = %sf.connection, refreshed = d.refreshed, expires_at_ms = d.expires_at_ms, "token checked")
            }
            Err(e) if e.is_terminal() => {
                error!(connection = %sf.connection, error = %e, "token refresh failed terminally: reconnect or fix the connection secret");
                metric("token_refresh_terminal_error", 1.0, Unit::Count);
            }
            Err(e) => {
                warn!(connection = %sf.connection, error = %e, "token refresh failed; the next run retries");
                metric("token_refresh_retryable_error", 1.0, Unit::Count);
            }
        }
        vec![RefreshReport {
            connection: sf.connection.clone(),
            result,
        }]
    }

    pub async fn handle_http(&self, req: &HttpRequest) -> HttpResponse {
        let path = req.path.trim_end_matches('/');
        let route = if path.ends_with("/oauth/salesforce/login") {
            "login"
        } else if path.ends_with("/oauth/salesforce/callback") {
            "callback"
        } else {
            return HttpResponse::page(404, "Not found", "No such route.");
        };
        if req.method != "GET" {
            let mut r = HttpResponse::page(405, "Method not allowed", "Use GET.");
            r.headers.push(("allow", "GET".into()));
            return r;
        }
        match route {
            "login" => self.login(req).await,
            _ => self.callback(req).await,
        }
    }

    async fn secret(&self) -> Result<ConnectionSecret, HttpResponse> {
        self.secrets
            .get_json(&self.config.salesforce.secret_arn)
            .await
            .map_err(|e| {
                error!(error = %e, "connection secret unavailable");
                HttpResponse::failure(503, "The connection secret could not be read; try again.")
            })
    }

    /// Start a connect: check the operator key, store state + verifier, redirect to Salesforce.
    pub async fn login(&self, req: &HttpRequest) -> HttpResponse {
        let Some(redirect_uri) = self.config.salesforce.redirect_uri.as_ref() else {
            return HttpResponse::failure(
                404,
                "Connect is not configured (SF_OAUTH_REDIRECT_URI).",
            );
        };
        let Some(operator_arn) = self.config.operator_secret_arn.as_deref() else {
            return HttpResponse::failure(
                403,
                "Connect is disabled: SF_OPERATOR_SECRET_ARN is not set.",
            );
        };
        let operator: OperatorSecret = match self.secrets.get_json(operator_arn).await {
            Ok(s) => s,
            Err(e) => {
                error!(error = %e, "operator secret unavailable");
                return HttpResponse::failure(
                    503,
                    "The operator secret could not be read; try again.",
                );
            }
        };
        let Some(expected) = operator.operator_key.as_ref() else {
            return HttpResponse::failure(
                403,
                "Connect is disabled: the operator secret has no operator_key.",
            );
        };
        let secret = match self.secret().await {
            Ok(s) => s,
            Err(r) => return r,
        };
        let given = req
            .headers
            .get(OPERATOR_KEY_HEADER)
            .or_else(|| req.query.get("key"))
            .map(String::as_str)
            .unwrap_or("");
        if given.is_empty() || !constant_time_eq(given.as_bytes(), expected.expose().as_bytes()) {
            warn!("connect refused: wrong or missing operator key");
            return HttpResponse::failure(403, "Operator key required.");
        }
        let state = super::oauth::random_token(32);
        let pkce = PkcePair::generate();
        let now = crate::now_secs();
        let item = HashMap::from([
            (PK.to_owned(), attr::s(state_pk(&state))),
            ("kind".to_owned(), attr::s("oauth_state")),
            (
                "connection".to_owned(),
                attr::s(&self.config.salesforce.connection),
            ),
            ("code_verifier".to_owned(), attr::s(pkce.verifier.expose())),
            ("created_at".to_owned(), attr::n(now)),
            (
                EXPIRES_AT.to_owned(),
                attr::n(now + self.config.oauth_state_ttl.as_secs() as i64),
            ),
        ]);
        match self.store.put_if_absent(item).await {
            Ok(PutOutcome::Created) => {}
            Ok(PutOutcome::AlreadyExists) | Err(_) => {
                return HttpResponse::failure(503, "Could not start the connect; try again.")
            }
        }
        let location = self.oauth().authorize_url(
            &secret.client_id,
            redirect_uri.as_str(),
            &state,
            &pkce.challenge,
        );
        info!(connection = %self.config.salesforce.connection, "connect started");
        HttpResponse {
            status: 302,
            headers: vec![("location", location), ("cache-control", "no-store".into())],
            body: String::new(),
        }
    }

    /// Finish a connect: consume the state (once), exchange the code, store the refresh token.
    pub async fn callback(&self, req: &HttpRequest) -> HttpResponse {
        let Some(redirect_uri) = self.config.salesforce.redirect_uri.as_ref() else {
            return HttpResponse::failure(
                404,
                "Connect is not configured (SF_OAUTH_REDIRECT_URI).",
            );
        };
        if let Some(err) = req.query.get("error") {
            warn!(error = %err.chars().take(64).collect::<String>(), "Salesforce denied the connect");
            return HttpResponse::failure(
                400,
                &format!(
                    "Salesforce answered: {}",
                    err.chars().take(64).collect::<String>()
                ),
            );
        }
        let (Some(state), Some(code)) = (req.query.get("state"), req.query.get("code")) else {
            return HttpResponse::failure(400, "Missing state or code.");
        };
        let verifier = match self.consume_state(state).await {
            Ok(Some(v)) => v,
            Ok(None) => {
                warn!("connect callback with an unknown, expired or used state");
                return HttpResponse::failure(
                    400,
                    "This sign-in link is unknown, expired or already used. Start again from /oauth/salesforce/login.",
                );
            }
            Err(r) => return r,
        };
        let secret = match self.secret().await {
            Ok(s) => s,
            Err(r) => return r,
        };
        let grant = match self
            .oauth()
            .exchange_code(&secret, code, &verifier, redirect_uri.as_str())
            .await
        {
            Ok(g) => g,
            Err(e) => {
                error!(error = %e, "code exchange failed");
                return HttpResponse::failure(502, &format!("Salesforce refused the code: {e}"));
            }
        };
        let Some(refresh_token) = grant.refresh_token.as_ref() else {
            return HttpResponse::failure(
                400,
                "Salesforce returned no refresh token: add the scope refresh_token (and api) to the app.",
            );
        };
        // The new refresh token goes into the secret; if Secrets Manager refuses it (after the
        // retries), it is kept in the token item, where the next refresh takes it from.
        let pending = match store_refresh_token(
            &self.secrets,
            &self.config.salesforce.secret_arn,
            refresh_token,
        )
        .await
        {
            Ok(()) => None,
            Err(e) => {
                error!(error = %e, "could not store the refresh token in Secrets Manager; keeping it in the token item");
                metric("refresh_token_store_failed", 1.0, Unit::Count);
                Some(refresh_token)
            }
        };
        // The first access token of the new connection replaces the old connection's, here and
        // in the item every function reads.
        if let Err(e) = self.tokens.install_connected(&grant.token, pending).await {
            error!(error = %e, "could not store the new connection's token");
            if pending.is_some() {
                return HttpResponse::failure(
                    503,
                    "The refresh token could not be stored; start again.",
                );
            }
        }
        info!(connection = %self.config.salesforce.connection, instance_url = %grant.token.instance_url, "salesforce connected");
        HttpResponse::page(
            200,
            "Salesforce connected",
            &format!(
                "Connection \"{}\" is ready. You can close this window.",
                self.config.salesforce.connection
            ),
        )
    }

    /// Delete `oauth_state#<state>` if it exists, is unexpired and is for this connection; its
    /// verifier, or None. The conditional delete is what makes a state single-use.
    async fn consume_state(&self, state: &str) -> Result<Option<String>, HttpResponse> {
        if state.is_empty() || state.len() > 128 {
            return Ok(None);
        }
        let res = self
            .store
            .client()
            .delete_item()
            .table_name(self.store.table())
            .key(PK, AttributeValue::S(state_pk(state)))
            // `connection` is a DynamoDB reserved word, hence the placeholder.
            .condition_expression("attribute_exists(pk) AND #exp > :now AND #conn = :conn")
            .expression_attribute_names("#exp", EXPIRES_AT)
            .expression_attribute_names("#conn", "connection")
            .expression_attribute_values(":now", attr::n(crate::now_secs()))
            .expression_attribute_values(":conn", attr::s(&self.config.salesforce.connection))
            .return_values(ReturnValue::AllOld)
            .send()
            .await;
        match res {
            Ok(out) => Ok(out
                .attributes()
                .and_then(|a| attr::opt_s(a, "code_verifier"))
                .map(str::to_owned)),
            Err(SdkError::ServiceError(e)) if e.err().is_conditional_check_failed_exception() => {
                Ok(None)
            }
            Err(e) => {
                error!(error = %unavailable("DeleteItem", &e), "state check failed");
                Err(HttpResponse::failure(
                    503,
                    "Could not check the sign-in state; try again.",
                ))
            }
        }
    }
}
