//! The routing document: which Salesforce events call whom, with which assistant, and where the
//! call's outcome is written back. One YAML file (`routing.yaml` at the repository root, built
//! into every function; `ROUTING_FILE` points a function at another one), validated once at cold
//! start: a bad document stops the init with its path and the problem.
//!
//! # Why YAML, in the bundle
//! - **YAML** because a Salesforce admin reads and edits it: comments next to each rule, no
//!   quoting of every key, and field names exactly as Setup shows them (`Contact__c`).
//! - **In the bundle** (compiled in with `include_str!`) rather than SSM Parameter Store or a
//!   template parameter: it is reviewed and versioned with the code, `make test` validates the
//!   very file that ships (so a broken document never reaches AWS), every function of one deploy
//!   sees the same document (the ingest and the worker agree on rule ids), a cold start reads no
//!   network and needs no IAM, and a rollback is the previous deploy. A change reaches running
//!   functions the way code does: `sam deploy` publishes new versions and every new instance
//!   starts with the new document. A template parameter would hit Lambda's 4 KB environment
//!   limit; SSM would let a bad edit reach half-warm fleets at random cold starts.
//!
//! # What a rule says
//! ```yaml
//! - id: case-priority-high            # stored on the job (`sfvapi-admin show`)
//!   when:                             # all of these must hold
//!     detailType: CaseChangeEvent     # relayed events: the EventBridge detail-type (or a list)
//!     changeType: UPDATE              # CDC: ChangeEventHeader.changeType (or a list)
//!     changed: [Priority]             # CDC: every one of these is in changedFields
//!     fields:                         # field predicates (a value, a list of values,
//!       Priority: High                #   {present: true|false} or {not: value|list})
//!   case: $recordId                   # CDC: the changed record, one job per record id
//!                                     #   (`contact: $recordId` for a ContactChangeEvent)
//!   contact: [ContactId, case.ContactId]  # first present wins; `case.ContactId` = read the
//!                                     #   Case at dial time, in the worker
//!   priority: Priority
//!   reason: Subject                   # (eventId: only for the signed HTTP route)
//!   call:                             # what it does; every key optional (env defaults)
//!     assistantId: asst-escalations
//!     phoneNumberId: pn-support
//!     variables: { campaign: escalations }
//!     followUp: always                # never | not-reached | always
//!     quietHours: "21:00-08:00"       # or "none"; quietHoursUtcOffset: "-05:00"
//!     handoff:                        # a customer asking for a person is transferred (warm)
//!       to: caseOwner                 #   caseOwner | contactOwner, or number: "+1…"
//!       fallback: "+15550100123"      #   when the owner has no number (a queue)
//!   writeBack:                        # the call's outcome onto the Case / Contact
//!     Case:
//!       Call_Outcome__c: successEvaluation
//!       Callback_Requested__c: structuredData.callbackRequested
//! ```
//! `when` takes `route: events | outbound-message` (the signed HTTP and Outbound Message routes)
//! or `detailType` (Event Relay), never both. Paths are dot-separated: for the HTTP route they
//! start at the JSON body, for an Outbound Message at the notification (`sObjectType`,
//! `sObject.<Field>`), for a relayed event at its fields (`detail.payload`; the CDC header is
//! `ChangeEventHeader.<field>`).

use std::collections::{BTreeMap, HashSet};
use std::fmt;

use serde::Deserialize;
use serde_json::{Map, Value};

use crate::ids::{E164Phone, Priority, SalesforceEventId, SalesforceId};
use crate::policy::followup::FollowupPolicy;
use crate::policy::spec::{Policy, RawPolicy};
use crate::policy::window::QuietHours;

/// The document shipped in the bundle (the repository's `routing.yaml`).
pub const BUILT_IN: &str = include_str!("../../routing.yaml");
/// The same document as JSON, written by `build.rs`: what a cold start parses.
const BUILT_IN_JSON: &str = include_str!(concat!(env!("OUT_DIR"), "/routing.json"));
/// How the built-in document is named in errors and logs.
pub const BUILT_IN_NAME: &str = "routing.yaml (built in)";
/// The variable that points a function at another document.
pub const ROUTING_FILE: &str = "ROUTING_FILE";

/// Longest free-text value a rule may put into a prompt variable.
const MAX_VARIABLE_CHARS: usize = 1000;
const MAX_RULES: usize = 200;
/// Longer reasons are cut, as `events::clean_reason` does.
const MAX_REASON_CHARS: usize = 1000;

/// Why a document was refused: where it came from and what is wrong, naming the rule.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("routing document {source_name} is invalid: {problem}")]
pub struct RoutingError {
    pub source_name: String,
    pub problem: String,
}

/// Why a mapped field did not give a usable value (`field` names the event's field).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {problem}")]
pub struct FieldError {
    pub field: String,
    pub problem: String,
}

impl FieldError {
    fn new(field: impl Into<String>, problem: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            problem: problem.into(),
        }
    }
}

/// The HTTP routes of the ingest (`template.yaml`'s HttpApi).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HttpRoute {
    Events,
    OutboundMessage,
}

impl HttpRoute {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Events => "events",
            Self::OutboundMessage => "outbound-message",
        }
    }
}

/// A dot-separated field path, checked at load.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Path {
    raw: String,
    segments: Vec<String>,
}

impl Path {
    fn parse(raw: &str) -> Result<Self, String> {
        let segments: Vec<String> = raw.split('.').map(str::to_owned).collect();
        let ok = !raw.is_empty()
            && raw.len() <= 200
            && segments.iter().all(|s| {
                !s.is_empty() && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
            });
        if !ok {
            return Err(format!(
                "{raw:?} is not a field path (dot-separated field names of A-Z a-z 0-9 _)"
            ));
        }
        Ok(Self {
            raw: raw.to_owned(),
            segments,
        })
    }
    pub fn as_str(&self) -> &str {
        &self.raw
    }
    fn last(&self) -> &str {
        self.segments.last().map(String::as_str).unwrap_or("")
    }
}

/// Where the Case id comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CaseSource {
    Field(Path),
    /// `$recordId`: the changed record of a Change Data Capture event (one job per record id).
    RecordId,
}

/// Where the Contact id comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ContactSource {
    Field(Path),
    /// `$recordId`: the changed record of a Change Data Capture event on Contact
    /// (`ContactChangeEvent`), one job per record id.
    RecordId,
    /// `case.ContactId`: the Case's Contact, read by the worker at dial time (the ingest stays
    /// one write).
    FromCase,
}

/// A field predicate of `when.fields`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Predicate {
    /// The event carries the field (a null value counts) — or, with `false`, does not.
    Present(bool),
    /// The field's value (as text) is one of these.
    OneOf(Vec<String>),
    /// The field is absent or its value is none of these.
    NoneOf(Vec<String>),
}

/// What a rule matches.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Matcher {
    Route(HttpRoute),
    Relay {
        detail_types: Vec<String>,
        change_types: Vec<String>,
        changed: Vec<String>,
    },
}

/// What a rule's call does; every setting is optional and falls back to the worker's
/// environment (`VAPI_ASSISTANT_ID`, `FOLLOWUP_POLICY`, `QUIET_HOURS`, …).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Action {
    pub assistant_id: Option<String>,
    pub phone_number_id: Option<String>,
    /// Extra `assistantOverrides.variableValues` (the prompt's `{{name}}`s).
    pub variables: BTreeMap<String, String>,
    pub follow_up: Option<FollowupPolicy>,
    /// `Some(None)`: quiet hours off for this rule; `None`: the worker's `QUIET_HOURS`.
    pub quiet_hours: Option<Option<QuietHours>>,
    /// `call.handoff`: who takes the call when the customer asks for a person (`crate::vapi::transfer`).
    pub handoff: Option<Handoff>,
}

