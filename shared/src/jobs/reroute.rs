//! A way back for events SKIPPED while the routing document was wrong (`sfvapi-admin reroute`).
//!
//! A SKIPPED job keeps what the routing saw of its event ([`RoutingInput`], attribute `input`,
//! at most [`crate::queue::skipped::MAX_INPUT_BYTES`], gone with the item after `EVENT_TTL_DAYS`). Rerouting runs it
//! through the current document: a rule that now matches turns the item into a PENDING dial job
//! (the stream hands it to the worker, as a redrive does) with one conditional UpdateItem —
//! still SKIPPED and never rerouted before — so a job is rerouted at most once, however often
//! or concurrently the command runs.

use tracing::info;

use crate::ids::SalesforceEventId;
use crate::queue::item::{retry_shard, JobStatus, UNCLAIMED_GRACE_MS};
use crate::queue::skipped::{RoutingInput, INPUT};
use crate::queue::{JobQueue, QueueSettings};
use crate::routing::{Input, Routed, Routing};
use crate::salesforce::events::{DialRequest, EventSource};
use crate::store::attr::{n, s};
use crate::store::{applied, attr, Store, StoreError};

/// Rerouting is the job layer's half of [`RoutingInput`]; the type and how it is kept live with the
/// skipped item (`crate::queue::skipped`), where ingest and relay can write it.
impl RoutingInput {
    /// The event through `routing`: the dial request of the rule that matches, or why none.
    pub fn route(
        &self,
        routing: &Routing,
        event_id: &SalesforceEventId,
    ) -> Result<DialRequest, String> {
        let (routed, source) = match self {
            Self::Events { body } => {
                return match crate::ingest::route_json(routing, body.as_bytes()) {
                    Ok(crate::ingest::JsonEvent::Dial(d)) => Ok(d),
                    Ok(crate::ingest::JsonEvent::Skipped { reason, .. }) => Err(reason),
                    Err(e) => Err(e.to_string()),
                }
            }
            Self::OutboundMessage { notification } => (
                routing.route(Input::Outbound(notification), None),
                EventSource::OutboundMessage,
            ),
            Self::Relay {
                detail_type,
                payload,
                record,
                change_event,
            } => (
                routing.route(
                    Input::Relay {
                        detail_type,
                        payload,
                    },
                    record.as_deref(),
                ),
                if *change_event {
                    EventSource::ChangeEvent
                } else {
                    EventSource::EventRelay
                },
            ),
        };
        match routed {
            Routed::Matched(rule, Ok(x)) => Ok(DialRequest {
                event_id: event_id.clone(),
                contact_id: x.contact_id,
                case_id: x.case_id,
                priority: x.priority,
                reason: x.reason,
                source,
                rule: Some(rule.id.clone()),
            }),
            Routed::Matched(rule, Err(e)) => Err(format!(
                "rule {}: a mapped field is not usable: {e}",
                rule.id
            )),
            Routed::NoMatch(why) => Err(why),
        }
    }
}

/// What became of one job.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rerouted {
    /// PENDING now, made by `rule`.
    Queued {
        rule: String,
    },
    /// `--dry-run`: `rule` matches; nothing was written.
    WouldQueue {
        rule: String,
    },
    /// The current document does not route it either (why).
    StillSkipped {
        reason: String,
    },
    /// The job is not SKIPPED (only SKIPPED jobs are rerouted).
    NotSkipped {
        status: String,
    },
    /// Rerouted before (at most once).
    AlreadyRerouted,
    /// Its event was not kept (stored before sfvapi kept skipped events, or too large).
    NoInput,
    NotFound,
}

impl Rerouted {
    /// The summary's word for it.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Queued { .. } => "rerouted",
            Self::WouldQueue { .. } => "would reroute",
            Self::StillSkipped { .. } => "still skipped",
            Self::NotSkipped { .. } => "not skipped",
            Self::AlreadyRerouted => "already rerouted",
            Self::NoInput => "event not kept",
            Self::NotFound => "not found",
        }
    }
}

