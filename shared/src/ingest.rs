//! The Salesforce ingest service: verify → parse → one conditional write → answer.
//!
//! `POST /salesforce/events` takes the JSON shapes; `POST /salesforce/outbound-message/{token}` takes
//! SOAP Outbound Messages. The conditional PutItem is the commit point: a 202 (or a SOAP Ack) is
//! only ever sent after the event is durably stored, and a duplicate costs one write attempt.
//!
//! An Outbound Message carries up to 100 notifications and Salesforce retries the whole message on
//! anything but an Ack, for up to 24 h
//! (<https://developer.salesforce.com/docs/atlas.en-us.api.meta/api/sforce_api_om_outboundmessaging_notifications.htm>).
//! So a notification that cannot become a call (no Contact id, unsupported sObject, bad id) is
//! stored as a SKIPPED job with its reason (same key and dedup as the others), the good ones as
//! PENDING, and the message is acknowledged. It is faulted only when something could not be
//! stored (DynamoDB unavailable: 500, so Salesforce retries and the stored ones dedup) or when
//! nothing in it can be stored at all (not an Outbound Message, no notification with an Id).
//!
//! What an event means (which fields hold the Contact, the Case, …) is the routing document's
//! to say (`crate::routing`); the built-in document reproduces the fixed shapes of
//! `salesforce::events`. An event that matches no rule is not dropped: it is stored as SKIPPED
//! with the reason (200 `{"status":"skipped"}`), or refused with 400 when it names no event id
//! to store it under.

use std::sync::Arc;

use lambda_http::http::{Method, StatusCode};
use lambda_http::{Body, Request, Response};
use serde_json::{json, Map, Value};
use tracing::{field, info, info_span, warn, Instrument};

use crate::config::{ConfigError, Env, IngestConfig};
use crate::http::{body_bytes, json_response, xml_response, ApiError};
use crate::ids::{SalesforceEventId, SalesforceId};
use crate::queue::item::{new_dial_job, skipped_event_item, StoredJob};
use crate::queue::skipped::RoutingInput;
use crate::routing::{Input, Routed, Routing};
use crate::salesforce::events::{
    parse_outbound_notifications, soap_fault, DialRequest, EventSource, RejectedNotification,
    OUTBOUND_ACK,
};
use crate::secrets::{IngestSecret, SecretsCache};
use crate::signature::{constant_time_eq, verify_salesforce, SignatureError};
use crate::store::{Item, PutOutcome, Store, Stored};
use crate::telemetry::{metric, metric_by, Unit};

/// The `route` of the ingest's spans and metric dimensions (the dashboard splits by it).
pub const ROUTE_EVENTS: &str = "events";
pub const ROUTE_OUTBOUND: &str = "outbound-message";

/// Built once per cold start; every request borrows it.
#[derive(Clone)]
pub struct IngestApp {
    config: Arc<IngestConfig>,
    store: Store,
    secrets: SecretsCache,
}

enum Route {
    Events,
    Outbound(String),
}

fn route(path: &str) -> Option<Route> {
    // Matched by suffix so a stage prefix (`/prod/salesforce/…`) routes the same.
    let path = path.trim_end_matches('/');
    if path.ends_with("/salesforce/events") {
        return Some(Route::Events);
    }
    let (_, token) = path.split_once("/salesforce/outbound-message/")?;
    (!token.is_empty() && !token.contains('/')).then(|| Route::Outbound(token.to_owned()))
}

impl IngestApp {
    pub fn new(config: IngestConfig, store: Store, secrets: SecretsCache) -> Self {
        Self {
            config: Arc::new(config),
            store,
            secrets,
        }
    }

