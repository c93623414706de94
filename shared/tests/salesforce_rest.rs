//! The REST client against a wiremock Salesforce: typed Contact/Case, Task upsert by external id,
//! CaseComment, and the typed errors the job worker maps to RETRY / FAILED.

use std::time::Duration;

use sfvapi::ids::SalesforceId;
use sfvapi::salesforce::rest::{RestError, TaskFields, UpsertOutcome};
use sfvapi::salesforce::Connection;
use sfvapi_test_support::*;
use wiremock::matchers::{body_partial_json, method, path, query_param};
use wiremock::{Mock, MockServer, ResponseTemplate};

const CONTACT_ID: &str = "0035e00000XyZ12AAF";
const CASE_ID: &str = "5005e00000AbCdEAAV";
const DATA: &str = "/services/data/v62.0";

fn id(s: &str) -> SalesforceId {
    SalesforceId::parse("id", s).unwrap()
}

/// A connection whose token item is already valid, so these tests only see REST traffic.
async fn setup(extra: &[(&str, &str)]) -> (MockServer, Connection) {
    let (store, _) = fresh_store().await;
    let server = MockServer::start().await;
    let arn = create_secret(&sf_secret_json()).await;
    seed_live_token(&store, "live-token", &server.uri(), 1).await;
    let conn = Connection::new(
        sf_config(&server.uri(), &arn, extra),
        store,
        secrets_cache().await,
    )
    .unwrap();
    (server, conn)
}

fn contact_record() -> serde_json::Value {
    serde_json::from_slice(&fixture("salesforce/contact.json")).unwrap()
}

#[tokio::test]
async fn contact_and_account_come_from_one_soql_query_and_usage_is_recorded() {
    sfvapi::telemetry::capture_metrics();
    let (server, conn) = setup(&[]).await;
    // Relationship fields are SOQL's (Query resource,
    // https://developer.salesforce.com/docs/platform/api-rest/guide/resources-query.html); the
    // sObject `fields` parameter does not take them.
    Mock::given(method("GET"))
        .and(path(SF_QUERY_PATH))
        .and(query_param(
            "q",
            format!("SELECT Id, Name, Phone, MobilePhone, Email, DoNotCall, Account.AnnualRevenue, Account_Status__c, Last_Contact_Date__c, Preferred_Language__c FROM Contact WHERE Id = '{CONTACT_ID}'"),
        ))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(sf_query_answer(vec![contact_record()]))
                // Salesforce's documented shape: `;`-separated, per-app part last
                // (https://developer.salesforce.com/docs/atlas.en-us.api_rest.meta/api_rest/headers_api_usage.htm).
                .insert_header(
                    "Sforce-Limit-Info",
                    "api-usage=42/15000; per-app-api-usage=17/250(appName=sfvapi)",
                ),
        )
        .expect(1)
        .mount(&server)
        .await;
    let c = conn.rest.get_contact(&id(CONTACT_ID)).await.unwrap();
    assert_eq!(c.name, "Ada Lovelace");
    assert_eq!(c.phone.as_ref().unwrap().expose(), "+14155550123");
    assert_eq!(c.mobile, None);
    assert!(c.phone_problems.is_empty());
    assert_eq!(c.email.as_deref(), Some("ada@example.com"));
    assert!(!c.do_not_call);
    assert_eq!(c.annual_revenue, Some(250_000.0));
    assert_eq!(c.custom["Account_Status__c"], "Past Due");
    assert_eq!(c.custom["Preferred_Language__c"], "en");
    assert_eq!(c.custom.len(), 3);
    let all = server.received_requests().await.unwrap();
    assert_eq!(all.len(), 1, "one API call for Contact + Account");
    assert_eq!(
        all[0].headers.get("authorization").unwrap(),
        "Bearer live-token"
    );
    assert!(sfvapi::telemetry::captured_metrics().contains(&"sf_api_usage".to_owned()));
}

#[tokio::test]
async fn a_contact_without_an_account_has_no_revenue() {
    let (server, conn) = setup(&[("SF_CONTACT_CUSTOM_FIELDS", "Account.Industry")]).await;
    let mut record = contact_record();
    // A Contact without an Account: the relationship comes back as null.
    record["Account"] = serde_json::Value::Null;
    contact_query_mock(CONTACT_ID, Some(record))
        .mount(&server)
        .await;
    let c = conn.rest.get_contact(&id(CONTACT_ID)).await.unwrap();
    assert_eq!(c.annual_revenue, None);
    assert_eq!(c.custom["Account.Industry"], serde_json::Value::Null);
    assert_eq!(c.name, "Ada Lovelace");
}

