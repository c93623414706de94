//! Inbound calls: answering Vapi's `assistant-request` for a customer who calls the number back.
//!
//! When a call comes in on a phone number whose server URL is the webhook, Vapi sends
//! `assistant-request` and waits for the assistant: "You must respond to the `assistant-request`
//! webhook within 7.5 seconds end-to-end … This limit is fixed and not configurable"
//! (docs.vapi.ai/server-url/events, "Retrieving Assistants"); without an answer the call ends
//! (`assistant-request-failed`). So everything here runs under one deadline
//! (`VAPI_ASSISTANT_REQUEST_DEADLINE_MS`, default 3 s) and every path ends in an answer:
//!
//! 1. the caller's number (`call.customer.number`, parsed as E.164; `vapi::messages`);
//! 2. sfvapi's own recent calls to that number (`crate::callers`, one GetItem, then the call's
//!    `call#` for the snapshot): no Salesforce request;
//! 3. else one Salesforce search for the number in phone fields and the Contact's most recent open
//!    Case ([`CallerDirectory`], `salesforce::search`);
//! 4. exactly one Contact → the inbound assistant with her context: `variableValues`, a greeting by
//!    name (`firstMessage`), and the same signed call context as an outbound call
//!    (`metadata.sfvapiEventId` = `inbound-<callId>`, `contactId`, `caseId`, `sfvapiContextSig`,
//!    `vapi::context`), and a `call#` item with the snapshot, so tools, the end-of-call report, the
//!    Task and the follow-up work as they do for outbound calls;
//! 5. anything else — no or unusable number, a number not on file, a number shared by several
//!    Contacts, Salesforce slow or down, the deadline passed — → the same assistant with no
//!    customer data at all: never an error, never another customer's data.
//!
//! The answer is Vapi's `ServerMessageResponseAssistantRequest`: `{"assistantId", "assistantOverrides":
//! {"firstMessage"?, "variableValues", "metadata"?}}` (Vapi OpenAPI; docs.vapi.ai/assistants/personalization:
//! "An existing assistant ID and a set of dynamic variables").

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{json, Map, Value};
use tracing::{info, warn};

use crate::callers;
use crate::calls::{read_call, record_call, CallSnapshot, NewCall};
use crate::config::{ConfigError, Env};
use crate::ids::{E164Phone, SalesforceEventId, SalesforceId};
use crate::secrets::SecretString;
use crate::store::Store;
use crate::telemetry::{metric, Unit};
use crate::vapi::messages::{AssistantRequest, CallRef, CallerNumber};

/// Vapi's fixed end-to-end limit for the answer (docs.vapi.ai/server-url/events); the deadline
/// must leave room for the network both ways ("target < ~6s", the same page).
pub const VAPI_LIMIT: Duration = Duration::from_millis(7_500);
const MAX_DEADLINE_MS: u64 = 6_000;
/// The Salesforce search's answer may name this many Contacts; two already mean "several".
pub const SEARCH_LIMIT: u32 = 10;

/// The inbound settings of the webhook. Inbound answering is on when `VAPI_INBOUND_ASSISTANT_ID`
/// is set.
#[derive(Debug, Clone)]
pub struct InboundConfig {
    /// `VAPI_INBOUND_ASSISTANT_ID`: the assistant every inbound call gets (create it from
    /// `events/assistant-inbound.json`).
    pub assistant_id: String,
    /// `VAPI_ASSISTANT_REQUEST_DEADLINE_MS` (default 3000, 100..=6000): how long finding the
    /// caller may take before the generic assistant is answered.
    pub deadline: Duration,
    /// `INBOUND_GREETING`: the first words to a known caller with an open Case; `{firstName}`,
    /// `{caseSubject}`, `{caseNumber}` are filled in.
    pub greeting: String,
    /// `INBOUND_GREETING_NO_CASE`: the same for a known caller without an open Case.
    pub greeting_no_case: String,
    /// `INBOUND_SALESFORCE_SEARCH` (default true): search Salesforce for callers sfvapi has not
    /// called recently (false: only the recent-callers index, no Salesforce request at all).
    pub salesforce_search: bool,
}

