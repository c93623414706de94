//! The access-token cache of one Salesforce connection: memory first, then the DynamoDB item
//! `token#salesforce#<connection>`, then OAuth — with at most one refresh in flight anywhere.
//!
//! - Warm path: a token in memory that is not about to expire is used as is: no DynamoDB read, no
//!   OAuth call.
//! - In process: every miss or rejection goes through one `tokio::sync::Mutex`; whoever waited
//!   finds the new token in memory and does not refresh again.
//! - Across processes: the refresher first takes a lease (`lease_until`, conditional on the item's
//!   `version` and on no live lease); losers poll the item until the winner writes the new token
//!   with `version = old + 1` (conditional on the old version) and adopt it.
//! - A rotated refresh token is the only valid one from the moment Salesforce answers (the old one
//!   is invalidated), so it is never dropped: it is merged into a freshly read connection secret
//!   (read uncached, so an operator's edit made since our cache fill is kept) and written back,
//!   retried with backoff. If Secrets Manager still refuses, it is kept in the token item as
//!   `pending_refresh_token` (+ `pending_refresh_token_at`), written together with the new access
//!   token. The next refresh anywhere (any function or the scheduled refresher, warm or cold)
//!   uses it first and moves it into the secret, removing it from the item only after that write
//!   succeeded. DynamoDB is acceptable for this fallback: the table is encrypted at rest with
//!   point-in-time recovery, and the item already holds the live access token, which grants the
//!   same API access; every function that can read the item is already trusted with it. The value
//!   is never logged (it is a `SecretString`).
//! - A reconnect ([`TokenProvider::install_connected`]) writes the first access token of the new
//!   connection with `version + 1` and drops the in-memory one, so no function keeps the old
//!   connection's token.

use std::time::{Duration, Instant};

use aws_sdk_dynamodb::error::SdkError;
use aws_sdk_dynamodb::types::AttributeValue;
use tokio::sync::{Mutex, RwLock};
use tracing::{error, info, warn};

use super::oauth::{AccessToken, ConnectionSecret, OAuthClient, TokenError, TokenGrant};
use crate::secrets::{SecretString, SecretsCache};
use crate::store::{attr, unavailable, Item, Store, StoreError, PK};
use crate::telemetry::{metric, Unit};

/// A token is replaced this long before its computed expiry, so a request never starts with a
/// token that dies in flight.
pub const EXPIRY_SKEW_MS: i64 = 60_000;
/// How long a refresh lease lasts: longer than one OAuth call with its timeout.
pub const LEASE_MS: i64 = 20_000;
/// After a failed refresh, callers get the same error without a new OAuth call for this long
/// (terminal) or this long (retryable), so 50 waiters do not turn into 50 token requests.
const TERMINAL_BACKOFF: Duration = Duration::from_secs(60);
const RETRYABLE_BACKOFF: Duration = Duration::from_secs(2);
/// Waits between the tries of writing a rotated refresh token to Secrets Manager (3 tries within
/// about 1.5 s: long enough to ride out a throttle, short enough for a request path).
const STORE_BACKOFF: [Duration; 2] = [Duration::from_millis(250), Duration::from_millis(1_000)];
/// Item attributes of a rotated refresh token that could not be written to Secrets Manager.
pub const PENDING_REFRESH_TOKEN: &str = "pending_refresh_token";
pub const PENDING_REFRESH_TOKEN_AT: &str = "pending_refresh_token_at";

pub fn token_pk(connection: &str) -> String {
    format!("token#salesforce#{connection}")
}

/// A token with the version of the item it came from.
#[derive(Debug, Clone)]
pub struct CachedToken {
    pub token: AccessToken,
    pub version: i64,
}

/// What a caller needs from the cache.
#[derive(Debug, Clone, Copy)]
struct Need<'a> {
    /// Salesforce rejected this token: never hand it out again.
    rejected: Option<&'a str>,
    /// The token must have at least this much left.
    min_remaining_ms: i64,
    /// Judge by the shared item only: the scheduled refresher must see what other functions see.
    shared_only: bool,
}

impl Need<'_> {
    fn accepts(&self, t: &AccessToken, now_ms: i64) -> bool {
        self.rejected != Some(t.access_token.expose())
            && t.remaining_ms(now_ms) >= self.min_remaining_ms
    }
}

