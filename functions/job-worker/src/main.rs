//! Lambda `job-worker`: DynamoDB stream batches of PENDING jobs, and the every-minute sweep
//! (EventBridge schedule). Bootstrap only: `sfvapi::jobs::worker::Worker` does the work.

use lambda_runtime::{run, service_fn, Error, LambdaEvent};
use serde_json::Value;
use sfvapi::jobs::worker::{Worker, WorkerEvent};

#[tokio::main]
async fn main() -> Result<(), Error> {
    sfvapi::telemetry::init();
    let worker = sfvapi::bootstrap::init(Worker::from_env()).await?;
    let worker = &worker;
    run(service_fn(move |event: LambdaEvent<Value>| async move {
        match WorkerEvent::parse(event.payload)? {
            WorkerEvent::Stream(batch) => {
                Ok::<Value, Error>(serde_json::to_value(worker.handle(batch).await)?)
            }
            WorkerEvent::Sweep => Ok(serde_json::to_value(worker.sweep().await?)?),
        }
    }))
    .await
}