#[tokio::test]
async fn an_invalid_phone_becomes_none_with_a_reason() {
    let (server, conn) = setup(&[("SF_CONTACT_CUSTOM_FIELDS", "Tier__c")]).await;
    let mut body = contact_record();
    body["Phone"] = "(415) 555-0123".into();
    body["MobilePhone"] = "+44 7700 900123".into();
    body["DoNotCall"] = true.into();
    contact_query_mock(CONTACT_ID, Some(body))
        .mount(&server)
        .await;
    let c = conn.rest.get_contact(&id(CONTACT_ID)).await.unwrap();
    assert_eq!(c.phone, None);
    assert!(
        c.phone_problems["Phone"].contains("E.164"),
        "{:?}",
        c.phone_problems
    );
    assert!(
        !format!("{:?}", c.phone_problems).contains("555-0123"),
        "no raw number kept"
    );
    assert_eq!(c.best_phone().unwrap().expose(), "+447700900123");
    assert!(c.do_not_call);
    assert_eq!(
        c.custom["Tier__c"],
        serde_json::Value::Null,
        "absent field is null"
    );
    let q = soql_received(&server).await;
    assert!(
        q[0].contains("Account.AnnualRevenue, Tier__c FROM Contact"),
        "{q:?}"
    );
}

#[tokio::test]
async fn missing_contact_is_terminal_and_limits_and_5xx_are_retryable() {
    let (server, conn) = setup(&[]).await;
    // No record: the query answers 200 with `totalSize: 0`, not a 404.
    contact_query_mock(CONTACT_ID, None)
        .up_to_n_times(1)
        .mount(&server)
        .await;
    let err = conn.rest.get_contact(&id(CONTACT_ID)).await.unwrap_err();
    assert!(
        matches!(
            err,
            RestError::NotFound {
                object: "Contact",
                ..
            }
        ),
        "{err:?}"
    );
    assert!(err.is_terminal());
    assert!(err.to_string().contains("not found"), "{err}");

    server.reset().await;
    Mock::given(method("GET"))
        .and(ContactQuery(CONTACT_ID.into()))
        .respond_with(fixture_answer(
            403,
            "salesforce/request-limit-exceeded.json",
        ))
        .up_to_n_times(1)
        .mount(&server)
        .await;
    let err = conn.rest.get_contact(&id(CONTACT_ID)).await.unwrap_err();
    assert!(matches!(err, RestError::RequestLimit), "{err:?}");
    assert!(err.is_retryable());

    server.reset().await;
    Mock::given(method("GET"))
        .and(ContactQuery(CONTACT_ID.into()))
        .respond_with(ResponseTemplate::new(503))
        .up_to_n_times(1)
        .mount(&server)
        .await;
    let err = conn.rest.get_contact(&id(CONTACT_ID)).await.unwrap_err();
    assert!(
        matches!(err, RestError::Upstream { status: 503 }),
        "{err:?}"
    );
    assert!(err.is_retryable());

    server.reset().await;
    Mock::given(method("GET"))
        .and(ContactQuery(CONTACT_ID.into()))
        .respond_with(ResponseTemplate::new(403).set_body_json(serde_json::json!([
            {"errorCode": "INSUFFICIENT_ACCESS", "message": "no access"}
        ])))
        .mount(&server)
        .await;
    let err = conn.rest.get_contact(&id(CONTACT_ID)).await.unwrap_err();
    assert!(
        matches!(err, RestError::Rejected { status: 403, .. }),
        "{err:?}"
    );
    assert!(err.is_terminal());
}

#[tokio::test]
async fn a_timeout_is_retryable() {
    let (server, conn) = setup(&[("SF_HTTP_TIMEOUT_SECS", "1")]).await;
    Mock::given(method("GET"))
        .and(ContactQuery(CONTACT_ID.into()))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(sf_query_answer(vec![contact_record()]))
                .set_delay(Duration::from_secs(3)),
        )
        .mount(&server)
        .await;
    let err = conn.rest.get_contact(&id(CONTACT_ID)).await.unwrap_err();
    assert!(matches!(err, RestError::Timeout), "{err:?}");
    assert!(err.is_retryable());
}

#[tokio::test]
async fn case_is_typed() {
    let (server, conn) = setup(&[]).await;
    Mock::given(method("GET"))
        .and(path(format!("{DATA}/sobjects/Case/{CASE_ID}")))
        .and(query_param(
            "fields",
            "Id,Subject,Status,Priority,ContactId,CaseNumber,Description,OwnerId",
        ))
        .respond_with(ResponseTemplate::new(200).set_body_json(serde_json::json!({
            "attributes": {"type": "Case"}, "Id": CASE_ID, "Subject": "Payment failed",
            "Status": "Escalated", "Priority": "High", "ContactId": CONTACT_ID,
            "CaseNumber": "00001026", "Description": null
        })))
        .mount(&server)
        .await;
    let c = conn.rest.get_case(&id(CASE_ID)).await.unwrap();
    assert_eq!(c.subject.as_deref(), Some("Payment failed"));
    assert_eq!(c.priority, Some(sfvapi::ids::Priority::High));
    assert_eq!(c.contact_id, Some(id(CONTACT_ID)));
    assert_eq!(c.case_number.as_deref(), Some("00001026"));
    assert_eq!(c.description, None);
}