/// What a refresh attempt ended with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Obtained {
    /// From memory or from the item another process wrote.
    Cached,
    /// This process called OAuth.
    Refreshed,
}

struct Failure {
    at: Instant,
    error: TokenError,
}

/// Per-connection token cache. Build once per cold start and share (`Arc`).
pub struct TokenProvider {
    store: Store,
    secrets: SecretsCache,
    oauth: OAuthClient,
    pk: String,
    owner: String,
    memory: RwLock<Option<CachedToken>>,
    refresh_lock: Mutex<Option<Failure>>,
    lease_wait: Duration,
    /// Only adopt the item's token; never take the lease or call OAuth.
    reader: bool,
}

impl TokenProvider {
    pub fn new(store: Store, secrets: SecretsCache, oauth: OAuthClient) -> Self {
        let pk = token_pk(&oauth.config().connection);
        Self {
            store,
            secrets,
            oauth,
            pk,
            owner: super::oauth::random_token(12),
            memory: RwLock::new(None),
            refresh_lock: Mutex::new(None),
            lease_wait: Duration::from_millis(LEASE_MS as u64 + 5_000),
            reader: false,
        }
    }

    /// A cache that only reads the token item and never refreshes: for a function that must not
    /// read the connection secret (the internet-facing Vapi webhook). When the item holds no
    /// usable token (missing, expiring, or the one Salesforce just rejected) the answer is a
    /// retryable error; the scheduled refresher (or the worker) renews the item.
    pub fn reader(store: Store, secrets: SecretsCache, oauth: OAuthClient) -> Self {
        Self {
            reader: true,
            ..Self::new(store, secrets, oauth)
        }
    }

    pub fn oauth(&self) -> &OAuthClient {
        &self.oauth
    }

    /// A token good for at least [`EXPIRY_SKEW_MS`]. Warm: from memory, no I/O.
    pub async fn access_token(&self) -> Result<AccessToken, TokenError> {
        let need = Need {
            rejected: None,
            min_remaining_ms: EXPIRY_SKEW_MS,
            shared_only: false,
        };
        if let Some(t) = self.in_memory(need).await {
            return Ok(t);
        }
        self.obtain(need).await.map(|(t, _)| t)
    }

    /// Salesforce answered 401 INVALID_SESSION_ID to `rejected`: get a different token, refreshing
    /// only if nobody (in this process or another) already did.
    pub async fn after_rejection(
        &self,
        rejected: &SecretString,
    ) -> Result<AccessToken, TokenError> {
        let need = Need {
            rejected: Some(rejected.expose()),
            min_remaining_ms: EXPIRY_SKEW_MS,
            shared_only: false,
        };
        if let Some(t) = self.in_memory(need).await {
            return Ok(t);
        }
        self.obtain(need).await.map(|(t, _)| t)
    }

    /// For the scheduled refresher: make sure the shared token has more than `margin` left.
    pub async fn ensure_remaining(
        &self,
        margin: Duration,
    ) -> Result<(AccessToken, Obtained), TokenError> {
        let need = Need {
            rejected: None,
            min_remaining_ms: (margin.as_millis() as i64).max(EXPIRY_SKEW_MS),
            shared_only: true,
        };
        self.obtain(need).await
    }

    async fn in_memory(&self, need: Need<'_>) -> Option<AccessToken> {
        if need.shared_only {
            return None;
        }
        let m = self.memory.read().await;
        m.as_ref()
            .filter(|c| need.accepts(&c.token, crate::now_millis()))
            .map(|c| c.token.clone())
    }

    /// The single-flight path: one caller at a time per process.
    async fn obtain(&self, need: Need<'_>) -> Result<(AccessToken, Obtained), TokenError> {
        let mut last_failure = self.refresh_lock.lock().await;
        // Someone refreshed while we waited for the lock.
        if let Some(t) = self.in_memory(need).await {
            return Ok((t, Obtained::Cached));
        }
        if let Some(f) = last_failure.as_ref() {
            let backoff = if f.error.is_retryable() {
                RETRYABLE_BACKOFF
            } else {
                TERMINAL_BACKOFF
            };
            if f.at.elapsed() < backoff {
                return Err(f.error.clone());
            }
        }
        match self.obtain_shared(need).await {
            Ok((cached, how)) => {
                *last_failure = None;
                let token = cached.token.clone();
                *self.memory.write().await = Some(cached);
                Ok((token, how))
            }
            Err(error) => {
                *last_failure = Some(Failure {
                    at: Instant::now(),
                    error: error.clone(),
                });
                Err(error)
            }
        }
    }

