//! The ingest endpoints through the real handler, fed API Gateway v2 events, on DynamoDB Local and
//! moto: every row of the HTTP contract, dedup under concurrency, and outages.

use std::sync::Arc;
use std::time::Duration;

use sfvapi::config::Env;
use sfvapi::ingest::IngestApp;
use sfvapi::secrets::SecretsCache;
use sfvapi::store::{attr, Store};
use sfvapi_test_support::*;

#[tokio::test]
async fn new_event_is_queued_with_one_write_and_no_read() {
    let t = ingest(&[]).await;
    let body = fixture("salesforce/flat-event.json");
    let a = answer(t.app.handle(signed_event(&body)).await);
    assert_eq!(a.status, 202, "{}", a.body);
    assert_eq!(
        a.json,
        serde_json::json!({"status": "queued", "eventId": "case-escalated-5005e00000AbCdEAAV-1"})
    );
    // Exactly one DynamoDB request for a new event: the conditional PutItem, and no read.
    assert_eq!(
        t.counter.snapshot(),
        [("PutItem".to_string(), 1)].into_iter().collect()
    );

    let item = stored(&t.store, "evt#sf#case-escalated-5005e00000AbCdEAAV-1").await;
    assert_eq!(attr::opt_s(&item, "status"), Some("PENDING"));
    assert_eq!(attr::opt_s(&item, "kind"), Some("dial"));
    assert_eq!(attr::opt_n(&item, "attempts"), Some(0));
    let received = attr::opt_n(&item, "received_at").unwrap();
    let expires = attr::opt_n(&item, "expires_at").unwrap();
    assert!((received - sfvapi::now_millis()).abs() < 60_000);
    assert_eq!(expires, received / 1000 + 7 * 86_400);
    let payload: serde_json::Value =
        serde_json::from_str(attr::opt_s(&item, "payload").unwrap()).unwrap();
    assert_eq!(payload["contactId"], "0035e00000XyZ12AAF");
    assert_eq!(payload["caseId"], "5005e00000AbCdEAAV");
    assert_eq!(payload["priority"], "High");
    assert_eq!(payload["reason"], "Payment failed twice");
}

#[tokio::test]
async fn duplicate_is_200_and_costs_one_write_attempt() {
    let t = ingest(&[]).await;
    let body = fixture("salesforce/platform-event.json");
    assert_eq!(answer(t.app.handle(signed_event(&body)).await).status, 202);
    t.counter.reset();
    let a = answer(t.app.handle(signed_event(&body)).await);
    assert_eq!(a.status, 200, "{}", a.body);
    // What is stored for the event: its job's status and the rule that made it, read from the
    // same conditional PutItem (no extra read).
    assert_eq!(
        a.json,
        serde_json::json!({
            "status": "duplicate",
            "eventId": "9a1b7c2e-3f4d-4e5a-8b6c-7d8e9f0a1b2c",
            "stored": "PENDING",
            "rule": "http-platform-event"
        })
    );
    assert_eq!(t.counter.total(), 1);
    assert_eq!(t.counter.count("PutItem"), 1);
}

#[tokio::test]
async fn duplicate_storm_stores_one_item_and_answers_one_202() {
    let t = Arc::new(ingest(&[]).await);
    let body = flat_event("storm-1");
    let mut tasks = Vec::new();
    for _ in 0..50 {
        let t = t.clone();
        let req = signed_event(&body);
        tasks.push(tokio::spawn(async move {
            answer(t.app.handle(req).await).status
        }));
    }
    let mut statuses = Vec::new();
    for task in tasks {
        statuses.push(task.await.unwrap());
    }
    assert_eq!(
        statuses.iter().filter(|s| **s == 202).count(),
        1,
        "{statuses:?}"
    );
    assert_eq!(
        statuses.iter().filter(|s| **s == 200).count(),
        49,
        "{statuses:?}"
    );
    let scan = scan_table(&t.store).await;
    assert_eq!(scan.count(), 1);
}