/// Whose number a warm transfer dials (`call.handoff.to` / `call.handoff.number`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HandoffTarget {
    /// The Case's owner (`Case.OwnerId` → `User.Phone`, else `User.MobilePhone`), read by the
    /// worker at dial time. A queue-owned Case (`OwnerId` prefix `00G`) has no number.
    CaseOwner,
    /// The Contact's owner (`Contact.OwnerId` → the `User`'s phone), read at dial time.
    ContactOwner,
    /// A fixed number (a team line).
    Number(E164Phone),
}

impl HandoffTarget {
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::CaseOwner => "caseOwner",
            Self::ContactOwner => "contactOwner",
            Self::Number(_) => "number",
        }
    }
}

/// `call.handoff: {to: caseOwner | contactOwner | number: "+1…", fallback: "+1…"}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Handoff {
    pub to: HandoffTarget,
    /// Dialled when the target has no number (a queue-owned Case, an owner without a phone).
    pub fallback: Option<E164Phone>,
}

/// The Salesforce objects a call's outcome can be written onto.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum WriteBackObject {
    Case,
    Contact,
}

impl WriteBackObject {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Case => "Case",
            Self::Contact => "Contact",
        }
    }
}

/// A part of Vapi's end-of-call report (its `analysis`, as the assistant's `analysisPlan`
/// defines it, and the call's end).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OutcomeSource {
    SuccessEvaluation,
    Summary,
    EndedReason,
    /// `structuredData.<path>`: a value of the structured data the analysis plan extracts.
    StructuredData(Path),
}

impl OutcomeSource {
    fn parse(raw: &str) -> Result<Self, String> {
        match raw {
            "successEvaluation" => Ok(Self::SuccessEvaluation),
            "summary" => Ok(Self::Summary),
            "endedReason" => Ok(Self::EndedReason),
            other => match other.strip_prefix("structuredData.") {
                Some(p) => Path::parse(p).map(Self::StructuredData),
                None => Err(format!(
                    "{other:?} is not an outcome: use successEvaluation, summary, endedReason or structuredData.<field>"
                )),
            },
        }
    }
    pub fn describe(&self) -> String {
        match self {
            Self::SuccessEvaluation => "successEvaluation".into(),
            Self::Summary => "summary".into(),
            Self::EndedReason => "endedReason".into(),
            Self::StructuredData(p) => format!("structuredData.{}", p.as_str()),
        }
    }
}

/// One field written back after the call: `object.field = source`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WriteBack {
    pub object: WriteBackObject,
    pub field: String,
    pub source: OutcomeSource,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Rule {
    pub id: String,
    pub matcher: Matcher,
    pub fields: Vec<(Path, Predicate)>,
    pub event_id: Vec<Path>,
    pub contact: Vec<ContactSource>,
    pub case: Vec<CaseSource>,
    pub priority: Vec<Path>,
    pub reason: Vec<Path>,
    pub action: Action,
    /// When, how often and whether this rule's jobs may call (`crate::policy`).
    pub policy: Policy,
    pub write_back: Vec<WriteBack>,
}

/// An event as the rules see it.
#[derive(Debug, Clone, Copy)]
pub enum Input<'a> {
    /// `POST /salesforce/events`: the JSON body.
    Http(&'a Map<String, Value>),
    /// One Outbound Message notification: `{"Id", "sObjectType"?, "sObject": {…}}`.
    Outbound(&'a Map<String, Value>),
    /// A relayed event: its EventBridge `detail-type` and its fields (`detail.payload`).
    Relay {
        detail_type: &'a str,
        payload: &'a Map<String, Value>,
    },
}

impl Input<'_> {
    fn root(&self) -> &Map<String, Value> {
        match self {
            Self::Http(m) | Self::Outbound(m) => m,
            Self::Relay { payload, .. } => payload,
        }
    }
}

/// What the mapped fields gave.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Extracted {
    /// The HTTP route's event id (the other routes take theirs from Salesforce's envelope).
    pub event_id: Option<SalesforceEventId>,
    /// `None` when the Contact comes from the Case at dial time.
    pub contact_id: Option<SalesforceId>,
    pub case_id: Option<SalesforceId>,
    pub priority: Option<Priority>,
    pub reason: Option<String>,
}

/// How an event was routed.
#[derive(Debug)]
pub enum Routed<'r> {
    /// The first matching rule, and what its mapping gave (or the field that failed).
    Matched(&'r Rule, Result<Extracted, FieldError>),
    /// No rule matches: why, for the SKIPPED record.
    NoMatch(String),
}

/// The loaded document.
#[derive(Debug, Clone)]
pub struct Routing {
    source_name: String,
    rules: Vec<Rule>,
    /// The document's `policy:` (jobs without a rule use it).
    default_policy: Policy,
}

