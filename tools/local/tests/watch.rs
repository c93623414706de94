//! `make watch`'s environment, from nothing: the local stack it starts (table, secrets, sandbox)
//! and the env file it writes for `cargo lambda watch` (`sfvapi_local::watch::env_file`). Every
//! function is built from that file alone, as its `main.rs` does from the environment, and answers
//! one sample of `events/` (freshly signed, as `make invoke` sends it). In-process handlers, not
//! through `cargo lambda`: what is checked is that the file is complete and right for all five.
//! Run through `scripts/services.sh` (DynamoDB Local and moto).

use std::collections::BTreeMap;
use std::time::Duration;

use serde_json::Value;
use sfvapi::config::{Env, IngestConfig, TokenRefresherConfig};
use sfvapi::secrets::SecretsCache;
use sfvapi::store::Store;
use sfvapi_local::stack::{Stack, StackConfig};

fn sample(name: &str) -> Value {
    sfvapi::samples::all()
        .into_iter()
        .find(|(n, _)| *n == name)
        .unwrap_or_else(|| panic!("no sample {name}"))
        .1
}

fn request(name: &str) -> lambda_http::Request {
    lambda_http::request::from_str(&sample(name).to_string()).expect("an API Gateway v2 event")
}

/// The five functions, built from the env file alone.
struct Functions {
    ingest: sfvapi::ingest::IngestApp,
    relay: sfvapi::relay::RelayApp,
    webhook: sfvapi::vapi::webhook::VapiWebhookApp,
    refresher: sfvapi::salesforce::connect::RefresherApp,
    worker: sfvapi::jobs::worker::Worker,
}

impl Functions {
    async fn from_env_file(text: &str) -> (Self, BTreeMap<String, String>) {
        let repo = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
        let vars: BTreeMap<String, String> = text
            .lines()
            .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
            .map(|l| {
                let (k, v) = l
                    .split_once('=')
                    .unwrap_or_else(|| panic!("not KEY=VALUE: {l}"));
                // cargo lambda watch runs the functions from the repository root.
                let v = if k == "ROUTING_FILE" {
                    repo.join(v).to_string_lossy().into_owned()
                } else {
                    v.to_owned()
                };
                (k.to_owned(), v)
            })
            .collect();
        let env = {
            let vars = vars.clone();
            Env::new(move |k: &str| vars.get(k).cloned())
        };
        let sdk = sfvapi::config::aws_sdk_config().await;
        let store = Store::new(sfvapi::store::client(&sdk), vars["TABLE_NAME"].clone());
        let secrets = || {
            SecretsCache::new(
                sfvapi::config::secrets_client(&sdk),
                Duration::from_secs(300),
            )
        };
        let webhook_config =
            sfvapi::vapi::config::VapiWebhookConfig::from_env(&env).expect("webhook configuration");
        let functions = Self {
            ingest: sfvapi::ingest::IngestApp::new(
                IngestConfig::from_env(&env).expect("ingest configuration"),
                store.clone(),
                secrets(),
            ),
            relay: sfvapi::relay::RelayApp::new(
                sfvapi::relay::RelayConfig::from_env(&env).expect("relay configuration"),
                store.clone(),
            ),
            webhook: sfvapi::vapi::webhook::VapiWebhookApp::wired(
                &env,
                webhook_config,
                store.clone(),
                secrets(),
            )
            .expect("webhook"),
            refresher: sfvapi::salesforce::connect::RefresherApp::new(
                TokenRefresherConfig::from_env(&env).expect("refresher configuration"),
                store.clone(),
                secrets(),
            )
            .expect("refresher"),
            worker: sfvapi::jobs::worker::Worker::new(
                sfvapi::jobs::config::WorkerConfig::from_env(&env).expect("worker configuration"),
                store.clone(),
                secrets(),
            )
            .expect("worker"),
        };
        (functions, vars)
    }

    /// `sample` through `function`, as `make invoke` sends it: the HTTP status (`-` for a
    /// function that answers a plain event) and the body.
    async fn invoke(&self, function: &str, sample_name: &str) -> (String, String) {
        let http = |r: lambda_http::Response<lambda_http::Body>| {
            let body = match r.body() {
                lambda_http::Body::Text(t) => t.clone(),
                lambda_http::Body::Binary(b) => String::from_utf8_lossy(b).into_owned(),
                lambda_http::Body::Empty => String::new(),
                _ => String::from("<other body>"),
            };
            (r.status().as_u16().to_string(), body)
        };
        let plain = |v: Value| ("-".to_owned(), v.to_string());
        match function {
            "salesforce-ingest" => http(self.ingest.handle(request(sample_name)).await),
            "vapi-webhook" => http(self.webhook.handle(request(sample_name)).await),
            "salesforce-relay" => plain(self.relay.handle(sample(sample_name)).await.unwrap()),
            "token-refresher" => {
                let v = self.refresher.handle(sample(sample_name)).await.unwrap();
                match v.get("statusCode") {
                    // An HTTP route: its status and body, as API Gateway passes them on.
                    Some(code) => (
                        code.to_string(),
                        v["body"].as_str().unwrap_or("").to_owned(),
                    ),
                    None => plain(v),
                }
            }
            "job-worker" => {
                use sfvapi::jobs::worker::WorkerEvent;
                match WorkerEvent::parse(sample(sample_name)).unwrap() {
                    WorkerEvent::Stream(batch) => {
                        plain(serde_json::to_value(self.worker.handle(batch).await).unwrap())
                    }
                    WorkerEvent::Sweep => {
                        plain(serde_json::to_value(self.worker.sweep().await.unwrap()).unwrap())
                    }
                }
            }
            other => panic!("no function {other}"),
        }
    }
}

