//! The fake Vapi: POST /call answers like Vapi, then signed server messages reach the webhook
//! in Vapi's order, twice with --deliver-twice, and the outage scenario fails then recovers.

mod common;

use std::time::Duration;

use serde_json::{json, Value};
use sfvapi::secrets::SecretString;
use sfvapi::signature::{verify_vapi, VapiAuth, VapiHmac};
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate};

const KEY: &str = "sandbox-vapi-key";
const SECRET: &str = "sandbox-vapi-secret-local-not-secret";

/// A webhook that answers tool calls the way sfvapi must: 200, one result per toolCallId.
struct Webhook;

impl Respond for Webhook {
    fn respond(&self, req: &Request) -> ResponseTemplate {
        let v: Value = serde_json::from_slice(&req.body).unwrap_or(Value::Null);
        if v["message"]["type"] == "tool-calls" {
            let id = v["message"]["toolCallList"][0]["id"].clone();
            ResponseTemplate::new(200).set_body_json(
                json!({"results":[{"toolCallId": id, "result": "{\"name\":\"Ada Lovelace\"}"}]}),
            )
        } else {
            ResponseTemplate::new(200).set_body_json(json!({}))
        }
    }
}

async fn webhook() -> MockServer {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/vapi/webhook"))
        .respond_with(Webhook)
        .mount(&server)
        .await;
    server
}

fn config(server: &MockServer) -> sandbox::Config {
    let mut c = sandbox::Config::default();
    c.vapi.server_url = Some(format!("{}/vapi/webhook", server.uri()));
    c.vapi.message_delay = Duration::from_millis(10);
    c
}

fn call_body() -> Value {
    json!({
        "assistantId": "asst-test",
        "phoneNumberId": "pn-test",
        "customer": {"number": "+14155550123", "name": "Ada Lovelace"},
        "name": "sfvapi case-escalated-1",
        "assistantOverrides": {
            "variableValues": {"customerName": "Ada Lovelace", "priority": "High"},
            "metadata": {"sfvapiEventId": "case-escalated-1", "contactId": "0035e00000XyZ12AAF", "caseId": "5005e00000AbCdEAAV"}
        }
    })
}

async fn create_call(vapi: &str, key: &str, body: &Value) -> (u16, Value) {
    let resp = common::client()
        .post(format!("{vapi}/call"))
        .bearer_auth(key)
        .json(body)
        .send()
        .await
        .unwrap();
    (resp.status().as_u16(), resp.json().await.unwrap())
}

