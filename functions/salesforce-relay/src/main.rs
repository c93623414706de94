//! Lambda `salesforce-relay`: Salesforce Event Relay events (Platform Events and Change Data
//! Capture) that an EventBridge rule on the partner event bus delivers through an SQS queue.
//! Bootstrap only: `sfvapi::relay::RelayApp` checks the org, routes each event with the routing
//! document and stores it with one conditional PutItem per job. An SQS batch answers
//! `batchItemFailures`; a bare EventBridge event (`cargo lambda invoke`) answers what became of it.

use lambda_runtime::{run, service_fn, Error, LambdaEvent};
use serde_json::Value;
use sfvapi::relay::RelayApp;

#[tokio::main]
async fn main() -> Result<(), Error> {
    sfvapi::telemetry::init();
    let app = sfvapi::bootstrap::init(RelayApp::from_env()).await?;
    let app = &app;
    run(service_fn(move |event: LambdaEvent<Value>| async move {
        Ok::<Value, Error>(app.handle(event.payload).await?)
    }))
    .await
}
