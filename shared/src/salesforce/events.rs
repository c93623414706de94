//! The events Salesforce sends us, parsed into typed dial requests.
//!
//! Accepted shapes (DESIGN.md, "Events in"):
//! - Platform Event (the seed's shape): `{"eventId"?, "data":{"event":{"replayId","EventUuid"?},
//!   "payload":{"caseId","customerId","priority","reason"?}}}`;
//! - flat (Flow HTTP Callout / Apex): `{"eventId","contactId","caseId"?,"priority"?,"reason"?}`;
//! - Outbound Message (SOAP): `notifications{OrganizationId, Notification{Id, sObject}*}`.
//!
//! A body without an id is rejected: a hash of the body is not an identity.
//!
//! What the ingest runs is the routing document (`crate::routing`): [`parse_outbound_notifications`]
//! gives it the notifications of a SOAP message, and the JSON body goes to it as it is. The
//! fixed-shape parsers here ([`parse_json_event`], [`parse_outbound_message`]) are the shapes
//! sfvapi accepted before routing documents; they stay as the reference the built-in document is
//! tested against (`shared/tests/routing_default.rs`) and for tools that build sample payloads.

use quick_xml::events::Event;
use quick_xml::Reader;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::ids::{InvalidValue, Priority, SalesforceEventId, SalesforceId};

/// Where an event came from; kept on the job for the timeline.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum EventSource {
    PlatformEvent,
    Flat,
    OutboundMessage,
    /// A Platform Event relayed by Event Relay through EventBridge.
    EventRelay,
    /// A Change Data Capture event relayed by Event Relay (one job per changed record).
    ChangeEvent,
}

/// One event = one request to call one Contact, typed and validated.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DialRequest {
    pub event_id: SalesforceEventId,
    /// `None` when the routing rule takes the Contact from the Case: the worker reads the Case
    /// (`case_id`) at dial time and calls its Contact.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub contact_id: Option<SalesforceId>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub case_id: Option<SalesforceId>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub priority: Option<Priority>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    pub source: EventSource,
    /// The routing rule that matched (its `call` and `writeBack` settings apply); `None` for
    /// jobs from before routing documents, which use the worker's environment.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rule: Option<String>,
}

/// Parse a JSON event body (Platform Event or flat shape).
pub fn parse_json_event(body: &[u8]) -> Result<DialRequest, InvalidValue> {
    let value: Value = serde_json::from_slice(body).map_err(|e| {
        InvalidValue::new(
            "body",
            format!("not valid JSON (line {}, column {})", e.line(), e.column()),
        )
    })?;
    let Value::Object(root) = value else {
        return Err(InvalidValue::new("body", "must be a JSON object"));
    };
    match root.get("data") {
        Some(Value::Object(data)) => parse_platform_event(&root, data),
        Some(_) => Err(InvalidValue::new("data", "must be an object")),
        None => parse_flat(&root),
    }
}

fn parse_platform_event(
    root: &Map<String, Value>,
    data: &Map<String, Value>,
) -> Result<DialRequest, InvalidValue> {
    let event = match data.get("event") {
        None | Some(Value::Null) => None,
        Some(Value::Object(e)) => Some(e),
        Some(_) => return Err(InvalidValue::new("data.event", "must be an object")),
    };
    let payload = match data.get("payload") {
        Some(Value::Object(p)) => p,
        Some(_) => return Err(InvalidValue::new("data.payload", "must be an object")),
        None => return Err(InvalidValue::new("data.payload", "is missing")),
    };
    // An explicit id wins; else the event's globally unique EventUuid; else its replayId.
    let event_id = if let Some(id) = opt_str(root, "eventId")? {
        SalesforceEventId::parse("eventId", id)?
    } else if let Some(uuid) = event
        .map(|e| opt_str(e, "EventUuid"))
        .transpose()?
        .flatten()
    {
        SalesforceEventId::parse("data.event.EventUuid", uuid)?
    } else {
        match event.and_then(|e| e.get("replayId")) {
            Some(Value::Number(n)) if n.is_u64() => {
                SalesforceEventId::parse("data.event.replayId", &n.to_string())?
            }
            Some(Value::String(s)) => SalesforceEventId::parse("data.event.replayId", s)?,
            Some(_) => {
                return Err(InvalidValue::new(
                    "data.event.replayId",
                    "must be a non-negative integer",
                ))
            }
            None => {
                return Err(InvalidValue::new(
                    "eventId",
                    "is missing (send eventId, or data.event.EventUuid / data.event.replayId)",
                ))
            }
        }
    };
    Ok(DialRequest {
        event_id,
        contact_id: Some(required_id(
            payload,
            "customerId",
            "data.payload.customerId",
        )?),
        case_id: optional_id(payload, "caseId", "data.payload.caseId")?,
        priority: optional_priority(payload, "priority", "data.payload.priority")?,
        reason: optional_reason(payload, "reason", "data.payload.reason")?,
        source: EventSource::PlatformEvent,
        rule: None,
    })
}