    /// Read the item; adopt its token if it meets the need, else take the lease and refresh.
    async fn obtain_shared(&self, need: Need<'_>) -> Result<(CachedToken, Obtained), TokenError> {
        let deadline = Instant::now() + self.lease_wait;
        let mut delay = Duration::from_millis(50);
        loop {
            let item = self.store.get(&self.pk).await.map_err(store_err)?;
            let now = crate::now_millis();
            let (current, version, lease_until, pending) = match &item {
                Some(item) => (
                    parse_item(&self.pk, item).map_err(store_err)?,
                    attr::opt_n(item, "version"),
                    attr::opt_n(item, "lease_until").unwrap_or(0),
                    attr::opt_s(item, PENDING_REFRESH_TOKEN).map(SecretString::new),
                ),
                None => (None, None, 0, None),
            };
            if let Some(c) = &current {
                if need.accepts(&c.token, now) {
                    return Ok((c.clone(), Obtained::Cached));
                }
            }
            if self.reader {
                return Err(TokenError::Dependency {
                    detail: "no usable Salesforce token in the token item; this function only \
                             reads it (the token refresher renews it)"
                        .into(),
                    retryable: true,
                });
            }
            if lease_until <= now && self.take_lease(version, now).await? {
                let old = version.unwrap_or(0);
                return match self.refresh_holding_lease(old, pending).await {
                    Ok(c) => Ok((c, Obtained::Refreshed)),
                    Err(e) => {
                        self.release_lease().await;
                        Err(e)
                    }
                };
            }
            // Another process is refreshing: wait for its write.
            if Instant::now() >= deadline {
                return Err(TokenError::LeaseWait);
            }
            tokio::time::sleep(delay).await;
            delay = (delay * 2).min(Duration::from_millis(400));
        }
    }

    /// Conditional write of the lease: only if the item is still at `version` and no live lease.
    async fn take_lease(&self, version: Option<i64>, now: i64) -> Result<bool, TokenError> {
        let version_cond = match version {
            Some(_) => "version = :v",
            None => "attribute_not_exists(version)",
        };
        let mut req = self
            .store
            .client()
            .update_item()
            .table_name(self.store.table())
            .key(PK, AttributeValue::S(self.pk.clone()))
            .update_expression("SET lease_until = :lease, lease_owner = :owner")
            .condition_expression(format!(
                "{version_cond} AND (attribute_not_exists(lease_until) OR lease_until <= :now)"
            ))
            .expression_attribute_values(":lease", attr::n(now + LEASE_MS))
            .expression_attribute_values(":owner", attr::s(&self.owner))
            .expression_attribute_values(":now", attr::n(now));
        if let Some(v) = version {
            req = req.expression_attribute_values(":v", attr::n(v));
        }
        match req.send().await {
            Ok(_) => Ok(true),
            Err(SdkError::ServiceError(e)) if e.err().is_conditional_check_failed_exception() => {
                Ok(false)
            }
            Err(e) => Err(store_err(unavailable("UpdateItem", &e))),
        }
    }

    async fn release_lease(&self) {
        let res = self
            .store
            .client()
            .update_item()
            .table_name(self.store.table())
            .key(PK, AttributeValue::S(self.pk.clone()))
            .update_expression("REMOVE lease_until, lease_owner")
            .condition_expression("lease_owner = :owner")
            .expression_attribute_values(":owner", attr::s(&self.owner))
            .send()
            .await;
        if let Err(e) = res {
            // The lease expires by itself; this only delays the next attempt.
            warn!(error = %crate::secrets::error_chain(&e), "could not release the token lease");
        }
    }

