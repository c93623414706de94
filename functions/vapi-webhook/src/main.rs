//! Lambda `vapi-webhook`: `POST /vapi/webhook`, Vapi's server URL.
//! Bootstrap only: the app (config, DynamoDB and Secrets Manager clients) is built once per cold
//! start and every request is handed to `sfvapi::vapi::webhook::VapiWebhookApp::handle`.

use lambda_http::{run, service_fn, Error, Request};
use sfvapi::vapi::webhook::VapiWebhookApp;

#[tokio::main]
async fn main() -> Result<(), Error> {
    sfvapi::telemetry::init();
    let app = sfvapi::bootstrap::init(VapiWebhookApp::from_env()).await?;
    let app = &app;
    run(service_fn(move |req: Request| async move {
        Ok::<_, Error>(app.handle(req).await)
    }))
    .await
}
