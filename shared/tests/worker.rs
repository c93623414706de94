//! The job worker on DynamoDB Local, against wiremock servers that answer like Salesforce, Vapi
//! and Twilio: one event → exactly one call, retries, leases, redrive, the report job and the
//! follow-up guard.

use std::collections::HashMap;
use std::time::Duration;

use serde_json::{json, Value};
use sfvapi::config::Env;
use sfvapi::jobs::config::WorkerConfig;
use sfvapi::jobs::queue::Redrive;
use sfvapi::jobs::worker::Worker;
use sfvapi::store::attr;
use sfvapi_test_support::world::*;
use sfvapi_test_support::*;
use wiremock::matchers::{method, path};
use wiremock::{Mock, ResponseTemplate};

#[tokio::test]
async fn happy_path_places_exactly_one_well_informed_call() {
    let w = World::new(&[]).await;
    w.vapi_answers(201, None).await;
    let worker = w.worker().await;
    let pk = w.enqueue("happy-1", ADA).await;
    assert!(deliver(&worker, &pk).await.is_empty());

    let calls = w.calls().await;
    assert_eq!(calls.len(), 1);
    let body: Value = serde_json::from_slice(&calls[0].body).unwrap();
    assert_eq!(calls[0].headers["authorization"], "Bearer vapi-private-key");
    assert_eq!(body["assistantId"], "asst-test");
    assert_eq!(body["phoneNumberId"], "pn-test");
    assert_eq!(body["customer"]["number"], "+14155550123");
    assert_eq!(body["customer"]["name"], "Ada Lovelace");
    let vars = &body["assistantOverrides"]["variableValues"];
    assert_eq!(vars["customerName"], "Ada Lovelace");
    assert_eq!(vars["caseId"], CASE);
    assert_eq!(vars["priority"], "High");
    assert_eq!(vars["accountStatus"], "Past Due");
    assert_eq!(vars["lastInteraction"], "2026-11-01");
    assert_eq!(vars["preferredLanguage"], "en");
    assert_eq!(vars["reason"], "Payment failed twice");
    let meta = &body["assistantOverrides"]["metadata"];
    assert_eq!(meta["sfvapiEventId"], "happy-1");
    assert_eq!(meta["contactId"], ADA);
    assert_eq!(meta["caseId"], CASE);

    let job = w.item(&pk).await;
    assert_eq!(attr::opt_s(&job, "status"), Some("DONE"));
    assert_eq!(attr::opt_s(&job, "call_id"), Some(CALL_ID));
    assert_eq!(attr::opt_n(&job, "attempts"), Some(1));
    // A placed call stays in the sweep index until its report is overdue (the report watch).
    let check_at = attr::opt_n(&job, "next_at").expect("watched for its report");
    let dialed_at = attr::opt_n(&job, "dialed_at").unwrap();
    assert_eq!(check_at - dialed_at, (600 + 300) * 1000);
    let call = w.item(&format!("call#{CALL_ID}")).await;
    assert_eq!(attr::opt_s(&call, "event_id"), Some("happy-1"));
    let snapshot: Value = serde_json::from_str(attr::opt_s(&call, "snapshot").unwrap()).unwrap();
    assert_eq!(snapshot["customer"]["name"], "Ada Lovelace");
    assert_eq!(snapshot["customer"]["phone"], "+1******0123");
    assert_eq!(snapshot["case"]["caseNumber"], "00001026");
}

#[tokio::test]
async fn redelivery_and_racing_workers_dial_once() {
    let w = World::new(&[]).await;
    w.vapi_answers(201, None).await;
    let (a, b) = (w.worker().await, w.worker().await);
    let pk = w.enqueue("race-1", ADA).await;
    let (ra, rb) = tokio::join!(deliver(&a, &pk), deliver(&b, &pk));
    assert!(ra.is_empty() && rb.is_empty());
    // The same record again, later.
    assert!(deliver(&a, &pk).await.is_empty());
    assert_eq!(w.calls().await.len(), 1);
    assert_eq!(w.status(&pk).await, "DONE");
}

#[tokio::test]
async fn vapi_5xx_is_retried_with_backoff_then_one_call() {
    let w = World::new(&[]).await;
    w.vapi_answers(500, Some(2)).await;
    w.vapi_answers(201, None).await;
    let worker = w.worker().await;
    let pk = w.enqueue("retry-1", ADA).await;

    deliver(&worker, &pk).await;
    let job = w.item(&pk).await;
    assert_eq!(attr::opt_s(&job, "status"), Some("RETRY"));
    assert!(attr::opt_s(&job, "last_error").unwrap().contains("500"));
    // A stale PENDING record for a RETRY job does not run it before it is due... (backoff 0 here:
    // due at once), and the sweep is what puts it back on the stream.
    for _ in 0..2 {
        let report = worker.sweep().await.unwrap();
        assert_eq!(report.requeued, 1);
        assert_eq!(w.status(&pk).await, "PENDING");
        deliver(&worker, &pk).await;
    }
    let job = w.item(&pk).await;
    assert_eq!(attr::opt_s(&job, "status"), Some("DONE"));
    assert_eq!(attr::opt_n(&job, "attempts"), Some(3));
    assert_eq!(
        w.calls().await.len(),
        3,
        "two refused attempts and one accepted"
    );
}

#[tokio::test]
async fn a_due_retry_runs_once_and_a_future_one_waits() {
    let w = World::new(&[("RETRY_BASE_SECS", "3600"), ("RETRY_MAX_SECS", "7200")]).await;
    w.vapi_answers(503, Some(1)).await;
    w.vapi_answers(201, None).await;
    let worker = w.worker().await;
    let pk = w.enqueue("due-1", ADA).await;
    deliver(&worker, &pk).await;
    assert_eq!(w.status(&pk).await, "RETRY");
    let next_at = attr::opt_n(&w.item(&pk).await, "next_at").unwrap();
    assert!(
        next_at > sfvapi::now_millis() + 1_700_000,
        "backoff of at least half an hour"
    );
    // Not due: neither the sweep nor a stale stream record runs it.
    assert_eq!(worker.sweep().await.unwrap().requeued, 0);
    deliver(&worker, &pk).await;
    assert_eq!(w.calls().await.len(), 1);
    // Make it due (as time would), then one sweep → one run.
    age_fields(&w.store, &pk, &["next_at"], 1000).await;
    assert_eq!(worker.sweep().await.unwrap().requeued, 1);
    assert_eq!(worker.sweep().await.unwrap().requeued, 0);
    deliver(&worker, &pk).await;
    deliver(&worker, &pk).await;
    assert_eq!(w.status(&pk).await, "DONE");
    assert_eq!(w.calls().await.len(), 2);
}

#[tokio::test]
async fn retries_run_out_into_failed_with_the_last_error() {
    let w = World::new(&[("MAX_ATTEMPTS", "2")]).await;
    w.vapi_answers(500, None).await;
    let worker = w.worker().await;
    let pk = w.enqueue("exhaust-1", ADA).await;
    deliver(&worker, &pk).await;
    worker.sweep().await.unwrap();
    deliver(&worker, &pk).await;
    let job = w.item(&pk).await;
    assert_eq!(attr::opt_s(&job, "status"), Some("FAILED"));
    let err = attr::opt_s(&job, "last_error").unwrap();
    assert!(
        err.contains("gave up after 2 attempts") && err.contains("500"),
        "{err}"
    );
    assert_eq!(w.calls().await.len(), 2);
}

#[tokio::test]
async fn a_vapi_timeout_is_settled_by_asking_vapi_not_by_redialing() {
    let w = World::new(&[]).await;
    mount(
        &w.vapi,
        "POST",
        "/call",
        ResponseTemplate::new(201).set_delay(Duration::from_secs(3)),
    )
    .await;
    // Vapi did create the call behind the timeout: its list shows it with our metadata.
    w.vapi_lists(json!([vapi_call(CALL_ID, "timeout-1", None)]))
        .await;
    let worker = w.worker().await;
    let pk = w.enqueue("timeout-1", ADA).await;
    deliver(&worker, &pk).await;
    let job = w.item(&pk).await;
    assert_eq!(attr::opt_s(&job, "status"), Some("RETRY"), "{job:?}");
    assert!(attr::opt_s(&job, "reason")
        .unwrap()
        .contains("do not resend"));
    assert!(attr::opt_n(&job, "verify_from").is_some());
    assert_eq!(
        attr::opt_n(&job, "attempts"),
        Some(0),
        "asking uses up no attempt"
    );
    assert!(w.vapi_reads("/call").await.is_empty(), "nothing asked yet");

    assert_eq!(worker.sweep().await.unwrap().requeued, 1);
    deliver(&worker, &pk).await;
    let job = w.item(&pk).await;
    assert_eq!(attr::opt_s(&job, "status"), Some("DONE"), "{job:?}");
    assert_eq!(attr::opt_s(&job, "call_id"), Some(CALL_ID));
    assert!(attr::opt_s(&job, "detail")
        .unwrap()
        .contains("Vapi shows call"));
    assert_eq!(w.calls().await.len(), 1, "no second POST /call");
    let list = w.vapi_reads("/call").await;
    assert_eq!(list.len(), 1);
    let q = list[0].url.query().unwrap_or_default().to_owned();
    assert!(
        q.contains("assistantId=asst-test") && q.contains("createdAtGe="),
        "{q}"
    );
    // call# is written as after a normal dial, so tool calls find the snapshot.
    let call = w.item(&format!("call#{CALL_ID}")).await;
    assert_eq!(attr::opt_s(&call, "event_id"), Some("timeout-1"));
    assert!(attr::opt_s(&call, "snapshot")
        .unwrap()
        .contains("Ada Lovelace"));
    // Redelivered and swept again: still one POST.
    deliver(&worker, &pk).await;
    worker.sweep().await.unwrap();
    assert_eq!(w.calls().await.len(), 1);
}

#[tokio::test]
async fn a_gateway_error_whose_call_vapi_never_shows_is_dialled_again_after_the_grace() {
    // 504 comes from a proxy in front of Vapi: the call may still be created behind it.
    let w = World::new(&[("VAPI_VERIFY_GRACE_SECS", "1")]).await;
    w.vapi_answers(504, Some(1)).await;
    w.vapi_answers(201, None).await;
    // Another event's call is in the list: it is not ours.
    w.vapi_lists(json!([vapi_call(
        "0badca11-1111-4222-8333-444455556666",
        "someone-else",
        None
    )]))
    .await;
    let worker = w.worker().await;
    let pk = w.enqueue("gateway-1", ADA).await;
    deliver(&worker, &pk).await;
    let job = w.item(&pk).await;
    assert_eq!(attr::opt_s(&job, "status"), Some("RETRY"));
    assert!(attr::opt_s(&job, "reason").unwrap().contains("504"));
    // The first look finds no call, but absence counts only after the grace period.
    assert_eq!(worker.sweep().await.unwrap().requeued, 1);
    deliver(&worker, &pk).await;
    assert_eq!(w.status(&pk).await, "RETRY");
    assert_eq!(
        w.calls().await.len(),
        1,
        "not dialled again within the grace period"
    );
    assert_eq!(worker.sweep().await.unwrap().requeued, 0);
    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert_eq!(worker.sweep().await.unwrap().requeued, 1);
    deliver(&worker, &pk).await;
    let job = w.item(&pk).await;
    assert_eq!(attr::opt_s(&job, "status"), Some("DONE"), "{job:?}");
    assert_eq!(
        w.calls().await.len(),
        2,
        "dialled again once Vapi showed no call"
    );
    assert!(attr::opt_n(&job, "verify_from").is_none());
}