// ------------------------------------------------------------------------------------------
// The document's syntax (serde, unknown keys refused)
// ------------------------------------------------------------------------------------------

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawDocument {
    version: u32,
    /// The calling policy's deployment-wide defaults (`crate::policy::spec`).
    #[serde(default)]
    policy: Option<RawPolicy>,
    rules: Vec<RawRule>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum OneOrMany {
    One(String),
    Many(Vec<String>),
}

impl OneOrMany {
    fn into_vec(self) -> Vec<String> {
        match self {
            Self::One(s) => vec![s],
            Self::Many(v) => v,
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct RawWhen {
    route: Option<String>,
    detail_type: Option<OneOrMany>,
    change_type: Option<OneOrMany>,
    changed: Option<Vec<String>>,
    #[serde(default)]
    fields: BTreeMap<String, serde_json::Value>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct RawCall {
    assistant_id: Option<String>,
    phone_number_id: Option<String>,
    #[serde(default)]
    variables: BTreeMap<String, String>,
    follow_up: Option<String>,
    quiet_hours: Option<String>,
    quiet_hours_utc_offset: Option<String>,
    handoff: Option<RawHandoff>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawHandoff {
    to: Option<String>,
    number: Option<String>,
    fallback: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct RawRule {
    id: String,
    when: RawWhen,
    event_id: Option<OneOrMany>,
    contact: Option<OneOrMany>,
    case: Option<OneOrMany>,
    priority: Option<OneOrMany>,
    reason: Option<OneOrMany>,
    call: Option<RawCall>,
    /// This rule's calling policy, key by key over the document's.
    policy: Option<RawPolicy>,
    write_back: Option<BTreeMap<String, BTreeMap<String, String>>>,
}

/// A Salesforce API name (object, field, event): letters, digits and `_`.
fn is_api_name(s: &str) -> bool {
    !s.is_empty() && s.len() <= 80 && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

/// A `contact`/`case` field choice sfvapi can read, or why not, naming it. The one relationship
/// it follows is `case.ContactId` (the Case's Contact, read at dial time); a path that looks like
/// another one (`cases.ContactId`, `Case.ContactId`, `case.AccountId`, `Case__r.ContactId`) is a
/// typo that would make every event SKIPPED with "is missing". Relayed events' fields are flat (an
/// id is one name such as `ContactId`), an Outbound Message's are `sObject.<Field>`; the signed
/// HTTP route's body is the sender's own JSON, so nested paths stay allowed there.
fn known_choice(what: &str, path: &Path, matcher: &Matcher) -> Result<(), String> {
    let first = path.segments[0].to_ascii_lowercase();
    let unknown = |why: &str| {
        Err(format!(
            "{what}: {:?} is not a choice sfvapi knows: {why} (the only relationship read is case.ContactId, the Case's Contact at dial time)",
            path.as_str()
        ))
    };
    let relationship = first.ends_with("__r")
        || matches!(first.as_str(), "case" | "cases" | "contact" | "contacts");
    if path.segments.len() > 1 && relationship {
        return unknown("it reads like a relationship");
    }
    match matcher {
        Matcher::Relay { .. } if path.segments.len() > 1 => {
            unknown("a relayed event's fields are flat, name one such as ContactId")
        }
        Matcher::Route(HttpRoute::OutboundMessage)
            if path.segments.len() > 1
                && (path.segments.len() != 2 || path.segments[0] != "sObject") =>
        {
            unknown("an Outbound Message's fields are sObject.<Field>")
        }
        _ => Ok(()),
    }
}

/// CDC change types (Change Data Capture Developer Guide, "ChangeEventHeader Fields").
const CHANGE_TYPES: &[&str] = &[
    "CREATE",
    "UPDATE",
    "DELETE",
    "UNDELETE",
    "GAP_CREATE",
    "GAP_UPDATE",
    "GAP_DELETE",
    "GAP_UNDELETE",
    "GAP_OVERFLOW",
];

fn predicate(raw: &Value) -> Result<Predicate, String> {
    let text = |v: &Value| -> Result<String, String> {
        match v {
            Value::String(s) => Ok(s.clone()),
            Value::Number(n) => Ok(n.to_string()),
            Value::Bool(b) => Ok(b.to_string()),
            _ => Err("values must be text, numbers or true/false".into()),
        }
    };
    let list = |v: &Value| -> Result<Vec<String>, String> {
        match v {
            Value::Array(a) if !a.is_empty() => a.iter().map(text).collect(),
            Value::Array(_) => Err("an empty list matches nothing".into()),
            other => Ok(vec![text(other)?]),
        }
    };
    match raw {
        Value::Object(m) if m.len() == 1 => {
            let (k, v) = m.iter().next().ok_or("empty predicate")?;
            match (k.as_str(), v) {
                ("present", Value::Bool(b)) => Ok(Predicate::Present(*b)),
                ("present", _) => Err("present takes true or false".into()),
                ("not", v) => list(v).map(Predicate::NoneOf),
                (other, _) => Err(format!(
                    "unknown predicate {other:?} (use a value, a list of values, {{present: true|false}} or {{not: …}})"
                )),
            }
        }
        Value::Object(_) => Err("a predicate object takes exactly one of present, not".into()),
        Value::Null => Err("a null value matches nothing; use {present: false}".into()),
        other => list(other).map(Predicate::OneOf),
    }
}

impl Routing {
    pub fn load_file(path: &str) -> Result<Self, RoutingError> {
        let text = std::fs::read_to_string(path).map_err(|e| RoutingError {
            source_name: path.to_owned(),
            problem: format!("cannot be read ({e})"),
        })?;
        Self::parse(path, &text)
    }

    /// The built-in document (`routing.yaml`), read from the JSON `build.rs` made of it;
    /// `make test` checks it never fails and reads as the YAML does.
    pub fn built_in() -> Result<Self, RoutingError> {
        let raw: RawDocument = serde_json::from_str(BUILT_IN_JSON).map_err(|e| RoutingError {
            source_name: BUILT_IN_NAME.to_owned(),
            problem: e.to_string(),
        })?;
        Self::from_raw(BUILT_IN_NAME, raw)
    }

    /// A YAML document (`ROUTING_FILE`, or the built-in text).
    pub fn parse(source_name: &str, text: &str) -> Result<Self, RoutingError> {
        let raw: RawDocument = serde_norway::from_str(text).map_err(|e| RoutingError {
            source_name: source_name.to_owned(),
            problem: e.to_string(),
        })?;
        Self::from_raw(source_name, raw)
    }

    fn from_raw(source_name: &str, raw: RawDocument) -> Result<Self, RoutingError> {
        let err = |problem: String| RoutingError {
            source_name: source_name.to_owned(),
            problem,
        };
        if raw.version != 1 {
            return Err(err(format!(
                "version {} is not supported (this sfvapi reads version 1)",
                raw.version
            )));
        }
        if raw.rules.is_empty() {
            return Err(err(
                "has no rules (every event would be skipped); copy the built-in routing.yaml"
                    .into(),
            ));
        }
        if raw.rules.len() > MAX_RULES {
            return Err(err(format!("has more than {MAX_RULES} rules")));
        }
        let default_policy = raw
            .policy
            .clone()
            .unwrap_or_default()
            .parse()
            .map_err(err)?;
        let mut seen = HashSet::new();
        let mut rules = Vec::with_capacity(raw.rules.len());
        for (i, r) in raw.rules.into_iter().enumerate() {
            let name = format!("rules[{i}] (id {:?})", r.id);
            let rule = Self::parse_rule(r, raw.policy.as_ref())
                .map_err(|p| err(format!("{name}: {p}")))?;
            if !seen.insert(rule.id.clone()) {
                return Err(err(format!("{name}: the id is used by an earlier rule")));
            }
            rules.push(rule);
        }
        Ok(Self {
            source_name: source_name.to_owned(),
            rules,
            default_policy,
        })
    }

    fn parse_rule(r: RawRule, default_policy: Option<&RawPolicy>) -> Result<Rule, String> {
        let id_ok = !r.id.is_empty()
            && r.id.len() <= 64
            && r.id
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        if !id_ok {
            return Err("id must be 1 to 64 characters of A-Z a-z 0-9 - _".into());
        }
        let paths = |what: &str, v: Option<OneOrMany>| -> Result<Vec<Path>, String> {
            v.map(OneOrMany::into_vec)
                .unwrap_or_default()
                .iter()
                .map(|p| Path::parse(p).map_err(|e| format!("{what}: {e}")))
                .collect()
        };
        let w = r.when;
        let matcher = match (&w.route, w.detail_type) {
            (Some(_), Some(_)) => {
                return Err("when: give route (signed HTTP, Outbound Messages) or detailType (Event Relay), not both".into())
            }
            (None, None) => {
                return Err("when: needs route (events, outbound-message) or detailType".into())
            }
            (Some(route), None) => {
                if w.change_type.is_some() || w.changed.is_some() {
                    return Err(
                        "when: changeType and changed apply to relayed Change Data Capture events (detailType)".into(),
                    );
                }
                match route.as_str() {
                    "events" => Matcher::Route(HttpRoute::Events),
                    "outbound-message" => Matcher::Route(HttpRoute::OutboundMessage),
                    other => {
                        return Err(format!(
                            "when.route: {other:?} is not a route (events, outbound-message)"
                        ))
                    }
                }
            }
            (None, Some(dt)) => {
                let detail_types = dt.into_vec();
                if detail_types.is_empty() {
                    return Err("when.detailType: an empty list matches nothing".into());
                }
                if let Some(bad) = detail_types.iter().find(|d| !is_api_name(d)) {
                    return Err(format!(
                        "when.detailType: {bad:?} is not an event API name (e.g. Call_Request__e, CaseChangeEvent)"
                    ));
                }
                let change_types = w.change_type.map(OneOrMany::into_vec).unwrap_or_default();
                if let Some(bad) = change_types
                    .iter()
                    .find(|c| !CHANGE_TYPES.contains(&c.as_str()))
                {
                    return Err(format!(
                        "when.changeType: {bad:?} is not a change type ({})",
                        CHANGE_TYPES.join(", ")
                    ));
                }
                let changed = w.changed.unwrap_or_default();
                if let Some(bad) = changed.iter().find(|f| Path::parse(f).is_err()) {
                    return Err(format!("when.changed: {bad:?} is not a field name"));
                }
                Matcher::Relay {
                    detail_types,
                    change_types,
                    changed,
                }
            }
        };
        let mut fields = Vec::new();
        for (k, v) in &w.fields {
            let path = Path::parse(k).map_err(|e| format!("when.fields: {e}"))?;
            let p = predicate(v).map_err(|e| format!("when.fields.{k}: {e}"))?;
            fields.push((path, p));
        }

        let event_id = paths("eventId", r.event_id)?;
        match matcher {
            Matcher::Route(HttpRoute::Events) if event_id.is_empty() => {
                return Err("eventId: the events route needs the field(s) that hold the event's id (e.g. eventId)".into())
            }
            Matcher::Route(HttpRoute::Events) => {}
            _ if !event_id.is_empty() => {
                return Err("eventId: only the events route takes it; Outbound Messages and relayed events are identified by Salesforce's own ids".into())
            }
            _ => {}
        }
        let mut case = Vec::new();
        for c in r.case.map(OneOrMany::into_vec).unwrap_or_default() {
            if c == "$recordId" {
                if !matches!(matcher, Matcher::Relay { .. }) {
                    return Err("case: $recordId is the changed record of a relayed Change Data Capture event (detailType)".into());
                }
                case.push(CaseSource::RecordId);
            } else {
                let path = Path::parse(&c).map_err(|e| format!("case: {e}"))?;
                known_choice("case", &path, &matcher)?;
                case.push(CaseSource::Field(path));
            }
        }
        let raw_contact = r.contact.map(OneOrMany::into_vec).unwrap_or_default();
        if raw_contact.is_empty() {
            return Err("contact: every rule must say where the Contact to call comes from (a field, or case.ContactId)".into());
        }
        let mut contact = Vec::new();
        for (i, c) in raw_contact.iter().enumerate() {
            if c == "$recordId" {
                if !matches!(matcher, Matcher::Relay { .. }) {
                    return Err("contact: $recordId is the changed record of a relayed Change Data Capture event (detailType)".into());
                }
                contact.push(ContactSource::RecordId);
            } else if c == "case.ContactId" {
                if i + 1 != raw_contact.len() {
                    return Err("contact: case.ContactId (read at dial time) must come last".into());
                }
                if case.is_empty() {
                    return Err("contact: case.ContactId needs the rule to map case".into());
                }
                contact.push(ContactSource::FromCase);
            } else {
                let path = Path::parse(c).map_err(|e| format!("contact: {e}"))?;
                known_choice("contact", &path, &matcher)?;
                contact.push(ContactSource::Field(path));
            }
        }
        let utc_offset = r
            .call
            .as_ref()
            .is_some_and(|c| c.quiet_hours_utc_offset.is_some());
        let action = match r.call {
            None => Action::default(),
            Some(c) => Self::action(c)?,
        };
        if let Some(h) = &action.handoff {
            if h.to == HandoffTarget::CaseOwner && case.is_empty() {
                return Err(
                    "call.handoff.to: caseOwner needs the rule to map case (the Case whose owner takes the call)"
                        .into(),
                );
            }
        }
        let policy = r.policy.unwrap_or_default().over(default_policy).parse()?;
        if utc_offset && policy.time_zone_set {
            return Err("call.quietHoursUtcOffset is deprecated and may not be mixed with policy.timeZone: say the hours as policy.hours in the customer's zone instead".into());
        }
        let mut write_back = Vec::new();
        for (object, mapping) in r.write_back.unwrap_or_default() {
            let object = match object.as_str() {
                "Case" => WriteBackObject::Case,
                "Contact" => WriteBackObject::Contact,
                other => {
                    return Err(format!(
                        "writeBack: {other:?} is not an object sfvapi writes (Case, Contact)"
                    ))
                }
            };
            if object == WriteBackObject::Case && case.is_empty() {
                return Err("writeBack.Case: the rule maps no case".into());
            }
            if mapping.is_empty() {
                return Err(format!("writeBack.{}: maps no field", object.as_str()));
            }
            for (field, source) in mapping {
                if !is_api_name(&field) {
                    return Err(format!(
                        "writeBack.{}: {field:?} is not a field API name",
                        object.as_str()
                    ));
                }
                let source = OutcomeSource::parse(&source)
                    .map_err(|e| format!("writeBack.{}.{field}: {e}", object.as_str()))?;
                write_back.push(WriteBack {
                    object,
                    field,
                    source,
                });
            }
        }
        Ok(Rule {
            id: r.id,
            matcher,
            fields,
            event_id,
            contact,
            case,
            priority: paths("priority", r.priority)?,
            reason: paths("reason", r.reason)?,
            action,
            policy,
            write_back,
        })
    }

    fn action(c: RawCall) -> Result<Action, String> {
        let id = |what: &str, v: Option<String>| -> Result<Option<String>, String> {
            match v {
                None => Ok(None),
                Some(s)
                    if !s.trim().is_empty()
                        && s.len() <= 128
                        && !s.chars().any(char::is_control) =>
                {
                    Ok(Some(s.trim().to_owned()))
                }
                Some(_) => Err(format!(
                    "call.{what}: must be 1 to 128 printable characters"
                )),
            }
        };
        for (k, v) in &c.variables {
            if !is_api_name(k) {
                return Err(format!(
                    "call.variables: {k:?} is not a variable name (A-Z a-z 0-9 _)"
                ));
            }
            if v.chars().count() > MAX_VARIABLE_CHARS {
                return Err(format!(
                    "call.variables.{k}: longer than {MAX_VARIABLE_CHARS} characters"
                ));
            }
        }
        let follow_up = c
            .follow_up
            .map(|p| p.parse::<FollowupPolicy>())
            .transpose()
            .map_err(|e| format!("call.followUp: {e}"))?;
        let quiet_hours = match (
            c.quiet_hours.as_deref().map(str::trim),
            c.quiet_hours_utc_offset,
        ) {
            (None, None) => None,
            (None, Some(_)) => return Err("call.quietHoursUtcOffset: set quietHours too".into()),
            (Some("none"), _) => Some(None),
            (Some(w), offset) => Some(Some(
                QuietHours::parse(w, offset.as_deref().unwrap_or("+00:00"))
                    .map_err(|e| format!("call.quietHours: {e}"))?,
            )),
        };
        let handoff = c.handoff.map(Self::handoff).transpose()?;
        Ok(Action {
            assistant_id: id("assistantId", c.assistant_id)?,
            phone_number_id: id("phoneNumberId", c.phone_number_id)?,
            variables: c.variables,
            follow_up,
            quiet_hours,
            handoff,
        })
    }

    fn handoff(h: RawHandoff) -> Result<Handoff, String> {
        let phone = |key: &'static str, raw: &str| {
            E164Phone::parse(key, raw)
                .map_err(|e| format!("{key}: {raw:?} {} (write it as +15550100123)", e.problem))
        };
        let to = match (h.to.as_deref().map(str::trim), h.number.as_deref()) {
            (Some("caseOwner"), None) => HandoffTarget::CaseOwner,
            (Some("contactOwner"), None) => HandoffTarget::ContactOwner,
            (None, Some(n)) => HandoffTarget::Number(phone("call.handoff.number", n)?),
            (Some(other), None) => {
                return Err(format!(
                    "call.handoff.to: {other:?} is not a target: use caseOwner or contactOwner, or number: \"+1…\" instead of to"
                ))
            }
            (Some(_), Some(_)) => {
                return Err(
                    "call.handoff: set either to (caseOwner, contactOwner) or number, not both"
                        .into(),
                )
            }
            (None, None) => {
                return Err(
                    "call.handoff: say who takes the call: to: caseOwner, to: contactOwner or number: \"+1…\""
                        .into(),
                )
            }
        };
        let fallback = h
            .fallback
            .as_deref()
            .map(|f| phone("call.handoff.fallback", f))
            .transpose()?;
        Ok(Handoff { to, fallback })
    }

    pub fn source_name(&self) -> &str {
        &self.source_name
    }

    pub fn rules(&self) -> &[Rule] {
        &self.rules
    }

    pub fn rule(&self, id: &str) -> Option<&Rule> {
        self.rules.iter().find(|r| r.id == id)
    }

    /// The document's own `policy:`, for jobs that name no rule.
    pub fn default_policy(&self) -> &Policy {
        &self.default_policy
    }

    /// Whether the document sets `policy.timeZone` anywhere (the deprecated
    /// `QUIET_HOURS_UTC_OFFSET` may not be mixed with it).
    pub fn sets_time_zone(&self) -> bool {
        self.default_policy.time_zone_set || self.rules.iter().any(|r| r.policy.time_zone_set)
    }

    /// The Contact fields some rule's policy reads (consent, time zone), once each.
    pub fn policy_contact_fields(&self) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        let policies =
            std::iter::once(&self.default_policy).chain(self.rules.iter().map(|r| &r.policy));
        for f in policies.flat_map(Policy::contact_fields) {
            if !out.iter().any(|o| o == f) {
                out.push(f.to_owned());
            }
        }
        out
    }

    /// Whether the report job needs the dial job's rule (a write-back or a follow-up policy of
    /// its own); when no rule has either, the report job reads nothing more than before.
    pub fn has_report_settings(&self) -> bool {
        self.rules.iter().any(|r| {
            !r.write_back.is_empty() || r.action.follow_up.is_some() || r.policy.retry.is_some()
        }) || self.default_policy.retry.is_some()
    }

    /// The `detail-type`s some rule matches (what the template's EventBridge rule should pass).
    pub fn detail_types(&self) -> Vec<&str> {
        let mut out: Vec<&str> = Vec::new();
        for r in &self.rules {
            if let Matcher::Relay { detail_types, .. } = &r.matcher {
                for d in detail_types {
                    if !out.contains(&d.as_str()) {
                        out.push(d);
                    }
                }
            }
        }
        out
    }

    /// Route one event: the first rule that matches, and its mapping. `record_id` is the
    /// changed record a CDC job is for (`$recordId`).
    pub fn route<'r>(&'r self, input: Input<'_>, record_id: Option<&str>) -> Routed<'r> {
        match self.rules.iter().find(|r| r.matches(&input)) {
            Some(rule) => Routed::Matched(rule, rule.extract(&input, record_id)),
            None => Routed::NoMatch(no_match_reason(&input)),
        }
    }
}

fn no_match_reason(input: &Input<'_>) -> String {
    match input {
        Input::Http(_) => "no routing rule matches this event (route events)".into(),
        Input::Outbound(n) => match n.get("sObjectType").and_then(Value::as_str) {
            Some(t) => format!(
                "no routing rule matches this notification (sObject type {:?})",
                t.chars().take(40).collect::<String>()
            ),
            None => "no routing rule matches this notification (it has no sObject type)".into(),
        },
        Input::Relay {
            detail_type,
            payload,
        } => {
            let header = payload.get("ChangeEventHeader");
            let change = header
                .and_then(|h| h.get("changeType"))
                .and_then(Value::as_str);
            let changed: Vec<&str> = header
                .and_then(|h| h.get("changedFields"))
                .and_then(Value::as_array)
                .map(|a| a.iter().filter_map(Value::as_str).take(20).collect())
                .unwrap_or_default();
            let mut why = format!(
                "no routing rule matches this relayed event (detail-type {:?}",
                detail_type.chars().take(80).collect::<String>()
            );
            if let Some(c) = change {
                why.push_str(&format!(
                    ", changeType {c}, changed [{}]",
                    changed.join(", ")
                ));
            }
            why.push(')');
            why
        }
    }
}

/// A looked-up value: absent (or null), or present.
enum Lookup<'a> {
    Absent,
    Present(&'a Value),
}

/// Follow `path` from `root`. A parent that is absent or null makes the value absent; a parent
/// that is not an object is an error naming it.
fn resolve<'a>(root: &'a Map<String, Value>, path: &Path) -> Result<Lookup<'a>, FieldError> {
    let mut cur = root;
    let n = path.segments.len();
    for (i, seg) in path.segments.iter().enumerate() {
        let v = match cur.get(seg) {
            None | Some(Value::Null) => return Ok(Lookup::Absent),
            Some(v) => v,
        };
        if i + 1 == n {
            return Ok(Lookup::Present(v));
        }
        match v {
            Value::Object(m) => cur = m,
            _ => {
                return Err(FieldError::new(
                    path.segments[..=i].join("."),
                    "must be an object",
                ))
            }
        }
    }
    Ok(Lookup::Absent)
}

/// Whether the field is in the event at all (a null value counts).
fn is_present(root: &Map<String, Value>, path: &Path) -> bool {
    let (last, parents) = match path.segments.split_last() {
        Some(x) => x,
        None => return false,
    };
    let mut cur = root;
    for seg in parents {
        match cur.get(seg) {
            Some(Value::Object(m)) => cur = m,
            _ => return false,
        }
    }
    cur.contains_key(last)
}

fn as_text(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

/// A text field: absent, null and blank are "not given"; anything but text is an error.
fn text_field<'a>(
    root: &'a Map<String, Value>,
    path: &Path,
) -> Result<Option<&'a str>, FieldError> {
    match resolve(root, path)? {
        Lookup::Absent => Ok(None),
        Lookup::Present(Value::String(s)) if s.trim().is_empty() => Ok(None),
        Lookup::Present(Value::String(s)) => Ok(Some(s)),
        Lookup::Present(_) => Err(FieldError::new(path.as_str(), "must be a string")),
    }
}

/// Free text that reaches a voice prompt: bounded, without control characters.
pub fn clean_reason(s: &str) -> String {
    s.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .take(MAX_REASON_CHARS)
        .collect::<String>()
        .trim()
        .to_owned()
}

fn list_names(paths: &[Path]) -> String {
    paths
        .iter()
        .map(Path::as_str)
        .collect::<Vec<_>>()
        .join(", ")
}

impl Rule {
    fn matches(&self, input: &Input<'_>) -> bool {
        let kind_ok = match (&self.matcher, input) {
            (Matcher::Route(HttpRoute::Events), Input::Http(_)) => true,
            (Matcher::Route(HttpRoute::OutboundMessage), Input::Outbound(_)) => true,
            (
                Matcher::Relay {
                    detail_types,
                    change_types,
                    changed,
                },
                Input::Relay {
                    detail_type,
                    payload,
                },
            ) => {
                let header = payload.get("ChangeEventHeader");
                let change_type = header
                    .and_then(|h| h.get("changeType"))
                    .and_then(Value::as_str);
                let changed_fields: Vec<&str> = header
                    .and_then(|h| h.get("changedFields"))
                    .and_then(Value::as_array)
                    .map(|a| a.iter().filter_map(Value::as_str).collect())
                    .unwrap_or_default();
                detail_types.iter().any(|d| d == detail_type)
                    && (change_types.is_empty()
                        || change_type.is_some_and(|c| change_types.iter().any(|t| t == c)))
                    && changed.iter().all(|f| changed_fields.contains(&f.as_str()))
            }
            _ => false,
        };
        kind_ok
            && self.fields.iter().all(|(path, p)| {
                let root = input.root();
                match p {
                    Predicate::Present(want) => is_present(root, path) == *want,
                    Predicate::OneOf(vals) | Predicate::NoneOf(vals) => {
                        let text = match resolve(root, path) {
                            Ok(Lookup::Present(v)) => as_text(v),
                            _ => None,
                        };
                        let hit = text.is_some_and(|t| vals.contains(&t));
                        matches!(p, Predicate::OneOf(_)) == hit
                    }
                }
            })
    }

    /// Every path the rule reads, in the order the fields are taken (event id, contact, case,
    /// priority, reason): their parents are checked first, so a malformed event is refused
    /// whichever candidate would have won.
    fn all_paths(&self) -> impl Iterator<Item = &Path> {
        let contact = self.contact.iter().filter_map(|c| match c {
            ContactSource::Field(p) => Some(p),
            ContactSource::FromCase | ContactSource::RecordId => None,
        });
        let case = self.case.iter().filter_map(|c| match c {
            CaseSource::Field(p) => Some(p),
            CaseSource::RecordId => None,
        });
        self.event_id
            .iter()
            .chain(contact)
            .chain(case)
            .chain(&self.priority)
            .chain(&self.reason)
    }

    fn extract(&self, input: &Input<'_>, record_id: Option<&str>) -> Result<Extracted, FieldError> {
        let root = input.root();
        for p in self.all_paths() {
            resolve(root, p)?;
        }
        let event_id = if self.event_id.is_empty() {
            None
        } else {
            Some(self.event_id_of(root)?)
        };
        let mut contact_id = None;
        let mut from_case = false;
        for c in &self.contact {
            let (name, raw) = match c {
                ContactSource::Field(p) => (p.as_str().to_owned(), text_field(root, p)?),
                ContactSource::RecordId => ("ChangeEventHeader.recordIds".to_owned(), record_id),
                ContactSource::FromCase => {
                    from_case = true;
                    continue;
                }
            };
            if let Some(s) = raw {
                contact_id = Some(
                    SalesforceId::parse("contact", s)
                        .map_err(|e| FieldError::new(name, e.problem))?,
                );
                break;
            }
        }
        let mut case_id = None;
        for c in &self.case {
            let (name, raw) = match c {
                CaseSource::Field(p) => (p.as_str().to_owned(), text_field(root, p)?),
                CaseSource::RecordId => ("ChangeEventHeader.recordIds".to_owned(), record_id),
            };
            if let Some(s) = raw {
                case_id = Some(
                    SalesforceId::parse("case", s).map_err(|e| FieldError::new(name, e.problem))?,
                );
                break;
            }
        }
        if contact_id.is_none() && !(from_case && case_id.is_some()) {
            let first = self
                .contact
                .iter()
                .find_map(|c| match c {
                    ContactSource::Field(p) => Some(p.as_str()),
                    ContactSource::RecordId => Some("ChangeEventHeader.recordIds"),
                    ContactSource::FromCase => None,
                })
                .unwrap_or("case.ContactId");
            let why = if from_case {
                "is missing, and there is no Case to read the Contact from"
            } else {
                "is missing (the Contact to call)"
            };
            return Err(FieldError::new(first, why));
        }
        let mut priority = None;
        for p in &self.priority {
            if let Some(s) = text_field(root, p)? {
                priority = Some(
                    Priority::parse("priority", s)
                        .map_err(|e| FieldError::new(p.as_str(), e.problem))?,
                );
                break;
            }
        }
        let mut reason = None;
        for p in &self.reason {
            if let Some(s) = text_field(root, p)? {
                reason = Some(clean_reason(s));
                break;
            }
        }
        Ok(Extracted {
            event_id,
            contact_id,
            case_id,
            priority,
            reason,
        })
    }

    /// The first present event id. A string is parsed; a `replayId` may also be the
    /// non-negative integer Salesforce sends it as.
    fn event_id_of(&self, root: &Map<String, Value>) -> Result<SalesforceEventId, FieldError> {
        for p in &self.event_id {
            let is_replay = p.last() == "replayId";
            let raw = match resolve(root, p)? {
                Lookup::Absent => continue,
                Lookup::Present(Value::String(s)) => s.clone(),
                Lookup::Present(Value::Number(n)) if is_replay && n.is_u64() => n.to_string(),
                Lookup::Present(_) if is_replay => {
                    return Err(FieldError::new(
                        p.as_str(),
                        "must be a non-negative integer",
                    ))
                }
                Lookup::Present(_) => return Err(FieldError::new(p.as_str(), "must be a string")),
            };
            return SalesforceEventId::parse("eventId", &raw)
                .map_err(|e| FieldError::new(p.as_str(), e.problem));
        }
        let why = if self.event_id.len() == 1 {
            "is missing".to_owned()
        } else {
            format!("is missing (send one of {})", list_names(&self.event_id))
        };
        Err(FieldError::new("eventId", why))
    }
}

impl fmt::Display for Routing {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({} rules)", self.source_name, self.rules.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn doc(rules: &str) -> Result<Routing, RoutingError> {
        Routing::parse("test.yaml", &format!("version: 1\nrules:\n{rules}"))
    }

    fn obj(v: Value) -> Map<String, Value> {
        match v {
            Value::Object(m) => m,
            _ => panic!("not an object"),
        }
    }

    #[test]
    fn the_built_in_document_loads() {
        let r = Routing::built_in().unwrap();
        assert_eq!(r.rules().len(), 5);
        assert!(!r.has_report_settings());
        assert!(r.detail_types().is_empty());
    }

    #[test]
    fn bad_documents_name_the_rule_and_the_problem() {
        let cases: &[(&str, &str)] = &[
            ("- id: a\n  when: {route: events}\n  contact: c\n", "eventId"),
            ("- id: a\n  when: {route: nope}\n  contact: c\n", "\"nope\" is not a route"),
            ("- id: a\n  when: {detailType: X__e}\n", "contact"),
            (
                "- id: a\n  when: {detailType: X__e}\n  contact: case.ContactId\n",
                "needs the rule to map case",
            ),
            (
                "- id: a\n  when: {detailType: X__e, changeType: MODIFY}\n  contact: C__c\n",
                "\"MODIFY\" is not a change type",
            ),
            (
                "- id: a\n  when: {route: events, detailType: X__e}\n  eventId: e\n  contact: c\n",
                "not both",
            ),
            (
                "- id: a\n  wen: {detailType: X__e}\n  contact: c\n",
                "unknown field `wen`",
            ),
            (
                "- id: a\n  when: {detailType: X__e}\n  contact: C__c\n  writeBack: {Account: {A__c: summary}}\n",
                "\"Account\" is not an object",
            ),
            (
                "- id: a\n  when: {detailType: X__e}\n  contact: C__c\n  case: K__c\n  writeBack: {Case: {A__c: transcript}}\n",
                "\"transcript\" is not an outcome",
            ),
            (
                "- id: a\n  when: {detailType: X__e}\n  contact: C__c\n  call: {followUp: sometimes}\n",
                "call.followUp",
            ),
            (
                "- id: a\n  when: {detailType: X__e}\n  contact: C__c\n  call: {quietHours: \"25:00-08:00\"}\n",
                "call.quietHours",
            ),
            (
                "- id: a\n  when: {detailType: X__e}\n  contact: C__c\n- id: a\n  when: {detailType: Y__e}\n  contact: C__c\n",
                "used by an earlier rule",
            ),
            (
                "- id: a\n  when: {detailType: X__e, fields: {P__c: {present: maybe}}}\n  contact: C__c\n",
                "present takes true or false",
            ),
            (
                "- id: a\n  when: {route: outbound-message}\n  eventId: x\n  contact: C__c\n",
                "only the events route",
            ),
            (
                "- id: a\n  when: {route: events}\n  eventId: e\n  contact: c\n  case: $recordId\n",
                "$recordId",
            ),
            ("- id: a\n  when: {detailType: X__e}\n  contact: \"a..b\"\n", "not a field path"),
            // A typo in the deferral is refused at load, naming the unknown choice.
            (
                "- id: a\n  when: {detailType: CaseChangeEvent}\n  case: $recordId\n  contact: [ContactId, cases.ContactId]\n",
                "contact: \"cases.ContactId\" is not a choice sfvapi knows: it reads like a relationship (the only relationship read is case.ContactId",
            ),
            (
                "- id: a\n  when: {route: events}\n  eventId: e\n  case: c\n  contact: Case.ContactId\n",
                "contact: \"Case.ContactId\" is not a choice sfvapi knows",
            ),
            (
                "- id: a\n  when: {detailType: X__e}\n  contact: C__c\n  case: case.Id\n",
                "case: \"case.Id\" is not a choice sfvapi knows",
            ),
            (
                "- id: a\n  when: {detailType: X__e}\n  contact: Details.ContactId\n",
                "a relayed event's fields are flat",
            ),
            (
                "- id: a\n  when: {route: outbound-message}\n  contact: sObject.Case__r.ContactId\n",
                "an Outbound Message's fields are sObject.<Field>",
            ),
        ];
        for (rules, expected) in cases {
            let e = doc(rules).unwrap_err();
            assert_eq!(e.source_name, "test.yaml");
            let msg = e.to_string();
            assert!(msg.contains("test.yaml"), "{msg}");
            assert!(msg.contains(expected), "{rules}\n→ {msg}");
        }
        let e = Routing::parse("x.yaml", "version: 2\nrules: []\n").unwrap_err();
        assert!(e.problem.contains("version 2"), "{e}");
        let e = Routing::parse("x.yaml", "version: 1\nrules: []\n").unwrap_err();
        assert!(e.problem.contains("no rules"), "{e}");
        let e = Routing::parse("x.yaml", "version: 1\nrules: [\n").unwrap_err();
        assert!(e.problem.contains("line"), "{e}");
        let e = Routing::load_file("/nonexistent/routing.yaml").unwrap_err();
        assert_eq!(e.source_name, "/nonexistent/routing.yaml");
        assert!(e.problem.contains("cannot be read"), "{e}");
    }

    const CDC: &str = "
- id: case-priority-high
  when:
    detailType: CaseChangeEvent
    changeType: UPDATE
    changed: [Priority]
    fields: {Priority: High}
  case: $recordId
  contact: [ContactId, case.ContactId]
  priority: Priority
  reason: Subject
  writeBack:
    Case: {Call_Outcome__c: successEvaluation, Callback__c: structuredData.callback.when}
- id: request
  when: {detailType: Call_Request__e, fields: {Reason__c: {not: [test, ignore]}}}
  contact: Contact__c
  case: Case__c
  reason: Reason__c
  call: {assistantId: asst-2, followUp: always, quietHours: none, variables: {campaign: x}}
";

    #[test]
    fn cdc_rules_match_on_change_type_changed_fields_and_new_values() {
        let r = doc(CDC).unwrap();
        assert!(r.has_report_settings());
        assert_eq!(r.detail_types(), vec!["CaseChangeEvent", "Call_Request__e"]);
        let payload = |change: &str, changed: Value, priority: &str| {
            obj(json!({
                "ChangeEventHeader": {"changeType": change, "changedFields": changed, "recordIds": ["5005e00000AbCdEAAV"]},
                "Priority": priority,
            }))
        };
        let routed = |p: &Map<String, Value>| {
            r.route(
                Input::Relay {
                    detail_type: "CaseChangeEvent",
                    payload: p,
                },
                Some("5005e00000AbCdEAAV"),
            )
        };
        let hit = payload("UPDATE", json!(["Priority", "LastModifiedDate"]), "High");
        match routed(&hit) {
            Routed::Matched(rule, Ok(x)) => {
                assert_eq!(rule.id, "case-priority-high");
                assert_eq!(x.case_id.unwrap().as_str(), "5005e00000AbCdEAAV");
                assert_eq!(x.contact_id, None, "the Contact comes from the Case");
                assert_eq!(x.priority, Some(Priority::High));
                assert_eq!(rule.write_back.len(), 2);
            }
            other => panic!("{other:?}"),
        }
        for miss in [
            payload("UPDATE", json!(["Status"]), "High"),
            payload("UPDATE", json!(["Priority"]), "Low"),
            payload("CREATE", json!(["Priority"]), "High"),
            payload("GAP_UPDATE", json!([]), "High"),
        ] {
            match routed(&miss) {
                Routed::NoMatch(why) => {
                    assert!(why.contains("CaseChangeEvent"), "{why}");
                    assert!(why.contains("changeType"), "{why}");
                }
                other => panic!("{other:?}"),
            }
        }
    }

    #[test]
    fn a_contact_change_calls_the_changed_contact() {
        let r = doc("- id: callback-time\n  when: {detailType: ContactChangeEvent, changed: [Callback_Time__c]}\n  contact: $recordId\n").unwrap();
        let p = obj(
            json!({"ChangeEventHeader": {"changeType": "UPDATE", "changedFields": ["Callback_Time__c"]}}),
        );
        let input = Input::Relay {
            detail_type: "ContactChangeEvent",
            payload: &p,
        };
        let Routed::Matched(_, Ok(x)) = r.route(input, Some("0035e00000XyZ12AAF")) else {
            panic!("no match")
        };
        assert_eq!(x.contact_id.unwrap().as_str(), "0035e00000XyZ12AAF");
        let Routed::Matched(_, Err(e)) = r.route(input, Some("nope")) else {
            panic!("expected a field error")
        };
        assert_eq!(e.field, "ChangeEventHeader.recordIds");
        let e = doc("- id: a\n  when: {route: events}\n  eventId: e\n  contact: $recordId\n")
            .unwrap_err();
        assert!(e.problem.contains("$recordId"), "{e}");
    }

    #[test]
    fn platform_event_fields_map_by_the_orgs_names() {
        let r = doc(CDC).unwrap();
        let p = obj(
            json!({"Contact__c": "0035e00000XyZ12AAF", "Case__c": "5005e00000AbCdEAAV", "Reason__c": "Refund"}),
        );
        let input = Input::Relay {
            detail_type: "Call_Request__e",
            payload: &p,
        };
        let Routed::Matched(rule, Ok(x)) = r.route(input, None) else {
            panic!("no match")
        };
        assert_eq!(rule.id, "request");
        assert_eq!(x.contact_id.unwrap().as_str(), "0035e00000XyZ12AAF");
        assert_eq!(x.reason.as_deref(), Some("Refund"));
        assert_eq!(rule.action.assistant_id.as_deref(), Some("asst-2"));
        assert_eq!(rule.action.follow_up, Some(FollowupPolicy::Always));
        assert_eq!(rule.action.quiet_hours, Some(None));
        // `not` excludes values.
        let p = obj(json!({"Contact__c": "0035e00000XyZ12AAF", "Reason__c": "test"}));
        assert!(matches!(
            r.route(
                Input::Relay {
                    detail_type: "Call_Request__e",
                    payload: &p
                },
                None
            ),
            Routed::NoMatch(_)
        ));
        // A mapped field that is not an id is a clear error naming it.
        let p = obj(json!({"Contact__c": "not-an-id"}));
        let Routed::Matched(_, Err(e)) = r.route(
            Input::Relay {
                detail_type: "Call_Request__e",
                payload: &p,
            },
            None,
        ) else {
            panic!("expected a field error")
        };
        assert_eq!(e.field, "Contact__c");
        let p = obj(json!({"Reason__c": "x"}));
        let Routed::Matched(_, Err(e)) = r.route(
            Input::Relay {
                detail_type: "Call_Request__e",
                payload: &p,
            },
            None,
        ) else {
            panic!("expected a field error")
        };
        assert_eq!(
            e.to_string(),
            "Contact__c: is missing (the Contact to call)"
        );
    }

    #[test]
    fn a_rules_policy_lies_over_the_documents_and_the_old_offset_is_not_mixed_with_zones() {
        let r = Routing::parse(
            "t.yaml",
            "version: 1\npolicy: {timeZone: America/New_York, consent: {field: Voice_Consent__c}}\nrules:\n  - id: a\n    when: {detailType: X__e}\n    contact: C__c\n    policy: {timeZoneField: Time_Zone__c, hours: '09:00-17:00', days: [Mon-Fri]}\n  - id: b\n    when: {detailType: Y__e}\n    contact: C__c\n    policy: {consent: none, retry: {after: [2h]}}\n",
        )
        .unwrap();
        let a = &r.rule("a").unwrap().policy;
        assert_eq!(a.time_zone, chrono_tz::America::New_York);
        assert_eq!((a.window.start, a.window.end), (540, 1020));
        assert!(a.consent.is_some(), "from the document");
        let b = &r.rule("b").unwrap().policy;
        assert_eq!(b.consent, None);
        assert_eq!(b.retry.as_ref().map(|r| r.max_calls), Some(2));
        assert_eq!(
            r.policy_contact_fields(),
            ["Voice_Consent__c", "Time_Zone__c"]
        );
        assert!(r.sets_time_zone());
        assert!(
            r.has_report_settings(),
            "a retry cadence needs the dial job's rule"
        );
        // A mistake names the rule and the key.
        let e = Routing::parse(
            "t.yaml",
            "version: 1\nrules:\n  - id: a\n    when: {detailType: X__e}\n    contact: C__c\n    policy: {hours: '9-5'}\n",
        )
        .unwrap_err();
        assert!(
            e.problem.starts_with("rules[0] (id \"a\"): policy.hours"),
            "{e}"
        );
        let e = Routing::parse("t.yaml", "version: 1\npolicy: {cap: {calls: 99}}\nrules:\n  - id: a\n    when: {detailType: X__e}\n    contact: C__c\n").unwrap_err();
        assert!(e.problem.starts_with("policy.cap.calls"), "{e}");
        // The deprecated fixed offset may not be mixed with a zone, in the rule or the document.
        for doc in [
            "version: 1\nrules:\n  - id: a\n    when: {detailType: X__e}\n    contact: C__c\n    call: {quietHours: '21:00-08:00', quietHoursUtcOffset: '-05:00'}\n    policy: {timeZone: America/Chicago}\n",
            "version: 1\npolicy: {timeZone: America/Chicago}\nrules:\n  - id: a\n    when: {detailType: X__e}\n    contact: C__c\n    call: {quietHours: '21:00-08:00', quietHoursUtcOffset: '-05:00'}\n",
        ] {
            let e = Routing::parse("t.yaml", doc).unwrap_err();
            assert!(e.problem.contains("quietHoursUtcOffset is deprecated"), "{e}");
        }
    }

    #[test]
    fn call_handoff_names_the_case_owner_the_contact_owner_or_a_number() {
        let rule = |call: &str| {
            doc(&format!(
                "- id: a\n  when: {{route: events}}\n  eventId: e\n  contact: c\n  case: k\n  call: {call}\n"
            ))
        };
        let r = rule("{handoff: {to: caseOwner, fallback: \"+1 (415) 555-0100\"}}").unwrap();
        let h = r.rules()[0].action.handoff.clone().unwrap();
        assert_eq!(h.to, HandoffTarget::CaseOwner);
        assert_eq!(h.fallback.unwrap().expose(), "+14155550100");
        let r = rule("{handoff: {to: contactOwner}}").unwrap();
        let h = r.rules()[0].action.handoff.clone().unwrap();
        assert_eq!((h.to, h.fallback), (HandoffTarget::ContactOwner, None));
        let r = rule("{handoff: {number: \"+15550100123\"}}").unwrap();
        assert!(matches!(
            &r.rules()[0].action.handoff.as_ref().unwrap().to,
            HandoffTarget::Number(n) if n.expose() == "+15550100123"
        ));
        // No handoff: none.
        assert_eq!(
            rule("{assistantId: x}").unwrap().rules()[0].action.handoff,
            None
        );
        // Every mistake names its key.
        for (call, key) in [
            ("{handoff: {to: manager}}", "call.handoff.to"),
            (
                "{handoff: {to: caseOwner, number: \"+15550100123\"}}",
                "not both",
            ),
            ("{handoff: {}}", "say who takes the call"),
            ("{handoff: {number: \"5550100\"}}", "call.handoff.number"),
            (
                "{handoff: {to: caseOwner, fallback: \"+0123\"}}",
                "call.handoff.fallback",
            ),
            ("{handoff: {to: caseOwner, phone: x}}", "phone"),
        ] {
            let e = rule(call).unwrap_err();
            assert!(e.problem.contains(key), "{call}: {e}");
        }
        // caseOwner needs a Case.
        let e = doc("- id: a\n  when: {route: events}\n  eventId: e\n  contact: c\n  call: {handoff: {to: caseOwner}}\n")
            .unwrap_err();
        assert!(
            e.problem.contains("call.handoff.to: caseOwner needs"),
            "{e}"
        );
    }
}
