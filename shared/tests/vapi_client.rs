//! Vapi's `POST /call` client against a loopback server answering like Vapi.

use std::time::Duration;

use serde_json::{json, Map, Value};
use sfvapi::ids::{E164Phone, SalesforceEventId, SalesforceId};
use sfvapi::secrets::SecretString;
use sfvapi::vapi::client::{CreateCall, CreatedCall, VapiClient, VapiError};
use sfvapi::vapi::messages::CallStatus;
use sfvapi_test_support::*;
use wiremock::matchers::{body_json, header, method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

const KEY: &str = "vapi-private-key-for-tests";

fn call() -> CreateCall {
    let mut vars = Map::new();
    vars.insert("customerName".into(), json!("Ada Lovelace"));
    vars.insert("caseId".into(), json!("5005e00000AbCdEAAV"));
    vars.insert("priority".into(), json!("High"));
    vars.insert("accountStatus".into(), json!("Gold"));
    CreateCall {
        assistant_id: "asst-test".into(),
        phone_number_id: "pn-test".into(),
        customer_number: E164Phone::parse("Phone", "+1 (415) 555-0123").unwrap(),
        customer_name: Some("Ada Lovelace".into()),
        event_id: SalesforceEventId::parse("e", "case-escalated-5005e00000AbCdEAAV-1").unwrap(),
        contact_id: SalesforceId::parse("c", "0035e00000XyZ12AAF").unwrap(),
        case_id: Some(SalesforceId::parse("c", "5005e00000AbCdEAAV").unwrap()),
        variable_values: vars,
        context_sig: None,
    }
}

fn expected_body() -> Value {
    json!({
        "assistantId": "asst-test",
        "phoneNumberId": "pn-test",
        "customer": {"number": "+14155550123", "name": "Ada Lovelace"},
        // Vapi caps `name` at 40 characters; the full id is in the metadata.
        "name": "sfvapi case-escalated-5005e00000AbCdEAAV",
        "assistantOverrides": {
            "variableValues": {
                "customerName": "Ada Lovelace",
                "caseId": "5005e00000AbCdEAAV",
                "priority": "High",
                "accountStatus": "Gold"
            },
            "metadata": {
                "sfvapiEventId": "case-escalated-5005e00000AbCdEAAV-1",
                "contactId": "0035e00000XyZ12AAF",
                "caseId": "5005e00000AbCdEAAV"
            }
        }
    })
}

fn client(server: &MockServer, timeout: Duration) -> VapiClient {
    VapiClient::new(&server.uri(), timeout).unwrap()
}

/// Through a client of `server` (5 s timeout).
async fn create(server: &MockServer) -> Result<CreatedCall, VapiError> {
    client(server, Duration::from_secs(5))
        .create_call(&SecretString::new(KEY), &call())
        .await
}

#[tokio::test]
async fn created_call_is_parsed_and_the_request_is_exact() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/call"))
        .and(header("authorization", format!("Bearer {KEY}").as_str()))
        .and(header("content-type", "application/json"))
        .and(body_json(expected_body()))
        .respond_with(fixture_answer(201, "vapi/create-call-response.json"))
        .expect(1)
        .mount(&server)
        .await;
    let created = create(&server).await.unwrap();
    assert_eq!(created.id.as_str(), "c0ffee00-1111-4222-8333-444455556666");
    assert_eq!(created.status, CallStatus::Queued);
}

#[tokio::test]
async fn server_errors_and_rate_limits_are_retryable() {
    let server = MockServer::start().await;
    mount_any_times(
        &server,
        "POST",
        json_answer(
            500,
            json!({"message": "Internal server error", "statusCode": 500}),
        ),
        1,
    )
    .await;
    mount_any(
        &server,
        "POST",
        ResponseTemplate::new(429)
            .insert_header("retry-after", "7")
            .set_body_json(json!({"message": "Too Many Requests", "statusCode": 429})),
    )
    .await;
    let c = client(&server, Duration::from_secs(5));
    let e = c
        .create_call(&SecretString::new(KEY), &call())
        .await
        .unwrap_err();
    assert_eq!(
        e,
        VapiError::ServerError {
            status: 500,
            message: "Internal server error".into()
        }
    );
    assert!(e.is_retryable());
    let e = c
        .create_call(&SecretString::new(KEY), &call())
        .await
        .unwrap_err();
    assert!(
        matches!(&e, VapiError::RateLimited { retry_after: Some(d), .. } if *d == Duration::from_secs(7)),
        "{e:?}"
    );
    assert!(e.is_retryable());
}

#[tokio::test]
async fn a_4xx_is_terminal_with_vapis_message() {
    let server = server_answering(
        "POST",
        fixture_answer(400, "vapi/create-call-error-400.json"),
    )
    .await;
    let e = create(&server).await.unwrap_err();
    assert!(!e.is_retryable());
    let VapiError::Rejected { status, message } = &e else {
        panic!("{e:?}")
    };
    assert_eq!(*status, 400);
    assert!(
        message.starts_with("customer.number must be a valid phone number"),
        "{message}"
    );
}

#[tokio::test]
async fn a_timeout_after_sending_is_ambiguous_and_never_retryable() {
    let server = server_answering_once(
        "POST",
        fixture_answer(201, "vapi/create-call-response.json").set_delay(Duration::from_secs(3)),
    )
    .await;
    let e = client(&server, Duration::from_millis(300))
        .create_call(&SecretString::new(KEY), &call())
        .await
        .unwrap_err();
    assert!(matches!(e, VapiError::Ambiguous { .. }), "{e:?}");
    assert!(!e.is_retryable());
}

#[tokio::test]
async fn no_connection_means_no_call_and_is_retryable() {
    // A port that was free a moment ago: nothing listens, the request never leaves.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let c = VapiClient::new(&format!("http://127.0.0.1:{port}"), Duration::from_secs(2)).unwrap();
    let e = c
        .create_call(&SecretString::new(KEY), &call())
        .await
        .unwrap_err();
    assert!(matches!(e, VapiError::Connect { .. }), "{e:?}");
    assert!(e.is_retryable());
}