fn parse_flat(root: &Map<String, Value>) -> Result<DialRequest, InvalidValue> {
    let id = opt_str(root, "eventId")?.ok_or_else(|| InvalidValue::new("eventId", "is missing"))?;
    Ok(DialRequest {
        event_id: SalesforceEventId::parse("eventId", id)?,
        contact_id: Some(required_id(root, "contactId", "contactId")?),
        case_id: optional_id(root, "caseId", "caseId")?,
        priority: optional_priority(root, "priority", "priority")?,
        reason: optional_reason(root, "reason", "reason")?,
        source: EventSource::Flat,
        rule: None,
    })
}

fn opt_str<'a>(
    obj: &'a Map<String, Value>,
    key: &'static str,
) -> Result<Option<&'a str>, InvalidValue> {
    match obj.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(_) => Err(InvalidValue::new(key, "must be a string")),
    }
}

fn field_str<'a>(
    obj: &'a Map<String, Value>,
    key: &str,
    field: &'static str,
) -> Result<Option<&'a str>, InvalidValue> {
    match obj.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) if s.trim().is_empty() => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(_) => Err(InvalidValue::new(field, "must be a string")),
    }
}

fn required_id(
    obj: &Map<String, Value>,
    key: &str,
    field: &'static str,
) -> Result<SalesforceId, InvalidValue> {
    let s = field_str(obj, key, field)?
        .ok_or_else(|| InvalidValue::new(field, "is missing (the Contact to call)"))?;
    SalesforceId::parse(field, s)
}

fn optional_id(
    obj: &Map<String, Value>,
    key: &str,
    field: &'static str,
) -> Result<Option<SalesforceId>, InvalidValue> {
    field_str(obj, key, field)?
        .map(|s| SalesforceId::parse(field, s))
        .transpose()
}

fn optional_priority(
    obj: &Map<String, Value>,
    key: &str,
    field: &'static str,
) -> Result<Option<Priority>, InvalidValue> {
    field_str(obj, key, field)?
        .map(|s| Priority::parse(field, s))
        .transpose()
}

fn optional_reason(
    obj: &Map<String, Value>,
    key: &str,
    field: &'static str,
) -> Result<Option<String>, InvalidValue> {
    Ok(field_str(obj, key, field)?.map(clean_reason))
}

/// Free text that reaches a voice prompt: bounded, without control characters (one definition,
/// shared with the routing document's `reason`).
fn clean_reason(s: &str) -> String {
    crate::routing::clean_reason(s)
}

/// A parsed Outbound Message: the sending org, one dial request per usable notification, and the
/// notifications that cannot become a call, with why.
///
/// Salesforce retries the *whole* message (up to 100 notifications) on anything but an Ack
/// (<https://developer.salesforce.com/docs/atlas.en-us.api.meta/api/sforce_api_om_outboundmessaging_notifications.htm>),
/// so one bad notification must not fault the others: it is kept here and recorded as SKIPPED.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboundMessage {
    pub organization_id: SalesforceId,
    pub notifications: Vec<DialRequest>,
    pub rejected: Vec<RejectedNotification>,
    /// Notifications without a usable `Id`: nothing to dedup them by, so they are only counted.
    pub unidentified: usize,
}

/// A notification that names itself (its `Id`) but cannot become a dial request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RejectedNotification {
    pub event_id: SalesforceEventId,
    /// The sObject type it carried (`Case`, `Contact`, …), when any.
    pub sobject_type: Option<String>,
    /// What is wrong, naming the field (safe to store and log: no field values).
    pub reason: String,
    /// The notification as the routing saw it ([`Notification::view`]), kept on the SKIPPED
    /// item for `sfvapi-admin reroute`; `None` when it was refused before routing.
    pub input: Option<Map<String, Value>>,
}