/// Salesforce's answer to a create that repeats a Unique field's value.
fn duplicate_value(field: &str) -> ResponseTemplate {
    ResponseTemplate::new(400).set_body_json(serde_json::json!([{
        "message": format!("duplicate value found: {field} duplicates value on record with id: 00T5e00000AbCdEAAV"),
        "errorCode": "DUPLICATE_VALUE",
        "fields": [field],
    }]))
}

#[tokio::test]
async fn task_is_created_then_updated_without_create_only_fields() {
    let (server, conn) = setup(&[]).await;
    let call_id = "0b6f1e2a-3c4d-4e5f-8a9b-0c1d2e3f4a5b";
    let create_path = format!("{DATA}/sobjects/Task");
    let upsert_path = format!("{DATA}/sobjects/Task/Vapi_Call_Id__c/{call_id}");
    mount_times(
        &server,
        "POST",
        &create_path.clone(),
        json_answer(
            201,
            serde_json::json!({ "id": "00T5e00000AbCdEAAV", "success": true, "errors": [] }),
        ),
        1,
    )
    .await;
    // The external id field is Unique, so the second create is refused with DUPLICATE_VALUE.
    mount(
        &server,
        "POST",
        &create_path.clone(),
        duplicate_value("Vapi_Call_Id__c"),
    )
    .await;
    // Upsert by external id (https://developer.salesforce.com/docs/platform/api-rest/guide/dome-upsert.html):
    // an update answers 200 `created: false`.
    mount(&server, "PATCH", &upsert_path.clone(), json_answer(200, serde_json::json!({ "id": "00T5e00000AbCdEAAV", "success": true, "errors": [], "created": false }))).await;
    let transcript = "AI: Hello. ".repeat(5_000); // 55,000 chars
    let mut extra = serde_json::Map::new();
    extra.insert("TaskSubtype".into(), "Call".into());
    extra.insert("CallDurationInSeconds".into(), 42.into());
    let task = TaskFields {
        subject: "Call: customer-ended-call".into(),
        description: transcript,
        status: "Completed".into(),
        who_id: Some(id(CONTACT_ID)),
        what_id: Some(id(CASE_ID)),
        extra,
    };
    let first = conn.rest.upsert_task(call_id, &task).await.unwrap();
    assert_eq!(
        first,
        UpsertOutcome::Created {
            id: "00T5e00000AbCdEAAV".into()
        }
    );
    let second = conn.rest.upsert_task(call_id, &task).await.unwrap();
    assert_eq!(
        second,
        UpsertOutcome::Updated {
            id: Some("00T5e00000AbCdEAAV".into())
        }
    );

    // The sequence: POST (created), POST (duplicate), PATCH (updated).
    let seq: Vec<(String, String)> = server
        .received_requests()
        .await
        .unwrap()
        .iter()
        .map(|r| (r.method.to_string(), r.url.path().to_owned()))
        .collect();
    assert_eq!(
        seq,
        vec![
            ("POST".into(), create_path.clone()),
            ("POST".into(), create_path.clone()),
            ("PATCH".into(), upsert_path.clone()),
        ]
    );
    for r in received_on(&server, &create_path).await {
        let body: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
        assert_eq!(
            body["TaskSubtype"], "Call",
            "create-only field sent on create"
        );
        assert_eq!(
            body["Vapi_Call_Id__c"], call_id,
            "the create carries the key"
        );
        assert_eq!(
            body["Description"].as_str().unwrap().chars().count(),
            32_000
        );
    }
    let update: serde_json::Value =
        serde_json::from_slice(&received_on(&server, &upsert_path).await[0].body).unwrap();
    assert!(
        update.get("TaskSubtype").is_none(),
        "TaskSubtype is not updateable: {update}"
    );
    assert!(
        update.get("Vapi_Call_Id__c").is_none(),
        "the key is in the URL, not the body"
    );
    assert_eq!(update["CallDurationInSeconds"], 42);
    assert_eq!(update["WhoId"], CONTACT_ID);
    assert_eq!(update["WhatId"], CASE_ID);
    assert_eq!(
        update["Description"].as_str().unwrap().chars().count(),
        32_000
    );
}

