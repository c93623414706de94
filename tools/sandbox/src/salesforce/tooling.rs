//! The fake Salesforce's Tooling API for Event Relay, what `sfvapi-admin setup event-relay` and
//! `doctor` call: `POST /tooling/sobjects/<Type>`, `GET|PATCH /tooling/sobjects/<Type>/<id>` and
//! `GET /tooling/query?q=SELECT … FROM <Type> [WHERE <Field> = '<value>']` for
//! `PlatformEventChannel`, `PlatformEventChannelMember`, `NamedCredential` and
//! `EventRelayConfig`, and the standard `EventRelayFeedback` through `GET /query`.
//!
//! As Salesforce's Event Relay guide and object references give them:
//! - a Tooling create is `{"FullName": …, "Metadata": {…}}` → 201
//!   `{"id","success":true,"errors":[],"warnings":[],"infos":[]}`; an update is a PATCH of
//!   `Metadata` → 204 (<https://developer.salesforce.com/docs/platform/event-relay/guide/create-event-relay-config.html>,
//!   <https://developer.salesforce.com/docs/atlas.en-us.api_tooling.meta/api_tooling/intro_rest_resources.htm>);
//! - a channel has `channelType` `event` (platform events) or `data` (change events), and a
//!   member's `selectedEntity` must be of its channel's kind, with an optional
//!   `filterExpression` (<https://developer.salesforce.com/docs/platform/event-relay/guide/create-channel.html>);
//! - a named credential's `endpoint` for Event Relay is `arn:aws:<REGION>:<account>`
//!   (<https://developer.salesforce.com/docs/platform/event-relay/guide/create-named-credential.html>);
//! - an `EventRelayConfig` is created in state `STOP` (the only state a create may set), names
//!   its channel and `callout:<named credential>`, and only `state` and `relayOption` can be
//!   updated (<https://developer.salesforce.com/docs/platform/api-tooling/references/tooling-objects/tooling-eventrelayconfig.html>);
//!   creating it creates a pending partner event source `aws.partner/salesforce.com/<orgId>/<channel id>`
//!   in the named credential's AWS account and region — here in moto, when the sandbox knows its
//!   EventBridge endpoint ([`crate::config::SalesforceConfig::eventbridge_url`]) — and an
//!   `EventRelayFeedback` whose `Status` follows the relay's state (`RUNNING`, `STOPPED`,
//!   `PAUSED`) and whose `RemoteResource` is that source
//!   (<https://developer.salesforce.com/docs/atlas.en-us.object_reference.meta/object_reference/sforce_api_objects_eventrelayfeedback.htm>).
//!
//! Errors are Salesforce's REST array `[{"message","errorCode","fields"?}]` with codes of the
//! API's `StatusCode` list: `REQUIRED_FIELD_MISSING`, `DUPLICATE_DEVELOPER_NAME`,
//! `FIELD_INTEGRITY_EXCEPTION`, `INVALID_CROSS_REFERENCE_KEY`, `INVALID_TYPE`, `INVALID_FIELD`,
//! `MALFORMED_QUERY`, `NOT_FOUND`.

use serde_json::{json, Map, Value};

use super::files::{body_object, missing};
use super::{method_not_allowed, not_found, sf_error};
use crate::{util, Req, Resp};

/// One Tooling object type: its name, the key prefix of its ids and its queryable fields.
struct Kind {
    name: &'static str,
    prefix: &'static str,
    /// `(Field, metadata key)`: the record's field and the `Metadata` key it comes from.
    fields: &'static [(&'static str, &'static str)],
}

