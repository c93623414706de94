//! The fake Vapi: POST /call answers like Vapi, then signed server messages reach the webhook
//! in Vapi's order, twice with --deliver-twice, and the outage scenario fails then recovers.
//! Every request, answer and message is checked against Vapi's OpenAPI contract (`vapi-schema`).

use sfvapi_test_support::sandbox_server::*;
use sfvapi_test_support::*;

use std::time::Duration;

use serde_json::{json, Value};
use sfvapi::secrets::SecretString;
use sfvapi::signature::{verify_vapi, VapiAuth, VapiHmac};
use wiremock::matchers::method;
use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate};

const KEY: &str = "sandbox-vapi-key";
const SECRET: &str = "sandbox-vapi-secret-local-not-secret";

/// A webhook that answers tool calls the way sfvapi must: 200, one result per toolCallId, with the
/// tool's name (Vapi OpenAPI `ToolCallResult`).
struct Webhook;

impl Respond for Webhook {
    fn respond(&self, req: &Request) -> ResponseTemplate {
        let v: Value = serde_json::from_slice(&req.body).unwrap_or(Value::Null);
        if v["message"]["type"] == "tool-calls" {
            let call = &v["message"]["toolCallList"][0];
            ResponseTemplate::new(200).set_body_json(json!({"results":[{
                "name": call["function"]["name"], "toolCallId": call["id"],
                "result": "{\"name\":\"Ada Lovelace\"}"}]}))
        } else {
            ResponseTemplate::new(200).set_body_json(json!({}))
        }
    }
}

async fn webhook() -> MockServer {
    let server = MockServer::start().await;
    mount(&server, "POST", "/vapi/webhook", Webhook).await;
    server
}

/// The sandbox under `scenario`, sending to `server`: one call placed (201) and the first `n`
/// messages `server` received (the sandbox keeps running while the handles live).
async fn run_call(
    server: &MockServer,
    scenario: sandbox::Scenario,
    n: usize,
) -> (sandbox::Handles, Vec<Request>) {
    let mut c = config(server);
    c.vapi.scenario = scenario;
    let h = start(c).await;
    assert_eq!(create_call(&h.vapi_url, KEY, &call_body()).await.0, 201);
    let reqs = wait_for_requests(server, n).await;
    (h, reqs)
}

/// A webhook that answers the first message `status` and every later one like sfvapi.
async fn webhook_failing_once(status: u16) -> MockServer {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(status))
        .up_to_n_times(1)
        .with_priority(1)
        .mount(&server)
        .await;
    mount_any(&server, "POST", Webhook).await;
    server
}