impl std::fmt::Display for Rerouted {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Queued { rule } => write!(f, "rerouted: PENDING, rule {rule}"),
            Self::WouldQueue { rule } => write!(f, "would be rerouted by rule {rule} (dry run)"),
            Self::StillSkipped { reason } => write!(f, "still skipped: {reason}"),
            Self::NotSkipped { status } => {
                write!(f, "is {status}; only SKIPPED jobs are rerouted")
            }
            Self::AlreadyRerouted => f.write_str("was rerouted before; a job is rerouted once"),
            Self::NoInput => f.write_str(
                "its event was not kept (stored before skipped events kept their input, or larger than 64 KiB): send it again from Salesforce",
            ),
            Self::NotFound => f.write_str("no such job"),
        }
    }
}

/// Reroutes SKIPPED jobs against one routing document.
pub struct Rerouter<'a> {
    pub store: &'a Store,
    pub routing: &'a Routing,
    /// Report what would happen; write nothing.
    pub dry_run: bool,
}

impl Rerouter<'_> {
    /// The SKIPPED jobs received in `[from_ms, to_ms)` (a Scan: an operator's command).
    pub async fn skipped_between(
        &self,
        from_ms: i64,
        to_ms: i64,
    ) -> Result<Vec<String>, StoreError> {
        let queue = JobQueue::new(self.store.clone(), QueueSettings::default());
        let mut pks: Vec<(i64, String)> = queue
            .list(JobStatus::Skipped)
            .await?
            .iter()
            .filter_map(|item| {
                let at = attr::opt_n(item, "received_at")?;
                let pk = attr::opt_s(item, "pk")?;
                (from_ms <= at && at < to_ms).then(|| (at, pk.to_owned()))
            })
            .collect();
        pks.sort();
        Ok(pks.into_iter().map(|(_, pk)| pk).collect())
    }

    /// One job: re-evaluated, and (unless a dry run) made PENDING by one conditional write.
    pub async fn reroute(&self, pk: &str, now_ms: i64) -> Result<Rerouted, StoreError> {
        let outcome = self.evaluate(pk, now_ms).await?;
        info!(
            pk,
            outcome = outcome.kind(),
            dry_run = self.dry_run,
            "reroute: {outcome}"
        );
        Ok(outcome)
    }

    async fn evaluate(&self, pk: &str, now_ms: i64) -> Result<Rerouted, StoreError> {
        let Some(item) = self.store.get(pk).await? else {
            return Ok(Rerouted::NotFound);
        };
        let status = attr::opt_s(&item, "status").unwrap_or_default();
        if item.contains_key("rerouted_at") && status != JobStatus::Skipped.as_str() {
            return Ok(Rerouted::AlreadyRerouted);
        }
        if status != JobStatus::Skipped.as_str() {
            return Ok(Rerouted::NotSkipped {
                status: status.to_owned(),
            });
        }
        if item.contains_key("rerouted_at") {
            return Ok(Rerouted::AlreadyRerouted);
        }
        let input = attr::opt_s(&item, INPUT)
            .and_then(|raw| serde_json::from_str::<RoutingInput>(raw).ok());
        let event_id = attr::opt_s(&item, "event_id")
            .and_then(|id| SalesforceEventId::parse("event_id", id).ok());
        let (Some(input), Some(event_id)) = (input, event_id) else {
            return Ok(Rerouted::NoInput);
        };
        let dial = match input.route(self.routing, &event_id) {
            Ok(d) => d,
            Err(reason) => return Ok(Rerouted::StillSkipped { reason }),
        };
        let rule = dial.rule.clone().unwrap_or_default();
        if self.dry_run {
            return Ok(Rerouted::WouldQueue { rule });
        }
        // DialRequest holds only typed, already-validated values: serialising it cannot fail.
        let payload = serde_json::to_string(&dial).unwrap_or_default();
        let res = self
            .store
            .client()
            .update_item()
            .table_name(self.store.table())
            .key("pk", s(pk))
            .update_expression(
                "SET #s = :pending, payload = :payload, attempts = :zero, retry_shard = :shard, \
                 next_at = :grace, rerouted_at = :now REMOVE reason, finished_at, #in",
            )
            .condition_expression("#s = :skipped AND attribute_not_exists(rerouted_at)")
            .expression_attribute_names("#s", "status")
            .expression_attribute_names("#in", INPUT)
            .expression_attribute_values(":pending", s(JobStatus::Pending.as_str()))
            .expression_attribute_values(":skipped", s(JobStatus::Skipped.as_str()))
            .expression_attribute_values(":payload", s(payload))
            .expression_attribute_values(":zero", n(0))
            .expression_attribute_values(":shard", s(retry_shard(pk)))
            .expression_attribute_values(":grace", n(now_ms + UNCLAIMED_GRACE_MS))
            .expression_attribute_values(":now", n(now_ms))
            .send()
            .await;
        Ok(match applied(res, "UpdateItem(reroute)")? {
            Some(_) => Rerouted::Queued { rule },
            // Someone rerouted (or changed) it between the read and the write.
            None => Rerouted::AlreadyRerouted,
        })
    }
}

