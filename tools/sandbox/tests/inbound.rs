//! Inbound calls on the fake Vapi: `POST /_sandbox/inbound-call` sends `assistant-request` to the
//! phone number's server in Vapi's shape, then runs the call with the assistant it answered, or
//! ends it with Vapi's `endedReason` when the answer is unusable. Every message is checked against
//! Vapi's `ServerMessage`.

use sfvapi_test_support::sandbox_server::*;
use sfvapi_test_support::*;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{json, Value};
use wiremock::{MockServer, Request, Respond, ResponseTemplate};

const KEY: &str = "sandbox-vapi-key";

/// A phone number server that answers `assistant-request` with `answer` (and tool calls like
/// sfvapi), and remembers what it received.
struct Server {
    answer: Arc<Mutex<(u16, Value)>>,
}

impl Respond for Server {
    fn respond(&self, req: &Request) -> ResponseTemplate {
        let v: Value = serde_json::from_slice(&req.body).unwrap_or(Value::Null);
        match v["message"]["type"].as_str() {
            Some("assistant-request") => {
                let (status, body) = self.answer.lock().unwrap().clone();
                ResponseTemplate::new(status).set_body_json(body)
            }
            Some("tool-calls") => {
                let call = &v["message"]["toolCallList"][0];
                ResponseTemplate::new(200).set_body_json(json!({"results":[{
                    "name": call["function"]["name"], "toolCallId": call["id"],
                    "result": "{\"name\":\"Ada Lovelace\"}"}]}))
            }
            _ => ResponseTemplate::new(200).set_body_json(json!({})),
        }
    }
}

async fn setup() -> (
    MockServer,
    sandbox::Handles,
    String,
    Arc<Mutex<(u16, Value)>>,
) {
    let server = MockServer::start().await;
    let answer = Arc::new(Mutex::new((200, json!({}))));
    mount(
        &server,
        "POST",
        "/vapi/webhook",
        Server {
            answer: answer.clone(),
        },
    )
    .await;
    let mut c = sandbox::Config::default();
    c.vapi.server_url = Some(format!("{}/vapi/webhook", server.uri()));
    c.vapi.message_delay = Duration::from_millis(10);
    let h = start(c).await;
    let assistant: Value =
        serde_json::from_str(include_str!("../../../events/assistant-inbound.json")).unwrap();
    let created: Value = client()
        .post(format!("{}/assistant", h.vapi_url))
        .bearer_auth(KEY)
        .json(&assistant)
        .send_json()
        .await;
    let id = created["id"].as_str().unwrap().to_owned();
    (server, h, id, answer)
}

async fn call_in(vapi: &str, from: Value) -> Value {
    let resp = client()
        .post(format!("{vapi}/_sandbox/inbound-call"))
        .json(&json!({"from": from}))
        .send_ok()
        .await;
    assert_eq!(resp.status(), 200);
    resp.json().await.unwrap()
}

async fn messages(server: &MockServer, n: usize) -> Vec<Value> {
    wait_for_requests(server, n)
        .await
        .iter()
        .map(|r| serde_json::from_slice(&r.body).unwrap())
        .collect()
}

fn kind(m: &Value) -> String {
    let t = m["message"]["type"].as_str().unwrap().to_owned();
    match m["message"]["status"].as_str() {
        Some(s) => format!("{t}:{s}"),
        None => t,
    }
}

