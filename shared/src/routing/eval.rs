//! One event against the routing document: the first rule that matches it, and what that rule's
//! mapping takes from the event (ids, priority, reason, variables), or why nothing matched.

use serde_json::{Map, Value};

use super::model::*;
use crate::ids::{Priority, SalesforceEventId, SalesforceId};

/// Longer reasons are cut, as `events::clean_reason` does.
const MAX_REASON_CHARS: usize = 1000;

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

impl Routing {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::followup::FollowupPolicy;
    use crate::routing::test_util::{doc, obj, CDC};
    use serde_json::json;

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
}
