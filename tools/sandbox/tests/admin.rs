//! What `sfvapi-admin doctor` and `setup` ask the fake services, answered in the vendors' shapes:
//! Salesforce's sObject describe, Vapi's credentials and assistant updates (checked against
//! Vapi's schema), Twilio's account fetch.

use sfvapi_test_support::sandbox_server::*;

use serde_json::{json, Value};

const VAPI_KEY: &str = "sandbox-vapi-key";
const SID: &str = "AC0123456789abcdef0123456789abcdef";

async fn describe(sf: &str, token: &str, object: &str) -> (u16, Value) {
    let resp = get_authed(
        &format!("{sf}/services/data/v62.0/sobjects/{object}/describe"),
        token,
    )
    .await;
    (resp.status().as_u16(), resp.json().await.unwrap())
}

fn field<'a>(d: &'a Value, name: &str) -> Option<&'a Value> {
    d["fields"].as_array()?.iter().find(|f| f["name"] == name)
}

#[tokio::test]
async fn describe_lists_fields_with_external_id_unique_and_updateable() {
    let h = start_default().await;
    let token = sf_token(&h.salesforce_url).await;
    let (status, task) = describe(&h.salesforce_url, &token, "Task").await;
    assert_eq!(status, 200, "{task}");
    let key = field(&task, "Vapi_Call_Id__c").expect("the external-id field");
    assert_eq!(
        (key["externalId"].as_bool(), key["unique"].as_bool()),
        (Some(true), Some(true))
    );
    let subtype = field(&task, "TaskSubtype").expect("TaskSubtype");
    assert_eq!(
        subtype["updateable"], false,
        "create-only, as the object reference says"
    );
    let (_, contact) = describe(&h.salesforce_url, &token, "Contact").await;
    assert_eq!(
        field(&contact, "Last_Call_Outcome__c").unwrap()["updateable"],
        true
    );
    assert_eq!(field(&contact, "Id").unwrap()["updateable"], false);
    assert!(field(&contact, "No_Such_Field__c").is_none());

    // The switch: the field made without Unique.
    let r = control(
        &h.salesforce_url,
        json!({"salesforce": {"task_external_id_unique": false}}),
    )
    .await;
    assert_eq!(r.status(), 200);
    let (_, task) = describe(&h.salesforce_url, &token, "Task").await;
    assert_eq!(field(&task, "Vapi_Call_Id__c").unwrap()["unique"], false);

    // An object the org does not have, and no token.
    let (status, body) = describe(&h.salesforce_url, &token, "Nope__c").await;
    assert_eq!(
        (status, body[0]["errorCode"].as_str()),
        (404, Some("NOT_FOUND"))
    );
    let (status, body) = describe(&h.salesforce_url, "not-a-token", "Task").await;
    assert_eq!(
        (status, body[0]["errorCode"].as_str()),
        (401, Some("INVALID_SESSION_ID"))
    );
    h.shutdown().await;
}

async fn vapi(
    base: &str,
    method: reqwest::Method,
    path: &str,
    body: Option<Value>,
) -> (u16, Value) {
    let mut req = client()
        .request(method, format!("{base}{path}"))
        .bearer_auth(VAPI_KEY);
    if let Some(b) = body {
        req = req.json(&b);
    }
    let resp = req.send_ok().await;
    (
        resp.status().as_u16(),
        resp.json().await.unwrap_or(Value::Null),
    )
}

#[tokio::test]
async fn vapi_credentials_and_assistant_updates_follow_the_schema() {
    let h = start_default().await;
    let v = &h.vapi_url;
    let (status, list) = vapi(v, reqwest::Method::GET, "/credential", None).await;
    assert_eq!(status, 200);
    let seeded = &list.as_array().unwrap()[0];
    assert_eq!(seeded["id"], sandbox::SEED_CREDENTIAL_ID);
    vapi_schema::validate("WebhookCredential", seeded).expect("a WebhookCredential");

    let body = json!({"provider": "webhook", "name": "x", "authenticationPlan": {"type": "hmac", "secretKey": "k".repeat(40), "algorithm": "sha256"}});
    let (status, created) = vapi(v, reqwest::Method::POST, "/credential", Some(body)).await;
    assert_eq!(status, 201, "{created}");
    vapi_schema::validate("WebhookCredential", &created).expect("a WebhookCredential");
    let (status, bad) = vapi(
        v,
        reqwest::Method::POST,
        "/credential",
        Some(json!({"provider": "webhook"})),
    )
    .await;
    assert_eq!(
        (status, bad["error"].as_str()),
        (400, Some("Bad Request")),
        "{bad}"
    );

    let path = format!("/assistant/{}", sandbox::SEED_ASSISTANT_ID);
    let (status, a) = vapi(v, reqwest::Method::GET, &path, None).await;
    assert_eq!(status, 200);
    assert_eq!(a["server"]["credentialId"], sandbox::SEED_CREDENTIAL_ID);
    let (status, a) = vapi(
        v,
        reqwest::Method::PATCH,
        &path,
        Some(json!({"name": "renamed"})),
    )
    .await;
    assert_eq!((status, a["name"].as_str()), (200, Some("renamed")));
    let (status, bad) = vapi(
        v,
        reqwest::Method::PATCH,
        &path,
        Some(json!({"nickname": "x"})),
    )
    .await;
    assert_eq!(status, 400);
    assert!(bad["message"].to_string().contains("nickname"), "{bad}");
    let (status, _) = vapi(v, reqwest::Method::DELETE, &path, None).await;
    assert_eq!(status, 200);
    let (status, gone) = vapi(v, reqwest::Method::GET, &path, None).await;
    assert_eq!(
        (status, gone["message"].as_str()),
        (404, Some("Assistant not found"))
    );
    h.shutdown().await;
}

#[tokio::test]
async fn twilio_account_fetch_checks_the_credentials() {
    let h = start_default().await;
    let url = format!("{}/2010-04-01/Accounts/{SID}.json", h.twilio_url);
    let ok = client()
        .get(&url)
        .basic_auth(SID, Some("sandbox-twilio-token"))
        .send_ok()
        .await;
    assert_eq!(ok.status(), 200);
    let body: Value = ok.json().await.unwrap();
    assert_eq!(
        (body["sid"].as_str(), body["status"].as_str()),
        (Some(SID), Some("active"))
    );
    let bad = client()
        .get(&url)
        .basic_auth(SID, Some("wrong"))
        .send_ok()
        .await;
    assert_eq!(bad.status(), 401);
    let body: Value = bad.json().await.unwrap();
    assert_eq!(body["code"], 20003);
    h.shutdown().await;
}