/// `0YL` is the documented prefix of a channel id (`RemoteResource` example); the others are
/// the sandbox's own.
const KINDS: &[Kind] = &[
    Kind {
        name: "PlatformEventChannel",
        prefix: "0YL",
        fields: &[("ChannelType", "channelType"), ("MasterLabel", "label")],
    },
    Kind {
        name: "PlatformEventChannelMember",
        prefix: "0v8",
        fields: &[
            ("EventChannel", "eventChannel"),
            ("SelectedEntity", "selectedEntity"),
            ("FilterExpression", "filterExpression"),
        ],
    },
    Kind {
        name: "NamedCredential",
        prefix: "0XA",
        fields: &[
            ("Endpoint", "endpoint"),
            ("MasterLabel", "label"),
            ("PrincipalType", "principalType"),
            ("Protocol", "protocol"),
        ],
    },
    Kind {
        name: "EventRelayConfig",
        prefix: "7k2",
        fields: &[
            ("EventChannel", "eventChannel"),
            ("DestinationResourceName", "destinationResourceName"),
            ("MasterLabel", "label"),
            ("State", "state"),
            ("RelayOption", "relayOption"),
        ],
    },
];

fn kind(name: &str) -> Option<&'static Kind> {
    KINDS.iter().find(|k| k.name.eq_ignore_ascii_case(name))
}

/// The Tooling records and the relays' feedback.
pub(crate) struct Tooling {
    /// Every record: `Id`, `DeveloperName`, `FullName`, `Metadata` and the fields of its kind.
    records: Vec<(&'static str, Map<String, Value>)>,
    /// `EventRelayFeedback` records.
    feedback: Vec<Map<String, Value>>,
    next: u64,
}

/// A partner event source Salesforce asks EventBridge to create: `(name, account, region)`.
pub(crate) struct PartnerSource {
    pub name: String,
    pub account: String,
    pub region: String,
}

impl Default for Tooling {
    /// Ids start at a random point: a channel id names a partner event source in the shared
    /// EventBridge (moto), so two sandboxes must not make the same one.
    fn default() -> Self {
        Self {
            records: Vec::new(),
            feedback: Vec::new(),
            next: rand::random_range(0..1_000_000_000),
        }
    }
}

impl Tooling {
    fn id(&mut self, prefix: &str) -> String {
        self.next += 1;
        util::salesforce_id(prefix, self.next)
    }

    fn find(&self, kind: &str, key: &str, value: &str) -> Option<&Map<String, Value>> {
        self.records
            .iter()
            .filter(|(k, _)| *k == kind)
            .map(|(_, r)| r)
            .find(|r| r.get(key).and_then(Value::as_str) == Some(value))
    }

    /// Set a relay's feedback error (the `relay_error` control switch), or clear it.
    pub fn set_relay_error(&mut self, error: Option<(&str, &str)>) {
        for f in &mut self.feedback {
            match error {
                Some((code, message)) => {
                    f.insert("ErrorCode".into(), json!(code));
                    f.insert("ErrorMessage".into(), json!(message));
                    f.insert(
                        "ErrorTime".into(),
                        json!(util::iso8601(sfvapi::now_millis())),
                    );
                    f.insert("Status".into(), json!("ERROR"));
                }
                None => {
                    for k in ["ErrorCode", "ErrorMessage", "ErrorTime"] {
                        f.insert(k.into(), Value::Null);
                    }
                    let state = self
                        .records
                        .iter()
                        .find(|(_, r)| r.get("Id") == f.get("EventRelayConfigId"))
                        .and_then(|(_, r)| r.get("State").and_then(Value::as_str))
                        .unwrap_or("STOP");
                    f.insert("Status".into(), json!(feedback_status(state)));
                }
            }
        }
    }
}

/// `EventRelayFeedback.Status` for an `EventRelayConfig.State`.
fn feedback_status(state: &str) -> &'static str {
    match state {
        "RUN" => "RUNNING",
        "PAUSE" => "PAUSED",
        _ => "STOPPED",
    }
}

fn integrity(message: String) -> Resp {
    sf_error(400, "FIELD_INTEGRITY_EXCEPTION", &message)
}

fn meta_str<'a>(meta: &'a Map<String, Value>, key: &str) -> Option<&'a str> {
    meta.get(key)
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
}