/// One notification of an Outbound Message, as sent: its `Id`, its sObject's type and fields.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notification {
    pub event_id: SalesforceEventId,
    pub sobject_type: Option<String>,
    /// The sObject's fields in document order (empty values kept; see [`Notification::view`]).
    pub fields: Vec<(String, String)>,
}

impl Notification {
    /// The notification as the routing document's paths see it:
    /// `{"Id", "sObjectType"?, "sObject": {<field>: <value>}}`. Empty fields are left out, as
    /// Salesforce sends a field it has no value for empty; the first of a repeated field wins.
    pub fn view(&self) -> Map<String, Value> {
        let mut sobject = Map::new();
        for (k, v) in &self.fields {
            if !v.is_empty() && !sobject.contains_key(k) {
                sobject.insert(k.clone(), Value::String(v.clone()));
            }
        }
        let mut m = Map::new();
        m.insert(
            "Id".into(),
            Value::String(self.event_id.as_str().to_owned()),
        );
        if let Some(t) = self.sobject_type.as_ref().filter(|t| !t.is_empty()) {
            m.insert("sObjectType".into(), Value::String(t.clone()));
        }
        m.insert("sObject".into(), Value::Object(sobject));
        m
    }
}

/// The notifications of an Outbound Message, not yet mapped to calls.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboundNotifications {
    pub organization_id: SalesforceId,
    pub notifications: Vec<Notification>,
    /// Notifications without a usable `Id`: nothing to dedup them by, so they are only counted.
    pub unidentified: usize,
}

/// Most notifications one message may carry (Salesforce batches up to 100).
const MAX_NOTIFICATIONS: usize = 100;

#[derive(Default)]
struct NotificationBuilder {
    id: Option<String>,
    sobject_type: Option<String>,
    fields: Vec<(String, String)>,
}

/// Parse a SOAP Outbound Message and map each notification with the fixed pre-routing rules
/// (Contact → itself, Case → its ContactId, other sObjects → their ContactId).
pub fn parse_outbound_message(body: &[u8]) -> Result<OutboundMessage, InvalidValue> {
    let parsed = parse_outbound_notifications(body)?;
    let mut notifications = Vec::new();
    let mut rejected = Vec::new();
    for n in parsed.notifications {
        let event_id = n.event_id.clone();
        let sobject_type = n.sobject_type.clone().filter(|t| !t.is_empty());
        match notification_to_request(n) {
            Ok(r) => notifications.push(r),
            Err(e) => rejected.push(RejectedNotification {
                event_id,
                sobject_type,
                reason: e.to_string(),
                input: None,
            }),
        }
    }
    Ok(OutboundMessage {
        organization_id: parsed.organization_id,
        notifications,
        rejected,
        unidentified: parsed.unidentified,
    })
}