#[tokio::test]
async fn vapi_unreachable_while_asking_needs_a_person_only_after_its_tries() {
    let w = World::new(&[("VAPI_VERIFY_MAX_TRIES", "3")]).await;
    w.vapi_answers(504, None).await;
    mount(
        &w.vapi,
        "GET",
        "/call",
        json_error(503, "Service Unavailable"),
    )
    .await;
    let worker = w.worker().await;
    let pk = w.enqueue("review-1", ADA).await;
    deliver(&worker, &pk).await;
    // Try 2: Vapi unreachable → ask again later (backoff), still no person.
    w.age(&pk).await;
    worker.sweep().await.unwrap();
    deliver(&worker, &pk).await;
    let job = w.item(&pk).await;
    assert_eq!(attr::opt_s(&job, "status"), Some("RETRY"), "{job:?}");
    assert!(attr::opt_s(&job, "reason").unwrap().contains("503"));
    // Try 3: the last one.
    w.age(&pk).await;
    worker.sweep().await.unwrap();
    deliver(&worker, &pk).await;
    let job = w.item(&pk).await;
    assert_eq!(attr::opt_s(&job, "status"), Some("NEEDS_REVIEW"), "{job:?}");
    assert!(attr::opt_s(&job, "reason")
        .unwrap()
        .contains("could not be asked 3 times"));
    assert_eq!(w.calls().await.len(), 1, "never dialled twice blindly");
    assert_eq!(w.vapi_reads("/call").await.len(), 2);
}

#[tokio::test]
async fn a_worker_that_died_while_dialing_is_settled_by_asking_vapi() {
    let w = World::new(&[]).await;
    w.vapi_lists(json!([vapi_call(CALL_ID, "died-1", None)]))
        .await;
    let worker = w.worker().await;
    let pk = w.enqueue("died-1", ADA).await;
    let q = worker.queue();
    let job = q.claim(&pk, sfvapi::now_millis()).await.unwrap().unwrap();
    assert!(q
        .mark_dialing(&job, "{}", None, sfvapi::now_millis())
        .await
        .unwrap());
    // ...and the worker died before Vapi's answer; its dial lease runs out.
    age_fields(&w.store, &pk, &["lease_until", "next_at"], 1).await;
    let report = worker.sweep().await.unwrap();
    assert_eq!(report.verify, 1, "{report:?}");
    assert_eq!(w.status(&pk).await, "RETRY");
    w.age(&pk).await;
    worker.sweep().await.unwrap();
    deliver(&worker, &pk).await;
    let job = w.item(&pk).await;
    assert_eq!(attr::opt_s(&job, "status"), Some("DONE"), "{job:?}");
    assert_eq!(attr::opt_s(&job, "call_id"), Some(CALL_ID));
    assert!(
        w.calls().await.is_empty(),
        "the call existed: no POST /call at all"
    );
}

#[tokio::test]
async fn guard_rails_skip_or_fail_without_dialing() {
    let w = World::new(&[]).await;
    w.vapi_answers(201, None).await;
    let mut dnc: Value = serde_json::from_slice(&fixture("salesforce/contact.json")).unwrap();
    dnc["Id"] = json!("0035e00000DnCa1AAF");
    dnc["DoNotCall"] = json!(true);
    w.contact("0035e00000DnCa1AAF", dnc).await;
    let mut bad: Value = serde_json::from_slice(&fixture("salesforce/contact.json")).unwrap();
    bad["Id"] = json!("0035e00000BadPhAAJ");
    bad["Phone"] = json!("555-0199");
    w.contact("0035e00000BadPhAAJ", bad).await;
    // No such Contact: the query answers no record.
    contact_query_mock("0035e00000NoOneAAF", None)
        .mount(&w.sf)
        .await;
    let worker = w.worker().await;
    let dnc_pk = w.enqueue("dnc-1", "0035e00000DnCa1AAF").await;
    let bad_pk = w.enqueue("badphone-1", "0035e00000BadPhAAJ").await;
    let gone_pk = w.enqueue("gone-1", "0035e00000NoOneAAF").await;
    let failures = worker
        .handle(batch(&[
            (&dnc_pk, "PENDING"),
            (&bad_pk, "PENDING"),
            (&gone_pk, "PENDING"),
        ]))
        .await;
    assert!(failures.batch_item_failures.is_empty());

    let dnc = w.item(&dnc_pk).await;
    assert_eq!(attr::opt_s(&dnc, "status"), Some("SKIPPED"));
    assert!(attr::opt_s(&dnc, "reason").unwrap().contains("Do Not Call"));
    let bad = w.item(&bad_pk).await;
    assert_eq!(attr::opt_s(&bad, "status"), Some("SKIPPED"));
    assert!(
        attr::opt_s(&bad, "reason").unwrap().contains("E.164"),
        "{:?}",
        attr::opt_s(&bad, "reason")
    );
    let gone = w.item(&gone_pk).await;
    assert_eq!(attr::opt_s(&gone, "status"), Some("FAILED"));
    assert!(attr::opt_s(&gone, "last_error")
        .unwrap()
        .contains("not found"));
    assert_eq!(w.calls().await.len(), 0);
}

#[tokio::test]
async fn salesforce_outage_is_retried_not_failed() {
    let w = World::new(&[]).await;
    w.vapi_answers(201, None).await;
    Mock::given(method("GET"))
        .and(ContactQuery("0035e00000LimITAAZ".into()))
        .respond_with(json_answer(
            403,
            fixture_json("salesforce/request-limit-exceeded.json"),
        ))
        .mount(&w.sf)
        .await;
    let worker = w.worker().await;
    let pk = w.enqueue("limit-1", "0035e00000LimITAAZ").await;
    deliver(&worker, &pk).await;
    let job = w.item(&pk).await;
    assert_eq!(attr::opt_s(&job, "status"), Some("RETRY"));
    assert!(attr::opt_s(&job, "last_error").unwrap().contains("limit"));
    assert_eq!(w.calls().await.len(), 0);
}

#[tokio::test]
async fn a_dead_workers_job_completes_once_after_its_lease() {
    let w = World::new(&[("JOB_LEASE_SECS", "2")]).await;
    w.vapi_answers(201, None).await;
    let worker = w.worker().await;
    let pk = w.enqueue("dead-1", ADA).await;
    // A worker claims and "dies": lease set, nothing else.
    let claimed = worker
        .queue()
        .claim(&pk, sfvapi::now_millis())
        .await
        .unwrap();
    assert!(claimed.is_some());
    // While the lease holds, redelivery does nothing.
    deliver(&worker, &pk).await;
    assert_eq!(w.status(&pk).await, "RUNNING");
    tokio::time::sleep(Duration::from_millis(2100)).await;
    let report = worker.sweep().await.unwrap();
    assert_eq!(report.rescued, 1);
    deliver(&worker, &pk).await;
    deliver(&worker, &pk).await;
    assert_eq!(w.status(&pk).await, "DONE");
    assert_eq!(w.calls().await.len(), 1);
    assert_eq!(attr::opt_n(&w.item(&pk).await, "attempts"), Some(2));
}

#[tokio::test]
async fn an_unclaimed_pending_job_is_kicked_back_onto_the_stream() {
    let w = World::new(&[]).await;
    let worker = w.worker().await;
    let pk = w.enqueue("lost-1", ADA).await;
    // Its stream record was lost; five minutes pass.
    w.age(&pk).await;
    let report = worker.sweep().await.unwrap();
    assert_eq!(report.kicked, 1);
    let job = w.item(&pk).await;
    assert_eq!(attr::opt_s(&job, "status"), Some("PENDING"));
    assert_eq!(attr::opt_n(&job, "kicks"), Some(1));
    assert!(attr::opt_n(&job, "next_at").unwrap() > sfvapi::now_millis());
}

#[tokio::test]
async fn partial_batch_reports_only_the_poisoned_record() {
    let w = World::new(&[]).await;
    w.vapi_answers(201, None).await;
    let worker = w.worker().await;
    let mut pks = Vec::new();
    for i in 0..4 {
        pks.push(w.enqueue(&format!("batch-{i}"), ADA).await);
    }
    // An empty key is rejected by DynamoDB itself: the outcome of this record cannot be recorded.
    let mut images: Vec<(&str, &str)> = pks.iter().map(|p| (p.as_str(), "PENDING")).collect();
    images.insert(2, ("", "PENDING"));
    let resp = worker.handle(batch(&images)).await;
    let failed: Vec<String> = resp
        .batch_item_failures
        .into_iter()
        .filter_map(|f| f.item_identifier)
        .collect();
    assert_eq!(failed, vec!["102".to_string()]);
    for pk in &pks {
        assert_eq!(w.status(pk).await, "DONE");
    }
    assert_eq!(w.calls().await.len(), 4);
}

#[tokio::test]
async fn redrive_requeues_a_failed_job_and_it_runs_once_more() {
    let w = World::new(&[]).await;
    mount_times(
        &w.vapi,
        "POST",
        "/call",
        json_answer(400, fixture_json("vapi/create-call-error-400.json")),
        1,
    )
    .await;
    w.vapi_answers(201, None).await;
    let worker = w.worker().await;
    let pk = w.enqueue("redrive-1", ADA).await;
    deliver(&worker, &pk).await;
    let job = w.item(&pk).await;
    assert_eq!(attr::opt_s(&job, "status"), Some("FAILED"));
    assert!(attr::opt_s(&job, "last_error").unwrap().contains("400"));

    assert_eq!(
        worker
            .queue()
            .redrive(&pk, false, sfvapi::now_millis())
            .await
            .unwrap(),
        Redrive::Requeued
    );
    assert_eq!(w.status(&pk).await, "PENDING");
    deliver(&worker, &pk).await;
    assert_eq!(w.status(&pk).await, "DONE");
    assert_eq!(w.calls().await.len(), 2);
    assert!(
        matches!(worker.queue().redrive(&pk, false, 0).await.unwrap(), Redrive::NotRedrivable(s) if s == "DONE")
    );
    assert_eq!(
        worker
            .queue()
            .redrive("evt#sf#nope", false, 0)
            .await
            .unwrap(),
        Redrive::NotFound
    );
}

#[tokio::test]
async fn needs_review_redrive_requires_force() {
    // A dial Vapi could not be asked about (1 try allowed): the one case left for a person.
    let w = World::new(&[("VAPI_VERIFY_MAX_TRIES", "1")]).await;
    w.vapi_answers(504, None).await;
    let worker = w.worker().await;
    let pk = w.enqueue("review-1", ADA).await;
    deliver(&worker, &pk).await;
    mount(&w.vapi, "GET", "/call", ResponseTemplate::new(503)).await;
    w.age(&pk).await;
    worker.sweep().await.unwrap();
    deliver(&worker, &pk).await;
    assert_eq!(w.status(&pk).await, "NEEDS_REVIEW");
    assert_eq!(
        worker
            .queue()
            .redrive(&pk, false, sfvapi::now_millis())
            .await
            .unwrap(),
        Redrive::NeedsForce
    );
    assert_eq!(w.status(&pk).await, "NEEDS_REVIEW");
    assert_eq!(
        worker
            .queue()
            .redrive(&pk, true, sfvapi::now_millis())
            .await
            .unwrap(),
        Redrive::Requeued
    );
    assert_eq!(w.status(&pk).await, "PENDING");
}

// ---- report jobs -------------------------------------------------------------------------

/// Vapi's end-of-call report of a call the worker placed: its metadata carries the event, Contact
/// and Case, signed with the context key as the worker signs them.
fn report(ended_reason: &str) -> Vec<u8> {
    let mut v: Value = serde_json::from_slice(&fixture("vapi/end-of-call-report.json")).unwrap();
    v["message"]["endedReason"] = json!(ended_reason);
    sign_context(&mut v, "case-escalated-5005e00000AbCdEAAV-1", ADA, CASE);
    v.to_string().into_bytes()
}