    async fn refresh_holding_lease(
        &self,
        old_version: i64,
        pending: Option<SecretString>,
    ) -> Result<CachedToken, TokenError> {
        let config = self.oauth.config();
        let started = Instant::now();
        let (grant, used_pending) = self.grant_with_secret_reread(pending).await?;
        // A rotated token, or a pending one that worked and still has to reach the secret.
        let to_store = grant.refresh_token.clone().or(used_pending);
        let keep = match &to_store {
            None => None,
            Some(t) => match self.store_refresh_token(t).await {
                Ok(()) => None,
                Err(e) => {
                    error!(
                        connection = %config.connection,
                        error = %e,
                        "the rotated refresh token could not be written to Secrets Manager; \
                         kept in the token item, the next refresh moves it"
                    );
                    metric("refresh_token_store_failed", 1.0, Unit::Count);
                    Some(t.clone())
                }
            },
        };
        let version = old_version + 1;
        self.write_token(&grant.token, old_version, keep.as_ref())
            .await?;
        info!(
            connection = %config.connection,
            version,
            expires_at_ms = grant.token.expires_at_ms,
            latency_ms = started.elapsed().as_millis() as u64,
            refresh_token_pending = keep.is_some(),
            "salesforce token refreshed"
        );
        Ok(CachedToken {
            token: grant.token,
            version,
        })
    }

    /// The grant, and the pending refresh token if that is what it used. A pending token (kept in
    /// the item after a failed secret write) is the newest one we have, so it goes first; if
    /// Salesforce refuses it, the secret's token is tried as usual.
    ///
    /// `invalid_grant` with a refresh token we cached may mean another function already stored a
    /// newer one (a reconnect, a rotation): re-read the secret once and retry with the new one.
    async fn grant_with_secret_reread(
        &self,
        pending: Option<SecretString>,
    ) -> Result<(TokenGrant, Option<SecretString>), TokenError> {
        let arn = &self.oauth.config().secret_arn;
        let secret: ConnectionSecret = self.secrets.get_json(arn).await.map_err(secrets_err)?;
        if let Some(p) = pending {
            let mut with_pending = secret.clone();
            with_pending.refresh_token = Some(p.clone());
            match self.oauth.grant(&with_pending).await {
                Ok(g) => return Ok((g, Some(p))),
                Err(e) if is_invalid_grant(&e) => {
                    warn!("the pending refresh token was refused; trying the secret's");
                }
                Err(e) => return Err(e),
            }
        }
        let first = self.oauth.grant(&secret).await;
        if matches!(&first, Err(e) if is_invalid_grant(e)) && secret.refresh_token.is_some() {
            // Only worth a second call if the stored refresh token changed.
            if let Ok(Some(raw)) = self.secrets.refresh(arn).await {
                let fresh: ConnectionSecret =
                    crate::secrets::parse_json(arn, &raw).map_err(secrets_err)?;
                if fresh.refresh_token != secret.refresh_token {
                    return self.oauth.grant(&fresh).await.map(|g| (g, None));
                }
            }
        }
        first.map(|g| (g, None))
    }

    /// Merge a rotated refresh token into the connection secret (other keys kept as they are).
    pub async fn store_refresh_token(
        &self,
        refresh_token: &SecretString,
    ) -> Result<(), TokenError> {
        store_refresh_token(
            &self.secrets,
            &self.oauth.config().secret_arn,
            refresh_token,
        )
        .await
    }

    /// Write the token as `version = old + 1`, only if the item is still at `old` (or absent).
    /// `keep` is a rotated refresh token Secrets Manager refused: stored in the item with the
    /// token; otherwise any pending one is removed (it has reached the secret, or was refused).
    async fn write_token(
        &self,
        token: &AccessToken,
        old_version: i64,
        keep: Option<&SecretString>,
    ) -> Result<(), TokenError> {
        let cond = if old_version == 0 {
            "attribute_not_exists(version) OR version = :old"
        } else {
            "version = :old"
        };
        let req = self
            .store
            .client()
            .update_item()
            .table_name(self.store.table())
            .key(PK, AttributeValue::S(self.pk.clone()))
            .condition_expression(cond)
            .expression_attribute_values(":at", attr::s(token.access_token.expose()))
            .expression_attribute_values(":iu", attr::s(&token.instance_url))
            .expression_attribute_values(":ia", attr::n(token.issued_at_ms))
            .expression_attribute_values(":exp", attr::n(token.expires_at_ms))
            .expression_attribute_values(":new", attr::n(old_version + 1))
            .expression_attribute_values(":old", attr::n(old_version))
            .expression_attribute_values(":now", attr::n(crate::now_millis()));
        let set = "SET access_token = :at, instance_url = :iu, issued_at = :ia, \
                   expires_at_ms = :exp, version = :new, updated_at = :now";
        match with_pending(req, set, keep).send().await {
            Ok(_) => Ok(()),
            // Our lease ran out and someone else wrote a newer token: ours is still valid for
            // this process, theirs is what others will read. A refresh token we must keep is
            // still written, on its own.
            Err(SdkError::ServiceError(e)) if e.err().is_conditional_check_failed_exception() => {
                warn!("token item changed under our lease; keeping the new token in memory only");
                match keep {
                    Some(rt) => self.keep_pending(rt).await,
                    None => Ok(()),
                }
            }
            Err(e) => Err(store_err(unavailable("UpdateItem", &e))),
        }
    }

