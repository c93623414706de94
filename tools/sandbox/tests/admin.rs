//! What `sfvapi-admin doctor` and `setup` ask the fake services, answered in the vendors' shapes:
//! Salesforce's sObject describe and Tooling API for Event Relay (its rules and error codes),
//! Vapi's credentials, assistant and phone-number updates (checked against Vapi's schema) and org,
//! Twilio's account fetch.

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

/// One JSON request with a bearer token: the status and the JSON body (Null when none).
async fn send(
    url: String,
    token: &str,
    method: reqwest::Method,
    body: Option<Value>,
) -> (u16, Value) {
    let mut req = client().request(method, url).bearer_auth(token);
    if let Some(b) = body {
        req = req.json(&b);
    }
    let resp = req.send_ok().await;
    (
        resp.status().as_u16(),
        resp.json().await.unwrap_or(Value::Null),
    )
}

async fn vapi(
    base: &str,
    method: reqwest::Method,
    path: &str,
    body: Option<Value>,
) -> (u16, Value) {
    send(format!("{base}{path}"), VAPI_KEY, method, body).await
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

async fn tooling(
    sf: &str,
    token: &str,
    method: reqwest::Method,
    path: &str,
    body: Option<Value>,
) -> (u16, Value) {
    send(
        format!("{sf}/services/data/v62.0{path}"),
        token,
        method,
        body,
    )
    .await
}

fn code(body: &Value) -> &str {
    body[0]["errorCode"].as_str().unwrap_or_default()
}

#[tokio::test]
async fn tooling_api_event_relay_objects_follow_salesforces_rules() {
    use reqwest::Method;
    let h = start_default().await;
    let sf = &h.salesforce_url;
    let t = sf_token(sf).await;
    let post = |ty: &str, body: Value| {
        let path = format!("/tooling/sobjects/{ty}");
        let (sf, t) = (sf.clone(), t.clone());
        async move { tooling(&sf, &t, Method::POST, &path, Some(body)).await }
    };

    // A channel holds one kind of event: a change event is refused on a platform-event channel.
    let (s, created) = post(
        "PlatformEventChannel",
        json!({"FullName": "Sfvapi_Relay__chn", "Metadata": {"channelType": "event", "label": "x"}}),
    )
    .await;
    assert_eq!(s, 201, "{created}");
    assert_eq!(created["success"], true);
    let channel_id = created["id"].as_str().unwrap().to_owned();
    assert!(channel_id.starts_with("0YL"), "{channel_id}");
    let (s, body) = post(
        "PlatformEventChannel",
        json!({"FullName": "Sfvapi_Relay__chn", "Metadata": {"channelType": "event", "label": "x"}}),
    )
    .await;
    assert_eq!((s, code(&body)), (400, "DUPLICATE_DEVELOPER_NAME"));
    let (s, body) = post(
        "PlatformEventChannelMember",
        json!({"FullName": "Sfvapi_Relay_chn_CaseChangeEvent", "Metadata": {"eventChannel": "Sfvapi_Relay__chn", "selectedEntity": "CaseChangeEvent"}}),
    )
    .await;
    assert_eq!(
        (s, code(&body)),
        (400, "FIELD_INTEGRITY_EXCEPTION"),
        "{body}"
    );
    let (s, _) = post(
        "PlatformEventChannelMember",
        json!({"FullName": "Sfvapi_Relay_chn_Call_Request_e", "Metadata": {"eventChannel": "Sfvapi_Relay__chn", "selectedEntity": "Call_Request__e"}}),
    )
    .await;
    assert_eq!(s, 201);

    // A relay is created stopped, through an existing named credential.
    let relay = |state: &str| json!({"FullName": "Sfvapi_Relay", "Metadata": {"eventChannel": "Sfvapi_Relay__chn", "destinationResourceName": "callout:Sfvapi_Event_Relay", "label": "x", "relayOption": "{\"ReplayRecovery\":\"EARLIEST\"}", "state": state}});
    let (s, body) = post("EventRelayConfig", relay("STOP")).await;
    assert_eq!(
        (s, code(&body)),
        (400, "INVALID_CROSS_REFERENCE_KEY"),
        "{body}"
    );
    let (s, _) = post(
        "NamedCredential",
        json!({"FullName": "Sfvapi_Event_Relay", "Metadata": {"endpoint": "arn:aws:US-EAST-1:123456789012", "label": "x", "principalType": "NamedUser", "protocol": "NoAuthentication"}}),
    )
    .await;
    assert_eq!(s, 201);
    let (s, body) = post("EventRelayConfig", relay("RUN")).await;
    assert_eq!(
        (s, code(&body)),
        (400, "FIELD_INTEGRITY_EXCEPTION"),
        "{body}"
    );
    let (s, created) = post("EventRelayConfig", relay("STOP")).await;
    assert_eq!(s, 201, "{created}");
    let relay_id = created["id"].as_str().unwrap().to_owned();

    // Its feedback names the partner event source; only state and relayOption change.
    let call = |method: Method, path: String, body: Option<Value>| {
        let (sf, t) = (sf.clone(), t.clone());
        async move { tooling(&sf, &t, method, &path, body).await }
    };
    let q = "SELECT+EventRelayConfigId,+Status,+RemoteResource+FROM+EventRelayFeedback";
    let (s, fb) = call(Method::GET, format!("/query?q={q}"), None).await;
    assert_eq!(s, 200, "{fb}");
    assert_eq!(fb["records"][0]["Status"], "STOPPED");
    assert_eq!(
        fb["records"][0]["RemoteResource"],
        format!("aws.partner/salesforce.com/00D5e000000AbCdEAK/{channel_id}")
    );
    let path = format!("/tooling/sobjects/EventRelayConfig/{relay_id}");
    let refused = json!({"Metadata": {"eventChannel": "Other__chn"}});
    let (s, body) = call(Method::PATCH, path.clone(), Some(refused)).await;
    assert_eq!(
        (s, code(&body)),
        (400, "FIELD_INTEGRITY_EXCEPTION"),
        "{body}"
    );
    let run = json!({"Metadata": {"state": "RUN"}});
    assert_eq!(call(Method::PATCH, path.clone(), Some(run)).await.0, 204);
    let (s, r) = call(Method::GET, path, None).await;
    assert_eq!((s, r["State"].as_str()), (200, Some("RUN")));

    // Tooling queries: the named record; an unknown column, a malformed query: 400.
    let query = |q: &str| call(Method::GET, format!("/tooling/query?q={q}"), None);
    let (s, found) =
        query("SELECT+Id,+State+FROM+EventRelayConfig+WHERE+DeveloperName+=+'Sfvapi_Relay'").await;
    assert_eq!(s, 200, "{found}");
    assert_eq!(found["size"], 1);
    assert_eq!(found["records"][0]["State"], "RUN");
    let (s, body) = query("SELECT+Nope+FROM+EventRelayConfig").await;
    assert_eq!((s, code(&body)), (400, "INVALID_FIELD"));
    let (s, body) = query("SELECT+FROM+EventRelayConfig").await;
    assert_eq!((s, code(&body)), (400, "MALFORMED_QUERY"));
    h.shutdown().await;
}

#[tokio::test]
async fn vapi_phone_numbers_update_by_their_providers_schema() {
    use reqwest::Method;
    let h = start_default().await;
    let v = &h.vapi_url;
    let path = "/phone-number/sandbox-phone-number";
    let (s, n) = vapi(v, Method::GET, path, None).await;
    assert_eq!(s, 200);
    assert_eq!(n["provider"], "twilio");
    // A Twilio number's update is UpdateTwilioPhoneNumberDTO: unknown properties are refused.
    let (s, body) = vapi(
        v,
        Method::PATCH,
        path,
        Some(json!({"sipUri": "sip:x@example.com"})),
    )
    .await;
    assert_eq!(s, 400, "{body}");
    assert_eq!(body["error"], "Bad Request");
    let server =
        json!({"url": "https://example.com/vapi/webhook", "credentialId": "sandbox-credential"});
    let (s, updated) = vapi(v, Method::PATCH, path, Some(json!({"server": server}))).await;
    assert_eq!(s, 200, "{updated}");
    assert_eq!(updated["server"], server);
    let (s, _) = vapi(v, Method::GET, "/phone-number/nope", None).await;
    assert_eq!(s, 404);
    let (s, org) = vapi(v, Method::GET, "/org/org-sandbox", None).await;
    assert_eq!((s, org["concurrencyLimit"].as_u64()), (200, Some(10)));
    h.shutdown().await;
}
