//! Loopback servers (wiremock) that answer like Salesforce, Vapi and Twilio: mount a route, read
//! back what a route received.

use std::collections::HashMap;

use std::time::Duration;
use wiremock::matchers::{method, path};

use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate};

use crate::fixture;

/// Answers `verb path` on `server` with `answer` (a `ResponseTemplate` or any `Respond`), for as
/// long as the server lives.
pub async fn mount(server: &MockServer, verb: &str, route: &str, answer: impl Respond + 'static) {
    Mock::given(method(verb))
        .and(path(route))
        .respond_with(answer)
        .mount(server)
        .await;
}

/// Answers `verb path` on `server` with `answer` for the first `n` requests only (later ones fall
/// through to the next matching mock).
pub async fn mount_times(
    server: &MockServer,
    verb: &str,
    route: &str,
    answer: impl Respond + 'static,
    n: u64,
) {
    Mock::given(method(verb))
        .and(path(route))
        .respond_with(answer)
        .up_to_n_times(n)
        .mount(server)
        .await;
}

/// `status` with the JSON fixture at `fixture_path` as its body (a vendor's recorded error).
pub fn fixture_answer(status: u16, fixture_path: &str) -> ResponseTemplate {
    ResponseTemplate::new(status).set_body_raw(fixture(fixture_path), "application/json")
}

/// `status` with `body` as JSON.
pub fn json_answer(status: u16, body: serde_json::Value) -> ResponseTemplate {
    ResponseTemplate::new(status).set_body_json(body)
}

/// Vapi's error body for `status` (`{"message", "statusCode"}`, as its API answers errors).
pub fn json_error(status: u16, message: &str) -> ResponseTemplate {
    json_answer(
        status,
        serde_json::json!({"message": message, "statusCode": status}),
    )
}

/// Requests a wiremock server received on `path`.
pub async fn received_on(server: &MockServer, path: &str) -> Vec<Request> {
    server
        .received_requests()
        .await
        .unwrap_or_default()
        .into_iter()
        .filter(|r| r.url.path() == path)
        .collect()
}

/// Requests other than `GET` a wiremock server received on `path` (the writes).
pub async fn posts_to(server: &MockServer, path: &str) -> Vec<Request> {
    received_on(server, path)
        .await
        .into_iter()
        .filter(|r| r.method.as_str() != "GET")
        .collect()
}

/// The JSON body of a received request.
pub fn json_of(req: &Request) -> serde_json::Value {
    serde_json::from_slice(&req.body).expect("a JSON request body")
}

/// The form fields of a request body.
pub fn form_of(req: &Request) -> HashMap<String, String> {
    url::form_urlencoded::parse(&req.body)
        .into_owned()
        .collect()
}

/// Waits until `server` got `n` requests (panics after 10 s), then a little longer to catch
/// extras; every request it got.
pub async fn wait_for_requests(server: &MockServer, n: usize) -> Vec<Request> {
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

/// Answers every `verb` request on `server`, whatever its path, with `answer`.
pub async fn mount_any(server: &MockServer, verb: &str, answer: impl Respond + 'static) {
    Mock::given(method(verb))
        .respond_with(answer)
        .mount(server)
        .await;
}

/// Answers the first `n` `verb` requests on `server`, whatever their path, with `answer`.
pub async fn mount_any_times(
    server: &MockServer,
    verb: &str,
    answer: impl Respond + 'static,
    n: u64,
) {
    Mock::given(method(verb))
        .respond_with(answer)
        .up_to_n_times(n)
        .mount(server)
        .await;
}

/// Salesforce creates `object` records: `POST …/v62.0/sobjects/{object}` answers 201 with `id`,
/// as the sObject Basic Information resource does.
pub async fn mount_sf_create(server: &MockServer, object: &str, id: &str) {
    mount(
        server,
        "POST",
        &format!("/services/data/v62.0/sobjects/{object}"),
        json_answer(
            201,
            serde_json::json!({"id": id, "success": true, "errors": []}),
        ),
    )
    .await;
}

/// A fresh server answering every `verb` request with `answer` (see [`mount_any`]).
pub async fn server_answering(verb: &str, answer: impl Respond + 'static) -> MockServer {
    let server = MockServer::start().await;
    mount_any(&server, verb, answer).await;
    server
}

/// A fresh server answering `verb` requests with `answer` that must be called exactly once
/// (wiremock checks it when the server is dropped).
pub async fn server_answering_once(verb: &str, answer: impl Respond + 'static) -> MockServer {
    let server = MockServer::start().await;
    Mock::given(method(verb))
        .respond_with(answer)
        .expect(1)
        .mount(&server)
        .await;
    server
}
