//! The calling policy end to end (`make demo SCENARIO=calling-policy` as a test): the whole local
//! stack with the scenario's routing document and a moved policy clock, judged by each job's
//! status and reason and by what the sandbox's Vapi, Salesforce and Twilio received.

use std::time::Duration;

use sfvapi_local::calling_policy::{counts, drive, stack_config};
use sfvapi_local::stack::Stack;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn window_consent_retry_cap_and_opt_out_behave_as_the_policy_says() {
    let stack = Stack::start(stack_config(sandbox::Config::default()).expect("config"))
        .await
        .expect("stack");
    let run = drive(&stack, Duration::from_secs(40)).await;
    stack.shutdown().await;
    let (steps, log) = run.expect("the story ran");
    for s in &steps {
        assert!(
            s.ok,
            "{}: {} {:?}, expected {}",
            s.title, s.status, s.reason, s.expect
        );
    }
    let (per_event, sms_to, dnc) = counts(&log, &steps);
    let calls: Vec<usize> = per_event.iter().map(|(_, n)| *n).collect();
    // window: 1 call; no consent: 0; not reached twice: 2; capped: 0; opt-out call: 1; after: 0.
    assert_eq!(calls, [1, 0, 2, 0, 1, 0]);
    // Charles once, after his last unanswered call; Ada once, a thank-you after her first
    // (answered, high value) call, and nothing after she opted out.
    assert_eq!(
        sms_to.iter().filter(|t| *t == "+447700900123").count(),
        1,
        "{sms_to:?}"
    );
    assert_eq!(
        sms_to.iter().filter(|t| *t == "+14155550123").count(),
        1,
        "{sms_to:?}"
    );
    assert_eq!(dnc, 1, "DoNotCall set once in Salesforce");
}
