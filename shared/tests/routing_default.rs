//! The built-in routing document (`routing.yaml`) reproduces what sfvapi did before routing
//! documents existed, exactly: every sample and fixture, a corpus of malformed bodies, arbitrary
//! JSON (property test) and Outbound Messages of every sObject shape go through both the fixed
//! parsers of `salesforce::events` (the pre-routing code, kept as the reference) and the routing
//! path the ingest runs, and come out the same: the same job payload, or both refused.
//! (Error *wording* may differ; which events are accepted, and what they become, may not.)

use base64::Engine as _;
use proptest::prelude::*;
use serde_json::Value;
use sfvapi::http::ApiError;
use sfvapi::ingest::{route_json, route_notifications, JsonEvent};
use sfvapi::routing::Routing;
use sfvapi::salesforce::events::{
    parse_json_event, parse_outbound_message, parse_outbound_notifications, DialRequest,
};
use sfvapi_test_support::EVENT_FIELD_NAMES;

fn built_in() -> Routing {
    Routing::built_in().expect("the built-in routing.yaml loads")
}

/// What a cold start reads (the JSON build.rs makes of routing.yaml) is the YAML, rule for rule.
#[test]
fn the_built_in_document_reads_the_same_from_its_json_as_from_its_yaml() {
    let yaml = Routing::parse(sfvapi::routing::BUILT_IN_NAME, sfvapi::routing::BUILT_IN)
        .expect("the YAML loads");
    assert_eq!(format!("{:?}", built_in()), format!("{yaml:?}"));
}

/// The job payload the routing path gives, without the rule id it adds.
fn routed(routing: &Routing, body: &[u8]) -> Result<DialRequest, String> {
    match route_json(routing, body) {
        Ok(JsonEvent::Dial(mut d)) => {
            assert!(d.rule.take().is_some(), "a routed event names its rule");
            Ok(d)
        }
        Ok(JsonEvent::Skipped { event_id, reason }) => Err(format!(
            "skipped {event_id}: {reason} (the built-in document matches every JSON event)"
        )),
        Err(ApiError::InvalidPayload(detail)) => Err(detail),
        Err(other) => panic!("route_json answered {other:?}"),
    }
}

/// The same outcome through both, or a message saying how they differ.
fn same_json(routing: &Routing, body: &[u8]) -> Result<(), String> {
    let old = parse_json_event(body).map_err(|e| e.to_string());
    let new = routed(routing, body);
    match (&old, &new) {
        (Ok(o), Ok(n)) if o == n => Ok(()),
        (Err(_), Err(_)) => Ok(()),
        _ => Err(format!(
            "{}\n  before: {old:?}\n  routed: {new:?}",
            String::from_utf8_lossy(body)
        )),
    }
}

fn same_outbound(routing: &Routing, body: &[u8]) -> Result<(), String> {
    let old = parse_outbound_message(body);
    let new = parse_outbound_notifications(body).map(|m| {
        let (mut dials, rejected) = route_notifications(routing, m.notifications);
        for d in &mut dials {
            assert!(d.rule.take().is_some());
        }
        (m.organization_id, dials, rejected, m.unidentified)
    });
    match (&old, &new) {
        (Ok(o), Ok((org, dials, rejected, unidentified))) => {
            let ids = |r: &[sfvapi::salesforce::events::RejectedNotification]| {
                r.iter()
                    .map(|n| n.event_id.as_str().to_owned())
                    .collect::<Vec<_>>()
            };
            if &o.organization_id == org
                && &o.notifications == dials
                && ids(&o.rejected) == ids(rejected)
                && o.unidentified == *unidentified
            {
                Ok(())
            } else {
                Err(format!(
                    "{}\n  before: {o:?}\n  routed: {:?}",
                    String::from_utf8_lossy(body),
                    (dials, rejected)
                ))
            }
        }
        (Err(_), Err(_)) => Ok(()),
        _ => Err(format!("before {old:?}, routed {new:?}")),
    }
}