impl InboundConfig {
    /// `None` when `VAPI_INBOUND_ASSISTANT_ID` is unset (inbound calls are not answered).
    pub fn from_env<F: Fn(&str) -> Option<String>>(
        env: &Env<F>,
    ) -> Result<Option<Self>, ConfigError> {
        let Some(assistant_id) = env.optional("VAPI_INBOUND_ASSISTANT_ID") else {
            return Ok(None);
        };
        let mut p = crate::config::Problems::new();
        let ms: u64 = p.or(
            env.parse_or("VAPI_ASSISTANT_REQUEST_DEADLINE_MS", 3_000),
            3_000,
        );
        if !(100..=MAX_DEADLINE_MS).contains(&ms) {
            p.push(ConfigError::Invalid {
                var: "VAPI_ASSISTANT_REQUEST_DEADLINE_MS",
                reason: format!(
                    "must be between 100 and {MAX_DEADLINE_MS} ms (Vapi ends the call when no assistant arrives within 7.5 s end to end)"
                ),
            });
        }
        let salesforce_search = p.or(env.parse_or("INBOUND_SALESFORCE_SEARCH", true), true);
        p.finish(Some(Self {
            assistant_id,
            deadline: Duration::from_millis(ms),
            greeting: env.optional("INBOUND_GREETING").unwrap_or_else(|| {
                "Hi {firstName}, thanks for calling us back about your case, {caseSubject}. How can I help?".into()
            }),
            greeting_no_case: env.optional("INBOUND_GREETING_NO_CASE").unwrap_or_else(|| {
                "Hi {firstName}, thanks for calling us back. How can I help?".into()
            }),
            salesforce_search,
        }))
    }
}

/// A caller found in the CRM: the Contact, her most recent open Case, and the snapshot the
/// assistant's tools answer from.
#[derive(Debug, Clone, PartialEq)]
pub struct FoundCaller {
    pub contact_id: SalesforceId,
    pub case_id: Option<SalesforceId>,
    pub snapshot: CallSnapshot,
}

/// What a search for a number found.
#[derive(Debug, Clone, PartialEq)]
pub enum DirectoryMatch {
    /// No Contact has this number.
    Nobody,
    One(Box<FoundCaller>),
    /// Several Contacts share the number (how many were seen).
    Several(usize),
}

#[derive(Debug, Clone, thiserror::Error)]
pub enum DirectoryError {
    /// The CRM did not answer or refused; the caller gets the generic assistant.
    #[error("the caller could not be looked up: {0}")]
    Unavailable(String),
}

pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Port: find the Contact behind a phone number. Salesforce's search implements it
/// (`salesforce::search::SalesforceCallerSearch`); the webhook applies the deadline.
pub trait CallerDirectory: Send + Sync {
    fn find_by_phone<'a>(
        &'a self,
        phone: &'a E164Phone,
    ) -> BoxFuture<'a, Result<DirectoryMatch, DirectoryError>>;
}

/// Where a known caller's context came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// sfvapi called this number recently (`phone#` → `call#`): no Salesforce request.
    RecentCall,
    /// The Salesforce search.
    Search,
}

/// Why a caller got the generic assistant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GenericWhy {
    /// No usable caller number (withheld, not E.164).
    NoNumber,
    /// The message had no call id, so no context could be tied to the call.
    NoCall,
    /// No `context_key` in the Vapi server secret: a context could not be signed.
    NoContextKey,
    /// No Contact has this number.
    NotOnFile,
    /// Several Contacts share the number.
    SeveralContacts,
    /// Salesforce (or DynamoDB) failed.
    Unavailable,
    /// The deadline passed.
    Timeout,
}

impl GenericWhy {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::NoNumber => "no-number",
            Self::NoCall => "no-call-id",
            Self::NoContextKey => "no-context-key",
            Self::NotOnFile => "not-on-file",
            Self::SeveralContacts => "several-contacts",
            Self::Unavailable => "unavailable",
            Self::Timeout => "timeout",
        }
    }
}

/// What the webhook answered, and why.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    Known {
        source: Source,
        contact_id: SalesforceId,
    },
    Generic(GenericWhy),
}

/// The answer to one `assistant-request`.
#[derive(Debug, Clone)]
pub struct Answer {
    /// A `ServerMessageResponseAssistantRequest`.
    pub body: Value,
    pub outcome: Outcome,
}

enum Resolution {
    Known(Box<FoundCaller>, Source),
    Generic(GenericWhy),
}

/// The inbound side of the webhook. Built once per cold start.
pub struct Inbound {
    config: InboundConfig,
    store: Store,
    directory: Option<Arc<dyn CallerDirectory>>,
    /// `EVENT_TTL_DAYS`: how long the inbound call's `call#` is kept.
    call_ttl: Duration,
}