    /// Store a refresh token Secrets Manager refused in the item, whatever its version.
    async fn keep_pending(&self, refresh_token: &SecretString) -> Result<(), TokenError> {
        self.store
            .client()
            .update_item()
            .table_name(self.store.table())
            .key(PK, AttributeValue::S(self.pk.clone()))
            .update_expression(format!(
                "SET {PENDING_REFRESH_TOKEN} = :prt, {PENDING_REFRESH_TOKEN_AT} = :now"
            ))
            .expression_attribute_values(":prt", attr::s(refresh_token.expose()))
            .expression_attribute_values(":now", attr::n(crate::now_millis()))
            .send()
            .await
            .map(|_| ())
            .map_err(|e| store_err(unavailable("UpdateItem", &e)))
    }

    /// A reconnect (the connect callback) got `token` for the new connection: write it with
    /// `version + 1` whatever the item holds (a lease of the old connection is void), store
    /// `pending` (its refresh token, when Secrets Manager refused it) or clear any pending one of
    /// the old connection, and drop the in-memory token and the remembered failure, so nothing
    /// here keeps using the old connection. Returns the new version.
    pub async fn install_connected(
        &self,
        token: &AccessToken,
        pending: Option<&SecretString>,
    ) -> Result<i64, TokenError> {
        let mut last_failure = self.refresh_lock.lock().await;
        let set = "SET access_token = :at, instance_url = :iu, issued_at = :ia, \
                   expires_at_ms = :exp, version = if_not_exists(version, :zero) + :one, \
                   updated_at = :now";
        let req = self
            .store
            .client()
            .update_item()
            .table_name(self.store.table())
            .key(PK, AttributeValue::S(self.pk.clone()))
            .expression_attribute_values(":at", attr::s(token.access_token.expose()))
            .expression_attribute_values(":iu", attr::s(&token.instance_url))
            .expression_attribute_values(":ia", attr::n(token.issued_at_ms))
            .expression_attribute_values(":exp", attr::n(token.expires_at_ms))
            .expression_attribute_values(":zero", attr::n(0))
            .expression_attribute_values(":one", attr::n(1))
            .expression_attribute_values(":now", attr::n(crate::now_millis()))
            .return_values(aws_sdk_dynamodb::types::ReturnValue::UpdatedNew);
        let out = with_pending(req, set, pending)
            .send()
            .await
            .map_err(|e| store_err(unavailable("UpdateItem", &e)))?;
        *self.memory.write().await = None;
        *last_failure = None;
        Ok(out
            .attributes()
            .and_then(|a| attr::opt_n(a, "version"))
            .unwrap_or(1))
    }

    /// Forget the in-memory token (tests; a function that wants the next call to re-read).
    pub async fn forget(&self) {
        *self.memory.write().await = None;
    }
}

/// Merge `refresh_token` into the connection secret and write it back, keeping every other key
/// as it is now: each try reads the secret uncached (an operator may have edited it since our
/// cache fill) and writes once; up to three tries with backoff. Only a retryable failure
/// (Secrets Manager unavailable, throttled, refused) is retried.
pub async fn store_refresh_token(
    secrets: &SecretsCache,
    arn: &str,
    refresh_token: &SecretString,
) -> Result<(), TokenError> {
    let mut waits = STORE_BACKOFF.iter();
    loop {
        let result = merge_and_put(secrets, arn, refresh_token).await;
        match (&result, waits.next()) {
            (Err(e), Some(wait)) if e.is_retryable() => {
                warn!(error = %e, "writing the refresh token to Secrets Manager failed; retrying");
                tokio::time::sleep(*wait).await;
            }
            _ => return result,
        }
    }
}