#[tokio::test]
async fn contract_rows() {
    let t = ingest(&[]).await;
    let good = flat_event("contract-1");

    // 401: no signature, wrong secret, stale and future timestamps, tampered body.
    let unsigned = request("POST", "/salesforce/events", &[], &good, false);
    let stale = signed_event_with(SF_SECRET, &good, sfvapi::now_secs() - 301);
    // Well past the window: the request is built before the handler reads the clock, and a
    // loaded machine can take seconds in between (the exact boundary is tested with a fixed
    // clock in signature_vectors.rs).
    let future = signed_event_with(SF_SECRET, &good, sfvapi::now_secs() + 600);
    let wrong = signed_event_with("not-the-secret", &good, sfvapi::now_secs());
    let (ts, sig) =
        sfvapi::signature::sign_salesforce_v2(SF_SECRET.as_bytes(), &good, sfvapi::now_secs());
    let tampered_body = flat_event("contract-2");
    let tampered = request(
        "POST",
        "/salesforce/events",
        &[("x-sfvapi-timestamp", &ts), ("x-sfvapi-signature", &sig)],
        &tampered_body,
        false,
    );
    for (name, req) in [
        ("unsigned", unsigned),
        ("stale", stale),
        ("future", future),
        ("wrong", wrong),
        ("tampered", tampered),
    ] {
        let a = answer(t.app.handle(req).await);
        assert_eq!(a.status, 401, "{name}: {}", a.body);
        assert_eq!(
            a.json,
            serde_json::json!({"error": "invalid_signature"}),
            "{name}"
        );
    }

    // 400 with the field that is wrong.
    for (body, field) in [
        (&b"{not json"[..], "body"),
        (br#"{"contactId":"0035e00000XyZ12AAF"}"#, "eventId"),
        (
            br#"{"eventId":"e1","contactId":"0035e00000XyZ12AAA"}"#,
            "contactId",
        ),
        (
            br#"{"eventId":"e 1","contactId":"0035e00000XyZ12AAF"}"#,
            "eventId",
        ),
    ] {
        let a = answer(t.app.handle(signed_event(body)).await);
        assert_eq!(a.status, 400, "{}", a.body);
        assert_eq!(a.json["error"], "invalid_payload");
        let detail = a.json["detail"].as_str().unwrap();
        assert!(
            detail.starts_with(&format!("{field}:")),
            "{detail} should name {field}"
        );
    }

    // 413 over 256 KB, before any signature work.
    let big = vec![b' '; 256 * 1024 + 1];
    let a = answer(t.app.handle(signed_event(&big)).await);
    assert_eq!(a.status, 413);
    assert_eq!(a.json["error"], "payload_too_large");
    // Exactly at the limit is not too large (it is 400: not an event).
    let at_limit = vec![b' '; 256 * 1024];
    assert_eq!(
        answer(t.app.handle(signed_event(&at_limit)).await).status,
        400
    );

    // 404 / 405.
    let a = answer(
        t.app
            .handle(request("POST", "/nope", &[], b"{}", false))
            .await,
    );
    assert_eq!(a.status, 404);
    let resp = t
        .app
        .handle(request("GET", "/salesforce/events", &[], b"", false))
        .await;
    assert_eq!(
        resp.headers().get("allow").map(|v| v.to_str().unwrap()),
        Some("POST")
    );
    assert_eq!(answer(resp).status, 405);

    // Nothing above was stored.
    let scan = scan_table(&t.store).await;
    assert_eq!(scan.count(), 0);
}

#[tokio::test]
async fn base64_encoded_body_is_verified_over_the_decoded_bytes() {
    let t = ingest(&[]).await;
    let body = flat_event("b64-1");
    let (ts, sig) =
        sfvapi::signature::sign_salesforce_v2(SF_SECRET.as_bytes(), &body, sfvapi::now_secs());
    let req = request(
        "POST",
        "/salesforce/events",
        &[("x-sfvapi-timestamp", &ts), ("x-sfvapi-signature", &sig)],
        &body,
        true,
    );
    let a = answer(t.app.handle(req).await);
    assert_eq!(a.status, 202, "{}", a.body);
}

#[tokio::test]
async fn legacy_v1_scheme_when_configured() {
    let t = ingest(&[("SF_SIGNATURE_SCHEME", "v1")]).await;
    let body = fixture("salesforce/flat-event.json");
    let file: serde_json::Value =
        serde_json::from_slice(&fixture("signature-vectors.json")).unwrap();
    let sig = file["vectors"][0]["headers"]["X-Salesforce-Signature"]
        .as_str()
        .unwrap();
    let req = request(
        "POST",
        "/salesforce/events",
        &[("x-salesforce-signature", sig)],
        &body,
        false,
    );
    assert_eq!(answer(t.app.handle(req).await).status, 202);
    // A v2 signature is not accepted by a v1 deployment.
    assert_eq!(answer(t.app.handle(signed_event(&body)).await).status, 401);
}

#[tokio::test]
async fn rotated_secret_is_picked_up_without_a_cold_start() {
    let t = ingest(&[]).await;
    assert_eq!(
        answer(t.app.handle(signed_event(&flat_event("rot-1"))).await).status,
        202
    );
    // The operator rotates: the new secret is active, the old one kept for in-flight senders.
    put_secret(
        &t.secret_arn,
        &ingest_secret_json(&["rotated-secret-for-tests-0123456789", SF_SECRET]),
    )
    .await;
    let req = signed_event_with(
        "rotated-secret-for-tests-0123456789",
        &flat_event("rot-2"),
        sfvapi::now_secs(),
    );
    assert_eq!(answer(t.app.handle(req).await).status, 202);
    assert_eq!(
        answer(t.app.handle(signed_event(&flat_event("rot-3"))).await).status,
        202
    );
}

#[tokio::test]
async fn forged_requests_cannot_force_a_secret_read_each_time() {
    let (store, _) = fresh_store().await;
    let secret_arn = create_secret(&ingest_secret_json(&[SF_SECRET])).await;
    let config = ingest_config(store.table(), &secret_arn, &[]);
    // Default rate limit (30 s) between forced re-reads.
    let secrets = SecretsCache::new(
        sfvapi::config::secrets_client(&sdk().await),
        Duration::from_secs(300),
    );
    let app = IngestApp::new(config, store.clone(), secrets);
    assert_eq!(
        answer(app.handle(signed_event(&flat_event("rl-1"))).await).status,
        202
    );
    put_secret(
        &secret_arn,
        &ingest_secret_json(&["rotated-secret-for-tests-0123456789"]),
    )
    .await;
    // Within the interval the cached secret is used: the new one is not yet known...
    let req = signed_event_with(
        "rotated-secret-for-tests-0123456789",
        &flat_event("rl-2"),
        sfvapi::now_secs(),
    );
    assert_eq!(answer(app.handle(req).await).status, 401);
    // ...and the old one still works from the cache.
    assert_eq!(
        answer(app.handle(signed_event(&flat_event("rl-3"))).await).status,
        202
    );
}

async fn app_with_endpoints(
    ddb: Option<&str>,
    secrets_endpoint: Option<&str>,
) -> (IngestApp, String) {
    let base = sdk().await;
    let table = unique("sfvapi-test");
    sfvapi::store::create_table(&sfvapi::store::client(&base), &table)
        .await
        .unwrap();
    let secret_arn = create_secret(&ingest_secret_json(&[SF_SECRET])).await;
    // Endpoints are overridden on the service config: it takes precedence over the
    // AWS_ENDPOINT_URL_* variables the harness sets.
    let mut ddb_conf = sfvapi::store::client_config(&base);
    if let Some(e) = ddb {
        ddb_conf = ddb_conf.endpoint_url(e);
    }
    let mut sm_conf = sfvapi::config::secrets_client_config(&base);
    if let Some(e) = secrets_endpoint {
        sm_conf = sm_conf.endpoint_url(e);
    }
    let store = Store::new(
        aws_sdk_dynamodb::Client::from_conf(ddb_conf.build()),
        table.clone(),
    );
    let secrets = SecretsCache::new(
        aws_sdk_secretsmanager::Client::from_conf(sm_conf.build()),
        Duration::from_secs(300),
    );
    (
        IngestApp::new(ingest_config(&table, &secret_arn, &[]), store, secrets),
        table,
    )
}

/// A loopback port with nothing listening: connections are refused at once.
fn dead_endpoint() -> String {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    drop(l);
    format!("http://127.0.0.1:{port}")
}

#[tokio::test]
async fn dynamodb_down_is_503_and_nothing_is_acknowledged() {
    let dead = dead_endpoint();
    let (app, table) = app_with_endpoints(Some(&dead), None).await;
    let a = answer(app.handle(signed_event(&flat_event("down-1"))).await);
    assert_eq!(a.status, 503, "{}", a.body);
    assert_eq!(a.json["error"], "unavailable");
    // The real table (reachable) holds nothing.
    let live = Store::new(sfvapi::store::client(&sdk().await), table);
    assert!(live.get("evt#sf#down-1").await.unwrap().is_none());
}

#[tokio::test]
async fn secret_unavailable_is_503() {
    let dead = dead_endpoint();
    let (app, _) = app_with_endpoints(None, Some(&dead)).await;
    let a = answer(app.handle(signed_event(&flat_event("nosecret-1"))).await);
    assert_eq!(a.status, 503, "{}", a.body);
}

fn outbound(token: &str, body: &[u8]) -> lambda_http::Request {
    request(
        "POST",
        &format!("/salesforce/outbound-message/{token}"),
        &[
            ("content-type", "text/xml; charset=utf-8"),
            ("soapaction", "\"\""),
        ],
        body,
        false,
    )
}

fn two_notifications() -> Vec<u8> {
    let one = String::from_utf8(fixture("salesforce/outbound-message.xml")).unwrap();
    let start = one.find("<Notification>").unwrap();
    let end = one.find("</Notification>").unwrap() + "</Notification>".len();
    let second = one[start..end].replace("04l5e00000AbCdEAAA", "04l5e00000AbCdEAAB");
    let mut two = one.clone();
    two.insert_str(end, &second);
    two.into_bytes()
}

#[tokio::test]
async fn outbound_message_stores_each_notification_then_acks() {
    let t = ingest(&[]).await;
    let body = two_notifications();
    for round in 0..2 {
        let resp = t.app.handle(outbound(OM_TOKEN, &body)).await;
        assert_eq!(resp.headers()["content-type"], "text/xml; charset=utf-8");
        let a = answer(resp);
        assert_eq!(a.status, 200, "round {round}: {}", a.body);
        assert!(a.body.contains("<Ack>true</Ack>"), "{}", a.body);
    }
    for id in ["04l5e00000AbCdEAAA", "04l5e00000AbCdEAAB"] {
        let item = stored(&t.store, &format!("evt#sf#{id}")).await;
        assert_eq!(attr::opt_s(&item, "status"), Some("PENDING"));
        let payload: serde_json::Value =
            serde_json::from_str(attr::opt_s(&item, "payload").unwrap()).unwrap();
        assert_eq!(payload["caseId"], "5005e00000AbCdEAAV");
        assert_eq!(payload["contactId"], "0035e00000XyZ12AAF");
        assert_eq!(payload["source"], "outbound-message");
    }
    // Second round: two conditional writes that found the items (duplicates), nothing else.
    let scan = scan_table(&t.store).await;
    assert_eq!(scan.count(), 2);
}

#[tokio::test]
async fn outbound_message_rejections() {
    let t = ingest(&[]).await;
    let body = fixture("salesforce/outbound-message.xml");
    let a = answer(t.app.handle(outbound("wrong-token", &body)).await);
    assert_eq!(a.status, 401);
    assert!(
        a.body.contains("<faultcode>soapenv:Client</faultcode>"),
        "{}",
        a.body
    );

    // A well-formed message from an org that is not on the allowlist.
    let other_org = String::from_utf8(body.clone())
        .unwrap()
        .replace("00D5e000000AbCdEAK", "00D5e000000ZzZz");
    let a = answer(t.app.handle(outbound(OM_TOKEN, other_org.as_bytes())).await);
    assert_eq!(a.status, 401);
    // The refusal names the org and the variable that would let it in.
    assert!(
        a.body.contains(
            "<faultstring>organization_not_allowed: organization 00D5e000000ZzZz is not in SF_OUTBOUND_ORG_IDS"
        ),
        "{}",
        a.body
    );

    let a = answer(
        t.app
            .handle(outbound(OM_TOKEN, b"<notifications><oops></notifications>"))
            .await,
    );
    assert_eq!(a.status, 400);
    assert!(a.body.contains("invalid_payload"));
    let scan = scan_table(&t.store).await;
    assert_eq!(scan.count(), 0);
}

#[tokio::test]
async fn outbound_message_with_dynamodb_down_is_a_server_fault() {
    let dead = dead_endpoint();
    let (app, _) = app_with_endpoints(Some(&dead), None).await;
    let a = answer(
        app.handle(outbound(
            OM_TOKEN,
            &fixture("salesforce/outbound-message.xml"),
        ))
        .await,
    );
    assert_eq!(a.status, 500);
    assert!(a.body.contains("soapenv:Server"), "{}", a.body);
    assert!(!a.body.contains("<Ack>true</Ack>"));
}

#[test]
fn missing_config_names_the_variable() {
    let e = sfvapi::config::IngestConfig::from_env(&Env::new(|_| None)).unwrap_err();
    assert!(e.to_string().contains("TABLE_NAME"));
}

/// A message of `n` notifications built from the fixture's one; `bad` maps an index to the
/// notification body that replaces the good one.
fn notifications(n: usize, bad: &dyn Fn(usize) -> Option<String>) -> (Vec<u8>, Vec<String>) {
    let one = String::from_utf8(fixture("salesforce/outbound-message.xml")).unwrap();
    let start = one.find("<Notification>").unwrap();
    let end = one.find("</Notification>").unwrap() + "</Notification>".len();
    let mut ids = Vec::new();
    let mut all = String::new();
    for i in 0..n {
        let id = format!("04l5e00000{i:05}AAA");
        let notification = match bad(i) {
            Some(sobject) => format!("<Notification><Id>{id}</Id>{sobject}</Notification>"),
            None => one[start..end].replace("04l5e00000AbCdEAAA", &id),
        };
        all.push_str(&notification);
        ids.push(id);
    }
    let mut body = one.clone();
    body.replace_range(start..end, &all);
    (body.into_bytes(), ids)
}

#[tokio::test]
async fn outbound_message_with_bad_notifications_stores_all_and_acks() {
    let t = ingest(&[]).await;
    // Salesforce batches up to 100 notifications per message and retries the whole message on
    // anything but an Ack (Outbound Messaging, "Understanding Notifications":
    // https://developer.salesforce.com/docs/atlas.en-us.api.meta/api/sforce_api_om_outboundmessaging_notifications.htm).
    let bad = |i: usize| {
        match i {
        10 => Some(r#"<sObject xsi:type="sf:Case" xmlns:sf="urn:sobject.enterprise.soap.sforce.com"><sf:Id>5005e00000AbCdEAAV</sf:Id></sObject>"#.to_owned()),
        50 => Some(r#"<sObject xsi:type="sf:Lead" xmlns:sf="urn:sobject.enterprise.soap.sforce.com"><sf:Id>00Q5e00000AbCdEAAV</sf:Id></sObject>"#.to_owned()),
        90 => Some(r#"<sObject xsi:type="sf:Contact" xmlns:sf="urn:sobject.enterprise.soap.sforce.com"><sf:Id>0035e-bad-id</sf:Id></sObject>"#.to_owned()),
        _ => None,
    }
    };
    let (body, ids) = notifications(100, &bad);
    for round in 0..2 {
        let a = answer(t.app.handle(outbound(OM_TOKEN, &body)).await);
        assert_eq!(a.status, 200, "round {round}: {}", a.body);
        assert!(
            a.body.contains("<Ack>true</Ack>"),
            "round {round}: {}",
            a.body
        );
    }
    let mut pending = 0;
    for (i, id) in ids.iter().enumerate() {
        let item = t
            .store
            .get(&format!("evt#sf#{id}"))
            .await
            .unwrap()
            .unwrap_or_else(|| panic!("notification {i} stored"));
        let status = attr::opt_s(&item, "status").unwrap();
        match i {
            10 | 50 | 90 => {
                assert_eq!(status, "SKIPPED", "notification {i}");
                let reason = attr::opt_s(&item, "reason").unwrap();
                // What the routing document (the built-in routing.yaml) says about each.
                let expected = match i {
                    10 => "sObject.ContactId: is missing",
                    50 => "no routing rule matches this notification (sObject type \"Lead\")",
                    _ => "sObject.Id: must be a 15- or 18-character Salesforce id",
                };
                assert!(reason.contains(expected), "{i}: {reason}");
                // Outside the retry index, so the sweep never re-kicks it.
                assert!(!item.contains_key("next_at"), "{i}: {item:?}");
                assert_eq!(attr::opt_s(&item, "kind"), Some("dial"));
                assert_eq!(attr::opt_s(&item, "event_id"), Some(id.as_str()));
            }
            _ => {
                assert_eq!(status, "PENDING", "notification {i}");
                pending += 1;
            }
        }
    }
    assert_eq!(pending, 97);
    // The replay added nothing: every write found its item.
    let scan = scan_table(&t.store).await;
    assert_eq!(scan.count(), 100);
}

/// The routing document decides what a signed HTTP event means: an org's own field names, and
/// an event no rule matches kept as SKIPPED (not lost, not an error the sender retries).
#[tokio::test]
async fn the_routing_document_maps_http_events_and_keeps_unmatched_ones_as_skipped() {
    let doc = routing_file("version: 1\nrules:\n  - id: flow-callout\n    when:\n      route: events\n      fields: {Kind__c: [Escalation, Payment]}\n    eventId: Request_Id__c\n    contact: [Contact__c, Account_Contact__c]\n    case: Case__c\n    reason: Why__c\n");
    let t = ingest(&[("ROUTING_FILE", &doc)]).await;
    let body = serde_json::json!({
        "Request_Id__c": "req-42", "Kind__c": "Payment",
        "Account_Contact__c": "0035e00000XyZ12AAF", "Case__c": "5005e00000AbCdEAAV",
        "Why__c": "Card declined"
    })
    .to_string();
    let a = answer(t.app.handle(signed_event(body.as_bytes())).await);
    assert_eq!(a.status, 202, "{}", a.body);
    let item = t.store.get("evt#sf#req-42").await.unwrap().unwrap();
    let dial: sfvapi::salesforce::events::DialRequest =
        serde_json::from_str(attr::opt_s(&item, "payload").unwrap()).unwrap();
    assert_eq!(
        dial.contact_id.as_ref().map(|c| c.as_str()),
        Some("0035e00000XyZ12AAF"),
        "the second source, the first being absent"
    );
    assert_eq!(dial.reason.as_deref(), Some("Card declined"));
    assert_eq!(dial.rule.as_deref(), Some("flow-callout"));
    // No rule matches: stored as SKIPPED under its eventId, answered 200 "skipped".
    t.counter.reset();
    let other = br#"{"eventId":"req-43","Kind__c":"Survey","Contact__c":"0035e00000XyZ12AAF"}"#;
    let a = answer(t.app.handle(signed_event(other)).await);
    assert_eq!(a.status, 200, "{}", a.body);
    assert_eq!(a.json["status"], "skipped");
    assert!(a.json["reason"]
        .as_str()
        .unwrap()
        .contains("no routing rule matches"));
    assert_eq!(t.counter.count("PutItem"), 1, "one write, like any event");
    let item = t.store.get("evt#sf#req-43").await.unwrap().unwrap();
    assert_eq!(attr::opt_s(&item, "status"), Some("SKIPPED"));
    // … unless it names no id to be stored under: 400, naming why.
    let a = answer(t.app.handle(signed_event(br#"{"Kind__c":"Survey"}"#)).await);
    assert_eq!(a.status, 400, "{}", a.body);
    assert!(a.body.contains("no eventId"), "{}", a.body);
    // A matching event whose mapped field is missing: 400 naming the document's field.
    let a = answer(
        t.app
            .handle(signed_event(
                br#"{"Request_Id__c":"req-44","Kind__c":"Escalation"}"#,
            ))
            .await,
    );
    assert_eq!(a.status, 400, "{}", a.body);
    assert!(a.body.contains("Contact__c: is missing"), "{}", a.body);
}