/// The event id of an inbound call's signed context: `inbound-<callId>` (it names no Salesforce
/// event, but it ties the call's messages together the way an outbound call's event id does).
pub fn inbound_event_id(call: &crate::ids::VapiCallId) -> Option<SalesforceEventId> {
    SalesforceEventId::parse("sfvapiEventId", &format!("inbound-{}", call.as_str())).ok()
}

impl Inbound {
    pub fn new(
        config: InboundConfig,
        store: Store,
        directory: Option<Arc<dyn CallerDirectory>>,
        call_ttl: Duration,
    ) -> Self {
        Self {
            config,
            store,
            directory,
            call_ttl,
        }
    }

    pub fn config(&self) -> &InboundConfig {
        &self.config
    }

    /// Answer one `assistant-request`. Never fails: whatever goes wrong, the caller is answered
    /// with the generic assistant, within the deadline.
    pub async fn answer(
        &self,
        call: Option<&CallRef>,
        req: &AssistantRequest,
        key: Option<&SecretString>,
    ) -> Answer {
        let started = Instant::now();
        let answer = self.decide(call, req, key, started).await;
        let ms = started.elapsed().as_millis() as f64;
        metric("assistant_request_ms", ms, Unit::Milliseconds);
        match &answer.outcome {
            Outcome::Known { source, .. } => {
                info!(source = ?source, elapsed_ms = ms, "inbound caller known: her assistant and context");
                metric("inbound_calls_known", 1.0, Unit::Count);
            }
            Outcome::Generic(why) => {
                info!(
                    why = why.as_str(),
                    elapsed_ms = ms,
                    "inbound caller not identified: the generic assistant"
                );
                metric("inbound_calls_generic", 1.0, Unit::Count);
            }
        }
        answer
    }

    async fn decide(
        &self,
        call: Option<&CallRef>,
        req: &AssistantRequest,
        key: Option<&SecretString>,
        started: Instant,
    ) -> Answer {
        let generic = |why| Answer {
            body: self.generic_body(),
            outcome: Outcome::Generic(why),
        };
        let Some(call) = call else {
            return generic(GenericWhy::NoCall);
        };
        let Some(key) = key else {
            warn!("no context_key in the Vapi server secret: inbound callers cannot be given their context");
            return generic(GenericWhy::NoContextKey);
        };
        let phone = match &req.caller {
            CallerNumber::Known(p) => p.clone(),
            CallerNumber::Withheld | CallerNumber::Unusable => {
                return generic(GenericWhy::NoNumber)
            }
        };
        info!(phone = %phone, "inbound call: finding the caller");
        let resolved =
            match tokio::time::timeout(self.config.deadline, self.resolve(key, &phone)).await {
                Ok(r) => r,
                Err(_) => {
                    warn!(
                        deadline_ms = self.config.deadline.as_millis() as u64,
                        "finding the caller took too long"
                    );
                    Resolution::Generic(GenericWhy::Timeout)
                }
            };
        let (found, source) = match resolved {
            Resolution::Known(found, source) => (found, source),
            Resolution::Generic(why) => return generic(why),
        };
        let Some(event_id) = inbound_event_id(&call.id) else {
            return generic(GenericWhy::NoCall);
        };
        let Some(sig) =
            crate::vapi::context::sign(key, &event_id, &found.contact_id, found.case_id.as_ref())
        else {
            return generic(GenericWhy::NoContextKey);
        };
        // The tools answer from call#; writing it may use what is left of the deadline (at
        // least a moment). Without it the call still carries its signed context: the report,
        // the Task and logNote work, and lookups fall back to a live read or "no context".
        let left = self
            .config
            .deadline
            .saturating_sub(started.elapsed())
            .max(Duration::from_millis(200));
        let record = NewCall {
            call_number: 1,
            call_id: call.id.clone(),
            event_id: event_id.clone(),
            contact_id: found.contact_id.clone(),
            case_id: found.case_id.clone(),
            snapshot: found.snapshot.clone(),
            created_at_ms: crate::now_millis(),
            slot: None,
        };
        match tokio::time::timeout(left, record_call(&self.store, &record, self.call_ttl)).await {
            Ok(Ok(_)) => {}
            // call# names another event: its snapshot is someone else's, and the tools would
            // answer from it. Nothing about this caller is given out.
            Ok(Err(e @ crate::store::StoreError::Corrupt { .. })) => {
                warn!(error = %e, "the call id already belongs to another call's context");
                return generic(GenericWhy::NoCall);
            }
            Ok(Err(e)) => warn!(error = %e, "call# of the inbound call not written"),
            Err(_) => warn!("call# of the inbound call not written in time"),
        }
        Answer {
            body: self.known_body(&found, source, &event_id, &sig),
            outcome: Outcome::Known {
                source,
                contact_id: found.contact_id.clone(),
            },
        }
    }

