//! The fake Salesforce answers like the real one: token shape, REST bodies, status codes.

use sfvapi_test_support::sandbox_server::*;

use serde_json::{json, Value};

const ADA: &str = "0035e00000XyZ12AAF";
const DNC: &str = "0035e00000DnCa1AAF";
const BAD_PHONE: &str = "0035e00000BadPhAAJ";
const CASE: &str = "5005e00000AbCdEAAV";

async fn token(sf: &str) -> Value {
    let resp = sf_token_answer(sf).await;
    assert_eq!(resp.status(), 200);
    resp.json().await.unwrap()
}

async fn get(url: String, token: &str) -> (u16, Option<String>, Value) {
    let resp = get_authed(&url, token).await;
    let status = resp.status().as_u16();
    let limit = resp
        .headers()
        .get("sforce-limit-info")
        .map(|v| v.to_str().unwrap().to_owned());
    (status, limit, resp.json().await.unwrap())
}

#[tokio::test]
async fn token_response_has_real_shape_no_expires_in_and_string_issued_at() {
    let h = start_default().await;
    let before = sfvapi::now_millis();
    let t = token(&h.salesforce_url).await;
    let obj = t.as_object().unwrap();
    assert!(
        !obj.contains_key("expires_in"),
        "Salesforce sends no expires_in: {t}"
    );
    let issued = t["issued_at"].as_str().expect("issued_at is a string");
    let issued: i64 = issued.parse().unwrap();
    assert!(
        issued >= before && issued <= sfvapi::now_millis(),
        "ms since epoch"
    );
    assert_eq!(t["token_type"], "Bearer");
    assert_eq!(t["instance_url"], h.salesforce_url.as_str());
    for k in ["access_token", "id", "signature", "scope"] {
        assert!(t[k].as_str().is_some_and(|s| !s.is_empty()), "{k} in {t}");
    }
    assert!(
        !obj.contains_key("refresh_token"),
        "no rotation: no refresh_token"
    );

    // The refresh flow answers the same shape.
    let r: Value = client()
        .post(format!("{}/services/oauth2/token", h.salesforce_url))
        .form(&[
            ("grant_type", "refresh_token"),
            ("client_id", "sandbox-client-id"),
            ("client_secret", "sandbox-client-secret"),
            ("refresh_token", "5Aep861-test"),
        ])
        .send_json()
        .await;
    assert!(
        r["issued_at"].is_string() && r.get("expires_in").is_none(),
        "{r}"
    );

    // Introspection tells the lifetime.
    let i: Value = client()
        .post(format!("{}/services/oauth2/introspect", h.salesforce_url))
        .form(&[
            ("token", t["access_token"].as_str().unwrap()),
            ("client_id", "sandbox-client-id"),
            ("client_secret", "sandbox-client-secret"),
        ])
        .send_json()
        .await;
    assert_eq!(i["active"], true);
    assert_eq!(i["exp"].as_i64().unwrap(), issued / 1000 + 7200);
}

#[tokio::test]
async fn token_errors_bad_client_and_invalid_grant_switch() {
    let h = start_default().await;
    let sf = &h.salesforce_url;
    let resp = client()
        .post(format!("{sf}/services/oauth2/token"))
        .form(&[
            ("grant_type", "client_credentials"),
            ("client_id", "sandbox-client-id"),
            ("client_secret", "wrong"),
        ])
        .send_ok()
        .await;
    assert_eq!(resp.status(), 401);
    assert_eq!(
        resp.json::<Value>().await.unwrap(),
        json!({"error":"invalid_client","error_description":"invalid client credentials"})
    );

    let c = control(
        sf,
        json!({"salesforce":{"token_error":{"error":"invalid_grant"}}}),
    )
    .await;
    assert_eq!(c.status(), 200);
    let form = [
        ("grant_type", "refresh_token"),
        ("client_id", "sandbox-client-id"),
        ("refresh_token", "5Aep861-test"),
    ];
    let resp = client()
        .post(format!("{sf}/services/oauth2/token"))
        .form(&form)
        .send_ok()
        .await;
    assert_eq!(resp.status(), 400);
    assert_eq!(
        resp.json::<Value>().await.unwrap(),
        json!({"error":"invalid_grant","error_description":"expired access/refresh token"})
    );
    // count defaulted to 1: the next one succeeds.
    let resp = client()
        .post(format!("{sf}/services/oauth2/token"))
        .form(&form)
        .send_ok()
        .await;
    assert_eq!(resp.status(), 200);
}