/// Wait until the webhook got `n` requests (or fail after 10 s), then a little longer to catch extras.
async fn received(server: &MockServer, n: usize) -> Vec<Request> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let got = server.received_requests().await.unwrap_or_default();
        if got.len() >= n {
            tokio::time::sleep(Duration::from_millis(150)).await;
            return server.received_requests().await.unwrap_or_default();
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "only {} of {n} messages arrived",
            got.len()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn kinds(reqs: &[Request]) -> Vec<String> {
    reqs.iter()
        .map(|r| {
            let v: Value = serde_json::from_slice(&r.body).unwrap();
            let m = &v["message"];
            match m["status"].as_str() {
                Some(s) => format!("{}:{s}", m["type"].as_str().unwrap()),
                None => m["type"].as_str().unwrap().to_owned(),
            }
        })
        .collect()
}

fn assert_signed(reqs: &[Request]) {
    let modes = [VapiAuth::Hmac(VapiHmac::default())];
    for r in reqs {
        let ts: i64 = r.headers["x-timestamp"].to_str().unwrap().parse().unwrap();
        assert!(ts > 1_000_000_000_000, "x-timestamp is in ms");
        verify_vapi(
            &modes,
            &r.headers,
            &r.body,
            &[SecretString::new(SECRET)],
            sfvapi::now_millis(),
            300,
        )
        .expect("signed with Vapi's HMAC scheme");
        // And the check is real: another secret does not verify.
        assert!(verify_vapi(
            &modes,
            &r.headers,
            &r.body,
            &[SecretString::new("other")],
            sfvapi::now_millis(),
            300
        )
        .is_err());
    }
}

#[tokio::test]
async fn post_call_then_signed_messages_in_vapi_order() {
    let server = webhook().await;
    let h = common::start(config(&server)).await;
    let (status, call) = create_call(&h.vapi_url, KEY, &call_body()).await;
    assert_eq!(status, 201);
    let id = call["id"].as_str().unwrap().to_owned();
    assert_eq!(id.len(), 36);
    assert!(sfvapi::ids::VapiCallId::parse("id", &id).is_ok());
    assert_eq!(call["status"], "queued");
    assert_eq!(call["type"], "outboundPhoneCall");
    assert_eq!(call["customer"]["number"], "+14155550123");
    assert_eq!(call["assistantId"], "asst-test");
    assert_eq!(call["phoneNumberId"], "pn-test");
    assert!(call["orgId"].is_string() && call["createdAt"].is_string());

    let reqs = received(&server, 5).await;
    assert_eq!(
        kinds(&reqs),
        [
            "status-update:ringing",
            "status-update:in-progress",
            "tool-calls",
            "end-of-call-report",
            "status-update:ended"
        ]
    );
    assert_signed(&reqs);
    assert!(
        reqs.iter()
            .all(|r| r.headers.get("x-vapi-secret").is_none()),
        "no plain secret unless asked"
    );

    let tool: Value = serde_json::from_slice(&reqs[2].body).unwrap();
    let m = &tool["message"];
    assert_eq!(m["call"]["id"], id.as_str());
    assert_eq!(
        m["call"]["assistantOverrides"]["metadata"],
        call_body()["assistantOverrides"]["metadata"]
    );
    assert_eq!(m["toolCallList"][0]["name"], "lookupCustomer");
    assert_eq!(
        m["toolCallList"][0]["arguments"]["customerId"],
        "0035e00000XyZ12AAF"
    );
    assert!(m["toolCallList"][0]["id"].is_string());
    assert!(m["timestamp"].is_i64());

    let report: Value = serde_json::from_slice(&reqs[3].body).unwrap();
    let r = &report["message"];
    assert_eq!(r["endedReason"], "customer-ended-call");
    assert_eq!(r["call"]["id"], id.as_str());
    assert_eq!(
        r["call"]["assistantOverrides"]["metadata"]["sfvapiEventId"],
        "case-escalated-1"
    );
    assert!(r["artifact"]["transcript"]
        .as_str()
        .unwrap()
        .contains("Ada"));
    assert!(r["artifact"]["recordingUrl"].is_string());
    assert!(r["analysis"]["summary"]
        .as_str()
        .is_some_and(|s| !s.is_empty()));
    assert!(r["cost"].as_f64().unwrap() > 0.0);
    assert!(r["startedAt"].is_string() && r["endedAt"].is_string());
    let ended: Value = serde_json::from_slice(&reqs[4].body).unwrap();
    assert_eq!(ended["message"]["endedReason"], "customer-ended-call");

    // The log has the POST and every message sent, with the tool answer checked.
    let log = common::log(&h.vapi_url, Some("vapi")).await;
    let inbound: Vec<_> = log.iter().filter(|e| e["direction"] == "in").collect();
    assert_eq!(inbound.len(), 1);
    assert_eq!(inbound[0]["path"], "/call");
    assert_eq!(inbound[0]["status"], 201);
    assert_eq!(inbound[0]["headers"]["authorization"], "Bearer [redacted]");
    let out: Vec<_> = log.iter().filter(|e| e["direction"] == "out").collect();
    assert_eq!(out.len(), 5);
    assert!(out
        .iter()
        .all(|e| e["status"] == 200 && e["call_id"] == id.as_str()));
    let tool_entry = out
        .iter()
        .find(|e| e["message_type"] == "tool-calls")
        .unwrap();
    assert_eq!(tool_entry["check"]["ok"], true, "{tool_entry}");

    // GET /call/{id} shows the final state.
    let got: Value = common::client()
        .get(format!("{}/call/{id}", h.vapi_url))
        .bearer_auth(KEY)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(got["status"], "ended");
    assert_eq!(got["endedReason"], "customer-ended-call");
}

#[tokio::test]
async fn wrong_key_is_401_and_bad_body_is_400_with_messages() {
    let server = webhook().await;
    let h = common::start(config(&server)).await;
    let (status, body) = create_call(&h.vapi_url, "wrong", &call_body()).await;
    assert_eq!(status, 401);
    assert_eq!(body["error"], "Unauthorized");
    assert_eq!(body["statusCode"], 401);
    assert!(body["message"].as_str().unwrap().starts_with("Invalid Key"));

    let mut bad = call_body();
    bad["customer"]["number"] = json!("415-555-0123");
    bad.as_object_mut().unwrap().remove("phoneNumberId");
    let (status, body) = create_call(&h.vapi_url, KEY, &bad).await;
    assert_eq!(status, 400);
    assert_eq!(body["error"], "Bad Request");
    assert_eq!(body["statusCode"], 400);
    let msgs: Vec<&str> = body["message"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m.as_str().unwrap())
        .collect();
    assert!(
        msgs.iter().any(|m| m.contains("customer.number")),
        "{msgs:?}"
    );
    assert!(msgs.iter().any(|m| m.contains("phoneNumberId")), "{msgs:?}");

    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(
        server.received_requests().await.unwrap().is_empty(),
        "no call, no messages"
    );
}

#[tokio::test]
async fn deliver_twice_sends_each_message_twice_and_secret_header_on_request() {
    let server = webhook().await;
    let mut c = config(&server);
    c.vapi.deliver_twice = true;
    c.vapi.send_secret_header = true;
    let h = common::start(c).await;
    assert_eq!(create_call(&h.vapi_url, KEY, &call_body()).await.0, 201);
    let reqs = received(&server, 10).await;
    assert_eq!(
        kinds(&reqs),
        [
            "status-update:ringing",
            "status-update:ringing",
            "status-update:in-progress",
            "status-update:in-progress",
            "tool-calls",
            "tool-calls",
            "end-of-call-report",
            "end-of-call-report",
            "status-update:ended",
            "status-update:ended",
        ]
    );
    assert_signed(&reqs);
    for pair in reqs.chunks(2) {
        assert_eq!(
            pair[0].body, pair[1].body,
            "a redelivery is the same message"
        );
    }
    assert!(reqs.iter().all(|r| r.headers["x-vapi-secret"] == SECRET));
    let log = common::log(&h.vapi_url, Some("vapi")).await;
    let deliveries: Vec<_> = log
        .iter()
        .filter(|e| e["direction"] == "out")
        .map(|e| e["delivery"].as_u64().unwrap())
        .collect();
    assert_eq!(deliveries, [1, 2, 1, 2, 1, 2, 1, 2, 1, 2]);
    assert!(log.iter().all(|e| e["headers"]
        .get("x-vapi-secret")
        .is_none_or(|v| v == "[redacted]")));
}

#[tokio::test]
async fn no_answer_scenario_reports_customer_did_not_answer_without_tool_call() {
    let server = webhook().await;
    let mut c = config(&server);
    c.vapi.scenario = sandbox::Scenario::NoAnswer;
    let h = common::start(c).await;
    assert_eq!(create_call(&h.vapi_url, KEY, &call_body()).await.0, 201);
    let reqs = received(&server, 3).await;
    assert_eq!(
        kinds(&reqs),
        [
            "status-update:ringing",
            "end-of-call-report",
            "status-update:ended"
        ]
    );
    let report: Value = serde_json::from_slice(&reqs[1].body).unwrap();
    assert_eq!(report["message"]["endedReason"], "customer-did-not-answer");
}

#[tokio::test]
async fn outage_gives_500_twice_then_201_and_is_switchable() {
    let server = webhook().await;
    let mut c = config(&server);
    c.vapi.scenario = sandbox::Scenario::Outage;
    let h = common::start(c).await;
    for _ in 0..2 {
        let (status, body) = create_call(&h.vapi_url, KEY, &call_body()).await;
        assert_eq!(status, 500);
        assert_eq!(
            body,
            json!({"message":"Internal server error","statusCode":500})
        );
    }
    assert_eq!(create_call(&h.vapi_url, KEY, &call_body()).await.0, 201);
    received(&server, 5).await;

    // Re-armed over the control API, with another count.
    let resp = common::control(
        &h.twilio_url,
        json!({"vapi":{"outage_count":1,"scenario":"outage"}}),
    )
    .await;
    assert_eq!(resp.status(), 200);
    assert_eq!(create_call(&h.vapi_url, KEY, &call_body()).await.0, 500);
    assert_eq!(create_call(&h.vapi_url, KEY, &call_body()).await.0, 201);

    let log = common::log(&h.salesforce_url, Some("vapi")).await;
    let posts: Vec<_> = log
        .iter()
        .filter(|e| e["direction"] == "in" && e["path"] == "/call")
        .map(|e| e["status"].as_u64().unwrap())
        .collect();
    assert_eq!(posts, [500, 500, 201, 500, 201]);
}

#[tokio::test]
async fn a_5xx_answer_is_retried() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(503))
        .up_to_n_times(1)
        .with_priority(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .respond_with(Webhook)
        .mount(&server)
        .await;
    let h = common::start(config(&server)).await;
    assert_eq!(create_call(&h.vapi_url, KEY, &call_body()).await.0, 201);
    let reqs = received(&server, 6).await;
    assert_eq!(
        kinds(&reqs)[..2],
        ["status-update:ringing", "status-update:ringing"]
    );
    let log = common::log(&h.vapi_url, Some("vapi")).await;
    let first: Vec<_> = log
        .iter()
        .filter(|e| e["direction"] == "out")
        .take(2)
        .map(|e| {
            (
                e["status"].as_u64().unwrap(),
                e["attempt"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(first, [(503, 1), (200, 2)]);
}