    /// Our own recent calls first, then the directory.
    async fn resolve(&self, key: &SecretString, phone: &E164Phone) -> Resolution {
        match callers::lookup(&self.store, key, phone, crate::now_secs()).await {
            Ok(Some(recent)) => match recent.only_contact() {
                None => {
                    info!(
                        contacts = recent.contact_ids.len(),
                        "the number was called for several Contacts"
                    );
                    return Resolution::Generic(GenericWhy::SeveralContacts);
                }
                Some(contact) => match read_call(&self.store, &recent.call_id).await {
                    Ok(Some(rec)) if rec.contact_id.as_deref() == Some(contact.as_str()) => {
                        if let Some(snapshot) = rec.snapshot {
                            let case_id = rec
                                .case_id
                                .as_deref()
                                .and_then(|c| SalesforceId::parse("case_id", c).ok());
                            return Resolution::Known(
                                Box::new(FoundCaller {
                                    contact_id: contact.clone(),
                                    case_id,
                                    snapshot,
                                }),
                                Source::RecentCall,
                            );
                        }
                    }
                    Ok(_) => info!("the recent call's call# has no snapshot; searching"),
                    Err(e) => warn!(error = %e, "call# unreadable; searching"),
                },
            },
            Ok(None) => {}
            // A DynamoDB hiccup must not cost the caller her context: Salesforce may still know.
            Err(e) => warn!(error = %e, "recent-callers index unavailable; searching"),
        }
        let Some(directory) = self.directory.clone() else {
            return Resolution::Generic(GenericWhy::NotOnFile);
        };
        // The search runs in its own task: the deadline stops our waiting, not the work, as for
        // live lookups (a token refresh must never be cut off halfway).
        let owned = phone.clone();
        let search = tokio::spawn(async move { directory.find_by_phone(&owned).await });
        match search.await {
            Ok(Ok(DirectoryMatch::One(found))) => Resolution::Known(found, Source::Search),
            Ok(Ok(DirectoryMatch::Nobody)) => Resolution::Generic(GenericWhy::NotOnFile),
            Ok(Ok(DirectoryMatch::Several(n))) => {
                info!(contacts = n, "several Contacts have this number");
                Resolution::Generic(GenericWhy::SeveralContacts)
            }
            Ok(Err(e)) => {
                warn!(error = %e, "caller search failed");
                Resolution::Generic(GenericWhy::Unavailable)
            }
            Err(e) => {
                warn!(error = %e, "caller search task failed");
                Resolution::Generic(GenericWhy::Unavailable)
            }
        }
    }

    /// The assistant with nothing about the caller: no name, no case, no metadata.
    pub fn generic_body(&self) -> Value {
        json!({
            "assistantId": self.config.assistant_id,
            "assistantOverrides": {
                "variableValues": {"callerKnown": "no", "recentCall": "no"},
            },
        })
    }

    fn known_body(
        &self,
        found: &FoundCaller,
        source: Source,
        event_id: &SalesforceEventId,
        sig: &str,
    ) -> Value {
        let vars = variable_values(&found.snapshot, source);
        let first_name = vars
            .get("customerFirstName")
            .and_then(Value::as_str)
            .unwrap_or("there");
        let case = found.snapshot.case.as_ref();
        let template = match case.and_then(|c| c.subject.as_deref().or(c.case_number.as_deref())) {
            Some(_) => &self.config.greeting,
            None => &self.config.greeting_no_case,
        };
        let greeting = template
            .replace("{firstName}", &spoken(first_name))
            .replace(
                "{caseSubject}",
                &spoken(case.and_then(|c| c.subject.as_deref()).unwrap_or("")),
            )
            .replace(
                "{caseNumber}",
                &spoken(case.and_then(|c| c.case_number.as_deref()).unwrap_or("")),
            );
        let mut metadata = json!({
            "sfvapiEventId": event_id.as_str(),
            "contactId": found.contact_id.as_str(),
            crate::vapi::context::SIG_FIELD: sig,
        });
        if let Some(c) = &found.case_id {
            metadata["caseId"] = json!(c.as_str());
        }
        json!({
            "assistantId": self.config.assistant_id,
            "assistantOverrides": {
                "firstMessage": greeting,
                "variableValues": vars,
                "metadata": metadata,
            },
        })
    }
}