#[tokio::test]
async fn an_inbound_call_asks_for_its_assistant_then_runs_with_it_in_vapis_shapes() {
    let (server, h, assistant, answer) = setup().await;
    *answer.lock().unwrap() = (
        200,
        json!({"assistantId": assistant, "assistantOverrides": {
            "firstMessage": "Hi {{customerFirstName}}, about {{caseSubject}}.",
            "variableValues": {"customerFirstName": "Ada", "caseSubject": "your refund"},
            "metadata": {"contactId": "0035e00000XyZ12AAF"}}}),
    );
    let placed = call_in(&h.vapi_url, json!("+14155550123")).await;
    assert_eq!(placed["ok"], true);
    assert_eq!(placed["firstMessage"], "Hi Ada, about your refund.");
    assert_eq!(placed["assistantRequest"]["status"], 200);
    assert_eq!(placed["assistantRequest"]["check"]["ok"], true, "{placed}");
    assert!(placed.get("endedReason").is_none());
    let msgs = messages(&server, 5).await;
    assert_eq!(
        msgs.iter().map(kind).collect::<Vec<_>>(),
        [
            "assistant-request",
            "status-update:in-progress",
            "tool-calls",
            "status-update:ended",
            "end-of-call-report"
        ]
    );
    for m in &msgs {
        if let Err(p) = vapi_schema::validate("ServerMessage", m) {
            panic!("{}: {p:?}", kind(m));
        }
    }
    let first = &msgs[0]["message"];
    assert_eq!(first["call"]["type"], "inboundPhoneCall");
    assert_eq!(first["call"]["status"], "ringing");
    assert_eq!(first["call"]["customer"]["number"], "+14155550123");
    assert_eq!(first["customer"]["number"], "+14155550123");
    assert!(
        first["call"].get("assistantId").is_none(),
        "no assistant yet"
    );
    // The rest of the call carries the answered assistant and its overrides.
    let report = &msgs[4]["message"];
    assert_eq!(report["call"]["assistantId"], assistant.as_str());
    assert_eq!(
        report["call"]["assistantOverrides"]["metadata"]["contactId"],
        "0035e00000XyZ12AAF"
    );
    assert_eq!(report["endedReason"], "customer-ended-call");
    assert!(report["artifact"]["transcript"]
        .as_str()
        .unwrap()
        .starts_with("AI: Hi Ada, about your refund."));
    let got: Value = get_authed_json(
        &format!("{}/call/{}", h.vapi_url, placed["callId"].as_str().unwrap()),
        KEY,
    )
    .await;
    assert_eq!(vapi_schema::validate("Call", &got), Ok(()), "{got}");
    assert_eq!(got["status"], "ended");
    // The assistant's own first message when the answer overrides none.
    *answer.lock().unwrap() = (200, json!({"assistantId": assistant}));
    let generic = call_in(&h.vapi_url, Value::Null).await;
    assert_eq!(
        generic["firstMessage"],
        "Thanks for calling customer support, this is Sarah. How can I help you today?"
    );
    let msgs = messages(&server, 10).await;
    let withheld = &msgs[5]["message"];
    assert_eq!(withheld["type"], "assistant-request");
    assert!(withheld.get("customer").is_none(), "{withheld}");
    assert_eq!(vapi_schema::validate("ServerMessage", &msgs[5]), Ok(()));
}

#[tokio::test]
async fn an_unusable_answer_ends_the_call_with_vapis_ended_reason_and_nothing_follows() {
    let (server, h, assistant, answer) = setup().await;
    let cases = [
        ((500, json!({"error": "boom"})), "assistant-request-failed"),
        (
            (200, json!({"error": "We are closed."})),
            "assistant-request-returned-error",
        ),
        (
            (
                200,
                json!({"assistantId": assistant, "assistantOverrides": {"callerName": "Ada"}}),
            ),
            "assistant-request-returned-invalid-assistant",
        ),
        ((200, json!({})), "assistant-request-returned-no-assistant"),
        (
            (200, json!({"assistantId": "no-such-assistant"})),
            "assistant-not-found",
        ),
    ];
    for (i, (a, reason)) in cases.into_iter().enumerate() {
        *answer.lock().unwrap() = a;
        let placed = call_in(&h.vapi_url, json!("+14155550123")).await;
        assert_eq!(placed["endedReason"], reason, "{placed}");
        assert_eq!(placed["assistantRequest"]["check"]["ok"], false);
        let got: Value = get_authed_json(
            &format!("{}/call/{}", h.vapi_url, placed["callId"].as_str().unwrap()),
            KEY,
        )
        .await;
        assert_eq!(got["endedReason"], reason);
        assert_eq!(vapi_schema::validate("Call", &got), Ok(()), "{got}");
        // Only the assistant-request went out for these calls.
        let msgs = messages(&server, i + 1).await;
        assert_eq!(
            msgs.len(),
            i + 1,
            "{:?}",
            msgs.iter().map(kind).collect::<Vec<_>>()
        );
    }
    let state: Value = control(&h.vapi_url, json!({})).await.json().await.unwrap();
    assert_eq!(state["state"]["vapi"]["live"], 0);
}