fn body_of(event: &Value) -> Vec<u8> {
    let body = event["body"].as_str().unwrap_or_default();
    if event["isBase64Encoded"] == true {
        base64::engine::general_purpose::STANDARD
            .decode(body)
            .unwrap()
    } else {
        body.as_bytes().to_vec()
    }
}

#[test]
fn every_sample_and_fixture_means_the_same_through_the_built_in_document() {
    let routing = built_in();
    let mut json_bodies = 0;
    let mut xml_bodies = 0;
    for (name, event) in sfvapi::samples::all() {
        let path = event["rawPath"].as_str().unwrap_or_default().to_owned();
        let body = body_of(&event);
        if path == "/salesforce/events" {
            same_json(&routing, &body).unwrap_or_else(|e| panic!("{name}: {e}"));
            json_bodies += 1;
        } else if path.starts_with("/salesforce/outbound-message/") {
            same_outbound(&routing, &body).unwrap_or_else(|e| panic!("{name}: {e}"));
            xml_bodies += 1;
        }
    }
    let fixtures = format!("{}/tests/fixtures/salesforce", env!("CARGO_MANIFEST_DIR"));
    for f in ["platform-event.json", "flat-event.json"] {
        let body = std::fs::read(format!("{fixtures}/{f}")).unwrap();
        same_json(&routing, &body).unwrap_or_else(|e| panic!("{f}: {e}"));
        json_bodies += 1;
    }
    let body = std::fs::read(format!("{fixtures}/outbound-message.xml")).unwrap();
    same_outbound(&routing, &body).unwrap();
    // The samples' own answers: accepted ones are accepted with these ids.
    let pe = std::fs::read(format!("{fixtures}/platform-event.json")).unwrap();
    let d = routed(&routing, &pe).unwrap();
    assert_eq!(d.event_id.as_str(), "9a1b7c2e-3f4d-4e5a-8b6c-7d8e9f0a1b2c");
    assert_eq!(
        d.contact_id.as_ref().map(|c| c.as_str()),
        Some("0035e00000XyZ12AAF")
    );
    assert!(
        json_bodies >= 8 && xml_bodies >= 1,
        "{json_bodies} {xml_bodies}"
    );
}

