//! Salesforce Event Relay: Platform Events and Change Data Capture events that Salesforce relays
//! to an Amazon EventBridge partner event source, delivered here by an EventBridge rule through an
//! SQS queue (the `salesforce-relay` function).
//!
//! No HMAC: the EventBridge rule on the partner bus and IAM are the authentication (only the
//! rule may send to the queue, only the queue invokes the function). What is still checked is
//! what a caller could set: the org id in `source` (`aws.partner/salesforce.com/<OrgId>/<channel>`,
//! the partner event source name, EventRelayFeedback.RemoteResource in the Object Reference,
//! <https://developer.salesforce.com/docs/atlas.en-us.object_reference.meta/object_reference/sforce_api_objects_eventrelayfeedback.htm>)
//! must be one of `SF_RELAY_ORG_IDS`; an event from any other org is rejected and counted
//! (`relay_rejected`), never stored.
//!
//! **One write per new event.** A relayed event becomes its job with the same single conditional
//! PutItem as the HTTP ingest (`evt#sf#<id>`, `attribute_not_exists(pk)`): the dedup and the
//! enqueue. A Change Data Capture event names one or more changed records
//! (`ChangeEventHeader.recordIds`); each record is its own job, so its own write.
//!
//! **The id survives a re-relay.** Duplicates are normal: `ReplayRecovery: EARLIEST` re-sends up
//! to three days of events, EventBridge retries a target, SQS delivers at least once. The
//! EventBridge `id` is new for every copy, so the id comes from Salesforce's side, in this order:
//! 1. the event's UUID in `detail` (`detail.id`, or `EventUuid` / `id` in `detail` /
//!    `detail.event`): Event Relay is built on the Pub/Sub API, whose events carry their UUID as
//!    `id` (`ProducerEvent.id`, "either a user-provided ID or a system generated guid",
//!    <https://github.com/forcedotcom/pub-sub-api/blob/main/pubsub_api.proto>). The sources checked
//!    (the Event Relay guide, rules written against relayed events, which read
//!    `$.detail.payload.<Field__c>`) show `source`, `detail-type` and `detail.payload` but no
//!    complete `detail`, so each place the UUID may travel under is tried, in this order;
//!    an event's `replayId` is not used because Salesforce does not guarantee it stays unique
//!    (org migrations, Pub/Sub API "Event Message Durability",
//!    <https://developer.salesforce.com/docs/platform/pub-sub-api/guide/event-message-durability.html>);
//! 2. the payload's `EventUuid` (the Platform Event field, "a universally unique identifier that
//!    identifies a platform event message");
//! 3. for Change Data Capture: `ChangeEventHeader.transactionKey` + `sequenceNumber` + the record
//!    id (`cdc:<transactionKey>:<sequenceNumber>:<recordId>`, one job per record; Change Data
//!    Capture Developer Guide, "ChangeEventHeader Fields") — a CDC event is identified this way
//!    first, so each of its records gets its own id;
//! 4. only then the EventBridge `id` (`eb:<id>`), which a re-relayed copy would not share.
//!
//! **Nothing is lost, nothing loops.** The function answers SQS with partial batch failures: a
//! record fails only when its write could not be made (DynamoDB unavailable), so SQS delivers it
//! again and, after the queue's `maxReceiveCount`, moves it to the dead-letter queue (alarm,
//! redrive with `aws sqs start-message-move-task`). Everything else — an event from an org that is
//! not allowed, a malformed envelope, an event no rule matches, a mapped field that is not a valid
//! id — is final: rejected (counted) or stored as SKIPPED with its reason, and acknowledged, so
//! neither SQS nor EventBridge retries it forever.

use std::sync::Arc;
use std::time::Duration;

use serde_json::{json, Map, Value};
use tracing::{info, info_span, warn, Instrument};

use crate::config::{CommonConfig, ConfigError, Env, Problems};
use crate::ids::{SalesforceEventId, SalesforceId};
use crate::queue::item::{new_dial_job, skipped_event_item, StoredJob};
use crate::queue::skipped::RoutingInput;
use crate::routing::{Input, Routed, Routing};
use crate::salesforce::events::{DialRequest, EventSource};
use crate::store::{Store, StoreError, Stored};
use crate::telemetry::{metric_by, Unit};