#[tokio::test]
async fn a_report_delivered_three_times_makes_one_task_and_one_sms() {
    let w = World::new(&[]).await;
    w.twilio_accepts().await;
    let worker = w.worker().await;
    let body = report("customer-did-not-answer");
    for _ in 0..3 {
        assert_eq!(webhook_delivers(&w, &body).await, 200);
    }
    for _ in 0..3 {
        assert!(deliver(&worker, REPORT_PK).await.is_empty());
    }
    let job = w.item(REPORT_PK).await;
    assert_eq!(attr::opt_s(&job, "status"), Some("DONE"), "{job:?}");
    let creates = w.posts(&w.sf, "/services/data/v62.0/sobjects/Task").await;
    assert_eq!(creates.len(), 1);
    let task: Value = serde_json::from_slice(&creates[0].body).unwrap();
    assert_eq!(task["Vapi_Call_Id__c"], CALL_ID);
    assert_eq!(task["TaskSubtype"], "Call");
    assert_eq!(task["WhoId"], ADA);
    assert_eq!(task["WhatId"], CASE);
    assert_eq!(task["Status"], "Completed");
    assert_eq!(task["CallDisposition"], "customer-did-not-answer");
    assert_eq!(task["CallDurationInSeconds"], 195);
    let description = task["Description"].as_str().unwrap();
    assert!(description.contains("Customer was told the refund was issued."));
    assert!(description.contains("Recording: https://storage.example.com/recordings/c0ffee00.wav"));
    assert!(description.contains("User: Thanks, is it fixed?"));

    let sms = w.posts(&w.twilio, TWILIO_MESSAGES).await;
    assert_eq!(sms.len(), 1);
    let form = form_of(&sms[0]);
    assert_eq!(form["To"], "+14155550123");
    assert_eq!(form["From"], "+14155559999");
    assert!(form["Body"].starts_with("Hi Ada,"), "{}", form["Body"]);
    assert_eq!(
        attr::opt_s(&w.item(&format!("sms#{CALL_ID}")).await, "status"),
        Some("SENT")
    );

    // A redrive of the finished report (as an operator might) does not send a second SMS.
    set_status(&w.store, REPORT_PK, "PENDING").await;
    deliver(&worker, REPORT_PK).await;
    assert_eq!(w.sms().await.len(), 1);
}

#[tokio::test]
async fn follow_up_policy_not_reached_and_high_value() {
    // Reached, not high-value → no SMS.
    let w = World::new(&[]).await;
    w.twilio_accepts().await;
    let worker = w.worker().await;
    assert_eq!(
        webhook_delivers(&w, &report("customer-ended-call")).await,
        200
    );
    deliver(&worker, REPORT_PK).await;
    assert_eq!(w.status(REPORT_PK).await, "DONE");
    assert_eq!(w.sms().await.len(), 0);

    // Reached, but Ada's AnnualRevenue (250,000) ≥ HIGH_VALUE_REVENUE → SMS.
    let w = World::new(&[
        ("FOLLOWUP_HIGH_VALUE", "true"),
        ("HIGH_VALUE_REVENUE", "100000"),
    ])
    .await;
    w.twilio_accepts().await;
    let worker = w.worker().await;
    assert_eq!(
        webhook_delivers(&w, &report("customer-ended-call")).await,
        200
    );
    deliver(&worker, REPORT_PK).await;
    assert_eq!(w.status(REPORT_PK).await, "DONE");
    let sms = w.posts(&w.twilio, TWILIO_MESSAGES).await;
    assert_eq!(sms.len(), 1);
    assert!(form_of(&sms[0])["Body"].contains("thanks for speaking with us"));

    // Policy never → nothing even when not reached.
    let w = World::new(&[("FOLLOWUP_POLICY", "never")]).await;
    let worker = w.worker().await;
    assert_eq!(webhook_delivers(&w, &report("customer-busy")).await, 200);
    deliver(&worker, REPORT_PK).await;
    assert_eq!(w.status(REPORT_PK).await, "DONE");
    assert_eq!(
        w.twilio.received_requests().await.unwrap_or_default().len(),
        0
    );
}

#[tokio::test]
async fn twilio_timeout_is_needs_review_and_no_second_sms() {
    let w = World::new(&[]).await;
    w.twilio_answers(ResponseTemplate::new(201).set_delay(Duration::from_secs(3)))
        .await;
    let worker = w.worker().await;
    assert_eq!(webhook_delivers(&w, &report("voicemail")).await, 200);
    deliver(&worker, REPORT_PK).await;
    assert_eq!(w.status(REPORT_PK).await, "NEEDS_REVIEW");
    assert_eq!(
        attr::opt_s(&w.item(&format!("sms#{CALL_ID}")).await, "status"),
        Some("NEEDS_REVIEW")
    );
    // Forced redrive (an operator who did not check Twilio) still cannot send twice.
    worker
        .queue()
        .redrive(REPORT_PK, true, sfvapi::now_millis())
        .await
        .unwrap();
    deliver(&worker, REPORT_PK).await;
    assert_eq!(w.status(REPORT_PK).await, "NEEDS_REVIEW");
    assert_eq!(w.sms().await.len(), 1);
}

#[tokio::test]
async fn twilio_429_retries_and_21211_fails_with_twilios_message() {
    let w = World::new(&[]).await;
    mount_times(
        &w.twilio,
        "POST",
        TWILIO_MESSAGES,
        json_answer(429, fixture_json("twilio/error-rate-limited.json")),
        1,
    )
    .await;
    w.twilio_answers(json_answer(
        400,
        fixture_json("twilio/error-invalid-to.json"),
    ))
    .await;
    let worker = w.worker().await;
    assert_eq!(
        webhook_delivers(&w, &report("customer-did-not-answer")).await,
        200
    );
    deliver(&worker, REPORT_PK).await;
    assert_eq!(w.status(REPORT_PK).await, "RETRY");
    assert!(
        w.store
            .get(&format!("sms#{CALL_ID}"))
            .await
            .unwrap()
            .is_none(),
        "guard released: nothing was sent"
    );
    worker.sweep().await.unwrap();
    deliver(&worker, REPORT_PK).await;
    let job = w.item(REPORT_PK).await;
    assert_eq!(attr::opt_s(&job, "status"), Some("FAILED"));
    assert!(attr::opt_s(&job, "last_error")
        .unwrap()
        .contains("is not a valid phone number"));
}

#[tokio::test]
async fn a_report_before_call_item_is_correlated_by_its_signed_context_only() {
    // No call# yet: the report's signed metadata names the Contact and Case.
    let w = World::new(&[]).await;
    w.twilio_accepts().await;
    w.enqueue("case-escalated-5005e00000AbCdEAAV-1", ADA).await;
    let worker = w.worker().await;
    assert_eq!(
        webhook_delivers(&w, &report("customer-ended-call")).await,
        200
    );
    deliver(&worker, REPORT_PK).await;
    assert_eq!(w.status(REPORT_PK).await, "DONE");
    let creates = w.posts(&w.sf, "/services/data/v62.0/sobjects/Task").await;
    let task: Value = serde_json::from_slice(&creates[0].body).unwrap();
    assert_eq!(task["Vapi_Call_Id__c"], CALL_ID);
    assert_eq!(task["WhoId"], ADA);
    assert_eq!(task["WhatId"], CASE);

    // The same report of a call sfvapi did not place, whose unsigned metadata names that very
    // event (anyone can start a call on the assistant and set metadata): no Task, no SMS.
    let w = World::new(&[]).await;
    w.twilio_accepts().await;
    w.enqueue("case-escalated-5005e00000AbCdEAAV-1", ADA).await;
    let worker = w.worker().await;
    let forged = fixture("vapi/end-of-call-report.json");
    assert_eq!(webhook_delivers(&w, &forged).await, 200);
    deliver(&worker, REPORT_PK).await;
    let job = w.item(REPORT_PK).await;
    assert_eq!(attr::opt_s(&job, "status"), Some("SKIPPED"), "{job:?}");
    assert!(attr::opt_s(&job, "reason")
        .unwrap()
        .contains("not a call sfvapi placed"));
    assert!(w
        .posts(&w.sf, "/services/data/v62.0/sobjects/Task")
        .await
        .is_empty());
    assert!(w.sms().await.is_empty());
}

#[tokio::test]
async fn a_tool_call_without_snapshot_is_answered_from_salesforce_live() {
    let w = World::new(&[]).await;
    let vars: HashMap<&str, String> = HashMap::from([
        ("TABLE_NAME", w.store.table().to_owned()),
        (
            "VAPI_SERVER_SECRET_ARN",
            w.vars["VAPI_SERVER_SECRET_ARN"].clone(),
        ),
    ]);
    let config =
        sfvapi::vapi::config::VapiWebhookConfig::from_env(&Env::new(|k| vars.get(k).cloned()))
            .unwrap();
    let sf_vars = w.vars.clone();
    // The webhook only reads the token item the refresher keeps fresh; it cannot read the
    // connection secret.
    let sf = sfvapi::config::SalesforceConfig::for_token_reader(&Env::new(move |k| {
        sf_vars.get(k).cloned()
    }))
    .unwrap();
    let connection =
        sfvapi::salesforce::Connection::token_reader(sf, w.store.clone(), secrets_cache().await)
            .unwrap();
    let lookup = sfvapi::salesforce::lookup::SalesforceLookup::new(connection.rest, 100_000.0);
    let app =
        sfvapi::vapi::webhook::VapiWebhookApp::new(config, w.store.clone(), secrets_cache().await)
            .with_live_lookup(std::sync::Arc::new(lookup));
    // A call whose call# the worker has not written yet: its signed metadata names the ids.
    let mut body: Value = serde_json::from_slice(&fixture("vapi/tool-calls.json")).unwrap();
    sign_context(&mut body, "case-escalated-5005e00000AbCdEAAV-1", ADA, CASE);
    // No token in the item yet: "not available", and the webhook does not refresh.
    let a = answer(app.handle(vapi_signed(body.to_string().as_bytes())).await);
    assert_eq!(a.status, 200, "{}", a.body);
    assert!(a.json["results"][0]["error"].is_string(), "{}", a.body);
    assert!(
        received_on(&w.sf, "/services/oauth2/token")
            .await
            .is_empty(),
        "the webhook never calls OAuth"
    );
    // The refresher writes the token; once the failure backoff (2 s, so a burst of tool calls
    // is not a burst of reads) has passed, the retry is answered live.
    seed_live_token(&w.store, "refreshed-by-the-refresher", &w.sf.uri(), 1).await;
    tokio::time::sleep(Duration::from_millis(2_100)).await;
    let a = answer(app.handle(vapi_signed(body.to_string().as_bytes())).await);
    assert_eq!(a.status, 200, "{}", a.body);
    let result = a.json["results"][0]["result"]
        .as_str()
        .unwrap_or_else(|| panic!("{}", a.body));
    assert_eq!(a.json["results"][0]["toolCallId"], "call_lookup_1");
    assert!(result.contains("Refund not received"), "{result}");
    assert_eq!(
        received_on(&w.sf, &format!("/services/data/v62.0/sobjects/Case/{CASE}"))
            .await
            .len(),
        1
    );
    assert!(received_on(&w.sf, "/services/oauth2/token")
        .await
        .is_empty());
}

#[tokio::test]
async fn an_unreadable_job_fails_at_once_instead_of_looping() {
    let w = World::new(&[]).await;
    let worker = w.worker().await;
    let mut item = sfvapi::jobs::new_job_item(
        "evt#sf#bogus-1".into(),
        sfvapi::jobs::JobKind::Dial,
        "{}".into(),
        sfvapi::now_millis(),
        Duration::from_secs(3600),
    );
    item.insert("kind".into(), attr::s("teleport"));
    w.store.put_if_absent(item).await.unwrap();
    assert!(
        deliver(&worker, "evt#sf#bogus-1").await.is_empty(),
        "not a batch failure"
    );
    let job = w.item("evt#sf#bogus-1").await;
    assert_eq!(attr::opt_s(&job, "status"), Some("FAILED"));
    assert!(attr::opt_s(&job, "last_error")
        .unwrap()
        .contains("no known kind"));
    assert!(!job.contains_key("retry_shard"));
}

#[tokio::test]
async fn a_retry_after_the_sweep_gave_up_stays_in_the_sweep_index() {
    let w = World::new(&[]).await;
    let worker = w.worker().await;
    let pk = w.enqueue("late-1", ADA).await;
    let q = worker.queue();
    let job = q.claim(&pk, sfvapi::now_millis()).await.unwrap().unwrap();
    assert!(q
        .mark_dialing(&job, "{}", None, sfvapi::now_millis())
        .await
        .unwrap());
    // The sweep gave up on the dial (as if its lease had run out)...
    raw_update(
        &w.store,
        &pk,
        "SET #s = :r REMOVE retry_shard, next_at, lease_until",
        &[("#s", "status")],
        &[(":r", attr::s("NEEDS_REVIEW"))],
    )
    .await;
    // ...then Vapi's answer proves no call was made: the same run writes RETRY.
    let outcome = sfvapi::jobs::queue::Outcome::Retry {
        error: "Vapi 503".into(),
        not_before: None,
    };
    let written = q
        .finish(&job, &outcome, sfvapi::now_millis(), &[])
        .await
        .unwrap();
    assert_eq!(written, Some(sfvapi::jobs::JobStatus::Retry));
    let item = w.item(&pk).await;
    assert!(
        item.contains_key("retry_shard") && item.contains_key("next_at"),
        "{item:?}"
    );
    assert_eq!(worker.sweep().await.unwrap().requeued, 1);
}

