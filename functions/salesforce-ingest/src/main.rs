//! Lambda `salesforce-ingest`: `POST /salesforce/events` and `POST /salesforce/outbound-message/{token}`.
//! Bootstrap only: the app (config, DynamoDB and Secrets Manager clients) is built once per cold
//! start and every request is handed to `sfvapi::ingest::IngestApp::handle`.

use lambda_http::{run, service_fn, Error, Request};
use sfvapi::ingest::IngestApp;

#[tokio::main]
async fn main() -> Result<(), Error> {
    sfvapi::telemetry::init();
    let app = sfvapi::bootstrap::init(IngestApp::from_env()).await?;
    let app = &app;
    run(service_fn(move |req: Request| async move {
        Ok::<_, Error>(app.handle(req).await)
    }))
    .await
}