async fn merge_and_put(
    secrets: &SecretsCache,
    arn: &str,
    refresh_token: &SecretString,
) -> Result<(), TokenError> {
    let raw = secrets.get_uncached(arn).await.map_err(secrets_err)?;
    let mut value: serde_json::Value =
        crate::secrets::parse_json(arn, &raw).map_err(secrets_err)?;
    let Some(obj) = value.as_object_mut() else {
        return Err(TokenError::Dependency {
            detail: format!("secret {arn} is not a JSON object"),
            retryable: false,
        });
    };
    obj.insert(
        "refresh_token".into(),
        serde_json::Value::String(refresh_token.expose().to_owned()),
    );
    secrets
        .put(arn, &value.to_string())
        .await
        .map_err(secrets_err)
}

/// Finish a token write: `set` (which uses `:now`) plus either storing `keep` as the pending
/// refresh token or removing any pending one; the lease is removed either way.
fn with_pending(
    req: aws_sdk_dynamodb::operation::update_item::builders::UpdateItemFluentBuilder,
    set: &str,
    keep: Option<&SecretString>,
) -> aws_sdk_dynamodb::operation::update_item::builders::UpdateItemFluentBuilder {
    match keep {
        Some(rt) => req
            .update_expression(format!(
                "{set}, {PENDING_REFRESH_TOKEN} = :prt, {PENDING_REFRESH_TOKEN_AT} = :now \
                 REMOVE lease_until, lease_owner"
            ))
            .expression_attribute_values(":prt", attr::s(rt.expose())),
        None => req.update_expression(format!(
            "{set} REMOVE lease_until, lease_owner, {PENDING_REFRESH_TOKEN}, \
             {PENDING_REFRESH_TOKEN_AT}"
        )),
    }
}

fn is_invalid_grant(e: &TokenError) -> bool {
    matches!(e, TokenError::Rejected { code, .. } if *code == super::oauth::OAuthErrorCode::InvalidGrant)
}

/// The token in an item, if it has one (a lease-only item has none).
pub fn parse_item(pk: &str, item: &Item) -> Result<Option<CachedToken>, StoreError> {
    let Some(access_token) = attr::opt_s(item, "access_token") else {
        return Ok(None);
    };
    let corrupt = |f: &str| StoreError::Corrupt {
        pk: pk.to_owned(),
        detail: format!("number attribute {f} missing"),
    };
    Ok(Some(CachedToken {
        token: AccessToken {
            access_token: SecretString::new(access_token),
            instance_url: attr::get_s(item, pk, "instance_url")?.to_owned(),
            issued_at_ms: attr::opt_n(item, "issued_at").ok_or_else(|| corrupt("issued_at"))?,
            expires_at_ms: attr::opt_n(item, "expires_at_ms")
                .ok_or_else(|| corrupt("expires_at_ms"))?,
        },
        version: attr::opt_n(item, "version").unwrap_or(0),
    }))
}

fn store_err(e: StoreError) -> TokenError {
    let retryable = matches!(e, StoreError::Unavailable { .. });
    TokenError::Dependency {
        detail: e.to_string(),
        retryable,
    }
}

fn secrets_err(e: crate::secrets::SecretsError) -> TokenError {
    let retryable = matches!(e, crate::secrets::SecretsError::Unavailable { .. });
    TokenError::Dependency {
        detail: e.to_string(),
        retryable,
    }
}

/// For tests and the connect callback: the item as it is.
pub async fn read_item(store: &Store, connection: &str) -> Result<Option<CachedToken>, StoreError> {
    let pk = token_pk(connection);
    match store.get(&pk).await? {
        Some(item) => parse_item(&pk, &item),
        None => Ok(None),
    }
}

impl std::fmt::Debug for TokenProvider {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenProvider")
            .field("pk", &self.pk)
            .finish_non_exhaustive()
    }
}