// ---- dial pacing and Vapi's concurrency limit -----------------------------------------------

#[tokio::test]
async fn a_report_that_never_comes_is_fetched_from_vapi_and_recorded_once() {
    let w = World::new(&[]).await;
    w.vapi_answers(201, None).await;
    w.twilio_accepts().await;
    let worker = w.worker().await;
    let pk = w.enqueue("lost-report-1", ADA).await;
    deliver(&worker, &pk).await;
    assert_eq!(w.status(&pk).await, "DONE");
    // Not overdue yet: the sweep leaves the call alone.
    assert!(worker.sweep().await.unwrap().report_checks.is_empty());

    // Overdue, and the call is still going on: look again later, nothing recorded.
    mount_times(
        &w.vapi,
        "GET",
        &format!("/call/{CALL_ID}"),
        json_answer(200, vapi_call(CALL_ID, "lost-report-1", None)),
        1,
    )
    .await;
    w.age(&pk).await;
    assert_eq!(
        worker.sweep().await.unwrap().report_checks,
        std::slice::from_ref(&pk)
    );
    assert!(w.store.get(REPORT_PK).await.unwrap().is_none());
    assert!(attr::opt_n(&w.item(&pk).await, "next_at").unwrap() > sfvapi::now_millis());

    // Overdue and ended: the report is recovered from Vapi, through the webhook's own write.
    mount(
        &w.vapi,
        "GET",
        &format!("/call/{CALL_ID}"),
        json_answer(
            200,
            vapi_call(CALL_ID, "lost-report-1", Some("customer-did-not-answer")),
        ),
    )
    .await;
    w.age(&pk).await;
    worker.sweep().await.unwrap();
    let job = w.item(REPORT_PK).await;
    assert_eq!(attr::opt_s(&job, "status"), Some("PENDING"));
    assert!(
        !w.item(&pk).await.contains_key("retry_shard"),
        "the watch is over"
    );
    assert!(worker.sweep().await.unwrap().report_checks.is_empty());
    // The late report from Vapi is a duplicate of the recovered one.
    let mut late: Value = serde_json::from_slice(&report("customer-did-not-answer")).unwrap();
    late["message"]["call"]["id"] = json!(CALL_ID);
    assert_eq!(webhook_delivers(&w, late.to_string().as_bytes()).await, 200);
    assert!(deliver(&worker, REPORT_PK).await.is_empty());
    assert_eq!(w.status(REPORT_PK).await, "DONE");
    // One Task (created once), one not-reached SMS.
    let task_writes: Vec<_> = w.posts(&w.sf, "/services/data/v62.0/sobjects/Task").await;
    assert_eq!(task_writes.len(), 1);
    let task: Value = serde_json::from_slice(&task_writes[0].body).unwrap();
    assert_eq!(task["Vapi_Call_Id__c"], CALL_ID);
    assert!(task["Description"]
        .as_str()
        .unwrap()
        .contains("Hello, is this Ada?"));
    assert_eq!(w.sms().await.len(), 1);
}

fn status_update(call_id: &str, status: &str) -> Vec<u8> {
    let mut v: Value = serde_json::from_slice(&fixture("vapi/status-update.json")).unwrap();
    v["message"]["status"] = json!(status);
    v["message"]["call"]["id"] = json!(call_id);
    v["message"]["timestamp"] = json!(sfvapi::now_millis());
    v.to_string().into_bytes()
}

#[tokio::test]
async fn a_blocked_201_goes_back_to_retry_frees_its_slot_and_dials_again() {
    let w = World::new(&[]).await;
    w.vapi_creates_calls(true, Some(1)).await;
    w.vapi_creates_calls(false, None).await;
    let worker = w.worker().await;
    let pk = w.enqueue("blocked-1", ADA).await;

    assert!(deliver(&worker, &pk).await.is_empty());
    let job = w.item(&pk).await;
    assert_eq!(attr::opt_s(&job, "status"), Some("RETRY"), "{job:?}");
    assert!(attr::opt_s(&job, "last_error")
        .unwrap()
        .contains("concurrencyBlocked"));
    assert!(
        attr::opt_s(&job, "call_id").is_none(),
        "a blocked call is no call"
    );
    assert_eq!(
        w.live().await,
        0,
        "nothing was dialled, so no slot stays held"
    );

    assert_eq!(worker.sweep().await.unwrap().requeued, 1);
    deliver(&worker, &pk).await;
    let job = w.item(&pk).await;
    assert_eq!(attr::opt_s(&job, "status"), Some("DONE"));
    assert_eq!(w.calls().await.len(), 2);
    assert_eq!(
        w.live().await,
        1,
        "the placed call holds its slot until it ends"
    );
}

#[tokio::test]
async fn a_limit_400_is_retried_and_a_validation_400_fails() {
    let w = World::new(&[]).await;
    // Vapi's NestJS error shape; 400 covers "client/policy failure (limits, validation, missing
    // resources)" (Vapi OpenAPI, `POST /call` responses).
    mount(&w.vapi, "POST", "/call", json_answer(400, json!({"message": "Over Concurrency Limit.", "error": "Bad Request", "statusCode": 400}))).await;
    let worker = w.worker().await;
    let pk = w.enqueue("limit-400", ADA).await;
    deliver(&worker, &pk).await;
    let job = w.item(&pk).await;
    assert_eq!(attr::opt_s(&job, "status"), Some("RETRY"), "{job:?}");
    assert!(attr::opt_s(&job, "last_error")
        .unwrap()
        .contains("Over Concurrency Limit"));
    assert_eq!(w.live().await, 0);

    let w = World::new(&[]).await;
    mount(&w.vapi, "POST", "/call", json_answer(400, json!({ "message": ["assistantId must be a UUID"], "error": "Bad Request", "statusCode": 400 }))).await;
    let worker = w.worker().await;
    let pk = w.enqueue("invalid-400", ADA).await;
    deliver(&worker, &pk).await;
    let job = w.item(&pk).await;
    assert_eq!(attr::opt_s(&job, "status"), Some("FAILED"), "{job:?}");
    assert!(attr::opt_s(&job, "last_error")
        .unwrap()
        .contains("assistantId must be a UUID"));
    assert_eq!(w.live().await, 0);
}

#[tokio::test]
async fn pacing_waits_for_a_free_slot_and_an_ended_call_frees_one() {
    let w = World::new(&[
        ("VAPI_MAX_CONCURRENT_CALLS", "2"),
        ("VAPI_SLOT_WAIT_SECS", "1"),
    ])
    .await;
    w.vapi_creates_calls(false, None).await;
    let worker = w.worker().await;
    let pks = [
        w.enqueue("paced-1", ADA).await,
        w.enqueue("paced-2", ADA).await,
        w.enqueue("paced-3", ADA).await,
    ];
    for pk in &pks {
        assert!(deliver(&worker, pk).await.is_empty());
    }
    assert_eq!(w.calls().await.len(), 2, "never more live calls than slots");
    assert_eq!(w.live().await, 2);
    let waiting = w.item(&pks[2]).await;
    assert_eq!(attr::opt_s(&waiting, "status"), Some("RETRY"));
    assert_eq!(
        attr::opt_s(&waiting, "reason"),
        Some("waiting for a free call slot (2 of 2 live)")
    );
    assert_eq!(
        attr::opt_n(&waiting, "attempts"),
        Some(0),
        "waiting uses up no attempt"
    );
    // Not due yet: the sweep leaves it alone.
    assert_eq!(worker.sweep().await.unwrap().requeued, 0);

    // The first call ends: Vapi's `status-update` `ended` frees its slot.
    let first = attr::opt_s(&w.item(&pks[0]).await, "call_id")
        .unwrap()
        .to_owned();
    assert_eq!(
        webhook_delivers(&w, &status_update(&first, "ended")).await,
        200
    );
    assert_eq!(w.live().await, 1);

    tokio::time::sleep(Duration::from_millis(1600)).await;
    assert_eq!(worker.sweep().await.unwrap().requeued, 1);
    deliver(&worker, &pks[2]).await;
    assert_eq!(w.status(&pks[2]).await, "DONE");
    assert_eq!(w.calls().await.len(), 3);
    assert_eq!(w.live().await, 2);

    // The second call's `ended` is lost; its end-of-call report's job frees the slot instead.
    let second = attr::opt_s(&w.item(&pks[1]).await, "call_id")
        .unwrap()
        .to_owned();
    let mut rep: Value = serde_json::from_slice(&report("customer-ended-call")).unwrap();
    rep["message"]["call"]["id"] = json!(second);
    assert_eq!(webhook_delivers(&w, rep.to_string().as_bytes()).await, 200);
    let report_job = format!("evt#vapi#{second}#end-of-call-report");
    assert!(deliver(&worker, &report_job).await.is_empty());
    assert_eq!(w.status(&report_job).await, "DONE");
    assert_eq!(w.live().await, 1);
    // Every event was called exactly once.
    let mut ids: Vec<String> = Vec::new();
    for c in w.calls().await {
        let b: Value = serde_json::from_slice(&c.body).unwrap();
        ids.push(
            b["assistantOverrides"]["metadata"]["sfvapiEventId"]
                .as_str()
                .unwrap()
                .to_owned(),
        );
    }
    ids.sort();
    assert_eq!(ids, ["paced-1", "paced-2", "paced-3"]);
}

#[tokio::test]
async fn an_ended_that_beats_the_call_record_still_frees_the_slot() {
    let w = World::new(&[("VAPI_MAX_CONCURRENT_CALLS", "1")]).await;
    w.vapi_creates_calls(false, None).await;
    // Vapi's `ended` for the call about to be created arrives before the worker records call#.
    let first_id = "c0ffee00-1111-4222-8333-000000000000";
    assert_eq!(
        webhook_delivers(&w, &status_update(first_id, "ended")).await,
        200
    );
    let worker = w.worker().await;
    let pk = w.enqueue("early-end", ADA).await;
    deliver(&worker, &pk).await;
    assert_eq!(attr::opt_s(&w.item(&pk).await, "call_id"), Some(first_id));
    assert_eq!(
        w.live().await,
        0,
        "the worker saw `ended` on call# and released the slot"
    );
}

