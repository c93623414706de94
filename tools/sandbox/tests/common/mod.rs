//! Shared test plumbing: start the sandbox in-process on free ports, read its request log.
#![allow(dead_code)]

use serde_json::Value;

pub async fn start(config: sandbox::Config) -> sandbox::Handles {
    sandbox::serve(config).await.expect("sandbox starts")
}

pub async fn start_default() -> sandbox::Handles {
    start(sandbox::Config::default()).await
}

pub fn client() -> reqwest::Client {
    reqwest::Client::new()
}

pub async fn log(base: &str, service: Option<&str>) -> Vec<Value> {
    let mut url = format!("{base}/_sandbox/requests");
    if let Some(s) = service {
        url.push_str(&format!("?service={s}"));
    }
    let v: Value = client()
        .get(url)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    v.as_array().cloned().unwrap()
}

pub async fn control(base: &str, body: Value) -> reqwest::Response {
    client()
        .post(format!("{base}/_sandbox/control"))
        .json(&body)
        .send()
        .await
        .unwrap()
}