/// Parse a SOAP Outbound Message into its org and notifications. Element names are matched by
/// local name, so namespace prefixes (`sf:`, `soapenv:`) may be anything.
pub fn parse_outbound_notifications(body: &[u8]) -> Result<OutboundNotifications, InvalidValue> {
    let text =
        std::str::from_utf8(body).map_err(|_| InvalidValue::new("body", "is not UTF-8 XML"))?;
    let mut reader = Reader::from_str(text);
    let mut path: Vec<String> = Vec::new();
    let mut org_id: Option<String> = None;
    let mut current: Option<NotificationBuilder> = None;
    let mut done: Vec<NotificationBuilder> = Vec::new();
    let mut text_buf = String::new();
    let bad_xml = |e: &dyn std::fmt::Display| {
        InvalidValue::new("body", format!("is not well-formed XML: {e}"))
    };

    loop {
        let event = reader.read_event().map_err(|e| bad_xml(&e))?;
        match event {
            Event::Start(e) => {
                if path.len() > 32 {
                    return Err(InvalidValue::new("body", "XML is nested too deeply"));
                }
                let name = e.local_name().as_ref().to_owned();
                text_buf.clear();
                if name == "Notification" && parent_is(&path, "notifications") {
                    if done.len() >= MAX_NOTIFICATIONS {
                        return Err(InvalidValue::new(
                            "Notification",
                            "more than 100 in one message",
                        ));
                    }
                    current = Some(NotificationBuilder::default());
                } else if name == "sObject" && parent_is(&path, "Notification") {
                    if let Some(n) = current.as_mut() {
                        for a in e.attributes().flatten() {
                            if a.key.local_name().as_ref() == "type" {
                                let v = a
                                    .normalized_value(quick_xml::XmlVersion::Implicit1_0)
                                    .map_err(|e| bad_xml(&e))?;
                                // `sf:Case` → `Case`
                                n.sobject_type =
                                    Some(v.rsplit(':').next().unwrap_or_default().to_owned());
                            }
                        }
                    }
                }
                path.push(name);
            }
            Event::Empty(_) => {}
            Event::Text(t) => text_buf.push_str(&t.html_content()),
            Event::CData(c) => text_buf.push_str(&c),
            Event::GeneralRef(r) => {
                let resolved = match r.resolve_char_ref().map_err(|e| bad_xml(&e))? {
                    Some(c) => c.to_string(),
                    None => match &*r.html_content() {
                        "amp" => "&".into(),
                        "lt" => "<".into(),
                        "gt" => ">".into(),
                        "quot" => "\"".into(),
                        "apos" => "'".into(),
                        other => {
                            return Err(InvalidValue::new(
                                "body",
                                format!("unknown XML entity &{other};"),
                            ))
                        }
                    },
                };
                text_buf.push_str(&resolved);
            }
            Event::End(_) => {
                let Some(name) = path.pop() else {
                    return Err(InvalidValue::new("body", "is not well-formed XML"));
                };
                let value = text_buf.trim().to_owned();
                text_buf.clear();
                if name == "OrganizationId" && parent_is(&path, "notifications") {
                    org_id = Some(value);
                } else if name == "Notification" && parent_is(&path, "notifications") {
                    if let Some(n) = current.take() {
                        done.push(n);
                    }
                } else if name == "Id" && parent_is(&path, "Notification") {
                    if let Some(n) = current.as_mut() {
                        n.id = Some(value);
                    }
                } else if parent_is(&path, "sObject") {
                    if let Some(n) = current.as_mut() {
                        n.fields.push((name, value));
                    }
                }
            }
            Event::Eof => break,
            _ => {}
        }
    }

    let org = org_id.ok_or_else(|| InvalidValue::new("OrganizationId", "is missing"))?;
    let organization_id = SalesforceId::parse("OrganizationId", &org)?;
    if done.is_empty() {
        return Err(InvalidValue::new(
            "Notification",
            "none found (not an Outbound Message?)",
        ));
    }
    let mut notifications = Vec::new();
    let mut unidentified = 0;
    for n in done {
        match n
            .id
            .as_deref()
            .map(|id| SalesforceEventId::parse("Notification.Id", id))
        {
            Some(Ok(event_id)) => notifications.push(Notification {
                event_id,
                sobject_type: n.sobject_type,
                fields: n.fields,
            }),
            None | Some(Err(_)) => unidentified += 1,
        }
    }
    Ok(OutboundNotifications {
        organization_id,
        notifications,
        unidentified,
    })
}

fn parent_is(path: &[String], name: &str) -> bool {
    path.last().is_some_and(|p| p == name)
}

fn notification_to_request(n: Notification) -> Result<DialRequest, InvalidValue> {
    let field = |k: &str| {
        n.fields
            .iter()
            .find(|(name, v)| name == k && !v.is_empty())
            .map(|(_, v)| v.as_str())
    };
    let event_id = n.event_id.clone();
    let kind = n.sobject_type.as_deref().unwrap_or("");
    let (contact, case) = match kind {
        "Contact" => (field("Id"), None),
        "" => {
            return Err(InvalidValue::new(
                "sObject",
                "has no xsi:type (expected Case, Contact or an object with ContactId)",
            ))
        }
        _ if field("ContactId").is_none() && kind != "Case" => {
            return Err(InvalidValue::new(
                "sObject",
                format!(
                    "type {:?} is not supported: send Case or Contact, or add ContactId to the message's fields",
                    kind.chars().take(40).collect::<String>()
                ),
            ))
        }
        _ => (
            field("ContactId"),
            if kind == "Case" {
                field("Id")
            } else {
                field("CaseId")
            },
        ),
    };
    let contact = contact.ok_or_else(|| {
        InvalidValue::new(
            "sObject.ContactId",
            "is missing (add ContactId to the Outbound Message's fields)",
        )
    })?;
    Ok(DialRequest {
        event_id,
        contact_id: Some(SalesforceId::parse("sObject.ContactId", contact)?),
        case_id: case
            .map(|c| SalesforceId::parse("sObject.Id", c))
            .transpose()?,
        priority: field("Priority")
            .map(|p| Priority::parse("sObject.Priority", p))
            .transpose()?,
        reason: field("Reason")
            .or_else(|| field("Subject"))
            .map(clean_reason),
        source: EventSource::OutboundMessage,
        rule: None,
    })
}