/// The DeveloperName of a FullName: a channel's `Name__chn` is `Name`.
fn developer_name(full_name: &str) -> &str {
    full_name.strip_suffix("__chn").unwrap_or(full_name)
}

/// `POST|GET|PATCH /tooling/sobjects/…` and `GET /tooling/query`.
pub(crate) fn handle(
    t: &mut Tooling,
    org_id: &str,
    segs: &[&str],
    req: &Req,
) -> (Resp, Option<PartnerSource>) {
    let method = &req.method;
    let resp = match segs {
        ["query"] => match *method {
            http::Method::GET => query(t, req, true),
            _ => method_not_allowed(method, "GET,HEAD"),
        },
        ["sobjects", ty] => match (kind(ty), method) {
            (None, _) => sf_error(
                404,
                "NOT_FOUND",
                &format!(
                    "The requested resource does not exist: sObject type '{ty}' is not supported"
                ),
            ),
            (Some(k), &http::Method::POST) => return create(t, org_id, k, req),
            (Some(_), m) => method_not_allowed(m, "GET,HEAD,POST"),
        },
        ["sobjects", ty, id] => match (kind(ty), method) {
            (None, _) => not_found(),
            (Some(k), &http::Method::GET) => match t.find(k.name, "Id", id) {
                Some(r) => Resp::json(200, &with_attributes(k.name, r)),
                None => not_found(),
            },
            (Some(k), &http::Method::PATCH) => update(t, k, id, req),
            (Some(_), m) => method_not_allowed(m, "GET,HEAD,PATCH,DELETE"),
        },
        _ => not_found(),
    };
    (resp, None)
}

fn with_attributes(kind: &str, r: &Map<String, Value>) -> Value {
    let mut out = Map::new();
    let id = r.get("Id").and_then(Value::as_str).unwrap_or_default();
    out.insert(
        "attributes".into(),
        json!({"type": kind, "url": format!("/services/data/v62.0/tooling/sobjects/{kind}/{id}")}),
    );
    out.extend(r.clone());
    Value::Object(out)
}