    /// Read the configuration and build the AWS clients (no network yet).
    pub async fn from_env() -> Result<Self, ConfigError> {
        let config = IngestConfig::from_env(&Env::process())?;
        let (store, secrets) = crate::store::connect(&config.common).await;
        Ok(Self::new(config, store, secrets))
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    /// The Lambda handler: one request in, one response out; never panics on input.
    pub async fn handle(&self, req: Request) -> Response<Body> {
        let path = req.uri().path().to_owned();
        match route(&path) {
            None => ApiError::NotFound.to_response(),
            Some(_) if req.method() != Method::POST => {
                ApiError::MethodNotAllowed { allow: "POST" }.to_response()
            }
            Some(Route::Events) => {
                let span = info_span!("ingest", route = ROUTE_EVENTS, event_id = field::Empty);
                match self.events(&req).instrument(span).await {
                    Ok(resp) => resp,
                    Err(e) => e.to_response(),
                }
            }
            Some(Route::Outbound(token)) => {
                let span = info_span!("ingest", route = ROUTE_OUTBOUND, org_id = field::Empty);
                self.outbound(&token, &req).instrument(span).await
            }
        }
    }

    async fn events(&self, req: &Request) -> Result<Response<Body>, ApiError> {
        let body = body_bytes(req.body());
        self.check_size(body)?;
        let now_ms = crate::now_millis();
        self.verify(req.headers(), body, now_ms).await?;
        match route_json(&self.config.routing, body)? {
            JsonEvent::Dial(dial) => {
                tracing::Span::current().record("event_id", dial.event_id.as_str());
                let item = new_dial_job(&dial, now_ms, self.config.event_ttl);
                self.store_event(&dial, item, ROUTE_EVENTS).await
            }
            JsonEvent::Skipped { event_id, reason } => {
                tracing::Span::current().record("event_id", event_id.as_str());
                self.store_skipped_event(&event_id, &reason, now_ms, body)
                    .await
            }
        }
    }

    /// Record an event no routing rule matches as SKIPPED (one conditional write, like any
    /// event), and say so: 200, not 202, since nothing was queued.
    async fn store_skipped_event(
        &self,
        event_id: &SalesforceEventId,
        reason: &str,
        now_ms: i64,
        body: &[u8],
    ) -> Result<Response<Body>, ApiError> {
        let payload = json!({"eventId": event_id.as_str(), "source": "http"}).to_string();
        let mut item = skipped_event_item(event_id, payload, reason, now_ms, self.config.event_ttl);
        // What the routing saw, for `sfvapi-admin reroute` once the document is fixed.
        RoutingInput::Events {
            body: String::from_utf8_lossy(body).into_owned(),
        }
        .keep_on(&mut item);
        match self.store.put_if_absent_or_stored(item).await {
            Ok(Stored::Created) => {
                warn!(%reason, "event skipped");
                metric("events_skipped", 1.0, Unit::Count);
                Ok(json_response(
                    StatusCode::OK,
                    &json!({"status": "skipped", "eventId": event_id.as_str(), "reason": reason}),
                ))
            }
            Ok(Stored::Existing(old)) => {
                metric_by("duplicates", 1.0, Unit::Count, "route", ROUTE_EVENTS);
                Ok(duplicate(event_id.as_str(), &old))
            }
            Err(e) => {
                warn!(error = %e, "skipped event not stored");
                Err(ApiError::Unavailable(e.to_string()))
            }
        }
    }

    /// Verify with the cached secrets; on a mismatch, re-read the secret once (rate-limited) in
    /// case it was rotated, and verify again.
    async fn verify(
        &self,
        headers: &lambda_http::http::HeaderMap,
        body: &[u8],
        now_ms: i64,
    ) -> Result<(), ApiError> {
        let secret = self.secret().await?;
        let verify = |s: &IngestSecret| {
            verify_salesforce(
                self.config.scheme,
                headers,
                body,
                &s.signing_secrets,
                now_ms / 1000,
                self.config.tolerance_secs,
            )
        };
        let mut result = verify(&secret);
        if matches!(
            result,
            Err(SignatureError::Mismatch | SignatureError::NoSecret)
        ) {
            if let Some(fresh) = self.refreshed_secret().await? {
                result = verify(&fresh);
            }
        }
        if let Err(reason) = result {
            warn!(%reason, "signature rejected");
            metric_by(
                "signature_failures",
                1.0,
                Unit::Count,
                "route",
                ROUTE_EVENTS,
            );
            return Err(ApiError::InvalidSignature);
        }
        Ok(())
    }

    async fn store_event(
        &self,
        dial: &DialRequest,
        item: Item,
        route: &str,
    ) -> Result<Response<Body>, ApiError> {
        let event_id = dial.event_id.as_str();
        match self.store.put_if_absent_or_stored(item).await {
            Ok(Stored::Created) => {
                info!(source = ?dial.source, "event queued");
                metric_by("events_accepted", 1.0, Unit::Count, "route", route);
                Ok(json_response(
                    StatusCode::ACCEPTED,
                    &json!({"status": "queued", "eventId": event_id}),
                ))
            }
            Ok(Stored::Existing(old)) => {
                metric_by("duplicates", 1.0, Unit::Count, "route", route);
                Ok(duplicate(event_id, &old))
            }
            Err(e) => {
                warn!(error = %e, "event not stored");
                Err(ApiError::Unavailable(e.to_string()))
            }
        }
    }

    async fn outbound(&self, token: &str, req: &Request) -> Response<Body> {
        let fault = |status: StatusCode, server: bool, msg: &str| {
            xml_response(status, soap_fault(server, msg))
        };
        let body = body_bytes(req.body());
        if let Err(e) = self.check_size(body) {
            return fault(e.status(), false, "message too large");
        }
        let secret = match self.secret().await {
            Ok(s) => s,
            Err(_) => {
                return fault(
                    StatusCode::SERVICE_UNAVAILABLE,
                    true,
                    "temporarily unavailable",
                )
            }
        };
        let token_ok = |s: &IngestSecret| {
            s.outbound_message_token
                .as_ref()
                .is_some_and(|t| constant_time_eq(t.expose().as_bytes(), token.as_bytes()))
        };
        let mut authorised = token_ok(&secret);
        if !authorised {
            if let Ok(Some(fresh)) = self.refreshed_secret().await {
                authorised = token_ok(&fresh);
            }
        }
        if !authorised {
            warn!(reason = "path token", "outbound message rejected");
            metric_by(
                "signature_failures",
                1.0,
                Unit::Count,
                "route",
                ROUTE_OUTBOUND,
            );
            return fault(StatusCode::UNAUTHORIZED, false, "invalid_signature");
        }
        let message = match parse_outbound_notifications(body) {
            Ok(m) => m,
            Err(e) => {
                return fault(
                    StatusCode::BAD_REQUEST,
                    false,
                    &format!("invalid_payload: {e}"),
                )
            }
        };
        tracing::Span::current().record("org_id", message.organization_id.as_str());
        if !org_allowed(&self.config.outbound_org_ids, &message.organization_id) {
            // The path token was right: the sender is ours, so the answer (which Salesforce
            // shows in its Outbound Message queue) says what to change, as the log does.
            let why = format!(
                "organization {} is not in SF_OUTBOUND_ORG_IDS (add it to the ingest's SF_OUTBOUND_ORG_IDS to accept its Outbound Messages)",
                message.organization_id.as_str()
            );
            warn!(
                reason = "organization not allowed",
                org_id = message.organization_id.as_str(),
                "outbound message rejected: {why}"
            );
            metric_by(
                "signature_failures",
                1.0,
                Unit::Count,
                "route",
                ROUTE_OUTBOUND,
            );
            return fault(
                StatusCode::UNAUTHORIZED,
                false,
                &format!("organization_not_allowed: {why}"),
            );
        }
        let now_ms = crate::now_millis();
        if message.unidentified > 0 {
            warn!(
                count = message.unidentified,
                "outbound notifications without a usable Id ignored"
            );
        }
        if message.notifications.is_empty() {
            return fault(
                StatusCode::BAD_REQUEST,
                false,
                "invalid_payload: no notification has a valid Id",
            );
        }
        let (dials, rejected) = route_notifications(&self.config.routing, message.notifications);
        for dial in &dials {
            let span = info_span!("notification", event_id = dial.event_id.as_str());
            let item = new_dial_job(dial, now_ms, self.config.event_ttl);
            // Any failure: no Ack, so Salesforce resends the whole message; stored ones dedup.
            if self
                .store_event(dial, item, ROUTE_OUTBOUND)
                .instrument(span)
                .await
                .is_err()
            {
                return fault(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    true,
                    "temporarily unavailable, retry",
                );
            }
        }
        for bad in &rejected {
            let span = info_span!("notification", event_id = bad.event_id.as_str());
            if self
                .store_rejected(bad, now_ms)
                .instrument(span)
                .await
                .is_err()
            {
                return fault(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    true,
                    "temporarily unavailable, retry",
                );
            }
        }
        xml_response(StatusCode::OK, OUTBOUND_ACK.to_owned())
    }

    /// Record a notification that will not be called as a SKIPPED job (one conditional write;
    /// a replay is a duplicate like any other).
    async fn store_rejected(
        &self,
        bad: &RejectedNotification,
        now_ms: i64,
    ) -> Result<(), ApiError> {
        let payload = json!({
            "eventId": bad.event_id.as_str(),
            "source": EventSource::OutboundMessage,
            "sObjectType": bad.sobject_type,
        })
        .to_string();
        let reason = format!("notification not usable: {}", bad.reason);
        let mut item = skipped_event_item(
            &bad.event_id,
            payload,
            &reason,
            now_ms,
            self.config.event_ttl,
        );
        if let Some(notification) = &bad.input {
            RoutingInput::OutboundMessage {
                notification: notification.clone(),
            }
            .keep_on(&mut item);
        }
        match self.store.put_if_absent(item).await {
            Ok(PutOutcome::Created) => {
                warn!(%reason, "outbound notification skipped");
                metric("events_skipped", 1.0, Unit::Count);
                Ok(())
            }
            Ok(PutOutcome::AlreadyExists) => {
                info!("duplicate event");
                metric("duplicates", 1.0, Unit::Count);
                Ok(())
            }
            Err(e) => {
                warn!(error = %e, "skipped notification not stored");
                Err(ApiError::Unavailable(e.to_string()))
            }
        }
    }

    fn check_size(&self, body: &[u8]) -> Result<(), ApiError> {
        if body.len() > self.config.max_body_bytes {
            return Err(ApiError::TooLarge {
                limit: self.config.max_body_bytes,
            });
        }
        Ok(())
    }

    async fn secret(&self) -> Result<IngestSecret, ApiError> {
        self.secrets
            .get_json::<IngestSecret>(&self.config.secret_arn)
            .await
            .map_err(|e| {
                warn!(error = %e, "ingest secret unavailable");
                ApiError::Unavailable(e.to_string())
            })
    }

    async fn refreshed_secret(&self) -> Result<Option<IngestSecret>, ApiError> {
        let arn = &self.config.secret_arn;
        match self.secrets.refresh(arn).await {
            Ok(Some(raw)) => crate::secrets::parse_json(arn, &raw)
                .map(Some)
                .map_err(|e| ApiError::Unavailable(e.to_string())),
            Ok(None) => Ok(None),
            Err(e) => {
                warn!(error = %e, "ingest secret re-read failed");
                Err(ApiError::Unavailable(e.to_string()))
            }
        }
    }
}

/// Org ids compare on their 15-char case-sensitive form, so an allowlist may hold either form.
fn org_allowed(allowed: &[SalesforceId], org: &SalesforceId) -> bool {
    let short = |id: &SalesforceId| id.as_str()[..15].to_owned();
    allowed.iter().any(|a| short(a) == short(org))
}

/// The network-free part of an ingest: verify, parse and build the item. What the criterion
/// benchmark measures; the handler runs the same steps.
pub fn prepare(
    config: &IngestConfig,
    secret: &IngestSecret,
    headers: &lambda_http::http::HeaderMap,
    body: &[u8],
    now_ms: i64,
) -> Result<Item, ApiError> {
    if body.len() > config.max_body_bytes {
        return Err(ApiError::TooLarge {
            limit: config.max_body_bytes,
        });
    }
    verify_salesforce(
        config.scheme,
        headers,
        body,
        &secret.signing_secrets,
        now_ms / 1000,
        config.tolerance_secs,
    )
    .map_err(|_| ApiError::InvalidSignature)?;
    match route_json(&config.routing, body)? {
        JsonEvent::Dial(dial) => Ok(new_dial_job(&dial, now_ms, config.event_ttl)),
        JsonEvent::Skipped { event_id, reason } => Ok(skipped_event_item(
            &event_id,
            json!({"eventId": event_id.as_str()}).to_string(),
            &reason,
            now_ms,
            config.event_ttl,
        )),
    }
}

/// A duplicate's answer: 200 with what is stored for the event (its job's status, rule and,
/// when SKIPPED, why), not what the event would become under today's routing.
fn duplicate(event_id: &str, stored: &Item) -> Response<Body> {
    let stored = StoredJob::of(stored);
    info!(stored = %stored.status, "duplicate event");
    let mut answer = json!({"status": "duplicate", "eventId": event_id, "stored": stored.status});
    if let Some(o) = answer.as_object_mut() {
        if let Some(rule) = stored.rule {
            o.insert("rule".into(), json!(rule));
        }
        if let Some(reason) = stored.reason {
            o.insert("reason".into(), json!(reason));
        }
    }
    json_response(StatusCode::OK, &answer)
}

/// What a JSON event body becomes.
#[derive(Debug)]
pub enum JsonEvent {
    Dial(DialRequest),
    /// No routing rule matches; stored as SKIPPED under the body's own `eventId`.
    Skipped {
        event_id: SalesforceEventId,
        reason: String,
    },
}

/// A JSON body through the routing document: the matching rule's mapping, or why not (400).
pub fn route_json(routing: &Routing, body: &[u8]) -> Result<JsonEvent, ApiError> {
    let value: Value = serde_json::from_slice(body).map_err(|e| {
        ApiError::InvalidPayload(format!(
            "body: not valid JSON (line {}, column {})",
            e.line(),
            e.column()
        ))
    })?;
    let Value::Object(root) = value else {
        return Err(ApiError::InvalidPayload(
            "body: must be a JSON object".into(),
        ));
    };
    match routing.route(Input::Http(&root), None) {
        Routed::Matched(rule, Ok(x)) => {
            let Some(event_id) = x.event_id else {
                // Load-time validation gives every events-route rule an eventId mapping.
                return Err(ApiError::InvalidPayload("eventId: is missing".into()));
            };
            Ok(JsonEvent::Dial(DialRequest {
                event_id,
                contact_id: x.contact_id,
                case_id: x.case_id,
                priority: x.priority,
                reason: x.reason,
                // The body's shape, for the timeline (the Platform Event shape has `data`).
                source: if root.contains_key("data") {
                    EventSource::PlatformEvent
                } else {
                    EventSource::Flat
                },
                rule: Some(rule.id.clone()),
            }))
        }
        Routed::Matched(_, Err(e)) => Err(ApiError::InvalidPayload(e.to_string())),
        Routed::NoMatch(why) => match root.get("eventId") {
            Some(Value::String(id)) => match SalesforceEventId::parse("eventId", id) {
                Ok(event_id) => Ok(JsonEvent::Skipped {
                    event_id,
                    reason: why,
                }),
                Err(e) => Err(ApiError::InvalidPayload(format!("{why}; {e}"))),
            },
            _ => Err(ApiError::InvalidPayload(format!(
                "{why}, and the body has no eventId to record it under"
            ))),
        },
    }
}

/// The notifications of an Outbound Message through the routing document: dial requests, and
/// the ones that cannot become a call, with why (stored as SKIPPED).
pub fn route_notifications(
    routing: &Routing,
    notifications: Vec<crate::salesforce::events::Notification>,
) -> (Vec<DialRequest>, Vec<RejectedNotification>) {
    let mut dials = Vec::new();
    let mut rejected = Vec::new();
    for n in notifications {
        let view: Map<String, Value> = n.view();
        let reject = |reason: String| RejectedNotification {
            event_id: n.event_id.clone(),
            sobject_type: n.sobject_type.clone().filter(|t| !t.is_empty()),
            reason,
            input: Some(view.clone()),
        };
        match routing.route(Input::Outbound(&view), None) {
            Routed::Matched(rule, Ok(x)) => dials.push(DialRequest {
                event_id: n.event_id.clone(),
                contact_id: x.contact_id,
                case_id: x.case_id,
                priority: x.priority,
                reason: x.reason,
                source: EventSource::OutboundMessage,
                rule: Some(rule.id.clone()),
            }),
            Routed::Matched(_, Err(e)) => rejected.push(reject(e.to_string())),
            Routed::NoMatch(why) => rejected.push(reject(why)),
        }
    }
    (dials, rejected)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_by_suffix() {
        assert!(matches!(route("/salesforce/events"), Some(Route::Events)));
        assert!(matches!(
            route("/prod/salesforce/events/"),
            Some(Route::Events)
        ));
        assert!(
            matches!(route("/salesforce/outbound-message/abc"), Some(Route::Outbound(t)) if t == "abc")
        );
        assert!(route("/salesforce/outbound-message/").is_none());
        assert!(route("/salesforce/outbound-message/a/b").is_none());
        assert!(route("/vapi/webhook").is_none());
    }

    #[test]
    fn org_ids_match_in_either_form() {
        let long = SalesforceId::parse("o", "00D5e000000AbCdEAK").unwrap();
        let short = SalesforceId::parse("o", "00D5e000000AbCd").unwrap();
        assert!(org_allowed(std::slice::from_ref(&short), &long));
        assert!(org_allowed(&[long], &short));
        assert!(!org_allowed(&[], &short));
    }
}