#[tokio::test]
async fn task_update_accepts_204_and_reports_300_as_multiple_matches() {
    let (server, conn) = setup(&[("SF_TASK_EXTERNAL_ID_FIELD", "Call_Key__c")]).await;
    Mock::given(method("POST"))
        .and(path(format!("{DATA}/sobjects/Task")))
        .and(body_partial_json(
            serde_json::json!({"Call_Key__c": "old-api"}),
        ))
        .respond_with(duplicate_value("Call_Key__c"))
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path(format!("{DATA}/sobjects/Task")))
        .and(body_partial_json(serde_json::json!({"Call_Key__c": "dup"})))
        .respond_with(duplicate_value("Call_Key__c"))
        .mount(&server)
        .await;
    mount(
        &server,
        "PATCH",
        &format!("{DATA}/sobjects/Task/Call_Key__c/old-api"),
        ResponseTemplate::new(204),
    )
    .await;
    mount(
        &server,
        "PATCH",
        &format!("{DATA}/sobjects/Task/Call_Key__c/dup"),
        json_answer(
            300,
            serde_json::json!([
                "/services/data/v62.0/sobjects/Task/00T5e00000AAAAAAA1",
                "/services/data/v62.0/sobjects/Task/00T5e00000AAAAAAA2"
            ]),
        ),
    )
    .await;
    let t = TaskFields {
        subject: "s".into(),
        status: "Completed".into(),
        ..Default::default()
    };
    assert_eq!(
        conn.rest.upsert_task("old-api", &t).await.unwrap(),
        UpsertOutcome::Updated { id: None }
    );
    let err = conn.rest.upsert_task("dup", &t).await.unwrap_err();
    assert!(matches!(err, RestError::MultipleMatches { .. }), "{err:?}");
    assert!(err.is_terminal());
}

#[tokio::test]
async fn a_locked_row_is_retryable_and_other_create_errors_are_not_updates() {
    let (server, conn) = setup(&[]).await;
    mount_times(&server, "POST", &format!("{DATA}/sobjects/Task"), json_answer(400, serde_json::json!([{ "message": "unable to obtain exclusive access to this record or 1 records: 0035e00000XyZ12AAF", "errorCode": "UNABLE_TO_LOCK_ROW", "fields": [] }])), 1).await;
    mount(&server, "POST", &format!("{DATA}/sobjects/Task"), json_answer(400, serde_json::json!([{ "message": "Status: bad value for restricted picklist field: Done", "errorCode": "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST", "fields": ["Status"] }]))).await;
    let t = TaskFields {
        subject: "s".into(),
        status: "Done".into(),
        ..Default::default()
    };
    let err = conn.rest.upsert_task("c-1", &t).await.unwrap_err();
    assert!(matches!(err, RestError::RowLocked { .. }), "{err:?}");
    assert!(err.is_retryable());
    let err = conn.rest.upsert_task("c-1", &t).await.unwrap_err();
    assert!(
        matches!(&err, RestError::Rejected { status: 400, code, .. } if code == "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST"),
        "{err:?}"
    );
    assert!(err.is_terminal());
    assert!(
        received_on(
            &server,
            &format!("{DATA}/sobjects/Task/Vapi_Call_Id__c/c-1")
        )
        .await
        .is_empty(),
        "only DUPLICATE_VALUE leads to the update"
    );
}

#[tokio::test]
async fn case_comment_is_created_on_the_case() {
    let (server, conn) = setup(&[]).await;
    mount_sf_create(&server, "CaseComment", "00a5e00000AbCdEAAV").await;
    let id_ = conn
        .rest
        .add_case_comment(&id(CASE_ID), "Customer will pay on Friday.")
        .await
        .unwrap();
    assert_eq!(id_, "00a5e00000AbCdEAAV");
    let body: serde_json::Value = serde_json::from_slice(
        &received_on(&server, &format!("{DATA}/sobjects/CaseComment")).await[0].body,
    )
    .unwrap();
    assert_eq!(body["ParentId"], CASE_ID);
    assert_eq!(body["CommentBody"], "Customer will pay on Friday.");
}

#[tokio::test]
async fn case_comment_is_cut_at_4000_bytes_not_characters() {
    let (server, conn) = setup(&[]).await;
    mount_sf_create(&server, "CaseComment", "00a5e00000AbCdEAAV").await;
    // 3,000 characters but 9,000 bytes: CommentBody holds 4,000 bytes
    // (https://help.salesforce.com/s/articleView?id=000382141&type=1).
    let note = "€".repeat(3_000);
    conn.rest
        .add_case_comment(&id(CASE_ID), &note)
        .await
        .unwrap();
    let body: serde_json::Value = serde_json::from_slice(
        &received_on(&server, &format!("{DATA}/sobjects/CaseComment")).await[0].body,
    )
    .unwrap();
    let sent = body["CommentBody"].as_str().unwrap();
    assert_eq!(
        sent.len(),
        3_999,
        "whole characters only, at most 4,000 bytes"
    );
    assert!(note.starts_with(sent));
}