fn create(
    t: &mut Tooling,
    org_id: &str,
    k: &'static Kind,
    req: &Req,
) -> (Resp, Option<PartnerSource>) {
    let body = match body_object(req) {
        Ok(b) => b,
        Err(r) => return (r, None),
    };
    let Some(full_name) = body.get("FullName").and_then(Value::as_str) else {
        return (missing(&["FullName"]), None);
    };
    let Some(Value::Object(meta)) = body.get("Metadata") else {
        return (missing(&["Metadata"]), None);
    };
    let dev = developer_name(full_name).to_owned();
    if t.find(k.name, "DeveloperName", &dev).is_some() {
        return (
            sf_error(
                400,
                "DUPLICATE_DEVELOPER_NAME",
                &format!("There's already a {} named {full_name}.", k.name),
            ),
            None,
        );
    }
    let mut partner = None;
    match k.name {
        "PlatformEventChannel" => {
            match meta_str(meta, "channelType") {
                Some("event" | "data") => {}
                Some(other) => {
                    return (
                        integrity(format!(
                            "channelType: bad value for restricted picklist field: {other}"
                        )),
                        None,
                    )
                }
                None => return (missing(&["channelType"]), None),
            }
            if meta_str(meta, "label").is_none() {
                return (missing(&["label"]), None);
            }
        }
        "PlatformEventChannelMember" => {
            if let Err(r) = check_member(t, meta) {
                return (r, None);
            }
        }
        "NamedCredential" => {
            if meta_str(meta, "endpoint").is_none() {
                return (missing(&["endpoint"]), None);
            }
            if meta_str(meta, "label").is_none() {
                return (missing(&["label"]), None);
            }
        }
        "EventRelayConfig" => {
            let state = meta_str(meta, "state").unwrap_or("STOP");
            if state != "STOP" {
                return (
                    integrity(format!(
                        "state: an event relay is created stopped; STOP is the only state you can set on create, not {state}"
                    )),
                    None,
                );
            }
            let Some(channel) = meta_str(meta, "eventChannel") else {
                return (missing(&["eventChannel"]), None);
            };
            let Some(channel_rec) = t.find("PlatformEventChannel", "FullName", channel) else {
                return (
                    sf_error(
                        400,
                        "INVALID_CROSS_REFERENCE_KEY",
                        &format!("eventChannel: no channel named {channel}"),
                    ),
                    None,
                );
            };
            let channel_id = channel_rec
                .get("Id")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned();
            let Some(dest) = meta_str(meta, "destinationResourceName") else {
                return (missing(&["destinationResourceName"]), None);
            };
            let credential = dest
                .strip_prefix("callout:")
                .and_then(|n| t.find("NamedCredential", "DeveloperName", n));
            let Some(credential) = credential else {
                return (
                    sf_error(
                        400,
                        "INVALID_CROSS_REFERENCE_KEY",
                        &format!(
                            "destinationResourceName: {dest} is not callout:<a named credential>"
                        ),
                    ),
                    None,
                );
            };
            // `arn:aws:<REGION>:<account>` (the named credential guide).
            let endpoint = credential
                .get("Endpoint")
                .and_then(Value::as_str)
                .unwrap_or_default();
            let parts: Vec<&str> = endpoint.split(':').collect();
            if let ["arn", "aws", region, account] = parts.as_slice() {
                partner = Some(PartnerSource {
                    name: format!("aws.partner/salesforce.com/{org_id}/{channel_id}"),
                    account: (*account).to_owned(),
                    region: region.to_ascii_lowercase(),
                });
            }
        }
        _ => {}
    }
    let id = t.id(k.prefix);
    let mut record = Map::new();
    record.insert("Id".into(), json!(id));
    record.insert("DeveloperName".into(), json!(dev));
    record.insert("FullName".into(), json!(full_name));
    for (field, key) in k.fields {
        record.insert(
            (*field).into(),
            meta.get(*key).cloned().unwrap_or(Value::Null),
        );
    }
    if k.name == "EventRelayConfig" {
        record.insert("State".into(), json!("STOP"));
        let source = partner.as_ref().map(|p| p.name.clone());
        let fid = t.id("0bX");
        t.feedback.push(
            json!({
                "Id": fid,
                "EventRelayConfigId": id,
                "Status": "STOPPED",
                "RemoteResource": source,
                "ErrorCode": null,
                "ErrorMessage": null,
                "ErrorTime": null,
                "LastRelayedEventTime": null,
            })
            .as_object()
            .cloned()
            .unwrap_or_default(),
        );
    }
    record.insert("Metadata".into(), Value::Object(meta.clone()));
    t.records.push((k.name, record));
    (
        Resp::json(
            201,
            &json!({"id": id, "success": true, "errors": [], "warnings": [], "infos": []}),
        ),
        partner,
    )
}

fn check_member(t: &Tooling, meta: &Map<String, Value>) -> Result<(), Resp> {
    let Some(channel) = meta_str(meta, "eventChannel") else {
        return Err(missing(&["eventChannel"]));
    };
    let Some(entity) = meta_str(meta, "selectedEntity") else {
        return Err(missing(&["selectedEntity"]));
    };
    let Some(ch) = t.find("PlatformEventChannel", "FullName", channel) else {
        return Err(sf_error(
            400,
            "INVALID_CROSS_REFERENCE_KEY",
            &format!("eventChannel: no channel named {channel}"),
        ));
    };
    let data = ch.get("ChannelType").and_then(Value::as_str) == Some("data");
    let change_event = entity.ends_with("ChangeEvent");
    let platform_event = entity.ends_with("__e");
    if (data && !change_event) || (!data && !platform_event) {
        return Err(integrity(format!(
            "selectedEntity: {entity} cannot be a member of a channel of type {}: a channel holds platform events (event) or change events (data), not both",
            if data { "data" } else { "event" }
        )));
    }
    Ok(())
}

