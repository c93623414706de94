//! The fake Twilio: 201 with the message/call resource, 21211 for a bad To, 401 for bad auth.

use sfvapi_test_support::sandbox_server::*;

use serde_json::{json, Value};

const SID: &str = "AC0123456789abcdef0123456789abcdef";
const TOKEN: &str = "sandbox-twilio-token";

async fn post(
    base: &str,
    resource: &str,
    user: &str,
    pass: &str,
    form: &[(&str, &str)],
) -> (u16, Value) {
    let resp = client()
        .post(format!("{base}/2010-04-01/Accounts/{SID}/{resource}"))
        .basic_auth(user, Some(pass))
        .form(form)
        .send_ok()
        .await;
    (resp.status().as_u16(), resp.json().await.unwrap())
}

/// `POST …/Messages.json` with the sandbox's credentials: status and JSON body.
async fn send_message(tw: &str, form: &[(&str, &str)]) -> (u16, Value) {
    post(tw, "Messages.json", SID, TOKEN, form).await
}

#[tokio::test]
async fn messages_and_calls_are_created_with_twilio_shapes() {
    let h = start_default().await;
    let tw = &h.twilio_url;
    let (status, m) = send_message(
        tw,
        &[
            ("To", "+14155550123"),
            ("From", "+14155559999"),
            ("Body", "Thanks for talking with us today."),
        ],
    )
    .await;
    assert_eq!(status, 201);
    let sid = m["sid"].as_str().unwrap();
    assert!(sid.starts_with("SM") && sid.len() == 34, "{sid}");
    assert_eq!(m["status"], "queued");
    assert_eq!(m["to"], "+14155550123");
    assert_eq!(m["from"], "+14155559999");
    assert_eq!(m["body"], "Thanks for talking with us today.");
    assert!(m["error_code"].is_null() && m["error_message"].is_null());

    let (status, c) = post(
        tw,
        "Calls.json",
        SID,
        TOKEN,
        &[
            ("To", "+14155550123"),
            ("From", "+14155559999"),
            ("Twiml", "<Response><Say>Hello</Say></Response>"),
        ],
    )
    .await;
    assert_eq!(status, 201);
    assert!(c["sid"].as_str().unwrap().starts_with("CA"));
    assert_eq!(c["status"], "queued");
}

#[tokio::test]
async fn invalid_to_is_21211_bad_auth_is_20003_and_429_switch() {
    let h = start_default().await;
    let tw = &h.twilio_url;
    let (status, e) = send_message(
        tw,
        &[("To", "+1415"), ("From", "+14155559999"), ("Body", "hi")],
    )
    .await;
    assert_eq!(status, 400);
    let fixture: Value = serde_json::from_str(include_str!(
        "../../../shared/tests/fixtures/twilio/error-invalid-to.json"
    ))
    .unwrap();
    assert_eq!(e, fixture);

    let (status, e) = post(
        tw,
        "Messages.json",
        SID,
        "wrong",
        &[
            ("To", "+14155550123"),
            ("From", "+14155559999"),
            ("Body", "hi"),
        ],
    )
    .await;
    assert_eq!(status, 401);
    assert_eq!(
        e,
        json!({"code":20003,"message":"Authenticate","more_info":"https://www.twilio.com/docs/errors/20003","status":401})
    );

    let (status, e) = send_message(tw, &[("To", "+14155550123"), ("Body", "hi")]).await;
    assert_eq!((status, e["code"].clone()), (400, json!(21603)));

    control(tw, json!({"twilio":{"fail_next":{"status":429}}})).await;
    let form = [
        ("To", "+14155550123"),
        ("From", "+14155559999"),
        ("Body", "hi"),
    ];
    let (status, e) = send_message(tw, &form).await;
    assert_eq!(status, 429);
    assert_eq!(e["code"], 20429);
    assert_eq!(e["status"], 429);
    assert_eq!(post(tw, "Messages.json", SID, TOKEN, &form).await.0, 201);

    let log = log(tw, Some("twilio")).await;
    let statuses: Vec<_> = log.iter().map(|e| e["status"].as_u64().unwrap()).collect();
    assert_eq!(statuses, vec![400, 401, 400, 429, 201]);
    assert_eq!(log[0]["headers"]["authorization"], "Basic [redacted]");
    assert!(log[0]["body"].as_str().unwrap().contains("To=%2B1415"));
}