/// The messages of a 400 answer (Vapi's `message` array of strings).
fn messages_of(body: &Value) -> Vec<&str> {
    body["message"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m.as_str().unwrap())
        .collect()
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
    let resp = client()
        .post(format!("{vapi}/call"))
        .bearer_auth(key)
        .json(body)
        .send_ok()
        .await;
    (resp.status().as_u16(), resp.json().await.unwrap())
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
    let h = start(config(&server)).await;
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

    let reqs = wait_for_requests(&server, 5).await;
    assert_eq!(
        kinds(&reqs),
        [
            "status-update:ringing",
            "status-update:in-progress",
            "tool-calls",
            "status-update:ended",
            "end-of-call-report"
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
    assert_eq!(m["toolCallList"][0]["function"]["name"], "lookupCustomer");
    let args: Value = serde_json::from_str(
        m["toolCallList"][0]["function"]["arguments"]
            .as_str()
            .unwrap(),
    )
    .unwrap();
    assert_eq!(args["customerId"], "0035e00000XyZ12AAF");
    assert!(m["toolCallList"][0]["id"].is_string());
    assert!(m["timestamp"].is_i64());

    let report: Value = serde_json::from_slice(&reqs[4].body).unwrap();
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
    let ended: Value = serde_json::from_slice(&reqs[3].body).unwrap();
    assert_eq!(ended["message"]["endedReason"], "customer-ended-call");

    // The log has the POST and every message sent, with the tool answer checked.
    let log = log(&h.vapi_url, Some("vapi")).await;
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
    let got: Value = get_authed_json(&format!("{}/call/{id}", h.vapi_url), KEY).await;
    assert_eq!(got["status"], "ended");
    assert_eq!(got["endedReason"], "customer-ended-call");
}

#[tokio::test]
async fn wrong_key_is_401_and_bad_body_is_400_with_messages() {
    let server = webhook().await;
    let h = start(config(&server)).await;
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
    let msgs = messages_of(&body);
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
    let h = start(c).await;
    assert_eq!(create_call(&h.vapi_url, KEY, &call_body()).await.0, 201);
    let reqs = wait_for_requests(&server, 10).await;
    assert_eq!(
        kinds(&reqs),
        [
            "status-update:ringing",
            "status-update:ringing",
            "status-update:in-progress",
            "status-update:in-progress",
            "tool-calls",
            "tool-calls",
            "status-update:ended",
            "status-update:ended",
            "end-of-call-report",
            "end-of-call-report",
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
    let log = log(&h.vapi_url, Some("vapi")).await;
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
    let (_h, reqs) = run_call(&server, sandbox::Scenario::NoAnswer, 3).await;
    assert_eq!(
        kinds(&reqs),
        [
            "status-update:ringing",
            "status-update:ended",
            "end-of-call-report"
        ]
    );
    let report: Value = serde_json::from_slice(&reqs[2].body).unwrap();
    assert_eq!(report["message"]["endedReason"], "customer-did-not-answer");
}

#[tokio::test]
async fn outage_gives_500_twice_then_201_and_is_switchable() {
    let server = webhook().await;
    let mut c = config(&server);
    c.vapi.scenario = sandbox::Scenario::Outage;
    let h = start(c).await;
    for _ in 0..2 {
        let (status, body) = create_call(&h.vapi_url, KEY, &call_body()).await;
        assert_eq!(status, 500);
        assert_eq!(
            body,
            json!({"message":"Internal server error","statusCode":500})
        );
    }
    assert_eq!(create_call(&h.vapi_url, KEY, &call_body()).await.0, 201);
    wait_for_requests(&server, 5).await;

    // Re-armed over the control API, with another count.
    let resp = control(
        &h.twilio_url,
        json!({"vapi":{"outage_count":1,"scenario":"outage"}}),
    )
    .await;
    assert_eq!(resp.status(), 200);
    assert_eq!(create_call(&h.vapi_url, KEY, &call_body()).await.0, 500);
    assert_eq!(create_call(&h.vapi_url, KEY, &call_body()).await.0, 201);

    let log = log(&h.salesforce_url, Some("vapi")).await;
    let posts: Vec<_> = log
        .iter()
        .filter(|e| e["direction"] == "in" && e["path"] == "/call")
        .map(|e| e["status"].as_u64().unwrap())
        .collect();
    assert_eq!(posts, [500, 500, 201, 500, 201]);
}

#[tokio::test]
async fn a_5xx_answer_is_retried_when_attempts_are_configured() {
    let server = webhook_failing_once(503).await;
    let mut c = config(&server);
    c.vapi.delivery_attempts = 3;
    let h = start(c).await;
    assert_eq!(create_call(&h.vapi_url, KEY, &call_body()).await.0, 201);
    let reqs = wait_for_requests(&server, 6).await;
    assert_eq!(
        kinds(&reqs)[..2],
        ["status-update:ringing", "status-update:ringing"]
    );
    let log = log(&h.vapi_url, Some("vapi")).await;
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

/// Every message the sandbox sent (from its request log), each as Vapi's `ServerMessage`.
async fn assert_messages_match_vapis_contract(base: &str, at_least: usize) {
    let log = log(base, Some("vapi")).await;
    let out: Vec<_> = log.iter().filter(|e| e["direction"] == "out").collect();
    assert!(out.len() >= at_least, "{} messages", out.len());
    for e in out {
        let body: Value = serde_json::from_str(e["body"].as_str().unwrap()).unwrap();
        if let Err(problems) = vapi_schema::validate("ServerMessage", &body) {
            panic!(
                "{} is not a Vapi ServerMessage: {problems:?}",
                e["message_type"]
            );
        }
    }
}

/// A 201 from `POST /call`: a `Call` plus the `subscriptionLimits` Vapi adds to the answer.
fn assert_call_answer(call: &Value) -> Value {
    let limits = call["subscriptionLimits"].clone();
    assert!(limits.is_object(), "{call}");
    assert_eq!(vapi_schema::validate("SubscriptionLimits", &limits), Ok(()));
    let mut bare = call.clone();
    bare.as_object_mut().unwrap().remove("subscriptionLimits");
    assert_eq!(vapi_schema::validate("Call", &bare), Ok(()), "{call}");
    limits
}

#[tokio::test]
async fn every_message_and_answer_matches_vapis_contract() {
    let server = webhook().await;
    let h = start(config(&server)).await;
    let (status, call) = create_call(&h.vapi_url, KEY, &call_body()).await;
    assert_eq!(status, 201);
    let limits = assert_call_answer(&call);
    assert_eq!(
        limits,
        json!({"concurrencyBlocked": false, "concurrencyLimit": 10, "remainingConcurrentCalls": 9})
    );
    wait_for_requests(&server, 5).await;
    assert_messages_match_vapis_contract(&h.vapi_url, 5).await;
    // The ended call as GET /call/{id} shows it is a `Call` too.
    let got: Value = get_authed_json(
        &format!("{}/call/{}", h.vapi_url, call["id"].as_str().unwrap()),
        KEY,
    )
    .await;
    assert_eq!(vapi_schema::validate("Call", &got), Ok(()), "{got}");
    assert!(got.get("subscriptionLimits").is_none());

    let no_answer = webhook().await;
    let mut c = config(&no_answer);
    c.vapi.scenario = sandbox::Scenario::NoAnswer;
    let h = start(c).await;
    assert_eq!(create_call(&h.vapi_url, KEY, &call_body()).await.0, 201);
    wait_for_requests(&no_answer, 3).await;
    assert_messages_match_vapis_contract(&h.vapi_url, 3).await;
}

#[tokio::test]
async fn an_unknown_property_is_a_400_in_vapis_words() {
    let server = webhook().await;
    let h = start(config(&server)).await;
    let mut bad = call_body();
    bad["callbackUrl"] = json!("https://example.com");
    bad["customer"]["nickname"] = json!("Ada");
    bad["name"] = json!("x".repeat(41));
    let (status, body) = create_call(&h.vapi_url, KEY, &bad).await;
    assert_eq!(status, 400);
    assert_eq!(body["error"], "Bad Request");
    assert_eq!(body["statusCode"], 400);
    let msgs = messages_of(&body);
    assert!(
        msgs.contains(&"property callbackUrl should not exist"),
        "{msgs:?}"
    );
    assert!(
        msgs.contains(&"customer.property nickname should not exist"),
        "{msgs:?}"
    );
    assert!(msgs.iter().any(|m| m.starts_with("name: ")), "{msgs:?}");
    let state = control(&h.vapi_url, json!({})).await;
    let state: Value = state.json().await.unwrap();
    assert_eq!(state["state"]["vapi"]["created"], 0);
}

#[tokio::test]
async fn post_assistant_validates_against_create_assistant_dto() {
    let server = webhook().await;
    let h = start(config(&server)).await;
    let assistant: Value = serde_json::from_str(include_str!("../../../events/assistant.json"))
        .expect("events/assistant.json");
    let post = |body: Value| {
        let url = format!("{}/assistant", h.vapi_url);
        async move {
            let resp = client()
                .post(url)
                .bearer_auth(KEY)
                .json(&body)
                .send_ok()
                .await;
            (resp.status().as_u16(), resp.json::<Value>().await.unwrap())
        }
    };
    let (status, created) = post(assistant.clone()).await;
    assert_eq!(status, 201, "{created}");
    assert!(created["id"].is_string());
    assert_eq!(created["name"], assistant["name"]);
    assert_eq!(vapi_schema::validate("Assistant", &created), Ok(()));

    let mut old = assistant.clone();
    old["endCallFunctionEnabled"] = json!(true);
    old["server"]["secret"] = json!("s3cret");
    let (status, body) = post(old).await;
    assert_eq!(status, 400);
    let mut msgs: Vec<&str> = body["message"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Value::as_str)
        .collect();
    msgs.sort_unstable();
    assert_eq!(
        msgs,
        [
            "property endCallFunctionEnabled should not exist",
            "server.property secret should not exist"
        ]
    );
    assert_eq!(body["statusCode"], 400);
}

#[tokio::test]
async fn a_400_limit_is_switchable_in_vapis_error_shape() {
    let server = webhook().await;
    let h = start(config(&server)).await;
    let resp = control(&h.vapi_url, json!({"vapi": {"fail_next": {"status": 400}}})).await;
    assert_eq!(resp.status(), 200);
    let (status, body) = create_call(&h.vapi_url, KEY, &call_body()).await;
    assert_eq!(status, 400);
    assert_eq!(
        body,
        json!({"message": ["Over Concurrency Limit."], "error": "Bad Request", "statusCode": 400})
    );
    assert_eq!(create_call(&h.vapi_url, KEY, &call_body()).await.0, 201);
}

#[tokio::test]
async fn without_a_backoff_plan_a_failed_message_is_not_retried() {
    let server = webhook_failing_once(503).await;
    let h = start(config(&server)).await;
    assert_eq!(create_call(&h.vapi_url, KEY, &call_body()).await.0, 201);
    let reqs = wait_for_requests(&server, 5).await;
    // The ringing update got its 503 and was lost, as with Vapi without server.backoffPlan.
    assert_eq!(reqs.len(), 5, "{:?}", kinds(&reqs));
    assert_eq!(
        kinds(&reqs)[..2],
        ["status-update:ringing", "status-update:in-progress"]
    );
}

#[tokio::test]
async fn a_retry_plan_does_not_retry_excluded_statuses() {
    let server = webhook_failing_once(401).await;
    let mut c = config(&server);
    c.vapi.delivery_attempts = 3;
    let h = start(c).await;
    assert_eq!(create_call(&h.vapi_url, KEY, &call_body()).await.0, 201);
    let reqs = wait_for_requests(&server, 5).await;
    assert_eq!(
        reqs.len(),
        5,
        "401 is in excludedStatusCodes: {:?}",
        kinds(&reqs)
    );
}

/// `GET /_sandbox/control` over a plain blocking socket (usable inside a wiremock responder).
fn control_state_blocking(base: &str) -> Value {
    use std::io::{Read, Write};
    let addr = base.trim_start_matches("http://");
    let mut s = std::net::TcpStream::connect(addr).expect("sandbox reachable");
    write!(
        s,
        "GET /_sandbox/control HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut text = String::new();
    s.read_to_string(&mut text).unwrap();
    let body = text.split_once("\r\n\r\n").map(|(_, b)| b).unwrap_or("");
    serde_json::from_str(body).unwrap_or(Value::Null)
}

/// Records `state.vapi.live` as the sandbox reports it at the moment each `ended` arrives.
struct LiveAtEnded {
    base: String,
    seen: std::sync::Arc<std::sync::Mutex<Vec<Value>>>,
}

impl Respond for LiveAtEnded {
    fn respond(&self, req: &Request) -> ResponseTemplate {
        let v: Value = serde_json::from_slice(&req.body).unwrap_or(Value::Null);
        if v["message"]["type"] == "status-update" && v["message"]["status"] == "ended" {
            let live = control_state_blocking(&self.base)["state"]["vapi"]["live"].clone();
            self.seen.lock().unwrap().push(live);
        }
        Webhook.respond(req)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_concurrency_limit_blocks_with_a_201_and_frees_the_slot_before_ended() {
    let server = MockServer::start().await;
    let mut c = config(&server);
    c.vapi.concurrency_limit = 1;
    c.vapi.message_delay = Duration::from_millis(150);
    let h = start(c).await;
    let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    mount_any(
        &server,
        "POST",
        LiveAtEnded {
            base: h.vapi_url.clone(),
            seen: seen.clone(),
        },
    )
    .await;

    let (status, first) = create_call(&h.vapi_url, KEY, &call_body()).await;
    assert_eq!(status, 201);
    assert_eq!(
        assert_call_answer(&first),
        json!({"concurrencyBlocked": false, "concurrencyLimit": 1, "remainingConcurrentCalls": 0})
    );
    // While the first call is live, the next one is refused: a 201 that placed nothing.
    let (status, second) = create_call(&h.vapi_url, KEY, &call_body()).await;
    assert_eq!(status, 201);
    assert_eq!(
        assert_call_answer(&second),
        json!({"concurrencyBlocked": true, "concurrencyLimit": 1, "remainingConcurrentCalls": 0})
    );
    assert_eq!(second["status"], "ended");
    assert_eq!(
        second["endedReason"],
        "call.start.error-subscription-concurrency-limit-reached"
    );
    let state: Value = control(&h.vapi_url, json!({})).await.json().await.unwrap();
    let v = &state["state"]["vapi"];
    assert_eq!(
        (
            v["live"].clone(),
            v["peak_live"].clone(),
            v["created"].clone(),
            v["blocked"].clone()
        ),
        (json!(1), json!(1), json!(1), json!(1))
    );

    let reqs = wait_for_requests(&server, 5).await;
    let second_id = second["id"].as_str().unwrap();
    assert!(
        reqs.iter().all(|r| {
            let v: Value = serde_json::from_slice(&r.body).unwrap();
            v["message"]["call"]["id"] != second_id
        }),
        "a blocked call sends no messages"
    );
    // The slot was already free when `ended` reached the webhook.
    assert_eq!(*seen.lock().unwrap(), vec![json!(0)]);
    let (_, third) = create_call(&h.vapi_url, KEY, &call_body()).await;
    assert_eq!(third["subscriptionLimits"]["concurrencyBlocked"], false);

    // The limit is a switch too; a reset zeroes the counters.
    let state: Value = control(
        &h.vapi_url,
        json!({"reset": true, "vapi": {"concurrency_limit": 5}}),
    )
    .await
    .json()
    .await
    .unwrap();
    let v = &state["state"]["vapi"];
    assert_eq!(v["concurrency_limit"], 5);
    assert_eq!(
        (v["created"].clone(), v["blocked"].clone()),
        (json!(0), json!(0))
    );
}

#[tokio::test]
async fn get_call_lists_the_assistants_calls_since_a_moment_and_get_by_id() {
    let server = webhook().await;
    let h = start(config(&server)).await;
    let before = sfvapi::now_millis() - 1000;
    let (_, first) = create_call(&h.vapi_url, KEY, &call_body()).await;
    let mut other = call_body();
    other["assistantId"] = json!("asst-other");
    create_call(&h.vapi_url, KEY, &other).await;
    let list = |q: String| {
        let url = format!("{}/call?{q}", h.vapi_url);
        async move {
            let r = get_authed(&url, KEY).await;
            (r.status().as_u16(), r.json::<Value>().await.unwrap())
        }
    };
    let iso = sfvapi::vapi::client::iso_millis;
    let (status, calls) = list(format!("assistantId=asst-test&createdAtGe={}", iso(before))).await;
    assert_eq!(status, 200);
    let calls = calls.as_array().unwrap().clone();
    assert_eq!(calls.len(), 1, "only the assistant's calls: {calls:#?}");
    assert_eq!(calls[0]["id"], first["id"]);
    assert_eq!(
        calls[0]["assistantOverrides"]["metadata"]["sfvapiEventId"],
        "case-escalated-1"
    );
    // Each listed call is a `Call` (the answer's own `subscriptionLimits` is not part of it).
    vapi_schema::validate("Call", &calls[0]).expect("a listed call is a Call");
    // Created after the filter's moment: nothing.
    let (_, later) = list(format!(
        "assistantId=asst-test&createdAtGe={}",
        iso(sfvapi::now_millis() + 60_000)
    ))
    .await;
    assert_eq!(later, json!([]));
    let (status, bad) = list("createdAtGe=yesterday".into()).await;
    assert_eq!(status, 400, "{bad}");
    assert_eq!(bad["statusCode"], 400);
    // GET /call/{id} → the call; unknown → Vapi's 404.
    let one = get_authed(
        &format!("{}/call/{}", h.vapi_url, first["id"].as_str().unwrap()),
        KEY,
    )
    .await;
    assert_eq!(one.status(), 200);
    let missing = get_authed(
        &format!("{}/call/00000000-0000-4000-8000-000000000000", h.vapi_url),
        KEY,
    )
    .await;
    assert_eq!(missing.status(), 404);
}

#[tokio::test]
async fn a_hung_answer_still_creates_the_call_and_a_dropped_report_never_arrives() {
    let server = webhook().await;
    let h = start(config(&server)).await;
    let resp = control(
        &h.vapi_url,
        json!({"vapi": {"hang_next": 1, "hang_ms": 1500, "drop_reports": true}}),
    )
    .await;
    assert_eq!(resp.status(), 200);
    // A client that gives up after 300 ms never sees the answer...
    let quick = reqwest::Client::builder()
        .timeout(Duration::from_millis(300))
        .build()
        .unwrap();
    let err = quick
        .post(format!("{}/call", h.vapi_url))
        .bearer_auth(KEY)
        .json(&call_body())
        .send()
        .await
        .expect_err("the answer is late");
    assert!(err.is_timeout(), "{err}");
    // ...but the call exists, runs, ends, and its report is never sent.
    let msgs = wait_for_requests(&server, 4).await;
    let kinds = kinds(&msgs);
    assert!(
        kinds.contains(&"status-update:ended".to_owned()),
        "{kinds:?}"
    );
    assert!(
        !kinds.iter().any(|k| k == "end-of-call-report"),
        "{kinds:?}"
    );
    let listed: Value =
        get_authed_json(&format!("{}/call?assistantId=asst-test", h.vapi_url), KEY).await;
    let call = &listed[0];
    assert_eq!(call["status"], "ended");
    assert_eq!(call["endedReason"], "customer-ended-call");
    // GET /call/{id} carries what the lost report would have (artifact, analysis).
    assert!(call["artifact"]["transcript"].is_string(), "{call:#}");
    // Only the next call hangs.
    assert_eq!(create_call(&h.vapi_url, KEY, &call_body()).await.0, 201);
}

/// A webhook that answers `transfer-destination-request` with `answer` (and tool calls as
/// [`Webhook`] does).
struct TransferWebhook {
    answer: Value,
}

impl Respond for TransferWebhook {
    fn respond(&self, req: &Request) -> ResponseTemplate {
        let v: Value = serde_json::from_slice(&req.body).unwrap_or(Value::Null);
        if v["message"]["type"] == "transfer-destination-request" {
            ResponseTemplate::new(200).set_body_json(self.answer.clone())
        } else {
            Webhook.respond(req)
        }
    }
}

async fn transfer_webhook(answer: Value) -> MockServer {
    let server = MockServer::start().await;
    mount(&server, "POST", "/vapi/webhook", TransferWebhook { answer }).await;
    server
}

#[tokio::test]
async fn the_transfer_scenario_asks_where_to_and_dials_the_destination_it_is_given() {
    let destination = json!({"type": "number", "number": "+14155550100", "callerId": "+14155550123",
        "transferPlan": {"mode": "warm-transfer-say-summary"}});
    let server = transfer_webhook(json!({"destination": destination})).await;
    let (_h, reqs) = run_call(&server, sandbox::Scenario::Transfer, 7).await;
    assert_eq!(
        kinds(&reqs),
        [
            "status-update:ringing",
            "status-update:in-progress",
            "tool-calls",
            "transfer-destination-request",
            "transfer-update",
            "status-update:ended",
            "end-of-call-report"
        ]
    );
    assert_signed(&reqs);
    for r in &reqs {
        let v: Value = serde_json::from_slice(&r.body).unwrap();
        vapi_schema::validate("ServerMessage", &v).unwrap_or_else(|e| panic!("{e:?}"));
    }
    let update: Value = serde_json::from_slice(&reqs[4].body).unwrap();
    assert_eq!(update["message"]["destination"], destination);
    let report: Value = serde_json::from_slice(&reqs[6].body).unwrap();
    assert_eq!(report["message"]["endedReason"], "assistant-forwarded-call");
}

#[tokio::test]
async fn a_transfer_answered_with_a_message_only_transfers_nobody() {
    let server = transfer_webhook(json!({"message": {"type": "request-failed",
        "content": "Nobody can take your call right now."}, "error": "no number"}))
    .await;
    let (_h, reqs) = run_call(&server, sandbox::Scenario::Transfer, 6).await;
    assert_eq!(
        kinds(&reqs),
        [
            "status-update:ringing",
            "status-update:in-progress",
            "tool-calls",
            "transfer-destination-request",
            "status-update:ended",
            "end-of-call-report"
        ]
    );
    let report: Value = serde_json::from_slice(&reqs[5].body).unwrap();
    assert_eq!(report["message"]["endedReason"], "customer-ended-call");
}