#[test]
fn malformed_bodies_are_refused_by_both_naming_the_same_field() {
    let routing = built_in();
    // (body, the field both name)
    let cases: &[(&str, &str)] = &[
        ("not json", "body"),
        ("[1,2]", "body"),
        (r#"{"contactId":"0035e00000XyZ12AAF"}"#, "eventId"),
        (
            r#"{"eventId":"a b","contactId":"0035e00000XyZ12AAF"}"#,
            "eventId",
        ),
        (
            r#"{"eventId":"","contactId":"0035e00000XyZ12AAF"}"#,
            "eventId",
        ),
        (r#"{"eventId":"e"}"#, "contactId"),
        (r#"{"eventId":"e","contactId":"   "}"#, "contactId"),
        (r#"{"eventId":"e","contactId":"short"}"#, "contactId"),
        (
            r#"{"eventId":"e","contactId":"0035e00000XyZ12AAA"}"#,
            "contactId",
        ),
        (
            r#"{"eventId":"e","contactId":"0035e00000XyZ12AAF","caseId":7}"#,
            "caseId",
        ),
        (
            r#"{"eventId":12,"contactId":"0035e00000XyZ12AAF"}"#,
            "eventId",
        ),
        (r#"{"data":[]}"#, "data"),
        (
            r#"{"data":null,"eventId":"e","contactId":"0035e00000XyZ12AAF"}"#,
            "",
        ),
        (
            r#"{"data":{"event":5,"payload":{"customerId":"0035e00000XyZ12AAF"}},"eventId":"x"}"#,
            "data.event",
        ),
        (r#"{"data":{"event":{"replayId":1}}}"#, ""),
        (
            r#"{"data":{"event":{"replayId":-1},"payload":{"customerId":"0035e00000XyZ12AAF"}}}"#,
            "data.event.replayId",
        ),
        (
            r#"{"data":{"event":{"replayId":1.5},"payload":{"customerId":"0035e00000XyZ12AAF"}}}"#,
            "data.event.replayId",
        ),
        (
            r#"{"data":{"event":{"replayId":null},"payload":{"customerId":"0035e00000XyZ12AAF"}}}"#,
            "",
        ),
        (
            r#"{"data":{"event":{},"payload":{"customerId":"0035e00000XyZ12AAF"}}}"#,
            "eventId",
        ),
        (
            r#"{"data":{"event":{"replayId":1},"payload":{"customerId":"bad"}}}"#,
            "data.payload.customerId",
        ),
        (
            r#"{"data":{"event":{"replayId":1},"payload":[]}}"#,
            "data.payload",
        ),
        (
            r#"{"data":{"event":{"EventUuid":5},"payload":{"customerId":"0035e00000XyZ12AAF"}}}"#,
            "",
        ),
    ];
    for (body, field) in cases {
        same_json(&routing, body.as_bytes()).unwrap();
        let old = parse_json_event(body.as_bytes());
        let new = routed(&routing, body.as_bytes());
        let (Err(o), Err(n)) = (&old, &new) else {
            panic!("{body}: before {old:?}, routed {new:?}");
        };
        if !field.is_empty() {
            assert_eq!(o.field, *field, "{body}: before {o}");
            assert!(
                n.starts_with(&format!("{field}:")),
                "{body}: routed names another field: {n} (before: {o})"
            );
        }
    }
}

fn arb_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        (0u64..100_000).prop_map(Value::from),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(Value::from),
        "[a-zA-Z0-9_:.# -]{0,40}".prop_map(Value::from),
        Just(Value::from("")),
        Just(Value::from("  ")),
        Just(Value::from("High")),
        Just(Value::from("0035e00000XyZ12AAF")),
        Just(Value::from("5005e00000AbCdEAAV")),
        Just(Value::from("0035e00000XyZ12")),
        Just(Value::from("e-1")),
    ];
    leaf.prop_recursive(4, 48, 6, |inner| {
        // One of the event's field names (and the relay's EventUuid) or any short name, each
        // alternative equally likely.
        let mut fields = EVENT_FIELD_NAMES.to_vec();
        fields.push("EventUuid");
        let weight = fields.len() as u32;
        let names = prop::sample::select(fields).prop_map(str::to_string);
        let keys = prop_oneof![weight => names, 1 => "[a-z]{1,8}"];
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::btree_map(keys, inner, 0..7)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// Bodies shaped like events, so most cases reach the field mapping (not just "not an object").
fn arb_event() -> impl Strategy<Value = Value> {
    let id = prop_oneof![
        Just(Value::from("0035e00000XyZ12AAF")),
        Just(Value::from("5005e00000AbCdEAAV")),
        Just(Value::from("bad")),
        Just(Value::from("")),
        Just(Value::Null),
        any::<i64>().prop_map(Value::from),
    ];
    let text = prop_oneof![
        Just(Value::from("High")),
        Just(Value::from("e-42")),
        Just(Value::from("")),
        Just(Value::Null),
        "[a-zA-Z0-9 ]{0,12}".prop_map(Value::from),
        any::<u32>().prop_map(Value::from),
        any::<bool>().prop_map(Value::from),
    ];
    let opt = |v: BoxedStrategy<Value>| prop::option::of(v);
    (
        opt(text.clone().boxed()),
        opt(id.clone().boxed()),
        opt(id.clone().boxed()),
        opt(text.clone().boxed()),
        opt(text.clone().boxed()),
        any::<bool>(),
        opt(text.clone().boxed()),
        opt(text.boxed()),
    )
        .prop_map(
            |(event_id, contact, case, priority, reason, pe, uuid, replay)| {
                let mut fields = serde_json::Map::new();
                let put = |m: &mut serde_json::Map<String, Value>, k: &str, v: Option<Value>| {
                    if let Some(v) = v {
                        m.insert(k.into(), v);
                    }
                };
                if pe {
                    let mut payload = serde_json::Map::new();
                    put(&mut payload, "customerId", contact);
                    put(&mut payload, "caseId", case);
                    put(&mut payload, "priority", priority);
                    put(&mut payload, "reason", reason);
                    let mut event = serde_json::Map::new();
                    put(&mut event, "EventUuid", uuid);
                    put(&mut event, "replayId", replay);
                    put(&mut fields, "eventId", event_id);
                    fields.insert(
                        "data".into(),
                        serde_json::json!({"event": event, "payload": payload}),
                    );
                } else {
                    put(&mut fields, "eventId", event_id);
                    put(&mut fields, "contactId", contact);
                    put(&mut fields, "caseId", case);
                    put(&mut fields, "priority", priority);
                    put(&mut fields, "reason", reason);
                }
                Value::Object(fields)
            },
        )
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_json_means_the_same_through_the_built_in_document(v in arb_json()) {
        let routing = built_in();
        let body = v.to_string();
        prop_assert!(same_json(&routing, body.as_bytes()).is_ok(), "{}", same_json(&routing, body.as_bytes()).unwrap_err());
    }

    #[test]
    fn event_shaped_json_means_the_same_through_the_built_in_document(v in arb_event()) {
        let routing = built_in();
        let body = v.to_string();
        prop_assert!(same_json(&routing, body.as_bytes()).is_ok(), "{}", same_json(&routing, body.as_bytes()).unwrap_err());
    }
}

#[test]
fn outbound_messages_of_every_shape_mean_the_same_through_the_built_in_document() {
    let routing = built_in();
    let types = [
        Some("sf:Contact"),
        Some("sf:Case"),
        Some("sf:Lead"),
        Some("sf:Opportunity"),
        Some(""),
        None,
    ];
    let ids = ["0035e00000XyZ12AAF", "5005e00000AbCdEAAV", "", "not-an-id"];
    let mut notifications = String::new();
    let mut n = 0;
    for t in types {
        for own_id in ids {
            for contact in [None, Some("0035e00000XyZ12AAF"), Some(""), Some("bad")] {
                for (priority, subject) in [
                    (None, None),
                    (Some("High"), Some("Refund &amp; fee")),
                    (Some(""), None),
                    (Some("   "), Some("")),
                ] {
                    n += 1;
                    let attr = t.map(|t| format!(r#" xsi:type="{t}""#)).unwrap_or_default();
                    let mut fields = format!("<sf:Id>{own_id}</sf:Id>");
                    if let Some(c) = contact {
                        fields.push_str(&format!("<sf:ContactId>{c}</sf:ContactId>"));
                        fields.push_str("<sf:CaseId>5005e00000AbCdEAAV</sf:CaseId>");
                    }
                    if let Some(p) = priority {
                        fields.push_str(&format!("<sf:Priority>{p}</sf:Priority>"));
                    }
                    if let Some(s) = subject {
                        fields.push_str(&format!("<sf:Subject>{s}</sf:Subject>"));
                    }
                    notifications.push_str(&format!(
                        "<Notification><Id>04l5e00000{n:05}AAA</Id><sObject{attr} xmlns:sf=\"urn:sobject\" xmlns:xsi=\"x\">{fields}</sObject></Notification>"
                    ));
                    if n % 90 == 0 {
                        let body = format!(
                            "<notifications><OrganizationId>00D5e000000AbCdEAK</OrganizationId>{notifications}</notifications>"
                        );
                        same_outbound(&routing, body.as_bytes()).unwrap();
                        notifications.clear();
                    }
                }
            }
        }
    }
    let body = format!(
        "<notifications><OrganizationId>00D5e000000AbCdEAK</OrganizationId>{notifications}<Notification><sObject/></Notification></notifications>"
    );
    same_outbound(&routing, body.as_bytes()).unwrap();
    // Malformed messages are refused by both.
    for bad in [
        "<a><b></a>",
        "<notifications></notifications>",
        "<notifications><OrganizationId>00D5e000000AbCdEAK</OrganizationId></notifications>",
    ] {
        same_outbound(&routing, bad.as_bytes()).unwrap();
    }
}