/// `GET /query?q=…` (Query resource,
/// https://developer.salesforce.com/docs/platform/api-rest/guide/resources-query.html).
async fn query(sf: &str, tok: &str, q: &str) -> (u16, Option<String>, Value) {
    let mut url = reqwest::Url::parse(&format!("{sf}/services/data/v62.0/query")).unwrap();
    url.query_pairs_mut().append_pair("q", q);
    get(url.to_string(), tok).await
}

const CONTACT_SOQL_FIELDS: &str = "Id, Name, Phone, MobilePhone, Email, DoNotCall, Account.AnnualRevenue, Account_Status__c, Last_Contact_Date__c, Preferred_Language__c";

#[tokio::test]
async fn contact_query_answers_the_record_with_nested_account_or_no_record() {
    let s = sf_session().await;
    let (sf, tok) = (&s.url, s.token.as_str());
    let (status, limit, body) = query(
        sf,
        tok,
        &format!("SELECT {CONTACT_SOQL_FIELDS} FROM Contact WHERE Id = '{ADA}'"),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    // Sforce-Limit-Info: `;`-separated parts
    // (https://developer.salesforce.com/docs/atlas.en-us.api_rest.meta/api_rest/headers_api_usage.htm).
    let limit = limit.unwrap();
    assert!(
        limit.starts_with("api-usage=1/15000; per-app-api-usage="),
        "{limit}"
    );
    assert_eq!(
        sfvapi::salesforce::rest::parse_limit_info(&limit),
        Some((1, 15000))
    );
    assert_eq!(body["totalSize"], 1);
    assert_eq!(body["done"], true);
    let fixture: Value = serde_json::from_str(include_str!(
        "../../../shared/tests/fixtures/salesforce/contact.json"
    ))
    .unwrap();
    assert_eq!(
        body["records"][0], fixture,
        "Ada matches the fixture field for field"
    );

    // Keywords in any case; the 15-character id form matches too.
    let (status, _, dnc) = query(
        sf,
        tok,
        &format!(
            "select Id, DoNotCall from contact where Id = '{}'",
            &DNC[..15]
        ),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(dnc["records"][0]["DoNotCall"], true);

    let (status, _, none) = query(
        sf,
        tok,
        &format!("SELECT {CONTACT_SOQL_FIELDS} FROM Contact WHERE Id = '0035e00000ZzZ99AAB'"),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(none, json!({"totalSize": 0, "done": true, "records": []}));

    let (status, _, case) = query(
        sf,
        tok,
        &format!("SELECT Id, Priority, ContactId FROM Case WHERE Id = '{CASE}'"),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(case["records"][0]["Priority"], "High");
    assert_eq!(case["records"][0]["ContactId"], ADA);
}

#[tokio::test]
async fn bad_queries_and_relationship_fields_in_sobject_reads_are_400() {
    let s = sf_session().await;
    let (sf, tok) = (&s.url, s.token.as_str());
    for q in [
        format!("SELECT Id FROM Contact WHERE Id = {ADA}"),
        format!("SELECT Id FROM Contact WHERE Id = '{ADA}' OR Id != ''"),
        format!("SELECT Id FROM Lead WHERE Id = '{ADA}'"),
        "DELETE FROM Contact".to_owned(),
        format!("SELECT FROM Contact WHERE Id = '{ADA}'"),
    ] {
        let (status, _, body) = query(sf, tok, &q).await;
        assert_eq!(status, 400, "{q}: {body}");
        assert_eq!(body[0]["errorCode"], "MALFORMED_QUERY", "{q}");
    }
    let (status, _, body) = query(
        sf,
        tok,
        &format!("SELECT Id, Nope__c FROM Contact WHERE Id = '{ADA}'"),
    )
    .await;
    assert_eq!(status, 400);
    assert_eq!(body[0]["errorCode"], "INVALID_FIELD");
    assert!(body[0]["message"].as_str().unwrap().contains("Nope__c"));

    // The sObject read's `fields` takes the object's own fields only.
    let (status, _, body) = get(
        format!(
            "{sf}/services/data/v62.0/sobjects/Contact/{ADA}?fields=Name,Account.AnnualRevenue"
        ),
        tok,
    )
    .await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(body[0]["errorCode"], "INVALID_FIELD");
    assert!(body[0]["message"]
        .as_str()
        .unwrap()
        .contains("Account.AnnualRevenue"));

    let (status, _, body) = get(
        format!("{sf}/services/data/v62.0/sobjects/Contact/{ADA}?fields=Nope__c"),
        tok,
    )
    .await;
    assert_eq!(status, 400);
    assert_eq!(body[0]["errorCode"], "INVALID_FIELD");
}

#[tokio::test]
async fn contact_reads_200_and_404_for_unknown() {
    let s = sf_session().await;
    let (sf, tok) = (&s.url, s.token.as_str());
    let (_, _, dnc) = get(
        format!("{sf}/services/data/v62.0/sobjects/Contact/{DNC}"),
        tok,
    )
    .await;
    assert_eq!(dnc["DoNotCall"], true);
    let (_, _, bad) = get(
        format!("{sf}/services/data/v62.0/sobjects/Contact/{BAD_PHONE}"),
        tok,
    )
    .await;
    let phone = bad["Phone"].as_str().unwrap();
    assert!(sfvapi::ids::E164Phone::parse("Phone", phone).is_err());

    let (status, limit, body) = get(
        format!("{sf}/services/data/v62.0/sobjects/Contact/0035e00000ZzZ99AAB"),
        tok,
    )
    .await;
    assert_eq!(status, 404);
    assert!(
        limit.is_some(),
        "every REST answer carries Sforce-Limit-Info"
    );
    assert_eq!(
        body,
        json!([{"errorCode":"NOT_FOUND","message":"The requested resource does not exist"}])
    );

    let (status, _, case) = get(format!("{sf}/services/data/v62.0/sobjects/Case/{CASE}?fields=Subject,Status,Priority,ContactId,CaseNumber"), tok).await;
    assert_eq!(status, 200);
    assert_eq!(case["Priority"], "High");
    assert_eq!(case["ContactId"], ADA);
    assert!(case["CaseNumber"].is_string() && case["Subject"].is_string());
}

#[tokio::test]
async fn task_create_is_unique_by_external_id_and_update_refuses_create_only_fields() {
    let s = sf_session().await;
    let (sf, tok) = (&s.url, s.token.as_str());
    let call = "d00dfeed-1111-4222-8333-444455556666";
    let create = |body: Value| {
        client()
            .post(format!("{sf}/services/data/v62.0/sobjects/Task"))
            .bearer_auth(tok)
            .json(&body)
            .send()
    };
    let upsert_url = format!("{sf}/services/data/v62.0/sobjects/Task/Vapi_Call_Id__c/{call}");
    let patch = |body: Value| {
        client()
            .patch(&upsert_url)
            .bearer_auth(tok)
            .json(&body)
            .send()
    };
    // The sequence sfvapi's REST client sends for a report delivered twice.
    let task = json!({"Subject": "Vapi call", "TaskSubtype": "Call", "Vapi_Call_Id__c": call, "Description": "t1"});
    let first = create(task.clone()).await.unwrap();
    assert_eq!(first.status(), 201);
    let id = first.json::<Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let again = create(task).await.unwrap();
    assert_eq!(again.status(), 400);
    let again: Value = again.json().await.unwrap();
    assert_eq!(again[0]["errorCode"], "DUPLICATE_VALUE");
    assert!(
        again[0]["message"].as_str().unwrap().contains(&id),
        "{again}"
    );

    // TaskSubtype is Create-only: an update that sends it is refused.
    let refused = patch(json!({"TaskSubtype": "Call", "Description": "t2"}))
        .await
        .unwrap();
    assert_eq!(refused.status(), 400);
    let refused: Value = refused.json().await.unwrap();
    assert_eq!(refused[0]["errorCode"], "INVALID_FIELD_FOR_INSERT_UPDATE");
    assert_eq!(refused[0]["fields"], json!(["TaskSubtype"]));

    let updated = patch(json!({"Description": "t2"})).await.unwrap();
    assert_eq!(updated.status(), 200);
    assert_eq!(
        updated.json::<Value>().await.unwrap(),
        json!({"id": id, "success": true, "errors": [], "created": false})
    );
    let (_, _, stored) = get(format!("{sf}/services/data/v62.0/sobjects/Task/{id}"), tok).await;
    assert_eq!(stored["Description"], "t2");
    assert_eq!(stored["TaskSubtype"], "Call", "kept from the create");
    let (_, _, by_key) = get(upsert_url.clone(), tok).await;
    assert_eq!(by_key["Id"], id.as_str());
    let switches = log(sf, Some("salesforce")).await;
    let creates = switches
        .iter()
        .filter(|e| e["method"] == "POST" && e["status"] == 201)
        .count();
    assert_eq!(creates, 1, "one Task");
}

#[tokio::test]
async fn case_comment_body_is_limited_in_bytes() {
    let s = sf_session().await;
    let (sf, tok) = (&s.url, s.token.as_str());
    let post = |body: String| {
        client()
            .post(format!("{sf}/services/data/v62.0/sobjects/CaseComment"))
            .bearer_auth(tok)
            .json(&json!({"ParentId": CASE, "CommentBody": body}))
            .send()
    };
    // 1,500 characters, 4,500 bytes: over CommentBody's 4,000 bytes.
    let over = post("€".repeat(1_500)).await.unwrap();
    assert_eq!(over.status(), 400);
    assert_eq!(
        over.json::<Value>().await.unwrap()[0]["errorCode"],
        "STRING_TOO_LONG"
    );
    let cut = sfvapi::salesforce::rest::truncate_bytes(
        &"€".repeat(1_500),
        sfvapi::salesforce::rest::CASE_COMMENT_MAX_BYTES,
    )
    .to_owned();
    assert_eq!(post(cut).await.unwrap().status(), 201);
}

#[tokio::test]
async fn rest_requires_the_issued_bearer_and_honours_failure_switches() {
    let h = start_default().await;
    let sf = &h.salesforce_url;
    let url = format!("{sf}/services/data/v62.0/sobjects/Contact/{ADA}");
    let session_expired =
        json!([{"message":"Session expired or invalid","errorCode":"INVALID_SESSION_ID"}]);

    let resp = client().get(&url).send_ok().await;
    assert_eq!(resp.status(), 401);
    assert_eq!(resp.json::<Value>().await.unwrap(), session_expired);
    let (status, _, body) = get(url.clone(), "00Dmade!up").await;
    assert_eq!((status, body), (401, session_expired.clone()));

    let t = token(sf).await;
    let tok = t["access_token"].as_str().unwrap();
    assert_eq!(get(url.clone(), tok).await.0, 200);

    control(
        sf,
        json!({"salesforce":{"fail_next":{"status":401,"count":1}}}),
    )
    .await;
    let (status, _, body) = get(url.clone(), tok).await;
    assert_eq!((status, body), (401, session_expired.clone()));
    assert_eq!(
        get(url.clone(), tok).await.0,
        200,
        "only the next call failed"
    );

    control(
        sf,
        json!({"salesforce":{"fail_next":{"status":403,"count":2}}}),
    )
    .await;
    for _ in 0..2 {
        let (status, _, body) = get(url.clone(), tok).await;
        assert_eq!(status, 403);
        assert_eq!(
            body,
            json!([{"message":"TotalRequests Limit exceeded.","errorCode":"REQUEST_LIMIT_EXCEEDED"}])
        );
    }
    control(sf, json!({"salesforce":{"fail_next":{"status":503}}})).await;
    assert_eq!(get(url.clone(), tok).await.0, 503);

    // A revoked session stays dead until a new token is fetched.
    control(sf, json!({"salesforce":{"revoke_tokens":true}})).await;
    assert_eq!(get(url.clone(), tok).await.0, 401);
    assert_eq!(get(url.clone(), tok).await.0, 401);
    let fresh = token(sf).await;
    let (status, limit, _) = get(url.clone(), fresh["access_token"].as_str().unwrap()).await;
    assert_eq!(status, 200);
    assert!(
        limit
            .as_deref()
            .unwrap()
            .starts_with("api-usage=11/15000; "),
        "{limit:?}"
    );

    // A bad switch is refused and changes nothing.
    let c = control(sf, json!({"salesforce":{"fail_next":{"status":418}}})).await;
    assert_eq!(c.status(), 400);
    let c = control(sf, json!({"salesforce":{"typo":true}})).await;
    assert_eq!(c.status(), 400);
}

#[tokio::test]
async fn task_upsert_creates_once_then_updates_and_case_comment_is_created() {
    let s = sf_session().await;
    let (sf, tok) = (&s.url, s.token.as_str());
    let url = format!("{sf}/services/data/v62.0/sobjects/Task/Vapi_Call_Id__c/c0ffee00-1111-4222-8333-444455556666");
    let patch = |body: Value| client().patch(&url).bearer_auth(tok).json(&body).send();
    let first = patch(json!({"Subject":"Call","WhoId":ADA,"Description":"t1"}))
        .await
        .unwrap();
    assert_eq!(first.status(), 201);
    let first: Value = first.json().await.unwrap();
    assert_eq!(first["success"], true);
    assert_eq!(first["created"], true);
    assert_eq!(first["errors"], json!([]));
    let id = first["id"].as_str().unwrap().to_owned();
    assert!(id.starts_with("00T") && sfvapi::ids::SalesforceId::parse("id", &id).is_ok());

    let second = patch(json!({"Description":"t2"})).await.unwrap();
    assert_eq!(second.status(), 200);
    assert_eq!(
        second.json::<Value>().await.unwrap(),
        json!({"id": id, "success": true, "errors": [], "created": false})
    );
    let (status, _, task) = get(format!("{sf}/services/data/v62.0/sobjects/Task/{id}"), tok).await;
    assert_eq!(status, 200);
    assert_eq!(task["Description"], "t2");
    assert_eq!(task["Subject"], "Call");

    let too_long = patch(json!({"Description": "x".repeat(32_001)}))
        .await
        .unwrap();
    assert_eq!(too_long.status(), 400);
    assert_eq!(
        too_long.json::<Value>().await.unwrap()[0]["errorCode"],
        "STRING_TOO_LONG"
    );

    let wrong_field = client()
        .patch(format!("{sf}/services/data/v62.0/sobjects/Task/Other__c/x"))
        .bearer_auth(tok)
        .json(&json!({}))
        .send_ok()
        .await;
    assert_eq!(wrong_field.status(), 404);

    let cc = client()
        .post(format!("{sf}/services/data/v62.0/sobjects/CaseComment"))
        .bearer_auth(tok)
        .json(&json!({"ParentId": CASE, "CommentBody": "Called the customer"}))
        .send_ok()
        .await;
    assert_eq!(cc.status(), 201);
    let cc: Value = cc.json().await.unwrap();
    assert_eq!(cc["success"], true);

    let log = log(sf, Some("salesforce")).await;
    let patches: Vec<_> = log.iter().filter(|e| e["method"] == "PATCH").collect();
    assert_eq!(patches.len(), 4);
    assert_eq!(patches[0]["status"], 201);
    assert_eq!(patches[1]["status"], 200);
    assert_eq!(patches[0]["headers"]["authorization"], "Bearer [redacted]");
    assert!(
        !serde_json::to_string(&log).unwrap().contains(tok),
        "the token never reaches the log"
    );
}

#[tokio::test]
async fn jwt_bearer_checks_the_audience() {
    use base64::Engine as _;
    let h = start_default().await;
    let sf = &h.salesforce_url;
    let assertion = |aud: &str| {
        let b64 = |v: Value| {
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string().as_bytes())
        };
        let claims = json!({"iss": "sandbox-client-id", "sub": "integration@sandbox.example.com", "aud": aud, "exp": sfvapi::now_secs() + 120});
        format!("{}.{}.c2ln", b64(json!({"alg": "RS256"})), b64(claims))
    };
    let grant = |a: String| {
        client()
            .post(format!("{sf}/services/oauth2/token"))
            .form(&[
                (
                    "grant_type",
                    "urn:ietf:params:oauth:grant-type:jwt-bearer".to_owned(),
                ),
                ("assertion", a),
            ])
            .send()
    };
    assert_eq!(
        grant(assertion("https://login.salesforce.com"))
            .await
            .unwrap()
            .status(),
        200
    );
    // The token endpoint (here the sandbox itself, standing in for a My Domain URL) is not an
    // audience Salesforce accepts.
    let wrong = grant(assertion(sf)).await.unwrap();
    assert_eq!(wrong.status(), 400);
    assert_eq!(
        wrong.json::<Value>().await.unwrap(),
        json!({"error": "invalid_grant", "error_description": "audience is invalid"})
    );
}

async fn patch(url: String, token: &str, body: &str) -> (u16, String) {
    let resp = client()
        .patch(url)
        .bearer_auth(token)
        .header("content-type", "application/json")
        .body(body.to_owned())
        .send_ok()
        .await;
    (resp.status().as_u16(), resp.text().await.unwrap())
}

/// "Update a Record" (PATCH → 204, no body) and its refusals, as the write-back meets them.
#[tokio::test]
async fn record_updates_answer_204_or_refuse_the_whole_update_naming_what_is_wrong() {
    let h = start_default().await;
    let tok = token(&h.salesforce_url).await["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let case_url = format!(
        "{}/services/data/v62.0/sobjects/Case/{CASE}",
        h.salesforce_url
    );
    let (status, body) = patch(
        case_url.clone(),
        &tok,
        r#"{"Call_Outcome__c":"resolved","Callback_Requested__c":true}"#,
    )
    .await;
    assert_eq!((status, body.as_str()), (204, ""));
    let (_, _, case) = get(case_url.clone(), &tok).await;
    assert_eq!(case["Call_Outcome__c"], "resolved");
    assert_eq!(case["Callback_Requested__c"], true);
    // A field the object does not have refuses the whole update; nothing changes.
    let (status, body) = patch(
        case_url.clone(),
        &tok,
        r#"{"Call_Outcome__c":"other","No_Such__c":"x"}"#,
    )
    .await;
    assert_eq!(status, 400);
    let err: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(err[0]["errorCode"], "INVALID_FIELD");
    assert!(err[0]["message"]
        .as_str()
        .unwrap()
        .contains("No such column 'No_Such__c' on sobject of type Case"));
    let (_, _, case) = get(case_url.clone(), &tok).await;
    assert_eq!(case["Call_Outcome__c"], "resolved", "all or nothing");
    // A field Salesforce computes is refused, named.
    let (status, body) = patch(case_url.clone(), &tok, r#"{"CaseNumber":"1"}"#).await;
    assert_eq!(status, 400);
    let err: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(err[0]["errorCode"], "INVALID_FIELD_FOR_INSERT_UPDATE");
    assert_eq!(err[0]["fields"], json!(["CaseNumber"]));
    let (status, _) = patch(case_url, &tok, "[1]").await;
    assert_eq!(status, 400);
    // Contacts the same way; an unknown record is 404, another object's id 400 MALFORMED_ID.
    let contact = format!(
        "{}/services/data/v62.0/sobjects/Contact/{ADA}",
        h.salesforce_url
    );
    assert_eq!(
        patch(contact, &tok, r#"{"Last_Call_Outcome__c":"true"}"#)
            .await
            .0,
        204
    );
    let gone = format!(
        "{}/services/data/v62.0/sobjects/Contact/0035e00000ZzZzZAAA",
        h.salesforce_url
    );
    assert_eq!(patch(gone, &tok, "{}").await.0, 404);
    let wrong = format!(
        "{}/services/data/v62.0/sobjects/Contact/{CASE}",
        h.salesforce_url
    );
    assert_eq!(patch(wrong, &tok, "{}").await.0, 400);
}

#[tokio::test]
async fn files_are_content_versions_linked_once_per_record_and_users_have_phones() {
    use base64::Engine;
    let s = sf_session().await;
    let (sf, tok) = (&s.url, s.token.as_str());
    let post = |object: &str, body: Value| {
        client()
            .post(format!("{sf}/services/data/v62.0/sobjects/{object}"))
            .bearer_auth(tok)
            .json(&body)
            .send()
    };
    let text = "AI: Hello Ada.\nUser: I want the whole record.\n".repeat(1_000);
    let data = base64::engine::general_purpose::STANDARD.encode(&text);

    // Required fields and a blob that is not base64 are refused as Salesforce does.
    let r = post("ContentVersion", json!({"Title": "T", "VersionData": data}))
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let e: Value = r.json().await.unwrap();
    assert_eq!(e[0]["errorCode"], "REQUIRED_FIELD_MISSING");
    assert_eq!(e[0]["fields"], json!(["PathOnClient"]));
    let r = post(
        "ContentVersion",
        json!({"Title": "T", "PathOnClient": "t.txt", "VersionData": "%%%"}),
    )
    .await
    .unwrap();
    assert_eq!(r.status(), 400);

    let r = post("ContentVersion", json!({"Title": "Transcript c-1", "PathOnClient": "transcript-c-1.txt", "VersionData": data}))
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let version = r.json::<Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(version.starts_with("068"), "{version}");
    let (status, _, v) = get(
        format!("{sf}/services/data/v62.0/sobjects/ContentVersion/{version}?fields=Id,ContentDocumentId"),
        tok,
    )
    .await;
    assert_eq!(status, 200);
    let document = v["ContentDocumentId"].as_str().unwrap().to_owned();
    assert!(document.starts_with("069"), "{document}");

    let link = |entity: &str, share: &str| {
        post(
            "ContentDocumentLink",
            json!({"ContentDocumentId": document, "LinkedEntityId": entity, "ShareType": share}),
        )
    };
    assert_eq!(link(CASE, "V").await.unwrap().status(), 201);
    let again = link(CASE, "V").await.unwrap();
    assert_eq!(again.status(), 400);
    assert_eq!(
        again.json::<Value>().await.unwrap()[0]["errorCode"],
        "DUPLICATE_VALUE"
    );
    let bad = link(ADA, "X").await.unwrap();
    assert_eq!(
        bad.json::<Value>().await.unwrap()[0]["errorCode"],
        "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST"
    );
    let unknown = post(
        "ContentDocumentLink",
        json!({"ContentDocumentId": "0695e00000ZzZzZAAA", "LinkedEntityId": CASE, "ShareType": "V"}),
    )
    .await
    .unwrap();
    assert_eq!(
        unknown.json::<Value>().await.unwrap()[0]["errorCode"],
        "INVALID_CROSS_REFERENCE_KEY"
    );

    // The control API shows the whole text and its one link.
    let files: Value = client()
        .get(format!("{sf}/_sandbox/salesforce/files"))
        .send_json()
        .await;
    assert_eq!(files["files"][0]["text"], text);
    assert_eq!(files["files"][0]["links"].as_array().unwrap().len(), 1);

    // Ada's Case is owned by a User with a phone; the DoNotCall Case by a queue.
    let (_, _, case) = get(
        format!("{sf}/services/data/v62.0/sobjects/Case/{CASE}?fields=OwnerId"),
        tok,
    )
    .await;
    let owner = case["OwnerId"].as_str().unwrap().to_owned();
    let (status, _, user) = get(
        format!("{sf}/services/data/v62.0/sobjects/User/{owner}?fields=Id,Phone,MobilePhone"),
        tok,
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(user["Phone"], "+1 (415) 555-0100");
    let (_, _, queued) = get(
        format!("{sf}/services/data/v62.0/sobjects/Case/5005e00000DnCa1AAF?fields=OwnerId"),
        tok,
    )
    .await;
    assert!(queued["OwnerId"].as_str().unwrap().starts_with("00G"));
}