fn update(t: &mut Tooling, k: &'static Kind, id: &str, req: &Req) -> Resp {
    let body = match body_object(req) {
        Ok(b) => b,
        Err(r) => return r,
    };
    let Some(Value::Object(meta)) = body.get("Metadata") else {
        return missing(&["Metadata"]);
    };
    let Some(pos) = t
        .records
        .iter()
        .position(|(kn, r)| *kn == k.name && r.get("Id").and_then(Value::as_str) == Some(id))
    else {
        return not_found();
    };
    let current = t.records[pos].1.clone();
    if k.name == "EventRelayConfig" {
        // Only state and relayOption can change.
        for (field, key) in [
            ("EventChannel", "eventChannel"),
            ("DestinationResourceName", "destinationResourceName"),
        ] {
            if let Some(v) = meta.get(key) {
                if Some(v) != current.get(field) {
                    return integrity(format!(
                        "{key}: you can update only the state and relayOption fields of an event relay"
                    ));
                }
            }
        }
        if let Some(state) = meta_str(meta, "state") {
            if !matches!(state, "RUN" | "STOP" | "PAUSE") {
                return integrity(format!(
                    "state: bad value for restricted picklist field: {state}"
                ));
            }
            for f in t
                .feedback
                .iter_mut()
                .filter(|f| f.get("EventRelayConfigId").and_then(Value::as_str) == Some(id))
            {
                f.insert("Status".into(), json!(feedback_status(state)));
            }
        }
    }
    if k.name == "PlatformEventChannelMember" {
        let mut merged = current
            .get("Metadata")
            .and_then(Value::as_object)
            .cloned()
            .unwrap_or_default();
        merged.extend(meta.clone());
        if let Err(r) = check_member(t, &merged) {
            return r;
        }
    }
    let record = &mut t.records[pos].1;
    for (field, key) in k.fields {
        if let Some(v) = meta.get(*key) {
            record.insert((*field).into(), v.clone());
        }
    }
    if let Some(Value::Object(stored)) = record.get_mut("Metadata") {
        stored.extend(meta.clone());
    }
    Resp::empty(204)
}

/// `SELECT f1, f2 FROM <Type> [WHERE <Field> = '<value>']`.
struct Query {
    fields: Vec<String>,
    object: String,
    filter: Option<(String, String)>,
}

fn parse(q: &str) -> Option<Query> {
    let q = q.trim();
    let upper = q.to_ascii_uppercase();
    upper.strip_prefix("SELECT ")?;
    let from = upper.find(" FROM ")?;
    let fields = q
        .get(7..from)?
        .split(',')
        .map(|f| f.trim().to_owned())
        .filter(|f| !f.is_empty())
        .collect::<Vec<_>>();
    let rest = q.get(from + 6..)?.trim();
    let (object, cond) = match rest.split_once(char::is_whitespace) {
        Some((o, c)) => (o.to_owned(), Some(c.trim())),
        None => (rest.to_owned(), None),
    };
    let filter = match cond {
        None => None,
        Some(c) => {
            let c = c
                .get(..6)
                .filter(|w| w.eq_ignore_ascii_case("WHERE "))
                .map(|_| &c[6..])?;
            let (field, value) = c.split_once('=')?;
            let value = value.trim().strip_prefix('\'')?.strip_suffix('\'')?;
            Some((field.trim().to_owned(), value.to_owned()))
        }
    };
    (!fields.is_empty()).then_some(Query {
        fields,
        object,
        filter,
    })
}

/// The queryable fields of a record of `object`.
fn queryable(object: &str) -> Vec<&'static str> {
    if object.eq_ignore_ascii_case("EventRelayFeedback") {
        return vec![
            "Id",
            "EventRelayConfigId",
            "Status",
            "RemoteResource",
            "ErrorCode",
            "ErrorMessage",
            "ErrorTime",
            "LastRelayedEventTime",
        ];
    }
    let Some(k) = kind(object) else {
        return Vec::new();
    };
    let mut out = vec!["Id", "DeveloperName"];
    out.extend(k.fields.iter().map(|(f, _)| *f));
    out
}