/// The `route` dimension of the relay's metrics (beside the ingest's `events` and
/// `outbound-message`).
pub const ROUTE_RELAY: &str = "relay";
/// The partner event source prefix Event Relay uses.
pub const SOURCE_PREFIX: &str = "aws.partner/salesforce.com/";
/// Most records one CDC event may fan out to (Salesforce merges changes of up to a few
/// hundred records into one event; each is a job).
const MAX_RECORDS: usize = 1000;

/// The relay function's settings.
#[derive(Debug, Clone)]
pub struct RelayConfig {
    pub common: CommonConfig,
    /// `SF_RELAY_ORG_IDS` (required): the org ids whose relayed events are accepted.
    pub org_ids: Vec<SalesforceId>,
    /// `EVENT_TTL_DAYS` (default 7).
    pub event_ttl: Duration,
    /// The routing document (`ROUTING_FILE`, else the built-in `routing.yaml`).
    pub routing: Arc<Routing>,
}

impl RelayConfig {
    pub fn from_env<F: Fn(&str) -> Option<String>>(env: &Env<F>) -> Result<Self, ConfigError> {
        let mut p = Problems::new();
        let org_ids: Vec<SalesforceId> = env
            .list("SF_RELAY_ORG_IDS")
            .iter()
            .filter_map(|id| {
                p.ok(SalesforceId::parse("SF_RELAY_ORG_IDS", id).map_err(|e| {
                    ConfigError::Invalid {
                        var: "SF_RELAY_ORG_IDS",
                        reason: format!("{id:?} {}", e.problem),
                    }
                }))
            })
            .collect();
        if env.list("SF_RELAY_ORG_IDS").is_empty() {
            p.push(ConfigError::Missing {
                var: "SF_RELAY_ORG_IDS",
                hint: "the Salesforce org ids whose relayed events are accepted (comma-separated)",
            });
        }
        let ttl_days = p.or(crate::config::event_ttl_days(env), 7);
        let common = CommonConfig::collect(env, &mut p);
        let Some(routing) = p.ok(Routing::from_env(env)) else {
            return Err(p.into_error());
        };
        p.finish(Self {
            common,
            org_ids,
            event_ttl: Duration::from_secs(ttl_days * 86_400),
            routing: Arc::new(routing),
        })
    }
}

/// Why a relayed event was refused without being stored.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Rejection {
    #[error("not an EventBridge event: {0}")]
    Malformed(String),
    #[error("source {0:?} is not a Salesforce Event Relay partner event source (aws.partner/salesforce.com/<OrgId>/<channel>)")]
    NotSalesforce(String),
    #[error("org {0} is not in SF_RELAY_ORG_IDS")]
    OrgNotAllowed(String),
}

impl Rejection {
    /// The `reason` dimension of `relay_rejected`.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Malformed(_) => "malformed",
            Self::NotSalesforce(_) => "not_salesforce",
            Self::OrgNotAllowed(_) => "org_not_allowed",
        }
    }
}

/// A relayed event, parsed from its EventBridge envelope.
#[derive(Debug, Clone, PartialEq)]
pub struct RelayedEvent {
    /// EventBridge's id of this copy (the last-resort dedup id).
    pub eventbridge_id: String,
    /// The event's API name (`Call_Request__e`, `CaseChangeEvent`).
    pub detail_type: String,
    pub org_id: SalesforceId,
    /// The relay channel id (`0YL…`).
    pub channel: String,
    pub detail: Map<String, Value>,
    /// `detail.payload`: the event's fields.
    pub payload: Map<String, Value>,
}

