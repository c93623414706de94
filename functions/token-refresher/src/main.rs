//! Lambda `token-refresher`: an EventBridge schedule (keep the Salesforce token fresh) and two
//! HTTP API routes, `GET /oauth/salesforce/login` and `GET /oauth/salesforce/callback` (one-time
//! connect). Bootstrap only: events arrive as JSON and `sfvapi::salesforce::connect::RefresherApp`
//! dispatches them by shape.

use lambda_runtime::{run, service_fn, Error, LambdaEvent};
use serde_json::Value;
use sfvapi::salesforce::connect::RefresherApp;

#[tokio::main]
async fn main() -> Result<(), Error> {
    sfvapi::telemetry::init();
    let app = sfvapi::bootstrap::init(RefresherApp::from_env()).await?;
    let app = &app;
    run(service_fn(move |event: LambdaEvent<Value>| async move {
        app.handle(event.payload).await.map_err(Error::from)
    }))
    .await
}
