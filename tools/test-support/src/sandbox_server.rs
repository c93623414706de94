//! The sandbox (fake Salesforce, Vapi and Twilio, `tools/sandbox`) started in-process on free
//! ports, its request log and control endpoint, and the requests tests send it.

use serde_json::Value;

/// Starts the sandbox with `config` on free loopback ports.
pub async fn start(config: ::sandbox::Config) -> ::sandbox::Handles {
    ::sandbox::serve(config).await.expect("sandbox starts")
}

/// Starts the sandbox as `sfvapi-sandbox` starts it with no options.
pub async fn start_default() -> ::sandbox::Handles {
    start(::sandbox::Config::default()).await
}

/// A plain HTTP client for talking to the sandbox.
pub fn client() -> reqwest::Client {
    reqwest::Client::new()
}

/// The sandbox's request log (`GET /_sandbox/requests`), optionally of one `service`.
pub async fn log(base: &str, service: Option<&str>) -> Vec<Value> {
    let mut url = format!("{base}/_sandbox/requests");
    if let Some(s) = service {
        url.push_str(&format!("?service={s}"));
    }
    let v: Value = get_json(&url).await;
    v.as_array().cloned().expect("the request log is an array")
}

/// Changes the sandbox's behaviour (`POST /_sandbox/control`).
pub async fn control(base: &str, body: Value) -> reqwest::Response {
    client()
        .post(format!("{base}/_sandbox/control"))
        .json(&body)
        .send()
        .await
        .expect("control request")
}

/// `GET url` and its JSON body.
pub async fn get_json(url: &str) -> Value {
    client()
        .get(url)
        .send()
        .await
        .expect("GET")
        .json()
        .await
        .expect("a JSON answer")
}

/// `POST url` with `form` as `application/x-www-form-urlencoded`.
pub async fn post_form(url: &str, form: &[(&str, &str)]) -> reqwest::Response {
    client().post(url).form(form).send().await.expect("POST")
}

/// The fake Salesforce's token endpoint with the sandbox's client credentials (200 expected):
/// the whole token answer.
pub async fn sf_token_answer(sf: &str) -> reqwest::Response {
    post_form(
        &format!("{sf}/services/oauth2/token"),
        &[
            ("grant_type", "client_credentials"),
            ("client_id", "sandbox-client-id"),
            ("client_secret", "sandbox-client-secret"),
        ],
    )
    .await
}

/// An access token from the fake Salesforce (client credentials flow).
pub async fn sf_token(sf: &str) -> String {
    let v: Value = sf_token_answer(sf).await.json().await.expect("token JSON");
    v["access_token"]
        .as_str()
        .expect("an access_token")
        .to_owned()
}

/// `GET url` with `Authorization: Bearer token`: status and JSON body.
pub async fn get_bearer(url: &str, token: &str) -> (u16, Value) {
    let resp = client()
        .get(url)
        .bearer_auth(token)
        .send()
        .await
        .expect("GET");
    (
        resp.status().as_u16(),
        resp.json().await.expect("a JSON answer"),
    )
}

/// `GET url` with `Authorization: Bearer key` (e.g. the fake Vapi's private key).
pub async fn get_authed(url: &str, key: &str) -> reqwest::Response {
    client()
        .get(url)
        .bearer_auth(key)
        .send()
        .await
        .expect("GET")
}

/// `GET url` with `Authorization: Bearer key`: its JSON body.
pub async fn get_authed_json(url: &str, key: &str) -> Value {
    get_authed(url, key)
        .await
        .json()
        .await
        .expect("a JSON answer")
}

/// The sandbox started as `sfvapi-sandbox` starts it, and an access token of its Salesforce.
pub struct SfSession {
    pub sandbox: ::sandbox::Handles,
    /// The fake Salesforce's base URL (its instance URL).
    pub url: String,
    pub token: String,
}

/// Starts the sandbox and signs in to its Salesforce (client credentials flow).
pub async fn sf_session() -> SfSession {
    let sandbox = start_default().await;
    let url = sandbox.salesforce_url.clone();
    let token = sf_token(&url).await;
    SfSession {
        sandbox,
        url,
        token,
    }
}

/// Sending a request to the sandbox in one step: transport errors and bodies that are not JSON
/// panic (the test's set-up broke, not the behaviour under test).
pub trait SendJson {
    /// Sends the request; its response, whatever the status.
    fn send_ok(self) -> impl std::future::Future<Output = reqwest::Response>;
    /// Sends the request; its JSON body, whatever the status.
    fn send_json(self) -> impl std::future::Future<Output = Value>;
}

impl SendJson for reqwest::RequestBuilder {
    async fn send_ok(self) -> reqwest::Response {
        self.send().await.expect("the request is sent")
    }
    async fn send_json(self) -> Value {
        self.send_ok().await.json().await.expect("a JSON answer")
    }
}

/// The sandbox's defaults with Vapi's server messages 20 ms apart: a scripted call runs in well
/// under a second, and the messages still arrive in Vapi's order.
pub fn quick_sandbox() -> ::sandbox::Config {
    let mut config = ::sandbox::Config::default();
    config.vapi.message_delay = std::time::Duration::from_millis(20);
    config
}