impl RelayedEvent {
    /// Parse the envelope (`id`, `detail-type`, `source`, `detail.payload`) and check the org.
    pub fn parse(event: &Value, allowed: &[SalesforceId]) -> Result<Self, Rejection> {
        let s = |k: &str| {
            event
                .get(k)
                .and_then(Value::as_str)
                .filter(|v| !v.is_empty())
                .ok_or_else(|| Rejection::Malformed(format!("{k} is missing or not a string")))
        };
        let eventbridge_id = s("id")?.to_owned();
        let detail_type = s("detail-type")?.to_owned();
        let source = s("source")?;
        let rest = source
            .strip_prefix(SOURCE_PREFIX)
            .ok_or_else(|| Rejection::NotSalesforce(source.chars().take(120).collect()))?;
        let (org, channel) = rest
            .split_once('/')
            .ok_or_else(|| Rejection::NotSalesforce(source.chars().take(120).collect()))?;
        let org_id = SalesforceId::parse("source", org)
            .map_err(|_| Rejection::NotSalesforce(source.chars().take(120).collect()))?;
        if channel.is_empty() || channel.contains('/') {
            return Err(Rejection::NotSalesforce(source.chars().take(120).collect()));
        }
        // Org ids compare on their 15 case-sensitive characters (either form may be listed).
        if !allowed
            .iter()
            .any(|a| a.as_str()[..15] == org_id.as_str()[..15])
        {
            return Err(Rejection::OrgNotAllowed(org_id.as_str().to_owned()));
        }
        let detail = match event.get("detail") {
            Some(Value::Object(d)) => d.clone(),
            _ => return Err(Rejection::Malformed("detail must be an object".into())),
        };
        let payload = match detail.get("payload") {
            Some(Value::Object(p)) => p.clone(),
            _ => {
                return Err(Rejection::Malformed(
                    "detail.payload must be an object (the event's fields)".into(),
                ))
            }
        };
        Ok(Self {
            eventbridge_id,
            detail_type,
            org_id,
            channel: channel.to_owned(),
            detail,
            payload,
        })
    }

    fn header(&self) -> Option<&Map<String, Value>> {
        self.payload
            .get("ChangeEventHeader")
            .and_then(Value::as_object)
    }

    /// Whether this is a Change Data Capture event (it has a `ChangeEventHeader`).
    pub fn is_change_event(&self) -> bool {
        self.header().is_some()
    }

    /// The event UUID Salesforce gave it (steps 1 and 2 of the module doc).
    fn uuid(&self) -> Option<SalesforceEventId> {
        let d = &self.detail;
        let candidates = [
            d.get("id"),
            d.get("EventUuid"),
            d.get("event").and_then(|e| e.get("EventUuid")),
            d.get("event").and_then(|e| e.get("id")),
            self.payload.get("EventUuid"),
        ];
        candidates
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .find_map(|s| SalesforceEventId::parse("EventUuid", s).ok())
    }

    /// One `(event id, record id)` per job: one for a Platform Event, one per changed record
    /// for a CDC event. A record id that is not a Salesforce id becomes a SKIPPED reason.
    pub fn jobs(&self) -> Vec<(SalesforceEventId, Option<String>)> {
        let fallback = || {
            self.uuid().unwrap_or_else(|| {
                // EventBridge ids are UUIDs; bounded and filtered so a long one still fits.
                let cleaned: String = self
                    .eventbridge_id
                    .chars()
                    .filter(|c| c.is_ascii_alphanumeric() || *c == '-')
                    .take(100)
                    .collect();
                SalesforceEventId::parse("id", &format!("eb:{cleaned}")).unwrap_or_else(|_| {
                    SalesforceEventId::parse("id", "eb:unknown").expect("valid literal id")
                })
            })
        };
        let Some(h) = self.header() else {
            return vec![(fallback(), None)];
        };
        let records: Vec<String> = h
            .get("recordIds")
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(Value::as_str)
                    .take(MAX_RECORDS)
                    .map(str::to_owned)
                    .collect()
            })
            .unwrap_or_default();
        let tk = h.get("transactionKey").and_then(Value::as_str);
        let seq = h.get("sequenceNumber").and_then(|v| match v {
            Value::Number(n) => n.as_u64().map(|n| n.to_string()),
            Value::String(s) => Some(s.clone()),
            _ => None,
        });
        if records.is_empty() {
            return vec![(fallback(), None)];
        }
        records
            .into_iter()
            .map(|rec| {
                let safe: String = rec
                    .chars()
                    .filter(char::is_ascii_alphanumeric)
                    .take(18)
                    .collect();
                let id = match (tk, &seq) {
                    (Some(tk), Some(seq)) => {
                        SalesforceEventId::parse("id", &format!("cdc:{tk}:{seq}:{safe}")).ok()
                    }
                    _ => None,
                }
                .unwrap_or_else(|| {
                    let base = fallback();
                    SalesforceEventId::parse("id", &format!("{base}:{safe}")).unwrap_or(base)
                });
                (id, Some(rec))
            })
            .collect()
    }
}