/// CRM text put into the greeting, which Vapi renders as a template (LiquidJS,
/// docs.vapi.ai/assistants/dynamic-variables): braces are dropped so a Case subject such as
/// `{{customerName}}` stays text, and the length is bounded.
fn spoken(s: &str) -> String {
    crate::vapi::messages::bounded(
        &s.chars()
            .filter(|c| !matches!(c, '{' | '}' | '%'))
            .collect::<String>(),
        200,
    )
    .trim()
    .to_owned()
}

/// The inbound assistant's prompt variables (`events/assistant-inbound.json`), from the snapshot.
pub fn variable_values(snapshot: &CallSnapshot, source: Source) -> Map<String, Value> {
    let mut v = Map::new();
    let mut put = |k: &str, val: Option<&str>| {
        if let Some(val) = val.filter(|s| !s.is_empty()) {
            v.insert(k.to_owned(), Value::String(val.to_owned()));
        }
    };
    let c = &snapshot.customer;
    put("callerKnown", Some("yes"));
    put(
        "recentCall",
        Some(if source == Source::RecentCall {
            "yes"
        } else {
            "no"
        }),
    );
    put("customerName", c.name.as_deref());
    put(
        "customerFirstName",
        c.name.as_deref().and_then(|n| n.split_whitespace().next()),
    );
    put("accountStatus", c.account_status.as_deref());
    put("preferredLanguage", c.preferred_language.as_deref());
    put("lastInteraction", c.last_interaction.as_deref());
    if let Some(case) = &snapshot.case {
        put("caseId", case.case_id.as_deref());
        put("caseNumber", case.case_number.as_deref());
        put("caseSubject", case.subject.as_deref());
        put("caseStatus", case.status.as_deref());
        put("priority", case.priority.as_deref());
        put("reason", case.reason.as_deref());
    }
    v
}

/// The answer when inbound calls are not configured: Vapi speaks `error` and ends the call
/// (`assistant-request-returned-error`), which is what a number without an assistant does.
pub fn not_configured_body() -> Value {
    json!({"error": "Sorry, this number cannot take calls right now. Please try again later."})
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::calls::{CaseSnapshot, CustomerSnapshot};
    use crate::config::tests::env;

    fn snapshot() -> CallSnapshot {
        CallSnapshot {
            customer: CustomerSnapshot {
                name: Some("Ada Lovelace".into()),
                account_status: Some("Past Due".into()),
                ..Default::default()
            },
            case: Some(CaseSnapshot {
                case_id: Some("5005e00000AbCdEAAV".into()),
                case_number: Some("00001026".into()),
                subject: Some("Payment failed {{customerName}} twice".into()),
                ..Default::default()
            }),
            captured_at: None,
            handoff: None,
        }
    }

    #[test]
    fn config_is_off_without_an_assistant_and_bounds_the_deadline() {
        assert!(InboundConfig::from_env(&env(&[])).unwrap().is_none());
        let c = InboundConfig::from_env(&env(&[("VAPI_INBOUND_ASSISTANT_ID", "a1")]))
            .unwrap()
            .unwrap();
        assert_eq!(c.deadline, Duration::from_secs(3));
        assert!(c.deadline < VAPI_LIMIT);
        for bad in ["50", "7500", "x"] {
            let e = InboundConfig::from_env(&env(&[
                ("VAPI_INBOUND_ASSISTANT_ID", "a1"),
                ("VAPI_ASSISTANT_REQUEST_DEADLINE_MS", bad),
            ]))
            .unwrap_err();
            assert!(
                e.to_string().contains("VAPI_ASSISTANT_REQUEST_DEADLINE_MS"),
                "{e}"
            );
        }
    }

    #[test]
    fn variables_name_the_caller_and_her_case() {
        let v = variable_values(&snapshot(), Source::RecentCall);
        assert_eq!(v["customerFirstName"], "Ada");
        assert_eq!(v["caseNumber"], "00001026");
        assert_eq!(v["callerKnown"], "yes");
        assert_eq!(v["recentCall"], "yes");
        assert!(!v.contains_key("reason"), "absent values are left out");
    }

    #[test]
    fn crm_text_cannot_become_a_template() {
        assert_eq!(
            spoken("Payment failed {{customerName}} twice"),
            "Payment failed customerName twice"
        );
        assert_eq!(spoken("{% if x %}"), "if x");
        assert_eq!(spoken(&"a".repeat(500)).len(), 200);
    }
}