/// A Tooling query (`tooling`: the Tooling objects) or a standard one of `EventRelayFeedback`.
/// `None` when `q` is not about these objects (the caller answers it).
pub(crate) fn query(t: &Tooling, req: &Req, tooling: bool) -> Resp {
    let q = req.query_param("q").unwrap_or_default();
    match answer(t, &q, tooling) {
        Some(r) => r,
        None => sf_error(
            400,
            "MALFORMED_QUERY",
            &format!("\n{q}\n^\nERROR at Row:1:Column:1\nthe sandbox's Tooling API understands SELECT <fields> FROM <Type> [WHERE <Field> = '<value>']"),
        ),
    }
}

/// The answer to a query of the relay objects, or `None` for any other query.
pub(crate) fn answer(t: &Tooling, q: &str, tooling: bool) -> Option<Resp> {
    let parsed = parse(q)?;
    let feedback = parsed.object.eq_ignore_ascii_case("EventRelayFeedback");
    let known = if tooling {
        kind(&parsed.object).is_some()
    } else {
        feedback
    };
    if !known {
        if tooling {
            return Some(sf_error(
                400,
                "INVALID_TYPE",
                &format!(
                    "\n{q}\n^\nERROR at Row:1:Column:1\nsObject type '{}' is not supported.",
                    parsed.object
                ),
            ));
        }
        return None;
    }
    let allowed = queryable(&parsed.object);
    for f in parsed
        .fields
        .iter()
        .chain(parsed.filter.iter().map(|(f, _)| f))
    {
        if !allowed.iter().any(|a| a.eq_ignore_ascii_case(f)) {
            return Some(sf_error(
                400,
                "INVALID_FIELD",
                &format!(
                    "\n{q}\n^\nERROR at Row:1:Column:1\nNo such column '{f}' on entity '{}'.",
                    parsed.object
                ),
            ));
        }
    }
    let canonical = |f: &str| {
        allowed
            .iter()
            .find(|a| a.eq_ignore_ascii_case(f))
            .copied()
            .unwrap_or_default()
    };
    let rows: Vec<&Map<String, Value>> = if feedback {
        t.feedback.iter().collect()
    } else {
        let name = kind(&parsed.object).map(|k| k.name).unwrap_or_default();
        t.records
            .iter()
            .filter(|(k, _)| *k == name)
            .map(|(_, r)| r)
            .collect()
    };
    let type_name = if feedback {
        "EventRelayFeedback".to_owned()
    } else {
        kind(&parsed.object)
            .map(|k| k.name.to_owned())
            .unwrap_or_default()
    };
    let records: Vec<Value> = rows
        .into_iter()
        .filter(|r| match &parsed.filter {
            None => true,
            Some((f, v)) => r.get(canonical(f)).and_then(Value::as_str) == Some(v.as_str()),
        })
        .map(|r| {
            let mut out = Map::new();
            let id = r.get("Id").and_then(Value::as_str).unwrap_or_default();
            let base = if tooling { "tooling/sobjects" } else { "sobjects" };
            out.insert(
                "attributes".into(),
                json!({"type": type_name, "url": format!("/services/data/v62.0/{base}/{type_name}/{id}")}),
            );
            for f in &parsed.fields {
                let c = canonical(f);
                out.insert(c.into(), r.get(c).cloned().unwrap_or(Value::Null));
            }
            Value::Object(out)
        })
        .collect();
    let mut body = json!({"totalSize": records.len(), "done": true, "records": records});
    if tooling {
        body["size"] = json!(body["totalSize"]);
        body["entityTypeName"] = json!(type_name);
        body["queryLocator"] = Value::Null;
    }
    Some(Resp::json(200, &body))
}