/// How many jobs ended each way, in the order of [`Rerouted::kind`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Summary(pub Vec<(&'static str, usize)>);

impl Summary {
    pub fn add(&mut self, outcome: &Rerouted) {
        let kind = outcome.kind();
        match self.0.iter_mut().find(|(k, _)| *k == kind) {
            Some((_, count)) => *count += 1,
            None => self.0.push((kind, 1)),
        }
    }

    pub fn count(&self, kind: &str) -> usize {
        self.0
            .iter()
            .find(|(k, _)| *k == kind)
            .map(|(_, c)| *c)
            .unwrap_or(0)
    }
}

impl std::fmt::Display for Summary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.0.is_empty() {
            return f.write_str("no job");
        }
        let parts: Vec<String> = self.0.iter().map(|(k, c)| format!("{k} {c}")).collect();
        f.write_str(&parts.join(" · "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::queue::skipped::MAX_INPUT_BYTES;
    use crate::store::Item;
    use serde_json::{Map, Value};

    fn id(s: &str) -> SalesforceEventId {
        SalesforceEventId::parse("e", s).unwrap()
    }

    #[test]
    fn each_routes_input_is_routed_again_as_its_route_does() {
        let routing = Routing::built_in().unwrap();
        let http = RoutingInput::Events {
            body: r#"{"eventId":"e-1","contactId":"0035e00000XyZ12AAF"}"#.into(),
        };
        let d = http.route(&routing, &id("e-1")).unwrap();
        assert_eq!(d.rule.as_deref(), Some("http-flat"));
        assert_eq!(d.contact_id.unwrap().as_str(), "0035e00000XyZ12AAF");

        let notification: Map<String, Value> = serde_json::from_value(serde_json::json!({
            "Id": "04l5e00000AbCdEAAA",
            "sObjectType": "Case",
            "sObject": {"Id": "5005e00000AbCdEAAV", "ContactId": "0035e00000XyZ12AAF"}
        }))
        .unwrap();
        let om = RoutingInput::OutboundMessage { notification };
        let d = om.route(&routing, &id("04l5e00000AbCdEAAA")).unwrap();
        assert_eq!(d.source, EventSource::OutboundMessage);
        assert_eq!(d.contact_id.unwrap().as_str(), "0035e00000XyZ12AAF");

        // The built-in document has no relay rule: still skipped, saying why.
        let relay = RoutingInput::Relay {
            detail_type: "Call_Request__e".into(),
            payload: Map::new(),
            record: None,
            change_event: false,
        };
        let why = relay.route(&routing, &id("r-1")).unwrap_err();
        assert!(why.starts_with("no routing rule matches"), "{why}");
    }

    #[test]
    fn an_input_is_kept_as_json_and_a_large_one_not_at_all() {
        let mut item = Item::new();
        let small = RoutingInput::Events { body: "{}".into() };
        small.keep_on(&mut item);
        let kept: RoutingInput = serde_json::from_str(attr::opt_s(&item, INPUT).unwrap()).unwrap();
        assert_eq!(kept, small);
        let mut item = Item::new();
        RoutingInput::Events {
            body: "x".repeat(MAX_INPUT_BYTES),
        }
        .keep_on(&mut item);
        assert!(!item.contains_key(INPUT));
    }
}