/// The SOAP acknowledgement Salesforce waits for; without it, it retries for up to 24 h.
pub const OUTBOUND_ACK: &str = concat!(
    r#"<?xml version="1.0" encoding="UTF-8"?>"#,
    r#"<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/">"#,
    r#"<soapenv:Body><notificationsResponse xmlns="http://soap.sforce.com/2005/09/outbound">"#,
    r#"<Ack>true</Ack></notificationsResponse></soapenv:Body></soapenv:Envelope>"#
);

/// A SOAP fault: `Client` for requests Salesforce should not retry as-is, `Server` for ours.
pub fn soap_fault(server_side: bool, message: &str) -> String {
    let code = if server_side {
        "soapenv:Server"
    } else {
        "soapenv:Client"
    };
    let escaped = message
        .replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;");
    format!(
        concat!(
            r#"<?xml version="1.0" encoding="UTF-8"?>"#,
            r#"<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/">"#,
            r#"<soapenv:Body><soapenv:Fault><faultcode>{}</faultcode><faultstring>{}</faultstring>"#,
            r#"</soapenv:Fault></soapenv:Body></soapenv:Envelope>"#
        ),
        code, escaped
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flat_event_parses() {
        let r = parse_json_event(
            br#"{"eventId":"e-1","contactId":"0035e00000XyZ12AAF","caseId":"5005e00000AbCdEAAV","priority":"High","reason":"Payment failed"}"#,
        )
        .unwrap();
        assert_eq!(r.event_id.as_str(), "e-1");
        assert_eq!(
            r.contact_id.as_ref().map(SalesforceId::as_str),
            Some("0035e00000XyZ12AAF")
        );
        assert_eq!(r.priority, Some(Priority::High));
        assert_eq!(r.source, EventSource::Flat);
    }

    #[test]
    fn platform_event_prefers_explicit_id_then_uuid_then_replay() {
        let base = |extra: &str, event: &str| {
            format!(
                r#"{{{extra}"data":{{"event":{event},"payload":{{"customerId":"0035e00000XyZ12AAF"}}}}}}"#
            )
        };
        let r = parse_json_event(
            base(r#""eventId":"x","#, r#"{"replayId":5,"EventUuid":"u-1"}"#).as_bytes(),
        )
        .unwrap();
        assert_eq!(r.event_id.as_str(), "x");
        let r =
            parse_json_event(base("", r#"{"replayId":5,"EventUuid":"u-1"}"#).as_bytes()).unwrap();
        assert_eq!(r.event_id.as_str(), "u-1");
        let r = parse_json_event(base("", r#"{"replayId":5}"#).as_bytes()).unwrap();
        assert_eq!(r.event_id.as_str(), "5");
        let e = parse_json_event(base("", "{}").as_bytes()).unwrap_err();
        assert_eq!(e.field, "eventId");
        let e = parse_json_event(base("", r#"{"replayId":-1}"#).as_bytes()).unwrap_err();
        assert_eq!(e.field, "data.event.replayId");
    }

    #[test]
    fn errors_name_the_field() {
        let cases: &[(&[u8], &str)] = &[
            (b"not json", "body"),
            (b"[1,2]", "body"),
            (br#"{"contactId":"0035e00000XyZ12AAF"}"#, "eventId"),
            (
                br#"{"eventId":"a b","contactId":"0035e00000XyZ12AAF"}"#,
                "eventId",
            ),
            (br#"{"eventId":"e"}"#, "contactId"),
            (br#"{"eventId":"e","contactId":"short"}"#, "contactId"),
            (
                br#"{"eventId":"e","contactId":"0035e00000XyZ12AAF","caseId":7}"#,
                "caseId",
            ),
            (
                br#"{"eventId":12,"contactId":"0035e00000XyZ12AAF"}"#,
                "eventId",
            ),
            (br#"{"data":[]}"#, "data"),
            (br#"{"data":{"event":{"replayId":1}}}"#, "data.payload"),
            (
                br#"{"data":{"event":{"replayId":1},"payload":{"customerId":"bad"}}}"#,
                "data.payload.customerId",
            ),
        ];
        for (body, field) in cases {
            let e = parse_json_event(body).unwrap_err();
            assert_eq!(&e.field, field, "{}", String::from_utf8_lossy(body));
        }
    }

    #[test]
    fn outbound_message_with_entities_and_two_notifications() {
        let xml = r#"<?xml version="1.0"?><e:Envelope xmlns:e="http://schemas.xmlsoap.org/soap/envelope/"><e:Body>
          <notifications xmlns="http://soap.sforce.com/2005/09/outbound"><OrganizationId>00D5e000000AbCdEAK</OrganizationId>
          <Notification><Id>04l5e00000AbCdEAAA</Id><sObject xsi:type="sf:Case" xmlns:xsi="x" xmlns:sf="y">
            <sf:Id>5005e00000AbCdEAAV</sf:Id><sf:ContactId>0035e00000XyZ12AAF</sf:ContactId><sf:Subject>Refund &amp; fee</sf:Subject>
          </sObject></Notification>
          <Notification><Id>04l5e00000AbCdEAAB</Id><sObject xsi:type="sf:Contact" xmlns:xsi="x" xmlns:sf="y">
            <sf:Id>0035e00000XyZ12AAF</sf:Id></sObject></Notification>
          </notifications></e:Body></e:Envelope>"#;
        let m = parse_outbound_message(xml.as_bytes()).unwrap();
        assert_eq!(m.organization_id.as_str(), "00D5e000000AbCdEAK");
        assert_eq!(m.notifications.len(), 2);
        assert_eq!(
            m.notifications[0].case_id.as_ref().map(|c| c.as_str()),
            Some("5005e00000AbCdEAAV")
        );
        assert_eq!(m.notifications[0].reason.as_deref(), Some("Refund & fee"));
        assert_eq!(m.notifications[1].case_id, None);
        assert_eq!(
            m.notifications[1]
                .contact_id
                .as_ref()
                .map(SalesforceId::as_str),
            Some("0035e00000XyZ12AAF")
        );
    }

    #[test]
    fn outbound_message_errors() {
        assert_eq!(
            parse_outbound_message(b"<a><b></a>").unwrap_err().field,
            "body"
        );
        assert_eq!(
            parse_outbound_message(b"<notifications></notifications>")
                .unwrap_err()
                .field,
            "OrganizationId"
        );
        // A bad notification is kept aside with its reason; it does not fail the message.
        let mixed = r#"<notifications><OrganizationId>00D5e000000AbCdEAK</OrganizationId>
          <Notification><Id>04l5e00000AbCdEAAA</Id><sObject type="sf:Case"><Id>5005e00000AbCdEAAV</Id></sObject></Notification>
          <Notification><Id>04l5e00000AbCdEAAB</Id><sObject type="sf:Lead"><Id>00Q5e00000AbCdEAAV</Id></sObject></Notification>
          <Notification><Id>04l5e00000AbCdEAAC</Id><sObject type="sf:Contact"><Id>not-an-id</Id></sObject></Notification>
          <Notification><sObject type="sf:Contact"><Id>0035e00000XyZ12AAF</Id></sObject></Notification>
          <Notification><Id>04l5e00000AbCdEAAD</Id><sObject type="sf:Contact"><Id>0035e00000XyZ12AAF</Id></sObject></Notification>
          </notifications>"#;
        let m = parse_outbound_message(mixed.as_bytes()).unwrap();
        assert_eq!(m.notifications.len(), 1);
        assert_eq!(m.notifications[0].event_id.as_str(), "04l5e00000AbCdEAAD");
        assert_eq!(m.unidentified, 1);
        let reasons: Vec<(&str, &str)> = m
            .rejected
            .iter()
            .map(|r| (r.event_id.as_str(), r.reason.as_str()))
            .collect();
        assert_eq!(reasons.len(), 3, "{reasons:?}");
        assert!(reasons[0].1.contains("sObject.ContactId"), "{reasons:?}");
        assert!(
            reasons[1].1.contains("\"Lead\" is not supported"),
            "{reasons:?}"
        );
        assert!(reasons[2].1.contains("sObject.ContactId"), "{reasons:?}");
        assert_eq!(m.rejected[1].sobject_type.as_deref(), Some("Lead"));
    }
}
