//! The short reliability suite, run by `make test` (DynamoDB Local + moto from
//! scripts/services.sh): duplicate storms, the bad-input corpus, signatures and faults, each
//! asserting what a user cares about — one job and one dial per event, no panic and no 5xx on bad
//! input, 401 on every forged or stale request, nothing acknowledged ever lost or done twice.

use sfvapi_bench::reliability::*;

fn assert_row(r: &Row) {
    assert!(r.ok, "{}: {r:#?}", r.scenario);
    assert_eq!(r.lost, 0, "{}: events lost", r.scenario);
    assert!(r.dials <= r.expected_dials, "{}: double call", r.scenario);
    assert!(r.sms <= r.expected_sms, "{}: double SMS", r.scenario);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn storm_of_200_identical_events_makes_one_job_and_one_dial() {
    let r = duplicate_storm(200).await;
    assert_eq!((r.jobs, r.done, r.dials), (1, 1, 1), "{r:#?}");
    assert_eq!(r.acked, 200);
    assert_row(&r);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn twenty_distinct_events_times_ten_make_twenty_dials() {
    let r = distinct_storm(20, 10).await;
    assert_eq!((r.jobs, r.done, r.dials), (20, 20, 20), "{r:#?}");
    assert_row(&r);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_corpus_gets_its_4xx_without_panics_or_5xx() {
    let reports = bad_input(1).await;
    let total: usize = reports.iter().map(|r| r.cases).sum();
    assert!(total >= 200, "only {total} cases");
    for r in &reports {
        assert_eq!(r.panics, 0, "{}: {:#?}", r.name, r.mismatches);
        assert_eq!(r.unexpected_5xx, 0, "{}: {:#?}", r.name, r.mismatches);
        assert!(r.mismatches.is_empty(), "{}: {:#?}", r.name, r.mismatches);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forged_stale_future_replayed_and_wrong_scheme_are_all_401() {
    let r = signatures().await;
    assert!(r.cases >= 25, "{r:#?}");
    assert_eq!(r.by_status.get(&401), Some(&r.cases), "{r:#?}");
    assert!(r.ok(), "{r:#?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dynamodb_killed_mid_run_answers_503_and_loses_nothing_acknowledged() {
    let r = dynamodb_outage(Size::short().outage_events).await;
    assert_row(&r);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_dying_after_its_claim_is_rescued_and_dials_once() {
    assert_row(&dead_worker().await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_vapi_timeout_after_creating_is_settled_by_asking_vapi_with_no_second_post() {
    let r = vapi_timeout().await;
    assert_eq!((r.done, r.needs_review, r.dials), (1, 0, 1), "{r:#?}");
    assert_row(&r);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_dying_after_dialing_is_settled_by_asking_vapi() {
    let r = dead_after_dialing().await;
    assert_eq!((r.done, r.needs_review, r.dials), (1, 0, 1), "{r:#?}");
    assert_row(&r);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_report_never_delivered_still_gets_its_task_once() {
    let r = report_never_delivered().await;
    assert_eq!((r.done, r.needs_review, r.dials), (2, 0, 1), "{r:#?}");
    assert!(r.note.contains("Tasks=1"), "{r:#?}");
    assert_row(&r);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn salesforce_faults_end_done_with_one_dial() {
    for r in [
        salesforce_fault(
            "401 INVALID_SESSION_ID",
            401,
            serde_json::json!([{"message": "Session expired or invalid", "errorCode": "INVALID_SESSION_ID"}]),
        )
        .await,
        salesforce_fault(
            "503",
            503,
            serde_json::json!([{"errorCode": "SERVER_UNAVAILABLE", "message": "unavailable"}]),
        )
        .await,
        salesforce_fault(
            "403 REQUEST_LIMIT_EXCEEDED",
            403,
            serde_json::json!([{"message": "TotalRequests Limit exceeded.", "errorCode": "REQUEST_LIMIT_EXCEEDED"}]),
        )
        .await,
    ] {
        assert_row(&r);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn twilio_429_retries_into_exactly_one_sms() {
    let r = twilio_429().await;
    assert_eq!(r.sms, 1, "{r:#?}");
    assert_row(&r);
}