/// What changes from run to run, as the README table writes it.
fn normalise(body: &str, vars: &BTreeMap<String, String>) -> String {
    let mut body = body.to_owned();
    if let Some(id) = vars.get("VAPI_INBOUND_ASSISTANT_ID") {
        body = body.replace(id.as_str(), "<VAPI_INBOUND_ASSISTANT_ID>");
    }
    // A token's expiry: now + the session timeout.
    if let Some(i) = body.find("\"expiresAtMs\":") {
        let start = i + "\"expiresAtMs\":".len();
        let end = body[start..]
            .find(|c: char| !c.is_ascii_digit())
            .map_or(body.len(), |e| start + e);
        body.replace_range(start..end, "<ms>");
    }
    body
}

/// The rows of the sample answers table (docs/local-development.md, once README's): (sample,
/// function, status, body).
fn readme_rows() -> Vec<(String, String, String, String)> {
    let readme = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/local-development.md"),
    )
    .unwrap();
    let start = readme
        .find("<!-- sample answers: checked by tools/local/tests/watch.rs -->")
        .expect("README has the sample answers table");
    readme[start..]
        .lines()
        .skip(2) // the marker and a blank line
        .take_while(|l| l.starts_with('|'))
        .skip(2) // the header and its separator
        .map(|l| {
            let cells: Vec<String> = l
                .trim_matches('|')
                .split(" | ")
                .map(|c| c.trim().trim_matches('`').to_owned())
                .collect();
            assert_eq!(cells.len(), 4, "a row of four cells: {l}");
            (
                cells[0].clone(),
                cells[1].clone(),
                cells[2].clone(),
                cells[3].clone(),
            )
        })
        .collect()
}

/// Until no job is waiting to run or running (PENDING, RUNNING, DIALING), at most 20 s.
async fn wait_until_quiet(store: &Store) {
    let busy = ["PENDING", "RUNNING", "DIALING"];
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while std::time::Instant::now() < deadline {
        let items = sfvapi_local::demo::scan(store)
            .await
            .expect("scan the table");
        if !items
            .iter()
            .any(|i| sfvapi::store::attr::opt_s(i, "status").is_some_and(|s| busy.contains(&s)))
        {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// `make watch`'s environment from nothing answers one sample of each function, and every
/// sample answers as README's table says, in the table's order (a duplicate after its original).
#[tokio::test]
async fn the_watch_environment_answers_every_sample_as_the_readme_table_says() {
    assert!(
        std::env::var("AWS_ENDPOINT_URL_DYNAMODB").is_ok(),
        "run through scripts/services.sh (DynamoDB Local and moto)"
    );
    // The stack as `make watch` starts it, its stream pump and worker included: a job a sample
    // queues is run by the stack, as it is for someone sending `make invoke` by hand.
    let stack = Stack::start(StackConfig::default())
        .await
        .expect("the local stack");
    let (functions, vars) =
        Functions::from_env_file(&sfvapi_local::watch::env_file(&stack.env)).await;
    let store = Store::new(
        sfvapi::store::client(&sfvapi::config::aws_sdk_config().await),
        vars["TABLE_NAME"].clone(),
    );
    let rows = readme_rows();
    let mut seen = std::collections::BTreeSet::new();
    let mut actual = Vec::new();
    for (sample_name, function, _, _) in &rows {
        let (status, body) = functions.invoke(function, sample_name).await;
        // A person sends the next sample seconds later: by then the stack has run what this
        // one queued (the dial the callback sample's `recentCall` reads).
        wait_until_quiet(&store).await;
        actual.push(format!(
            "| `{sample_name}` | {function} | {status} | `{}` |",
            normalise(&body, &vars)
        ));
        seen.insert(function.clone());
    }
    let expected: Vec<String> = rows
        .iter()
        .map(|(s, f, st, b)| format!("| `{s}` | {f} | {st} | `{b}` |"))
        .collect();
    assert_eq!(
        actual.join("\n"),
        expected.join("\n"),
        "README's sample answers table differs from what the functions answer"
    );
    // Every sample of events/ is in the table, and so is every function.
    for (name, _) in sfvapi::samples::all() {
        assert!(
            rows.iter().any(|r| r.0 == name),
            "{name} is not in README's table"
        );
    }
    for f in [
        "salesforce-ingest",
        "salesforce-relay",
        "vapi-webhook",
        "job-worker",
        "token-refresher",
    ] {
        assert!(seen.contains(f), "{f}");
    }
    stack.shutdown().await;
}
