//! Hand-off and records end to end (`make demo SCENARIO=handoff` as a test): Ada asks for a
//! person, the webhook hands her warm to the Case owner from the call's snapshot, the fake Vapi
//! forwards the call, the report job keeps the recording in moto's S3 and the Task says who took
//! the call and where the recording is. The story's own checks are the assertions.

use std::time::Duration;

use sfvapi_local::handoff::{drive, stack_config};
use sfvapi_local::stack::Stack;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_demo_shows_a_warm_transfer_and_the_stored_recording() {
    sfvapi_test_support::local_services("AWS_ENDPOINT_URL_S3");
    let sb = sfvapi_test_support::sandbox_server::quick_sandbox();
    let stack = Stack::start(stack_config(sb).expect("config"))
        .await
        .expect("stack");
    let run = drive(&stack, Duration::from_secs(40)).await;
    stack.shutdown().await;
    run.expect("transferred warm, recording kept and linked");
}
