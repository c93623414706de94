//! Reading a routing document: the YAML file (`ROUTING_FILE`) or the built-in one into the
//! model, validated once at cold start; every mistake names its rule and key.

use std::collections::{BTreeMap, HashSet};

use serde::Deserialize;
use serde_json::Value;

use super::model::*;
use crate::ids::E164Phone;
use crate::policy::followup::FollowupPolicy;
use crate::policy::spec::RawPolicy;
use crate::policy::window::QuietHours;

/// The document shipped in the bundle (the repository's `routing.yaml`).
pub const BUILT_IN: &str = include_str!("../../../routing.yaml");
/// The same document as JSON, written by `build.rs`: what a cold start parses.
const BUILT_IN_JSON: &str = include_str!(concat!(env!("OUT_DIR"), "/routing.json"));
/// How the built-in document is named in errors and logs.
pub const BUILT_IN_NAME: &str = "routing.yaml (built in)";
/// The variable that points a function at another document.
pub const ROUTING_FILE: &str = "ROUTING_FILE";

/// Longest free-text value a rule may put into a prompt variable.
const MAX_VARIABLE_CHARS: usize = 1000;
const MAX_RULES: usize = 200;

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
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::routing::test_util::doc;

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
