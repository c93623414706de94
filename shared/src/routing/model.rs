//! The routing document as typed values: rules, their paths, predicates and actions, hand-off
//! and write-back, and `Routing`'s read-only view of the whole. Built only by `parse`; read by
//! `eval` and the rest of the crate.

use std::collections::BTreeMap;
use std::fmt;

use crate::ids::E164Phone;
use crate::policy::followup::FollowupPolicy;
use crate::policy::spec::Policy;
use crate::policy::window::QuietHours;

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
    pub(super) fn new(field: impl Into<String>, problem: impl Into<String>) -> Self {
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
    pub(super) raw: String,
    pub(super) segments: Vec<String>,
}

impl Path {
    pub(super) fn parse(raw: &str) -> Result<Self, String> {
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
    pub(super) fn last(&self) -> &str {
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
    pub(super) fn parse(raw: &str) -> Result<Self, String> {
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

/// The loaded document.
#[derive(Debug, Clone)]
pub struct Routing {
    pub(super) source_name: String,
    pub(super) rules: Vec<Rule>,
    /// The document's `policy:` (jobs without a rule use it).
    pub(super) default_policy: Policy,
}

// ------------------------------------------------------------------------------------------
// The document's syntax (serde, unknown keys refused)
// ------------------------------------------------------------------------------------------

impl Routing {
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
}

impl fmt::Display for Routing {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({} rules)", self.source_name, self.rules.len())
    }
}
