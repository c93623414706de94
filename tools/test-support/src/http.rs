//! The handlers' side of HTTP: API Gateway v2 requests in, answers out; the vendors' recorded
//! answers in `shared/tests/fixtures`.

/// A fixture from `shared/tests/fixtures` (`salesforce/contact.json`, `vapi/end-of-call-report.json`…).
pub fn fixture(path: &str) -> Vec<u8> {
    let p = format!(
        "{}/../../shared/tests/fixtures/{path}",
        env!("CARGO_MANIFEST_DIR")
    );
    std::fs::read(&p).unwrap_or_else(|e| panic!("fixture {p}: {e}"))
}

/// A JSON fixture, parsed.
pub fn fixture_json(path: &str) -> serde_json::Value {
    serde_json::from_slice(&fixture(path)).unwrap_or_else(|e| panic!("fixture {path}: {e}"))
}

/// An API Gateway v2 request as Lambda hands it to a handler.
pub fn request(
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
    base64: bool,
) -> lambda_http::Request {
    let event = sfvapi::http::apigw_v2_event(method, path, headers, body, base64);
    lambda_http::request::from_str(&event.to_string()).expect("a valid API Gateway v2 event")
}

/// A handler's answer: status, body, and the body as JSON (`Null` when it is not JSON).
pub struct Answer {
    pub status: u16,
    pub body: String,
    pub json: serde_json::Value,
}

/// Reads a handler's response into an [`Answer`].
pub fn answer(resp: lambda_http::Response<lambda_http::Body>) -> Answer {
    let status = resp.status().as_u16();
    let body = String::from_utf8_lossy(sfvapi::http::body_bytes(resp.body())).into_owned();
    let json = serde_json::from_str(&body).unwrap_or(serde_json::Value::Null);
    Answer { status, body, json }
}

/// Writes `text` as `routing.yaml` in a fresh temporary folder; its path (for `ROUTING_FILE`).
pub fn routing_file(text: &str) -> String {
    let dir = std::env::temp_dir().join(crate::unique("sfvapi-routing"));
    std::fs::create_dir_all(&dir).expect("create a temporary folder");
    let path = dir.join("routing.yaml");
    std::fs::write(&path, text).expect("write routing.yaml");
    path.to_string_lossy().into_owned()
}