/// What became of one job of a relayed event.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct JobOutcome {
    pub event_id: String,
    /// `queued`, `duplicate` or `skipped`.
    pub status: &'static str,
    /// A duplicate's stored job status (`PENDING`, `DONE`, `SKIPPED`…); `rule` and `reason` are
    /// then the stored job's too, not what today's routing would make of the event.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stored: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rule: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// What became of one relayed event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EventOutcome {
    /// Stored: one job (or one per CDC record).
    Stored(Vec<JobOutcome>),
    /// Refused without being stored (and counted).
    Rejected(Rejection),
}

impl EventOutcome {
    pub fn to_json(&self) -> Value {
        match self {
            Self::Stored(jobs) => json!({"jobs": jobs}),
            Self::Rejected(r) => json!({"status": "rejected", "reason": r.to_string()}),
        }
    }
}

/// Built once per cold start.
#[derive(Clone)]
pub struct RelayApp {
    config: Arc<RelayConfig>,
    store: Store,
}

impl RelayApp {
    pub fn new(config: RelayConfig, store: Store) -> Self {
        Self {
            config: Arc::new(config),
            store,
        }
    }

    /// Read the configuration (and the routing document) and build the DynamoDB client. No
    /// secret: the relay verifies no signature.
    pub async fn from_env() -> Result<Self, ConfigError> {
        let config = RelayConfig::from_env(&Env::process())?;
        let sdk = crate::config::aws_sdk_config().await;
        let store = Store::new(crate::store::client(&sdk), config.common.table_name.clone());
        info!(routing = %config.routing, "relay ready");
        Ok(Self::new(config, store))
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    pub fn config(&self) -> &RelayConfig {
        &self.config
    }

    /// The Lambda handler: an SQS batch (the production path) answers `batchItemFailures` for
    /// the records whose writes could not be made; a bare EventBridge event (a direct rule
    /// target, `cargo lambda invoke`) answers what became of it, and fails only when its writes
    /// could not be made, so the invoker retries.
    pub async fn handle(&self, payload: Value) -> Result<Value, StoreError> {
        let Some(records) = payload.get("Records").and_then(Value::as_array) else {
            return Ok(self.handle_event(&payload).await?.to_json());
        };
        let mut failures = Vec::new();
        for record in records {
            let message_id = record
                .get("messageId")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned();
            let event = match record.get("body").and_then(Value::as_str) {
                Some(b) => serde_json::from_str::<Value>(b)
                    .unwrap_or_else(|e| json!({"_unparsable": e.to_string()})),
                None => json!({"_unparsable": "the SQS record has no body"}),
            };
            let span = info_span!("relay", message_id = %message_id);
            if let Err(e) = self.handle_event(&event).instrument(span).await {
                warn!(message_id = %message_id, error = %e, "relayed event not stored; SQS will deliver it again");
                failures.push(json!({"itemIdentifier": message_id}));
            }
        }
        Ok(json!({"batchItemFailures": failures}))
    }

    /// One EventBridge event: check, route, store. `Err` only when a write could not be made.
    pub async fn handle_event(&self, event: &Value) -> Result<EventOutcome, StoreError> {
        let relayed = match RelayedEvent::parse(event, &self.config.org_ids) {
            Ok(r) => r,
            Err(rejection) => {
                warn!(reason = %rejection, "relayed event rejected");
                metric_by(
                    "relay_rejected",
                    1.0,
                    Unit::Count,
                    "reason",
                    rejection.kind(),
                );
                return Ok(EventOutcome::Rejected(rejection));
            }
        };
        let now_ms = crate::now_millis();
        let mut outcomes = Vec::new();
        for (event_id, record) in relayed.jobs() {
            let span = info_span!(
                "relay_job",
                route = ROUTE_RELAY,
                event_id = event_id.as_str(),
                detail_type = relayed.detail_type.as_str()
            );
            let outcome = self
                .store_job(&relayed, event_id, record.as_deref(), now_ms)
                .instrument(span)
                .await?;
            outcomes.push(outcome);
        }
        Ok(EventOutcome::Stored(outcomes))
    }

    async fn store_job(
        &self,
        relayed: &RelayedEvent,
        event_id: SalesforceEventId,
        record: Option<&str>,
        now_ms: i64,
    ) -> Result<JobOutcome, StoreError> {
        let routing = &self.config.routing;
        let input = Input::Relay {
            detail_type: &relayed.detail_type,
            payload: &relayed.payload,
        };
        let source = if relayed.is_change_event() {
            EventSource::ChangeEvent
        } else {
            EventSource::EventRelay
        };
        let (item, rule, skipped) = match routing.route(input, record) {
            Routed::Matched(rule, Ok(x)) => {
                let dial = DialRequest {
                    event_id: event_id.clone(),
                    contact_id: x.contact_id,
                    case_id: x.case_id,
                    priority: x.priority,
                    reason: x.reason,
                    source,
                    rule: Some(rule.id.clone()),
                };
                (
                    new_dial_job(&dial, now_ms, self.config.event_ttl),
                    Some(rule.id.clone()),
                    None,
                )
            }
            Routed::Matched(rule, Err(e)) => {
                let reason = format!("rule {}: a mapped field is not usable: {e}", rule.id);
                (
                    self.skipped(relayed, &event_id, record, &reason, now_ms),
                    Some(rule.id.clone()),
                    Some(reason),
                )
            }
            Routed::NoMatch(why) => (
                self.skipped(relayed, &event_id, record, &why, now_ms),
                None,
                Some(why),
            ),
        };
        let status = match (self.store.put_if_absent_or_stored(item).await?, &skipped) {
            (Stored::Existing(old), _) => {
                let stored = StoredJob::of(&old);
                info!(stored = %stored.status, "duplicate relayed event");
                metric_by("duplicates", 1.0, Unit::Count, "route", ROUTE_RELAY);
                return Ok(JobOutcome {
                    event_id: event_id.as_str().to_owned(),
                    status: "duplicate",
                    stored: Some(stored.status),
                    rule: stored.rule,
                    reason: stored.reason,
                });
            }
            (Stored::Created, Some(reason)) => {
                warn!(%reason, "relayed event skipped");
                metric_by("events_skipped", 1.0, Unit::Count, "route", ROUTE_RELAY);
                "skipped"
            }
            (Stored::Created, None) => {
                info!(
                    rule = rule.as_deref().unwrap_or_default(),
                    "relayed event queued"
                );
                metric_by("events_accepted", 1.0, Unit::Count, "route", ROUTE_RELAY);
                "queued"
            }
        };
        Ok(JobOutcome {
            event_id: event_id.as_str().to_owned(),
            status,
            stored: None,
            rule,
            reason: skipped,
        })
    }

    /// The SKIPPED record of a relayed event: what is known about it, and what the routing saw
    /// (kept for `sfvapi-admin reroute`, gone with the item).
    fn skipped(
        &self,
        relayed: &RelayedEvent,
        event_id: &SalesforceEventId,
        record: Option<&str>,
        reason: &str,
        now_ms: i64,
    ) -> crate::store::Item {
        let mut payload = json!({
            "eventId": event_id.as_str(),
            "source": if relayed.is_change_event() { "change-event" } else { "event-relay" },
            "detailType": relayed.detail_type,
            "orgId": relayed.org_id.as_str(),
        });
        if let (Some(r), Some(obj)) = (record, payload.as_object_mut()) {
            obj.insert(
                "recordId".into(),
                json!(r.chars().take(18).collect::<String>()),
            );
        }
        let mut item = skipped_event_item(
            event_id,
            payload.to_string(),
            reason,
            now_ms,
            self.config.event_ttl,
        );
        // What the routing saw, for `sfvapi-admin reroute` once the document is fixed.
        RoutingInput::Relay {
            detail_type: relayed.detail_type.clone(),
            payload: relayed.payload.clone(),
            record: record.map(str::to_owned),
            change_event: relayed.is_change_event(),
        }
        .keep_on(&mut item);
        item
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ORG: &str = "00D5e000000AbCdEAK";

    fn allowed() -> Vec<SalesforceId> {
        vec![SalesforceId::parse("o", ORG).unwrap()]
    }

    fn envelope(detail: Value) -> Value {
        json!({
            "version": "0",
            "id": "7e3c1c43-2b2c-4c1a-9b6a-1f4e2f0d9a11",
            "detail-type": "CaseChangeEvent",
            "source": format!("aws.partner/salesforce.com/{ORG}/0YL5e0000000001GAA"),
            "account": "123456789012",
            "time": "2026-12-01T10:00:00Z",
            "region": "us-east-1",
            "resources": [],
            "detail": detail,
        })
    }

    #[test]
    fn the_org_in_source_must_be_allowed() {
        let mut e = envelope(json!({"payload": {}}));
        assert!(RelayedEvent::parse(&e, &allowed()).is_ok());
        // The 15-character form of the same org matches too.
        let short = vec![SalesforceId::parse("o", &ORG[..15]).unwrap()];
        assert!(RelayedEvent::parse(&e, &short).is_ok());
        e["source"] = json!("aws.partner/salesforce.com/00D5e000000ZzZzEAK/0YL5e0000000001GAA");
        assert_eq!(
            RelayedEvent::parse(&e, &allowed()).unwrap_err().kind(),
            "org_not_allowed"
        );
        for bad in [
            "aws.partner/other.com/00D5e000000AbCdEAK/0YL",
            "aws.partner/salesforce.com/00D5e000000AbCdEAK",
            "aws.partner/salesforce.com/not-an-id/0YL",
            "aws.partner/salesforce.com/00D5e000000AbCdEAK/0YL/x",
        ] {
            e["source"] = json!(bad);
            assert_eq!(
                RelayedEvent::parse(&e, &allowed()).unwrap_err().kind(),
                "not_salesforce",
                "{bad}"
            );
        }
        let e = json!({"id": "x", "detail-type": "X__e", "source": format!("aws.partner/salesforce.com/{ORG}/0YL"), "detail": {}});
        assert_eq!(
            RelayedEvent::parse(&e, &allowed()).unwrap_err().kind(),
            "malformed"
        );
    }

    #[test]
    fn dedup_ids_prefer_salesforce_over_eventbridge() {
        let id_of = |detail: Value| {
            let e = envelope(detail);
            let r = RelayedEvent::parse(&e, &allowed()).unwrap();
            r.jobs()
                .into_iter()
                .map(|(id, rec)| (id.as_str().to_owned(), rec))
                .collect::<Vec<_>>()
        };
        assert_eq!(
            id_of(json!({"id": "9f1c-uuid", "payload": {"EventUuid": "other"}}))[0].0,
            "9f1c-uuid"
        );
        assert_eq!(
            id_of(json!({"payload": {"EventUuid": "e-uuid-1"}}))[0].0,
            "e-uuid-1"
        );
        assert_eq!(
            id_of(json!({"payload": {}}))[0].0,
            "eb:7e3c1c43-2b2c-4c1a-9b6a-1f4e2f0d9a11"
        );
        let cdc = id_of(json!({"id": "uuid-x", "payload": {"ChangeEventHeader": {
            "transactionKey": "0005e192-9e62-2554-3880-3c3718bd6308", "sequenceNumber": 1,
            "recordIds": ["5005e00000AbCdEAAV", "5005e00000DnCa1AAF"], "changeType": "UPDATE"}}}));
        assert_eq!(
            cdc,
            vec![
                (
                    "cdc:0005e192-9e62-2554-3880-3c3718bd6308:1:5005e00000AbCdEAAV".to_owned(),
                    Some("5005e00000AbCdEAAV".to_owned())
                ),
                (
                    "cdc:0005e192-9e62-2554-3880-3c3718bd6308:1:5005e00000DnCa1AAF".to_owned(),
                    Some("5005e00000DnCa1AAF".to_owned())
                ),
            ]
        );
        // Without a transaction key, the UUID plus the record.
        let cdc = id_of(json!({"id": "uuid-x", "payload": {"ChangeEventHeader": {
            "recordIds": ["5005e00000AbCdEAAV"]}}}));
        assert_eq!(cdc[0].0, "uuid-x:5005e00000AbCdEAAV");
    }
}
