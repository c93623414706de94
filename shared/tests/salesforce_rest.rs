//! The REST client against a wiremock Salesforce: typed Contact/Case, Task upsert by external id,
//! CaseComment, and the typed errors the job worker maps to RETRY / FAILED.

mod support;

use std::time::Duration;

use sfvapi::ids::SalesforceId;
use sfvapi::salesforce::rest::{RestError, TaskFields, UpsertOutcome};
use sfvapi::salesforce::Connection;
use support::*;
use wiremock::matchers::{method, path, query_param};
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
    seed_sf_token(
        &store,
        "default",
        "live-token",
        &server.uri(),
        sfvapi::now_millis() + 3_600_000,
        1,
    )
    .await;
    let conn = Connection::new(
        sf_config(&server.uri(), &arn, extra),
        store,
        secrets_cache().await,
    )
    .unwrap();
    (server, conn)
}

#[tokio::test]
async fn contact_is_typed_with_custom_fields_and_usage_is_recorded() {
    sfvapi::telemetry::capture_metrics();
    let (server, conn) = setup(&[]).await;
    Mock::given(method("GET"))
        .and(path(format!("{DATA}/sobjects/Contact/{CONTACT_ID}")))
        .and(query_param(
            "fields",
            "Id,Name,Phone,MobilePhone,Email,DoNotCall,Account.AnnualRevenue,Account_Status__c,Last_Contact_Date__c,Preferred_Language__c",
        ))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_raw(fixture("salesforce/contact.json"), "application/json")
                .insert_header("Sforce-Limit-Info", "api-usage=42/15000"),
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
    let auth = &received_on(&server, &format!("{DATA}/sobjects/Contact/{CONTACT_ID}")).await[0];
    assert_eq!(
        auth.headers.get("authorization").unwrap(),
        "Bearer live-token"
    );
    assert!(sfvapi::telemetry::captured_metrics().contains(&"sf_api_usage".to_owned()));
}

#[tokio::test]
async fn an_invalid_phone_becomes_none_with_a_reason() {
    let (server, conn) = setup(&[("SF_CONTACT_CUSTOM_FIELDS", "Tier__c")]).await;
    let mut body: serde_json::Value =
        serde_json::from_slice(&fixture("salesforce/contact.json")).unwrap();
    body["Phone"] = "(415) 555-0123".into();
    body["MobilePhone"] = "+44 7700 900123".into();
    body["DoNotCall"] = true.into();
    Mock::given(method("GET"))
        .and(path(format!("{DATA}/sobjects/Contact/{CONTACT_ID}")))
        .respond_with(ResponseTemplate::new(200).set_body_json(body))
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
}

#[tokio::test]
async fn missing_contact_is_terminal_and_limits_and_5xx_are_retryable() {
    let (server, conn) = setup(&[]).await;
    let p = format!("{DATA}/sobjects/Contact/{CONTACT_ID}");
    Mock::given(method("GET"))
        .and(path(p.clone()))
        .respond_with(ResponseTemplate::new(404).set_body_json(serde_json::json!([
            {"errorCode": "NOT_FOUND", "message": "The requested resource does not exist"}
        ])))
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

    server.reset().await;
    Mock::given(method("GET"))
        .and(path(p.clone()))
        .respond_with(ResponseTemplate::new(403).set_body_raw(
            fixture("salesforce/request-limit-exceeded.json"),
            "application/json",
        ))
        .up_to_n_times(1)
        .mount(&server)
        .await;
    let err = conn.rest.get_contact(&id(CONTACT_ID)).await.unwrap_err();
    assert!(matches!(err, RestError::RequestLimit), "{err:?}");
    assert!(err.is_retryable());

    server.reset().await;
    Mock::given(method("GET"))
        .and(path(p.clone()))
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
        .and(path(p.clone()))
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
        .and(path(format!("{DATA}/sobjects/Contact/{CONTACT_ID}")))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_raw(fixture("salesforce/contact.json"), "application/json")
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
            "Id,Subject,Status,Priority,ContactId,CaseNumber,Description",
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

#[tokio::test]
async fn task_upsert_twice_targets_the_same_record_and_truncates_the_description() {
    let (server, conn) = setup(&[]).await;
    let call_id = "0b6f1e2a-3c4d-4e5f-8a9b-0c1d2e3f4a5b";
    let task_path = format!("{DATA}/sobjects/Task/Vapi_Call_Id__c/{call_id}");
    Mock::given(method("PATCH"))
        .and(path(task_path.clone()))
        .respond_with(ResponseTemplate::new(201).set_body_json(serde_json::json!({
            "id": "00T5e00000AbCdEAAV", "success": true, "errors": [], "created": true
        })))
        .up_to_n_times(1)
        .mount(&server)
        .await;
    Mock::given(method("PATCH"))
        .and(path(task_path.clone()))
        .respond_with(ResponseTemplate::new(200).set_body_json(serde_json::json!({
            "id": "00T5e00000AbCdEAAV", "success": true, "errors": [], "created": false
        })))
        .mount(&server)
        .await;
    let transcript = "AI: Hello. ".repeat(5_000); // 55,000 chars
    let task = TaskFields {
        subject: "Call: customer-ended-call".into(),
        description: transcript,
        status: "Completed".into(),
        who_id: Some(id(CONTACT_ID)),
        what_id: Some(id(CASE_ID)),
        ..Default::default()
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

    let reqs = received_on(&server, &task_path).await;
    assert_eq!(
        reqs.len(),
        2,
        "both PATCHes went to the same external-id URL"
    );
    for r in &reqs {
        let body: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
        assert_eq!(
            body["Description"].as_str().unwrap().chars().count(),
            32_000
        );
        assert_eq!(body["WhoId"], CONTACT_ID);
        assert_eq!(body["WhatId"], CASE_ID);
        assert!(
            body.get("Vapi_Call_Id__c").is_none(),
            "the key is in the URL, not the body"
        );
    }
}

#[tokio::test]
async fn task_upsert_accepts_204_and_reports_300_as_multiple_matches() {
    let (server, conn) = setup(&[("SF_TASK_EXTERNAL_ID_FIELD", "Call_Key__c")]).await;
    Mock::given(method("PATCH"))
        .and(path(format!("{DATA}/sobjects/Task/Call_Key__c/old-api")))
        .respond_with(ResponseTemplate::new(204))
        .mount(&server)
        .await;
    Mock::given(method("PATCH"))
        .and(path(format!("{DATA}/sobjects/Task/Call_Key__c/dup")))
        .respond_with(ResponseTemplate::new(300).set_body_json(serde_json::json!([
            "/services/data/v62.0/sobjects/Task/00T5e00000AAAAAAA1",
            "/services/data/v62.0/sobjects/Task/00T5e00000AAAAAAA2"
        ])))
        .mount(&server)
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
async fn case_comment_is_created_on_the_case() {
    let (server, conn) = setup(&[]).await;
    Mock::given(method("POST"))
        .and(path(format!("{DATA}/sobjects/CaseComment")))
        .respond_with(ResponseTemplate::new(201).set_body_json(serde_json::json!({
            "id": "00a5e00000AbCdEAAV", "success": true, "errors": []
        })))
        .mount(&server)
        .await;
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