#[test]
fn pacing_settings_are_checked_at_cold_start() {
    let base = |extra: &[(&str, &str)]| {
        let mut vars: HashMap<String, String> = [
            ("TABLE_NAME", "t"),
            ("SF_CONNECTION_SECRET_ARN", "arn:sf"),
            ("VAPI_SECRET_ARN", "arn:vapi"),
            ("VAPI_ASSISTANT_ID", "a"),
            ("VAPI_PHONE_NUMBER_ID", "p"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
        for (k, v) in extra {
            vars.insert((*k).to_owned(), (*v).to_owned());
        }
        WorkerConfig::from_env(&Env::new(move |k| vars.get(k).cloned()))
    };
    let c = base(&[]).expect("defaults");
    assert_eq!(
        c.pacing.max_concurrent_calls, 10,
        "Vapi's default org limit"
    );
    assert_eq!(c.pacing.slot_hold, Duration::from_secs(600 + 120));
    for (var, bad) in [
        ("VAPI_MAX_CONCURRENT_CALLS", "0"),
        ("VAPI_MAX_CONCURRENT_CALLS", "many"),
        ("VAPI_MAX_CALL_SECS", "5"),
    ] {
        let e = base(&[(var, bad)]).expect_err(bad).to_string();
        assert!(e.contains(var), "{e}");
    }
}

#[tokio::test]
async fn a_3_mb_end_of_call_report_is_accepted_and_its_task_holds_the_cut_transcript() {
    let w = World::new(&[]).await;
    w.twilio_accepts().await;
    let worker = w.worker().await;
    // A long call: the transcript as text and again as messages, about 3 MB in all.
    let line = "User: I have been waiting for the refund for weeks and nobody calls back. ";
    let transcript = line.repeat(1_000_000 / line.len());
    let messages: Vec<Value> = (0..20_000)
        .map(|i| json!({"role": "user", "message": format!("{line}{i}"), "time": i, "secondsFromStart": i}))
        .collect();
    let mut rep: Value = serde_json::from_slice(&report("customer-ended-call")).unwrap();
    rep["message"]["artifact"]["transcript"] = json!(transcript);
    rep["message"]["artifact"]["messages"] = json!(messages);
    let body = rep.to_string().into_bytes();
    assert!(body.len() > 3_000_000, "{} bytes", body.len());
    assert_eq!(
        webhook_delivers(&w, &body).await,
        200,
        "the report is accepted"
    );
    assert!(deliver(&worker, REPORT_PK).await.is_empty());
    assert_eq!(w.status(REPORT_PK).await, "DONE");
    let creates = w.posts(&w.sf, "/services/data/v62.0/sobjects/Task").await;
    assert_eq!(creates.len(), 1);
    let task: Value = serde_json::from_slice(&creates[0].body).unwrap();
    let description = task["Description"].as_str().unwrap();
    assert!(
        description.chars().count() <= 32_000,
        "Task.Description ≤ 32,000 characters"
    );
    assert!(
        description.contains("[… transcript truncated]"),
        "cut as documented"
    );
    assert!(description.contains("I have been waiting for the refund"));

    // Any other message that large is still refused.
    let mut status: Value = serde_json::from_slice(&status_update(CALL_ID, "in-progress")).unwrap();
    status["message"]["artifact"] = json!({"messages": messages});
    assert_eq!(
        webhook_delivers(&w, status.to_string().as_bytes()).await,
        413
    );
}

// ------------------------------------------------------------------ routing rules in the worker

/// A dial job as the relay writes it for a rule (`rule`), with or without a Contact.
async fn enqueue_routed(
    w: &World,
    event_id: &str,
    contact: Option<&str>,
    case: &str,
    rule: Option<&str>,
) -> String {
    let req = sfvapi::salesforce::events::DialRequest {
        event_id: sfvapi::ids::SalesforceEventId::parse("e", event_id).unwrap(),
        contact_id: contact.map(|c| sfvapi::ids::SalesforceId::parse("c", c).unwrap()),
        case_id: Some(sfvapi::ids::SalesforceId::parse("k", case).unwrap()),
        priority: None,
        reason: None,
        source: sfvapi::salesforce::events::EventSource::ChangeEvent,
        rule: rule.map(str::to_owned),
    };
    let item = sfvapi::jobs::new_dial_job(&req, sfvapi::now_millis(), Duration::from_secs(86_400));
    w.store.put_if_absent(item).await.unwrap();
    format!("evt#sf#{event_id}")
}

#[tokio::test]
async fn a_job_without_a_contact_calls_the_cases_contact_and_keeps_it_on_the_job() {
    let w = World::new(&[]).await;
    w.vapi_answers(201, None).await;
    let worker = w.worker().await;
    let pk = enqueue_routed(&w, "cdc-no-contact-1", None, CASE, None).await;
    assert!(deliver(&worker, &pk).await.is_empty());
    let calls = w.calls().await;
    assert_eq!(calls.len(), 1);
    let body: Value = serde_json::from_slice(&calls[0].body).unwrap();
    assert_eq!(body["customer"]["number"], "+14155550123");
    assert_eq!(body["assistantOverrides"]["metadata"]["contactId"], ADA);
    let job = w.item(&pk).await;
    assert_eq!(attr::opt_s(&job, "status"), Some("DONE"));
    // Kept for a later run that has to ask Vapi about this dial, and for the report job.
    assert_eq!(attr::opt_s(&job, "contact_id"), Some(ADA));
    let call = w.item(&format!("call#{CALL_ID}")).await;
    assert_eq!(attr::opt_s(&call, "contact_id"), Some(ADA));
    // The Case was read once (for its Contact and the snapshot), before the Contact.
    let reads: Vec<String> =
        received_on(&w.sf, &format!("/services/data/v62.0/sobjects/Case/{CASE}"))
            .await
            .into_iter()
            .map(|r| r.url.to_string())
            .collect();
    assert_eq!(reads.len(), 1, "{reads:?}");
}

#[tokio::test]
async fn a_case_without_a_contact_is_skipped_with_the_reason() {
    let w = World::new(&[]).await;
    w.vapi_answers(201, None).await;
    const LONELY: &str = "5005e00000DnCa1AAF";
    mount(&w.sf, "GET", &format!("/services/data/v62.0/sobjects/Case/{LONELY}"), json_answer(200, json!({ "attributes": {"type": "Case"}, "Id": LONELY, "CaseNumber": "00001027", "Subject": "Web case", "Status": "New", "Priority": "High", "ContactId": null }))).await;
    let worker = w.worker().await;
    let pk = enqueue_routed(&w, "cdc-lonely-1", None, LONELY, None).await;
    deliver(&worker, &pk).await;
    let job = w.item(&pk).await;
    assert_eq!(attr::opt_s(&job, "status"), Some("SKIPPED"));
    let reason = attr::opt_s(&job, "reason").unwrap();
    assert!(
        reason.contains(LONELY) && reason.contains("no Contact"),
        "{reason}"
    );
    assert!(w.calls().await.is_empty());
}

#[tokio::test]
async fn the_jobs_rule_chooses_the_assistant_number_variables_and_quiet_hours() {
    let doc = routing_file(
        "version: 1\nrules:\n  - id: escalations\n    when: {detailType: CaseChangeEvent}\n    case: $recordId\n    contact: case.ContactId\n    call:\n      assistantId: asst-escalations\n      phoneNumberId: pn-escalations\n      quietHours: none\n      variables: {campaign: escalation, priority: P1}\n",
    );
    // Quiet now by the environment (from an hour ago to an hour from now, UTC): only the rule's
    // `quietHours: none` lets a call through.
    let minute = (sfvapi::now_millis() / 60_000).rem_euclid(1440);
    let hhmm = |m: i64| {
        format!(
            "{:02}:{:02}",
            m.rem_euclid(1440) / 60,
            m.rem_euclid(1440) % 60
        )
    };
    let window = format!("{}-{}", hhmm(minute - 60), hhmm(minute + 60));
    let w = World::new(&[("ROUTING_FILE", &doc), ("QUIET_HOURS", &window)]).await;
    w.vapi_answers(201, None).await;
    let worker = w.worker().await;
    let ruled = enqueue_routed(&w, "ruled-1", Some(ADA), CASE, Some("escalations")).await;
    assert!(deliver(&worker, &ruled).await.is_empty());
    let calls = w.calls().await;
    assert_eq!(calls.len(), 1);
    let body: Value = serde_json::from_slice(&calls[0].body).unwrap();
    assert_eq!(body["assistantId"], "asst-escalations");
    assert_eq!(body["phoneNumberId"], "pn-escalations");
    let vars = &body["assistantOverrides"]["variableValues"];
    assert_eq!(vars["campaign"], "escalation");
    assert_eq!(vars["priority"], "P1", "the admin's value wins");
    // Without a rule the environment applies: quiet hours defer the call.
    let plain = enqueue_routed(&w, "plain-1", Some(ADA), CASE, None).await;
    deliver(&worker, &plain).await;
    let job = w.item(&plain).await;
    assert_eq!(attr::opt_s(&job, "status"), Some("RETRY"));
    assert!(attr::opt_s(&job, "last_error")
        .or(attr::opt_s(&job, "reason"))
        .unwrap_or_default()
        .contains("quiet hours"));
    // A rule the document no longer has: FAILED, saying so (nothing is called).
    let gone = enqueue_routed(&w, "gone-1", Some(ADA), CASE, Some("renamed")).await;
    deliver(&worker, &gone).await;
    let job = w.item(&gone).await;
    assert_eq!(attr::opt_s(&job, "status"), Some("FAILED"));
    let error = attr::opt_s(&job, "last_error").unwrap();
    assert!(
        error.contains("\"renamed\"") && error.contains(&doc),
        "{error}"
    );
    assert_eq!(w.calls().await.len(), 1);
}

// ---- the calling policy (sfvapi::policy) -------------------------------------------------

/// The worker's policy clock at `rfc3339` (the calls still go out now, on the system's clock).
fn clock_at(rfc3339: &str) -> sfvapi::policy::Clock {
    sfvapi::policy::Clock::starting_at(
        chrono::DateTime::parse_from_rfc3339(rfc3339)
            .unwrap()
            .with_timezone(&chrono::Utc),
    )
}

/// The SOQL queries Salesforce received, joined (what fields the worker asked for).
async fn queries(w: &World) -> String {
    soql_received(&w.sf).await.join("\n")
}

/// A routing document: the built-in HTTP rule with `policy` as the document's defaults.
fn policy_document(policy: &str) -> String {
    routing_file(&format!(
        "version: 1\npolicy: {policy}\nrules:\n  - id: http-flat\n    when: {{route: events}}\n    eventId: eventId\n    contact: contactId\n    case: caseId\n    priority: priority\n    reason: reason\n"
    ))
}

#[tokio::test]
async fn a_los_angeles_number_at_six_pacific_waits_until_eight_pacific_using_no_attempt() {
    // The default window (08:00-21:00) in the number's zone: +1 415 is America/Los_Angeles.
    let w = World::new(&[("CALL_HOURS", "08:00-21:00")]).await;
    w.vapi_answers(201, None).await;
    let worker = w.worker().await;
    // 13:00 UTC in July = 06:00 PDT (09:00 in New York: a UTC-offset rule would have called).
    let clock = clock_at("2026-07-15T13:00:00Z");
    worker.set_clock(clock);
    let pk = w.enqueue("window-la-1", ADA).await;
    assert!(deliver(&worker, &pk).await.is_empty());
    let job = w.item(&pk).await;
    assert_eq!(attr::opt_s(&job, "status"), Some("RETRY"));
    assert_eq!(
        attr::opt_n(&job, "attempts"),
        Some(0),
        "waiting uses no attempt"
    );
    let reason = attr::opt_s(&job, "reason").unwrap();
    assert!(reason.contains("08:00 PDT on Wed 2026-07-15"), "{reason}");
    assert!(reason.contains("(2026-07-15T15:00:00Z)"), "{reason}");
    assert!(reason.contains("America/Los_Angeles"), "{reason}");
    // Due when 08:00 Pacific comes on the policy's clock (two hours on the system's).
    let due = attr::opt_n(&job, "next_at").unwrap();
    let expected = clock.to_system_ms(
        chrono::DateTime::parse_from_rfc3339("2026-07-15T15:00:00Z")
            .unwrap()
            .with_timezone(&chrono::Utc),
    );
    assert!((due - expected).abs() < 5_000, "{due} vs {expected}");
    assert!(w.calls().await.is_empty());
    // 08:00:30 Pacific: the sweep hands it back and it calls.
    worker.set_clock(clock_at("2026-07-15T15:00:30Z"));
    w.age(&pk).await;
    assert_eq!(worker.sweep().await.unwrap().requeued, 1);
    deliver(&worker, &pk).await;
    assert_eq!(w.status(&pk).await, "DONE");
    assert_eq!(w.calls().await.len(), 1);
}

#[tokio::test]
async fn the_contacts_zone_field_overrides_the_numbers_and_is_read_with_the_contact() {
    let doc = policy_document("{timeZoneField: Time_Zone__c}");
    let w = World::new(&[("ROUTING_FILE", &doc), ("CALL_HOURS", "08:00-21:00")]).await;
    w.vapi_answers(201, None).await;
    let mut ada: Value = serde_json::from_slice(&fixture("salesforce/contact.json")).unwrap();
    ada["Time_Zone__c"] = json!("Europe/Berlin");
    contact_query_mock(ADA, Some(ada))
        .with_priority(1)
        .mount(&w.sf)
        .await;
    let worker = w.worker().await;
    // 06:00 in Los Angeles, 15:00 in Berlin: the Contact's own zone decides, and it is day.
    worker.set_clock(clock_at("2026-07-15T13:00:00Z"));
    let pk = w.enqueue("zone-field-1", ADA).await;
    deliver(&worker, &pk).await;
    assert_eq!(w.status(&pk).await, "DONE");
    assert_eq!(w.calls().await.len(), 1);
    assert!(queries(&w).await.contains("Time_Zone__c"));
}

#[tokio::test]
async fn without_consent_nobody_is_dialled() {
    let doc = policy_document("{consent: {field: Voice_Consent__c, values: [true]}}");
    let w = World::new(&[("ROUTING_FILE", &doc)]).await;
    w.vapi_answers(201, None).await;
    let worker = w.worker().await;
    // The fixture's Contact has no consent field value: missing means no.
    let pk = w.enqueue("consent-1", ADA).await;
    deliver(&worker, &pk).await;
    let job = w.item(&pk).await;
    assert_eq!(attr::opt_s(&job, "status"), Some("SKIPPED"));
    let reason = attr::opt_s(&job, "reason").unwrap();
    assert!(
        reason.starts_with("no consent: Contact.Voice_Consent__c"),
        "{reason}"
    );
    assert!(
        queries(&w).await.contains("Voice_Consent__c"),
        "read in the Contact's query"
    );
    assert!(w.calls().await.is_empty());
}

#[tokio::test]
async fn two_events_for_one_customer_inside_the_cap_make_one_call() {
    let w = World::new(&[("CALL_CAP", "1/24h")]).await;
    w.vapi_answers(201, None).await;
    let (a, b) = (w.worker().await, w.worker().await);
    let one = w.enqueue("cap-1", ADA).await;
    let two = w.enqueue("cap-2", ADA).await;
    // Two workers at the same moment: one conditional write each, one wins.
    let (ra, rb) = tokio::join!(deliver(&a, &one), deliver(&b, &two));
    assert!(ra.is_empty() && rb.is_empty());
    assert_eq!(
        w.calls().await.len(),
        1,
        "two events a moment apart: one call"
    );
    let statuses = [w.status(&one).await, w.status(&two).await];
    assert!(statuses.contains(&"DONE".to_owned()), "{statuses:?}");
    let waiting = if statuses[0] == "DONE" { &two } else { &one };
    let job = w.item(waiting).await;
    assert_eq!(attr::opt_s(&job, "status"), Some("RETRY"));
    let reason = attr::opt_s(&job, "reason").unwrap();
    assert!(
        reason.starts_with("cap reached: 1 call(s) per 1d for this Contact"),
        "{reason}"
    );
    // It waits a day (onCap: wait), and running it again counts nothing twice.
    let due = attr::opt_n(&job, "next_at").unwrap();
    assert!(due > sfvapi::now_millis() + 23 * 3_600_000, "{due}");
    w.age(waiting).await;
    worker_sweep_and_deliver(&a, &w, waiting).await;
    assert_eq!(w.status(waiting).await, "RETRY");
    assert_eq!(w.calls().await.len(), 1);
    // The same number under another Contact is capped too (the number's own ledger).
    let other = "0035e00000DnCa1AAF";
    let mut twin: Value = serde_json::from_slice(&fixture("salesforce/contact.json")).unwrap();
    twin["Id"] = json!(other);
    w.contact(other, twin).await;
    let three = w.enqueue("cap-3", other).await;
    deliver(&a, &three).await;
    let reason = attr::opt_s(&w.item(&three).await, "reason")
        .unwrap()
        .to_owned();
    assert!(reason.contains("for this number"), "{reason}");
    assert_eq!(w.calls().await.len(), 1);
}

async fn worker_sweep_and_deliver(worker: &Worker, w: &World, pk: &str) {
    worker.sweep().await.unwrap();
    assert_eq!(w.status(pk).await, "PENDING");
    deliver(worker, pk).await;
}

/// Vapi's end-of-call report of call `call_id` of the fixture's event.
fn report_of(call_id: &str, ended_reason: &str) -> Vec<u8> {
    let mut v: Value = serde_json::from_slice(&report(ended_reason)).unwrap();
    v["message"]["call"]["id"] = json!(call_id);
    v.to_string().into_bytes()
}

const EVENT_OF_THE_REPORTS: &str = "case-escalated-5005e00000AbCdEAAV-1";

#[tokio::test]
async fn a_call_that_reached_nobody_is_tried_again_after_the_delay_and_one_sms_follows_the_last() {
    let doc = policy_document("{retry: {on: [no-answer, voicemail], after: [1s], maxCalls: 2}}");
    let w = World::new(&[("ROUTING_FILE", &doc)]).await;
    // Vapi gives each call its own id: the fixture's first, then another.
    w.vapi_answers(201, Some(1)).await;
    const SECOND: &str = "c0ffee00-2222-4222-8333-444455556666";
    let mut created: Value =
        serde_json::from_slice(&fixture("vapi/create-call-response.json")).unwrap();
    created["id"] = json!(SECOND);
    mount(&w.vapi, "POST", "/call", json_answer(201, created)).await;
    w.twilio_accepts().await;
    let worker = w.worker().await;
    let first = w.enqueue(EVENT_OF_THE_REPORTS, ADA).await;
    deliver(&worker, &first).await;
    assert_eq!(w.status(&first).await, "DONE");

    // Call 1 was not answered: its report job (run twice) schedules call 2 once, and no SMS.
    assert_eq!(
        webhook_delivers(&w, &report_of(CALL_ID, "customer-did-not-answer")).await,
        200
    );
    for _ in 0..2 {
        w.age(REPORT_PK).await;
        set_status(&w.store, REPORT_PK, "PENDING").await;
        deliver(&worker, REPORT_PK).await;
        assert_eq!(w.status(REPORT_PK).await, "DONE");
    }
    let second = format!("evt#sf#{EVENT_OF_THE_REPORTS}#2");
    let retry = w.item(&second).await;
    assert_eq!(attr::opt_s(&retry, "status"), Some("RETRY"));
    assert!(attr::opt_s(&retry, "reason")
        .unwrap()
        .starts_with("call 2 of at most 2: call 1 ended customer-did-not-answer"));
    let report_job = w.item(REPORT_PK).await;
    assert_eq!(
        attr::opt_s(&report_job, "followup"),
        Some("after the last call of the cadence")
    );
    assert!(w.sms().await.is_empty(), "no SMS before the last call");
    // Not before its delay: the sweep leaves it; after it, call 2 goes out, exactly once.
    assert_eq!(worker.sweep().await.unwrap().requeued, 0);
    tokio::time::sleep(Duration::from_millis(1_100)).await;
    assert_eq!(worker.sweep().await.unwrap().requeued, 1);
    deliver(&worker, &second).await;
    deliver(&worker, &second).await;
    assert_eq!(w.status(&second).await, "DONE");
    let calls = w.calls().await;
    assert_eq!(calls.len(), 2);
    let body: Value = serde_json::from_slice(&calls[1].body).unwrap();
    assert_eq!(
        body["assistantOverrides"]["metadata"]["sfvapiEventId"],
        EVENT_OF_THE_REPORTS
    );
    let call2 = w.item(&format!("call#{SECOND}")).await;
    assert_eq!(attr::opt_n(&call2, "call_number"), Some(2));

    // Call 2 went to voicemail: it was the last, so the one SMS follows now.
    assert_eq!(
        webhook_delivers(&w, &report_of(SECOND, "voicemail")).await,
        200
    );
    let report2 = format!("evt#vapi#{SECOND}#end-of-call-report");
    deliver(&worker, &report2).await;
    assert_eq!(w.status(&report2).await, "DONE");
    assert_eq!(w.sms().await.len(), 1);
    assert!(w
        .store
        .get(&format!("evt#sf#{EVENT_OF_THE_REPORTS}#3"))
        .await
        .unwrap()
        .is_none());
    // Each call has its own Task (external id = call id).
    let tasks = w.posts(&w.sf, "/services/data/v62.0/sobjects/Task").await;
    let ids: Vec<String> = tasks
        .iter()
        .map(|t| serde_json::from_slice::<Value>(&t.body).unwrap()["Vapi_Call_Id__c"].to_string())
        .collect();
    assert!(
        ids.iter().any(|i| i.contains(CALL_ID)) && ids.iter().any(|i| i.contains(SECOND)),
        "{ids:?}"
    );
}

#[tokio::test]
async fn do_not_call_on_a_call_blocks_every_later_dial_also_with_salesforce_down() {
    let w = World::new(&[("CALL_CAP", "1/24h")]).await;
    w.vapi_answers(201, None).await;
    mount(
        &w.sf,
        "PATCH",
        &format!("/services/data/v62.0/sobjects/Contact/{ADA}"),
        ResponseTemplate::new(204),
    )
    .await;
    let worker = w.worker().await;
    let first = w.enqueue(EVENT_OF_THE_REPORTS, ADA).await;
    deliver(&worker, &first).await;
    assert_eq!(w.calls().await.len(), 1);
    // A second event for her waits behind the cap.
    let waiting = w.enqueue("dnc-waiting", ADA).await;
    deliver(&worker, &waiting).await;
    assert_eq!(w.status(&waiting).await, "RETRY");

    // During the call she says "stop calling me": the assistant calls doNotCall.
    let mut msg: Value = serde_json::from_slice(&fixture("vapi/tool-calls.json")).unwrap();
    msg["message"]["toolCallList"] = json!([{"id": "call_dnc_1", "type": "function", "function": {"name": "doNotCall", "arguments": "{}"}}]);
    msg["message"]["call"]["customer"] = json!({"number": "+14155550123"});
    sign_context(&mut msg, EVENT_OF_THE_REPORTS, ADA, CASE);
    let app = webhook_app(&w).await;
    let a = answer(app.handle(vapi_signed(msg.to_string().as_bytes())).await);
    assert_eq!(a.status, 200, "{}", a.body);
    assert_eq!(
        a.json["results"][0]["result"],
        sfvapi::jobs::optout::CONFIRMATION,
        "{}",
        a.body
    );
    assert!(w
        .store
        .get(&format!("optout#contact#{ADA}"))
        .await
        .unwrap()
        .is_some());

    // The optout job sets DoNotCall in Salesforce.
    let job = sfvapi::jobs::optout::job_pk(&sfvapi::ids::SalesforceId::parse("c", ADA).unwrap());
    deliver(&worker, &job).await;
    assert_eq!(w.status(&job).await, "DONE");
    let patches: Vec<Value> = received_on(
        &w.sf,
        &format!("/services/data/v62.0/sobjects/Contact/{ADA}"),
    )
    .await
    .iter()
    .filter(|r| r.method.as_str() == "PATCH")
    .map(|r| serde_json::from_slice(&r.body).unwrap())
    .collect();
    assert_eq!(patches, [json!({"DoNotCall": true})]);

    // The job that was waiting ends SKIPPED, naming the call.
    w.age(&waiting).await;
    worker_sweep_and_deliver(&worker, &w, &waiting).await;
    let job = w.item(&waiting).await;
    assert_eq!(attr::opt_s(&job, "status"), Some("SKIPPED"));
    assert_eq!(
        attr::opt_s(&job, "reason"),
        Some(format!("opted out on call {CALL_ID} (the Contact)").as_str())
    );
    // A later event arrives while Salesforce is down: never dialled, SKIPPED all the same.
    Mock::given(method("GET"))
        .and(path(SF_QUERY_PATH))
        .respond_with(
            ResponseTemplate::new(503)
                .set_body_json(json!([{"message": "down", "errorCode": "SERVER_UNAVAILABLE"}])),
        )
        .with_priority(1)
        .mount(&w.sf)
        .await;
    let later = w.enqueue("dnc-later", ADA).await;
    deliver(&worker, &later).await;
    let job = w.item(&later).await;
    assert_eq!(attr::opt_s(&job, "status"), Some("SKIPPED"), "{job:?}");
    assert!(attr::opt_s(&job, "reason")
        .unwrap()
        .starts_with("opted out on call"));
    assert_eq!(w.calls().await.len(), 1, "only the call before she said no");
}

/// The relay under one routing document (a file), on the world's table.
fn relay_under(w: &World, routing: &str) -> sfvapi::relay::RelayApp {
    let vars: HashMap<&str, String> = [
        ("TABLE_NAME", w.store.table().to_owned()),
        (
            "SF_RELAY_ORG_IDS",
            sfvapi::samples::LOCAL_RELAY_ORG_ID.to_owned(),
        ),
        ("ROUTING_FILE", routing.to_owned()),
    ]
    .into_iter()
    .collect();
    let config = sfvapi::relay::RelayConfig::from_env(&Env::new(move |k| vars.get(k).cloned()))
        .expect("relay config");
    sfvapi::relay::RelayApp::new(config, w.store.clone())
}

async fn relay_answer(app: &sfvapi::relay::RelayApp, eventbridge_id: &str) -> Value {
    let event =
        sfvapi::samples::relay_platform_event(sfvapi::samples::LOCAL_RELAY_ORG_ID, eventbridge_id);
    app.handle_event(&event).await.unwrap().to_json()["jobs"][0].clone()
}

/// Deliver 4 of issue 26: a relayed event SKIPPED while the routing document was wrong (a typo
/// in the Contact field) answers, when relayed again under the fixed document, what is stored;
/// `reroute` under the fixed document makes it PENDING once, the worker calls once, and
/// rerouting again makes no second job.
#[tokio::test]
async fn a_job_skipped_under_a_broken_routing_is_rerouted_once_and_called_once() {
    use sfvapi::jobs::reroute::{Rerouted, Rerouter};
    let fixed = format!(
        "{}/../events/routing-event-relay.yaml",
        env!("CARGO_MANIFEST_DIR")
    );
    let broken = routing_file(
        "version: 1\nrules:\n  - id: call-request\n    when: {detailType: Call_Request__e}\n    contact: Contact_Id__c\n",
    );
    let w = World::new(&[("ROUTING_FILE", &fixed)]).await;
    w.vapi_answers(201, None).await;
    const CHARLES: &str = "0035e00000LowRvAAJ";
    let mut charles: Value = serde_json::from_slice(&fixture("salesforce/contact.json")).unwrap();
    charles["Id"] = json!(CHARLES);
    // The example rule asks for consent (docs/calling-policy.md): Charles gave it.
    charles["Voice_Consent__c"] = json!(true);
    w.contact(CHARLES, charles).await;
    let pk = format!("evt#sf#{}", sfvapi::samples::RELAY_EVENT_UUID);

    let skipped = relay_answer(&relay_under(&w, &broken), "eb-1").await;
    assert_eq!(skipped["status"], "skipped", "{skipped}");
    assert_eq!(w.status(&pk).await, "SKIPPED");

    // Relayed again under the fixed document: a duplicate, described as stored (SKIPPED, no
    // rule, the stored reason), not as today's routing would make it.
    let fixed_relay = relay_under(&w, &fixed);
    let again = relay_answer(&fixed_relay, "eb-2").await;
    assert_eq!(again["status"], "duplicate", "{again}");
    assert_eq!(again["stored"], "SKIPPED", "{again}");
    assert!(again.get("rule").is_none(), "{again}");
    assert!(
        again["reason"]
            .as_str()
            .unwrap()
            .contains("Contact_Id__c: is missing"),
        "{again}"
    );

    let fixed_routing = sfvapi::routing::Routing::load_file(&fixed).unwrap();
    let dry = Rerouter {
        store: &w.store,
        routing: &fixed_routing,
        dry_run: true,
    };
    assert_eq!(
        dry.reroute(&pk, sfvapi::now_millis()).await.unwrap(),
        Rerouted::WouldQueue {
            rule: "call-request".into()
        }
    );
    assert_eq!(w.status(&pk).await, "SKIPPED", "a dry run writes nothing");
    // Found by its time range too.
    let now = sfvapi::now_millis();
    assert_eq!(
        dry.skipped_between(now - 60_000, now + 1).await.unwrap(),
        std::slice::from_ref(&pk)
    );

    // The broken document still skips it, saying why.
    let broken_routing = sfvapi::routing::Routing::load_file(&broken).unwrap();
    let still = Rerouter {
        store: &w.store,
        routing: &broken_routing,
        dry_run: false,
    };
    assert!(matches!(
        still.reroute(&pk, sfvapi::now_millis()).await.unwrap(),
        Rerouted::StillSkipped { reason } if reason.contains("Contact_Id__c")
    ));

    let rerouter = Rerouter {
        store: &w.store,
        routing: &fixed_routing,
        dry_run: false,
    };
    assert_eq!(
        rerouter.reroute(&pk, sfvapi::now_millis()).await.unwrap(),
        Rerouted::Queued {
            rule: "call-request".into()
        }
    );
    assert_eq!(w.status(&pk).await, "PENDING");
    // Twice: no second job.
    assert_eq!(
        rerouter.reroute(&pk, sfvapi::now_millis()).await.unwrap(),
        Rerouted::AlreadyRerouted
    );

    let worker = w.worker().await;
    assert!(deliver(&worker, &pk).await.is_empty());
    assert!(deliver(&worker, &pk).await.is_empty());
    assert_eq!(w.calls().await.len(), 1, "called once");
    let job = w.item(&pk).await;
    let payload: Value = serde_json::from_str(attr::opt_s(&job, "payload").unwrap()).unwrap();
    assert_eq!(payload["rule"], "call-request");
    assert_eq!(payload["contactId"], CHARLES);
    assert_eq!(
        rerouter.reroute(&pk, sfvapi::now_millis()).await.unwrap(),
        Rerouted::AlreadyRerouted
    );

    // Now a duplicate answers the stored job: its status and its rule.
    let later = relay_answer(&fixed_relay, "eb-3").await;
    assert_eq!(later["status"], "duplicate");
    assert_eq!(later["rule"], "call-request", "{later}");
    assert_ne!(later["stored"], "SKIPPED", "{later}");
    assert_eq!(w.calls().await.len(), 1, "still one call");
}

/// `consent: {contactPointType: Phone}`: the Contact's Individual's ContactPointTypeConsent
/// records decide (one more query); a yes calls, a later no, none or an unreadable object never.
#[tokio::test]
async fn consent_from_the_consent_objects_fails_closed() {
    const INDIVIDUAL: &str = "0PK5e000000AbCdGAK";
    let doc = policy_document("{consent: {contactPointType: Phone, purpose: Customer Service}}");
    let cases: [(u16, Value, Option<&str>); 4] = [
        (
            200,
            json!([{"attributes": {"type": "ContactPointTypeConsent"}, "PrivacyConsentStatus": "OptIn", "EffectiveFrom": "2026-01-01T00:00:00.000+0000", "EffectiveTo": null}]),
            None,
        ),
        (
            200,
            json!([
                {"attributes": {"type": "ContactPointTypeConsent"}, "PrivacyConsentStatus": "OptIn", "EffectiveFrom": "2026-01-01T00:00:00.000+0000", "EffectiveTo": null},
                {"attributes": {"type": "ContactPointTypeConsent"}, "PrivacyConsentStatus": "OptOut", "EffectiveFrom": "2026-06-01T00:00:00.000+0000", "EffectiveTo": null}
            ]),
            Some("no consent: OptOut in effect (ContactPointTypeConsent Phone, purpose Customer Service of Individual 0PK5e000000AbCdGAK)"),
        ),
        (200, json!([]), Some("no consent: no ContactPointTypeConsent record")),
        // An org without Data Protection and Privacy has no such object (Salesforce's 400).
        (
            400,
            json!([{"message": "sObject type 'ContactPointTypeConsent' is not supported.", "errorCode": "INVALID_TYPE"}]),
            Some("no consent: the consent could not be read"),
        ),
    ];
    for (i, (status, records, skipped)) in cases.into_iter().enumerate() {
        let w = World::new(&[("ROUTING_FILE", &doc)]).await;
        w.vapi_answers(201, None).await;
        let mut ada: Value = serde_json::from_slice(&fixture("salesforce/contact.json")).unwrap();
        ada["IndividualId"] = json!(INDIVIDUAL);
        contact_query_mock(ADA, Some(ada))
            .with_priority(1)
            .mount(&w.sf)
            .await;
        let body = if status == 200 {
            json!({"totalSize": records.as_array().unwrap().len(), "done": true, "records": records})
        } else {
            records
        };
        Mock::given(method("GET"))
            .and(path(SF_QUERY_PATH))
            .and(wiremock::matchers::query_param_contains(
                "q",
                "FROM ContactPointTypeConsent",
            ))
            .respond_with(ResponseTemplate::new(status).set_body_json(body))
            .with_priority(1)
            .mount(&w.sf)
            .await;
        let worker = w.worker().await;
        let pk = w.enqueue(&format!("cpc-{i}"), ADA).await;
        deliver(&worker, &pk).await;
        let job = w.item(&pk).await;
        match skipped {
            None => {
                assert_eq!(attr::opt_s(&job, "status"), Some("DONE"), "{job:?}");
                assert_eq!(w.calls().await.len(), 1);
            }
            Some(why) => {
                assert_eq!(attr::opt_s(&job, "status"), Some("SKIPPED"), "{job:?}");
                let reason = attr::opt_s(&job, "reason").unwrap();
                assert!(reason.starts_with(why), "{reason}");
                assert!(w.calls().await.is_empty());
            }
        }
        let q = queries(&w).await;
        assert!(
            q.contains("IndividualId"),
            "the Contact's query reads it: {q}"
        );
        assert!(
            q.contains(&format!("WHERE PartyId = '{INDIVIDUAL}' AND ContactPointType = 'Phone' AND DataUsePurpose.Name = 'Customer Service'")),
            "{q}"
        );
    }
}

// ------------------------------------------------------------------ hand-off (issue 24)

const OWNER: &str = "0055e000001AbCdAAK";
const NO_PHONE_OWNER: &str = "0055e000002NoPhAAK";
const QUEUE: &str = "00G5e000000AbCdEAK";
const OWNED_CASE: &str = "5005e00000HoFf1AAF";
const QUEUED_CASE: &str = "5005e00000HoFf2AAF";
const NO_PHONE_CASE: &str = "5005e00000HoFf3AAF";

#[tokio::test]
async fn a_transfer_goes_warm_to_the_case_owner_a_queue_to_the_fallback_and_nobody_to_a_callback_task(
) {
    let doc = routing_file(
        "version: 1\nrules:\n  - id: warm\n    when: {detailType: CaseChangeEvent}\n    case: $recordId\n    contact: case.ContactId\n    call:\n      handoff: {to: caseOwner, fallback: \"+1 415 555 0199\"}\n  - id: owner-only\n    when: {detailType: CaseChangeEvent}\n    case: $recordId\n    contact: case.ContactId\n    call:\n      handoff: {to: caseOwner}\n  - id: contact-owner\n    when: {detailType: CaseChangeEvent}\n    case: $recordId\n    contact: case.ContactId\n    call:\n      handoff: {to: contactOwner}\n",
    );
    let w = World::new(&[("ROUTING_FILE", &doc)]).await;
    w.vapi_creates_calls(false, None).await;
    w.case_owned_by(OWNED_CASE, OWNER).await;
    w.case_owned_by(QUEUED_CASE, QUEUE).await;
    w.case_owned_by(NO_PHONE_CASE, NO_PHONE_OWNER).await;
    w.user(OWNER, json!("+1 (415) 555-0100"), json!(null)).await;
    w.user(NO_PHONE_OWNER, json!(null), json!(null)).await;
    // Ada's own owner (Contact.OwnerId), on her mobile.
    const ADAS_OWNER: &str = "0055e000003AdAoAAK";
    mount(
        &w.sf,
        "GET",
        &format!("/services/data/v62.0/sobjects/Contact/{ADA}"),
        json_answer(
            200,
            json!({ "attributes": {"type": "Contact"}, "Id": ADA, "OwnerId": ADAS_OWNER }),
        ),
    )
    .await;
    w.user(ADAS_OWNER, json!(""), json!("+44 20 7946 0018"))
        .await;
    let worker = w.worker().await;

    let owned = enqueue_routed(&w, "handoff-owned", Some(ADA), OWNED_CASE, Some("warm")).await;
    let queued = enqueue_routed(&w, "handoff-queued", Some(ADA), QUEUED_CASE, Some("warm")).await;
    let nobody = enqueue_routed(
        &w,
        "handoff-nobody",
        Some(ADA),
        NO_PHONE_CASE,
        Some("owner-only"),
    )
    .await;
    let contact_owner = enqueue_routed(
        &w,
        "handoff-contact",
        Some(ADA),
        OWNED_CASE,
        Some("contact-owner"),
    )
    .await;
    // An owner Salesforce no longer has (404 for good): the call is still placed, the hand-off
    // goes to the fallback.
    const GONE_OWNER: &str = "0055e000004GoNeAAK";
    const GONE_OWNER_CASE: &str = "5005e00000HoFf4AAF";
    w.case_owned_by(GONE_OWNER_CASE, GONE_OWNER).await;
    let gone = enqueue_routed(&w, "handoff-gone", Some(ADA), GONE_OWNER_CASE, Some("warm")).await;
    for pk in [&owned, &queued, &nobody, &contact_owner, &gone] {
        assert!(deliver(&worker, pk).await.is_empty());
        assert_eq!(w.status(pk).await, "DONE", "{pk}");
    }

    // The Case owner's User phone, warm, the customer's number shown to the owner.
    let a = w.transfer_request(&w.call_of(&owned).await).await;
    let d = &a["destination"];
    assert_eq!(d["type"], "number", "{a}");
    assert_eq!(d["number"], "+14155550100");
    assert_eq!(d["callerId"], "+14155550123");
    assert_eq!(d["transferPlan"]["mode"], "warm-transfer-say-summary");
    vapi_schema::validate("ServerMessageResponseTransferDestinationRequest", &a)
        .unwrap_or_else(|e| panic!("{e:?}"));

    let a = w.transfer_request(&w.call_of(&gone).await).await;
    assert_eq!(a["destination"]["number"], "+14155550199", "{a}");

    // contactOwner: the Contact's owner, her MobilePhone when Phone is empty.
    let a = w.transfer_request(&w.call_of(&contact_owner).await).await;
    assert_eq!(a["destination"]["number"], "+442079460018", "{a}");

    // A queue-owned Case: the fallback, and no User read for a queue.
    let a = w.transfer_request(&w.call_of(&queued).await).await;
    assert_eq!(a["destination"]["number"], "+14155550199", "{a}");
    assert!(received_on(
        &w.sf,
        &format!("/services/data/v62.0/sobjects/User/{QUEUE}")
    )
    .await
    .is_empty());

    // An owner without a phone and no fallback: the customer is told, the owner gets one Task
    // however often the model asks.
    let call = w.call_of(&nobody).await;
    for _ in 0..2 {
        let a = w.transfer_request(&call).await;
        assert!(a.get("destination").is_none(), "{a}");
        assert_eq!(a["message"]["type"], "request-failed");
    }
    let job = format!("evt#vapi#{call}#handoff");
    assert_eq!(w.status(&job).await, "PENDING");
    let tasks_before = w
        .posts(&w.sf, "/services/data/v62.0/sobjects/Task")
        .await
        .len();
    assert!(deliver(&worker, &job).await.is_empty());
    assert!(
        deliver(&worker, &job).await.is_empty(),
        "a redelivery runs nothing"
    );
    assert_eq!(w.status(&job).await, "DONE");
    let tasks = w.posts(&w.sf, "/services/data/v62.0/sobjects/Task").await;
    assert_eq!(tasks.len(), tasks_before + 1);
    let task: Value = serde_json::from_slice(&tasks[tasks.len() - 1].body).unwrap();
    assert_eq!(task["OwnerId"], NO_PHONE_OWNER);
    assert_eq!(task["WhatId"], NO_PHONE_CASE);
    assert_eq!(task["WhoId"], ADA);
    assert_eq!(task["Subject"], "Customer asked to speak to you");
    let description = task["Description"].as_str().unwrap_or_default();
    assert!(
        description.contains("no Phone or MobilePhone"),
        "{description}"
    );
    assert!(description.contains("Refund not received"), "{description}");

    // The transfer Vapi reports lands on the call's timeline and on call#, masked.
    let owned_call = w.call_of(&owned).await;
    let update = json!({"message": {
        "type": "transfer-update", "timestamp": 1_795_690_210_000_i64,
        "destination": {"type": "number", "number": "+14155550100"},
        "call": {"id": owned_call, "orgId": "org-test"}
    }});
    for _ in 0..2 {
        assert_eq!(
            webhook_delivers(&w, update.to_string().as_bytes()).await,
            200
        );
    }
    let record = w
        .item(&format!(
            "evt#vapi#{owned_call}#transfer-update#1795690210000"
        ))
        .await;
    assert_eq!(attr::opt_s(&record, "kind"), Some("transfer-update"));
    assert_eq!(
        attr::opt_s(&record, "transferred_to"),
        Some("number +1******0100")
    );
    let call_item = w.item(&format!("call#{owned_call}")).await;
    assert_eq!(
        attr::opt_s(&call_item, "transferred_to"),
        Some("number +1******0100")
    );
}

// ------------------------------------------------------------------ the whole transcript (issue 24)

#[tokio::test]
async fn a_40000_character_transcript_lands_whole_in_one_file_linked_to_task_and_case_once() {
    let w = World::new(&[]).await;
    w.twilio_accepts().await;
    let worker = w.worker().await;
    // 40,000 characters, numbered lines, so a cut anywhere shows.
    let mut transcript = String::new();
    let mut n = 0;
    while transcript.chars().count() < 40_000 {
        n += 1;
        transcript.push_str(&format!(
            "User: line {n:05} of a long call about the refund.\n"
        ));
    }
    let transcript: String = transcript.chars().take(40_000).collect();
    let mut rep: Value = serde_json::from_slice(&report("customer-ended-call")).unwrap();
    rep["message"]["artifact"]["transcript"] = json!(transcript);
    assert_eq!(webhook_delivers(&w, rep.to_string().as_bytes()).await, 200);

    assert!(deliver(&worker, REPORT_PK).await.is_empty());
    assert_eq!(w.status(REPORT_PK).await, "DONE");
    // The report job runs a second time (an operator's redrive).
    set_status(&w.store, REPORT_PK, "PENDING").await;
    assert!(deliver(&worker, REPORT_PK).await.is_empty());
    assert_eq!(w.status(REPORT_PK).await, "DONE");

    // One file, holding every character.
    let files = w
        .posts(&w.sf, "/services/data/v62.0/sobjects/ContentVersion")
        .await;
    assert_eq!(files.len(), 1, "one file per call");
    let file: Value = serde_json::from_slice(&files[0].body).unwrap();
    assert_eq!(file["Title"], format!("Transcript {CALL_ID}"));
    assert_eq!(file["PathOnClient"], format!("transcript-{CALL_ID}.txt"));
    use base64::Engine;
    let data = base64::engine::general_purpose::STANDARD
        .decode(file["VersionData"].as_str().unwrap())
        .unwrap();
    assert_eq!(
        String::from_utf8(data).unwrap(),
        transcript,
        "the whole text"
    );

    // Linked to the Task and the Case, viewers, once each.
    let links: Vec<Value> = w
        .posts(&w.sf, "/services/data/v62.0/sobjects/ContentDocumentLink")
        .await
        .iter()
        .map(|r| serde_json::from_slice(&r.body).unwrap())
        .collect();
    let mut linked: Vec<&str> = links
        .iter()
        .map(|l| l["LinkedEntityId"].as_str().unwrap())
        .collect();
    linked.sort_unstable();
    assert_eq!(linked, vec![TASK_ID, CASE]);
    for l in &links {
        assert_eq!(l["ContentDocumentId"], CONTENT_DOCUMENT);
        assert_eq!(l["ShareType"], "V");
    }
    let guard = w.item(&format!("file#{CALL_ID}")).await;
    assert_eq!(attr::opt_s(&guard, "state"), Some("LINKED"));

    // The Task holds what fits and says where the rest is.
    let tasks = w.posts(&w.sf, "/services/data/v62.0/sobjects/Task").await;
    let task: Value = serde_json::from_slice(&tasks[0].body).unwrap();
    let description = task["Description"].as_str().unwrap();
    assert!(description.chars().count() <= 32_000);
    assert!(
        description.contains(&format!(
            "Full transcript: the file \"Transcript {CALL_ID}\""
        )),
        "{}",
        &description[..300.min(description.len())]
    );
}

#[tokio::test]
async fn a_transcript_that_fits_the_task_makes_no_file() {
    let w = World::new(&[]).await;
    w.twilio_accepts().await;
    let worker = w.worker().await;
    assert_eq!(
        webhook_delivers(&w, &report("customer-ended-call")).await,
        200
    );
    assert!(deliver(&worker, REPORT_PK).await.is_empty());
    assert_eq!(w.status(REPORT_PK).await, "DONE");
    assert!(w
        .posts(&w.sf, "/services/data/v62.0/sobjects/ContentVersion")
        .await
        .is_empty());
    assert!(w
        .store
        .get(&format!("file#{CALL_ID}"))
        .await
        .unwrap()
        .is_none());
}

/// A report whose transcript does not fit the Task (40,000 characters).
fn long_report() -> Vec<u8> {
    let mut rep: Value = serde_json::from_slice(&report("customer-ended-call")).unwrap();
    rep["message"]["artifact"]["transcript"] = json!("User: the refund again. ".repeat(1_700));
    rep.to_string().into_bytes()
}

#[tokio::test]
async fn an_upload_refused_by_salesforce_is_retried_and_one_with_no_answer_is_never_repeated() {
    // Refused (500): nothing was created, the retry uploads, one file in the end.
    let w = World::new(&[("SF_HTTP_TIMEOUT_SECS", "1")]).await;
    w.twilio_accepts().await;
    Mock::given(method("POST"))
        .and(path("/services/data/v62.0/sobjects/ContentVersion"))
        .respond_with(ResponseTemplate::new(500).set_body_json(
            json!([{"message": "An unexpected error occurred.", "errorCode": "UNKNOWN_EXCEPTION"}]),
        ))
        .up_to_n_times(1)
        .with_priority(1)
        .mount(&w.sf)
        .await;
    let worker = w.worker().await;
    assert_eq!(webhook_delivers(&w, &long_report()).await, 200);
    deliver(&worker, REPORT_PK).await;
    assert_eq!(w.status(REPORT_PK).await, "RETRY");
    assert!(
        w.store
            .get(&format!("file#{CALL_ID}"))
            .await
            .unwrap()
            .is_none(),
        "released"
    );
    assert_eq!(worker.sweep().await.unwrap().requeued, 1);
    deliver(&worker, REPORT_PK).await;
    assert_eq!(w.status(REPORT_PK).await, "DONE");
    let uploads = w
        .posts(&w.sf, "/services/data/v62.0/sobjects/ContentVersion")
        .await;
    assert_eq!(
        uploads.len(),
        2,
        "the refused one and the one that made the file"
    );
    assert_eq!(
        attr::opt_s(&w.item(&format!("file#{CALL_ID}")).await, "state"),
        Some("LINKED")
    );

    // No answer (a timeout): Salesforce may have made the file; no run uploads it again.
    let w = World::new(&[("SF_HTTP_TIMEOUT_SECS", "1")]).await;
    w.twilio_accepts().await;
    Mock::given(method("POST"))
        .and(path("/services/data/v62.0/sobjects/ContentVersion"))
        .respond_with(
            ResponseTemplate::new(201)
                .set_body_json(json!({"id": CONTENT_VERSION, "success": true, "errors": []}))
                .set_delay(Duration::from_secs(3)),
        )
        .with_priority(1)
        .mount(&w.sf)
        .await;
    let worker = w.worker().await;
    assert_eq!(webhook_delivers(&w, &long_report()).await, 200);
    deliver(&worker, REPORT_PK).await;
    assert_eq!(w.status(REPORT_PK).await, "RETRY");
    assert_eq!(worker.sweep().await.unwrap().requeued, 1);
    deliver(&worker, REPORT_PK).await;
    let job = w.item(REPORT_PK).await;
    assert_eq!(attr::opt_s(&job, "status"), Some("DONE"), "{job:?}");
    let review = attr::opt_s(&job, "transcript_file_review").unwrap_or_default();
    assert!(review.contains("look for \"Transcript"), "{review}");
    assert_eq!(
        w.posts(&w.sf, "/services/data/v62.0/sobjects/ContentVersion")
            .await
            .len(),
        1,
        "never uploaded twice"
    );
}
