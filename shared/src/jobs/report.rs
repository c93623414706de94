//! The report job (a call's outcome into Salesforce, then the follow-up) and the note job.
//!
//! The Task is upserted by external id = Vapi call id, so re-running a report updates the same
//! Task. The follow-up has no idempotency key upstream, so it is guarded by `sms#<callId>`:
//! SENDING before the POST, SENT with the sid after; an ambiguous failure leaves NEEDS_REVIEW and
//! a later run never sends a second message.

use aws_sdk_dynamodb::error::SdkError;
use aws_sdk_dynamodb::types::AttributeValue;
use serde_json::{json, Map};
use tracing::{info, warn};

use super::config::{FollowupChannel, FollowupPolicy};
use super::context::Worker;
use super::outcome::{sf_outcome, Extra};
use crate::calls::{read_call, record_cost};
use crate::ids::{SalesforceEventId, SalesforceId};
use crate::policy::RetryFollowUp;
use crate::queue::{ClaimedJob, Outcome};
use crate::salesforce::events::DialRequest;
use crate::salesforce::rest::{Contact, TaskFields, UpsertOutcome};
use crate::store::{attr, unavailable, PutOutcome, StoreError, EXPIRES_AT, PK};
use crate::telemetry::{metric, Unit};
use crate::twilio::{
    Created, Sender, Sms, TwilioCredentials, TwilioError, TwilioSecret, VoiceCall,
};
use crate::vapi::jobs::{NotePayload, ReportPayload};
use crate::vapi::messages::EndedReason;

/// Who the call was with, from the payload, else `call#`, else the dial job's payload; and the
/// dial job's routing rule (its follow-up policy and write-back).
struct Correlation {
    event_id: Option<String>,
    contact_id: Option<SalesforceId>,
    case_id: Option<SalesforceId>,
    rule: Option<String>,
    /// The event's dial request (what a retry cadence dials again).
    dial: Option<DialRequest>,
    /// Who took the call (`call#.transferred_to`), read for a forwarded call only.
    transferred_to: Option<String>,
}

async fn correlate(w: &Worker, p: &ReportPayload) -> Result<Correlation, StoreError> {
    let store = w.inner.queue.store();
    let mut c = Correlation {
        event_id: p.event_id.as_ref().map(|e| e.as_str().to_owned()),
        contact_id: p.contact_id.clone(),
        case_id: p.case_id.clone(),
        rule: None,
        dial: None,
        transferred_to: None,
    };
    // A forwarded call (Vapi OpenAPI `Call.endedReason` `assistant-forwarded-call`): the Task
    // says who took it, from the `transfer-update` recorded on call#.
    let forwarded = EndedReason::parse(&p.ended_reason) == EndedReason::AssistantForwardedCall;
    if c.contact_id.is_none() || c.event_id.is_none() || forwarded {
        if let Some(rec) = read_call(store, &p.call_id).await? {
            c.transferred_to = rec.transferred_to;
            c.event_id = c.event_id.or(rec.event_id);
            c.contact_id = c.contact_id.or_else(|| {
                rec.contact_id
                    .and_then(|s| SalesforceId::parse("contactId", &s).ok())
            });
            c.case_id = c.case_id.or_else(|| {
                rec.case_id
                    .and_then(|s| SalesforceId::parse("caseId", &s).ok())
            });
        }
    }
    // The dial job is read when it holds something the report needs: the Contact, or the rule
    // (only when some rule has a follow-up policy or a write-back, so the built-in document
    // costs no read).
    if c.contact_id.is_none() || w.inner.config.routing.has_report_settings() {
        if let Some(id) = c
            .event_id
            .as_deref()
            .and_then(|e| SalesforceEventId::parse("eventId", e).ok())
        {
            if let Some(item) = store
                .get(&crate::queue::item::salesforce_event_pk(&id))
                .await?
            {
                if let Some(dial) = attr::opt_s(&item, "payload")
                    .and_then(|s| serde_json::from_str::<DialRequest>(s).ok())
                {
                    // A Contact read from the Case at dial time is kept on the job.
                    c.contact_id = c.contact_id.or(dial.contact_id.clone()).or_else(|| {
                        attr::opt_s(&item, "contact_id")
                            .and_then(|s| SalesforceId::parse("contact_id", s).ok())
                    });
                    c.case_id = c.case_id.or(dial.case_id.clone());
                    c.rule = dial.rule.clone();
                    c.dial = Some(dial);
                }
            }
        }
    }
    Ok(c)
}

/// `2026-11-26T10:00:05.000Z` (or with an offset) → unix ms. Parsed by `chrono`, which
/// `aws_lambda_events` already brings into every function, and which checks every field's range
/// (month 13, 30 February or 25:00 is no date); `aws_smithy_types::DateTime` was the other
/// candidate but accepts no offset but `Z`.
pub fn parse_rfc3339_ms(s: &str) -> Option<i64> {
    chrono::DateTime::parse_from_rfc3339(s.trim())
        .ok()
        .map(|t| t.timestamp_millis())
}

/// The Task, and whether the transcript was cut to fit it.
fn task_fields(
    p: &ReportPayload,
    c: &Correlation,
    recording: Option<&super::recording::Kept>,
) -> (TaskFields, bool) {
    let duration_s = match (
        p.started_at.as_deref().and_then(parse_rfc3339_ms),
        p.ended_at.as_deref().and_then(parse_rfc3339_ms),
    ) {
        (Some(a), Some(b)) if b >= a => Some((b - a) / 1000),
        _ => None,
    };
    let mut lines = Vec::new();
    if let Some(s) = &p.summary {
        lines.push(format!("Summary: {s}"));
    }
    let mut facts = vec![format!("Ended: {}", p.ended_reason)];
    if let Some(d) = duration_s {
        facts.push(format!("Duration: {}m {:02}s", d / 60, d % 60));
    }
    if let Some(cost) = p.cost {
        facts.push(format!("Cost: ${cost:.2}"));
    }
    lines.push(facts.join(" · "));
    if let Some(t) = &c.transferred_to {
        lines.push(format!("Transferred to: {t} (warm, after a summary)"));
    }
    match (recording, &p.recording_url) {
        (Some(kept), Some(u)) => lines.push(kept.task_line(u)),
        (None, Some(u)) => lines.push(format!("Recording: {u}")),
        _ => {}
    }
    if let Some(e) = &p.success_evaluation {
        lines.push(format!("Success evaluation: {e}"));
    }
    let mut cut = false;
    if let Some(t) = &p.transcript {
        lines.push(String::new());
        // The transcript comes last and gets what is left of Task.Description's 32,000
        // characters, so a cut keeps its mark instead of losing it to the final truncation.
        let room = |lines: &[String]| {
            let used: usize = lines.iter().map(|l| l.chars().count() + 1).sum::<usize>() + 12;
            crate::salesforce::rest::TASK_DESCRIPTION_MAX_CHARS.saturating_sub(used)
        };
        if t.chars().count() > room(&lines) {
            // Too long for the Task: the whole text goes into a file (jobs::transcript).
            cut = true;
            lines.push(format!(
                "Full transcript: the file \"{}\" in Files, on this Task and its Case{}.",
                super::transcript::file_title(&p.call_id),
                if p.transcript_truncated {
                    " (itself cut at the end: the call's transcript was longer than sfvapi keeps)"
                } else {
                    ""
                }
            ));
        }
        let room = room(&lines);
        lines.push("Transcript:".into());
        let (t, _) =
            crate::vapi::jobs::truncate_chars(t.clone(), room, crate::vapi::jobs::TRUNCATION_MARK);
        lines.push(t);
    }
    let mut extra = Map::new();
    extra.insert("TaskSubtype".into(), json!("Call"));
    // Task.CallType, a restricted picklist: "The type of call being answered: Inbound, Internal,
    // or Outbound" (Task object reference,
    // https://developer.salesforce.com/docs/atlas.en-us.object_reference.meta/object_reference/sforce_api_objects_task.htm).
    extra.insert(
        "CallType".into(),
        json!(if p.is_inbound() {
            "Inbound"
        } else {
            "Outbound"
        }),
    );
    extra.insert(
        "CallDisposition".into(),
        json!(p.ended_reason.chars().take(255).collect::<String>()),
    );
    if let Some(d) = duration_s {
        extra.insert("CallDurationInSeconds".into(), json!(d));
    }
    if let Some(date) = p.ended_at.as_deref().and_then(|e| e.get(0..10)) {
        extra.insert("ActivityDate".into(), json!(date));
    }
    let _ = &c.event_id;
    let task = TaskFields {
        subject: if p.is_inbound() {
            format!("Vapi inbound call: {}", p.ended_reason)
        } else {
            format!("Vapi call: {}", p.ended_reason)
        },
        description: lines.join("\n"),
        status: "Completed".into(),
        who_id: c.contact_id.clone(),
        what_id: c.case_id.clone(),
        extra,
    };
    (task, cut)
}

pub(crate) async fn run_report(
    w: &Worker,
    job: &ClaimedJob,
) -> Result<(Outcome, Extra), StoreError> {
    let (mut outcome, extra) = report(w, job).await?;
    // A recording that is gone is part of the job's answer, whatever else it did.
    if let (Outcome::Done { detail, .. }, Some((_, AttributeValue::S(why)))) = (
        &mut outcome,
        extra.iter().find(|(k, _)| *k == "recording_missing"),
    ) {
        let d = detail.get_or_insert_with(String::new);
        if !d.is_empty() {
            d.push_str("; ");
        }
        d.push_str("recording missing: ");
        d.push_str(why);
    }
    Ok((outcome, extra))
}

async fn report(w: &Worker, job: &ClaimedJob) -> Result<(Outcome, Extra), StoreError> {
    let inner = &w.inner;
    let p: ReportPayload = match job.payload_as() {
        Ok(p) => p,
        Err(unreadable) => return Ok((unreadable, vec![])),
    };
    // The call is over even if its `status-update` `ended` was lost: free its pacing slot (a
    // no-op when `ended` already did). Best effort; the slot also frees itself at its expiry.
    match crate::pacing::release_for_call(inner.queue.store(), &p.call_id).await {
        Ok(released) => info!(released, "call slot"),
        Err(e) => warn!(error = %e, "call slot not released; it frees itself at its expiry"),
    }
    let c = correlate(w, &p).await?;
    if c.event_id.is_none() && c.contact_id.is_none() {
        // Neither our own call# nor a signed call context names this call: it is not one sfvapi
        // placed (a web call on the assistant, metadata set by someone else). Nothing of it
        // reaches Salesforce or the customer.
        // An inbound caller the webhook could not identify gets the generic assistant and no
        // signed context, so she lands here too: no Contact to log it on.
        let reason = if p.is_inbound() {
            "an inbound caller sfvapi did not identify (no signed call context): no Task, no follow-up"
        } else {
            "not a call sfvapi placed (no call# from the worker, no signed call context): no Task, no follow-up"
        };
        return Ok((
            Outcome::Skipped {
                reason: reason.into(),
            },
            vec![],
        ));
    }
    // The recording first, so the Task links where it is kept (a copy that must be retried
    // still lets the Task be written now, linking Vapi's URL, and retries the job after it).
    let recording = match p.recording_url.as_deref() {
        Some(url) => {
            let at_ms = p
                .ended_at
                .as_deref()
                .and_then(parse_rfc3339_ms)
                .unwrap_or(p.reported_at);
            super::recording::keep(w, &p.call_id, at_ms, url).await?
        }
        None => None,
    };
    let (task, cut) = task_fields(&p, &c, recording.as_ref());
    let upserted = match inner
        .salesforce
        .rest
        .upsert_task(p.call_id.as_str(), &task)
        .await
    {
        Ok(u) => u,
        Err(e) => return Ok((sf_outcome("upserting the Task", &e), vec![])),
    };
    info!(outcome = ?upserted, "Task upserted");
    let mut extra: Extra = vec![(
        "task_upserted_at",
        AttributeValue::N(crate::now_millis().to_string()),
    )];
    // The whole transcript as a file on the Task and the Case, once per call.
    if let (true, Some(transcript)) = (cut, p.transcript.as_deref()) {
        let task_id = match &upserted {
            UpsertOutcome::Created { id } | UpsertOutcome::Updated { id: Some(id) } => {
                SalesforceId::parse("Task id", id).ok()
            }
            UpsertOutcome::Updated { id: None } => None,
        };
        let task_id = match task_id {
            Some(id) => id,
            None => match inner.salesforce.rest.task_id(p.call_id.as_str()).await {
                Ok(id) => id,
                Err(e) => return Ok((sf_outcome("reading the Task's id", &e), extra)),
            },
        };
        let mut records = vec![&task_id];
        if let Some(case) = &c.case_id {
            records.push(case);
        }
        match super::transcript::keep(w, &p.call_id, transcript, &records).await {
            Ok(super::transcript::Kept::Linked { document }) => {
                info!(document = %document.as_str(), "full transcript attached");
                extra.push((
                    "transcript_file",
                    AttributeValue::S(document.as_str().to_owned()),
                ));
            }
            Ok(super::transcript::Kept::NeedsReview(why)) => {
                warn!(why, "full transcript not attached");
                extra.push(("transcript_file_review", AttributeValue::S(why)));
            }
            Err(super::transcript::KeepError::Store(e)) => return Err(e),
            Err(super::transcript::KeepError::Salesforce(e)) => {
                return Ok((sf_outcome("attaching the full transcript", &e), extra))
            }
        }
    }
    match &recording {
        Some(super::recording::Kept::Stored { stored, .. }) => {
            extra.push(("recording", AttributeValue::S(stored.s3_uri())));
        }
        Some(super::recording::Kept::Missing(why)) => {
            extra.push(("recording_missing", AttributeValue::S(why.clone())));
        }
        Some(super::recording::Kept::Later(error)) => {
            // The Task is written (linking Vapi's URL); the retry copies and links the copy.
            return Ok((
                Outcome::Retry {
                    error: format!("Task upserted; {error}"),
                    not_before: None,
                },
                extra,
            ));
        }
        None => {}
    }
    let rule = c
        .rule
        .as_deref()
        .and_then(|id| inner.config.routing.rule(id));
    if let Some(rule) = rule.filter(|r| !r.write_back.is_empty()) {
        match super::writeback::apply(
            &inner.salesforce.rest,
            &rule.write_back,
            &p,
            c.case_id.as_ref(),
            c.contact_id.as_ref(),
        )
        .await
        {
            Ok(report) => {
                let join = |v: &[String]| v.join("; ");
                if !report.written.is_empty() {
                    extra.push(("writeback", AttributeValue::S(join(&report.written))));
                }
                if !report.refused.is_empty() {
                    extra.push((
                        "writeback_refused",
                        AttributeValue::S(join(&report.refused)),
                    ));
                }
                if !report.missing.is_empty() {
                    extra.push((
                        "writeback_missing",
                        AttributeValue::S(join(&report.missing)),
                    ));
                }
            }
            // The Task is upserted and the write-back is safe to repeat: retry the job.
            Err(e) => return Ok((sf_outcome("writing the call's outcome back", &e), extra)),
        }
    }
    if let Some(cost) = p.cost {
        // Best effort: the Task already carries the cost.
        if let Err(e) = record_cost(inner.queue.store(), &p.call_id, cost, inner.config.ttl).await {
            warn!(error = %e, "cost not recorded on call#");
        }
    }

    let Some(contact_id) = c.contact_id.as_ref() else {
        return Ok((
            Outcome::Done {
                call_id: None,
                detail: Some("Task upserted; no Contact for a follow-up".into()),
            },
            extra,
        ));
    };
    let store = inner.queue.store();
    // "Stop calling me", as the end-of-call analysis heard it.
    if crate::policy::optout::asked_in_analysis(p.structured_data.as_ref()) {
        crate::policy::optout::opt_out(
            store,
            contact_id,
            None,
            p.call_id.as_str(),
            "analysis",
            crate::now_millis(),
            inner.config.ttl,
        )
        .await?;
        extra.push(("opted_out", AttributeValue::S("analysis".into())));
    }
    let call_policy = rule
        .map(|r| &r.policy)
        .unwrap_or(inner.config.routing.default_policy());
    let reached = !EndedReason::parse(&p.ended_reason).is_not_reached();
    // A call that reached nobody: the next call of the rule's cadence, once.
    let cadence = match (&call_policy.retry, p.is_inbound()) {
        (Some(retry), false) => schedule_retry(w, retry, &p, &c, contact_id, &mut extra).await?,
        _ => Cadence::Over,
    };
    let cadence_follow_up = call_policy.retry.as_ref().map(|r| r.follow_up);
    let hold = match (cadence, cadence_follow_up) {
        (_, Some(RetryFollowUp::Never)) => Some("never during a retry cadence"),
        (Cadence::Next, Some(RetryFollowUp::AfterLast)) => {
            Some("after the last call of the cadence")
        }
        _ => None,
    };
    if let Some(why) = hold {
        extra.push(("followup", AttributeValue::S(why.into())));
        return Ok((
            Outcome::Done {
                call_id: None,
                detail: Some(format!("Task upserted; follow-up {why}")),
            },
            extra,
        ));
    }
    let f = &inner.config.followup;
    // An inbound call has its own policy (default never), and the high-value rule is for
    // customers we could not reach, so it is for outbound calls only. An outbound call's
    // routing rule may set its own policy.
    let (policy, high_value_rule) = if p.is_inbound() {
        (f.inbound_policy, false)
    } else {
        (
            rule.and_then(|r| r.action.follow_up).unwrap_or(f.policy),
            f.high_value,
        )
    };
    let by_policy = match policy {
        FollowupPolicy::Never => false,
        FollowupPolicy::NotReached => !reached,
        FollowupPolicy::Always => true,
    };
    if !by_policy && !high_value_rule {
        extra.push(("followup", AttributeValue::S("not needed".into())));
        return Ok((
            Outcome::Done {
                call_id: None,
                detail: Some("Task upserted; no follow-up by policy".into()),
            },
            extra,
        ));
    }
    let contact = match inner.salesforce.rest.get_contact(contact_id).await {
        Ok(c) => c,
        Err(e) => {
            return Ok((
                sf_outcome("reading the Contact for the follow-up", &e),
                extra,
            ))
        }
    };
    let high_value = high_value_rule
        && contact
            .annual_revenue
            .is_some_and(|r| r >= f.high_value_revenue);
    if !(by_policy || high_value) {
        extra.push(("followup", AttributeValue::S("not needed".into())));
        return Ok((
            Outcome::Done {
                call_id: None,
                detail: Some("Task upserted; no follow-up by policy".into()),
            },
            extra,
        ));
    }
    if let Some(field) = opted_out(&contact, &f.opt_out_fields) {
        extra.push((
            "followup",
            AttributeValue::S(format!("opted out ({field})")),
        ));
        return Ok((
            Outcome::Done {
                call_id: None,
                detail: Some(format!("Task upserted; customer opted out ({field})")),
            },
            extra,
        ));
    }
    let Some(phone) = contact.best_phone().cloned() else {
        extra.push(("followup", AttributeValue::S("no valid phone".into())));
        return Ok((
            Outcome::Done {
                call_id: None,
                detail: Some("Task upserted; no valid phone for a follow-up".into()),
            },
            extra,
        ));
    };
    // The follow-up reaches the customer's phone too: inside her window, never after a "no".
    let quiet = rule
        .and_then(|r| r.action.quiet_hours)
        .unwrap_or(inner.config.quiet_hours);
    let window_only = crate::policy::Policy {
        consent: None,
        ..call_policy.effective(&inner.config.call_policy)
    };
    if let crate::policy::Verdict::Wait { until, reason } = crate::policy::check(
        &window_only,
        quiet.as_ref(),
        &contact,
        &phone,
        w.clock().now(),
    ) {
        metric("policy_wait_window", 1.0, Unit::Count);
        return Ok((
            Outcome::Defer {
                until: w.clock().to_system_ms(until),
                reason: format!("follow-up {reason}"),
            },
            extra,
        ));
    }
    // Never after a "no": the Contact's or the number's (read only when a message would go).
    let said_no = match crate::policy::ledger::contact_opted_out(store, contact_id).await? {
        Some(call) => Some(call),
        None => crate::policy::ledger::phone_opted_out(store, &phone).await?,
    };
    if let Some(call) = said_no {
        extra.push((
            "followup",
            AttributeValue::S(format!("opted out on call {call}")),
        ));
        return Ok((
            Outcome::Done {
                call_id: None,
                detail: Some(format!(
                    "Task upserted; the customer opted out on call {call}"
                )),
            },
            extra,
        ));
    }
    let (Some(secret_arn), Some(sender)) =
        (&inner.config.twilio_secret_arn, &inner.config.twilio_sender)
    else {
        extra.push((
            "followup",
            AttributeValue::S("Twilio not configured".into()),
        ));
        return Ok((
            Outcome::Done {
                call_id: None,
                detail: Some("Task upserted; Twilio not configured".into()),
            },
            extra,
        ));
    };
    let creds = match inner
        .secrets
        .get_json::<TwilioSecret>(secret_arn)
        .await
        .map_err(|e| e.to_string())
        .and_then(|s| TwilioCredentials::from_secret(&s).map_err(|e| e.to_string()))
    {
        Ok(c) => c,
        Err(e) => {
            return Ok((
                Outcome::Retry {
                    error: format!("Twilio credentials: {e}"),
                    not_before: None,
                },
                extra,
            ))
        }
    };

    let first_name = contact
        .name
        .split_whitespace()
        .next()
        .unwrap_or("there")
        .to_owned();
    let guard = format!("sms#{}", p.call_id);
    match claim_guard(w, &guard, f.channel).await? {
        Guard::Claimed => {}
        Guard::AlreadySent(sid) => {
            extra.push(("followup_sid", AttributeValue::S(sid)));
            return Ok((
                Outcome::Done {
                    call_id: None,
                    detail: Some("Task upserted; follow-up already sent".into()),
                },
                extra,
            ));
        }
        Guard::Released => {
            return Ok((
                Outcome::Retry {
                    error: "the follow-up guard was being released; trying again".into(),
                    not_before: None,
                },
                extra,
            ));
        }
        Guard::Unknown(status) => {
            return Ok((Outcome::NeedsReview { why: format!("a previous follow-up attempt is {status}: it may have been sent; check Twilio before redriving") }, extra));
        }
    }
    let sent: Result<Created, TwilioError> = match f.channel {
        FollowupChannel::Sms => {
            let text = if reached {
                "Hi {name}, thanks for speaking with us today. Reply here if there is anything else we can do."
            } else {
                f.sms_text.as_str()
            };
            let sms = Sms {
                to: phone.clone(),
                sender: sender.clone(),
                body: text.replace("{name}", &first_name),
            };
            inner.twilio.send_sms(&creds, &sms).await
        }
        FollowupChannel::Call => {
            let from = match sender {
                Sender::From(n) => n.clone(),
                Sender::MessagingService(_) => {
                    release_guard(w, &guard).await?;
                    return Ok((
                        Outcome::Failed {
                            error: "the call follow-up needs TWILIO_FROM (a voice number)".into(),
                        },
                        extra,
                    ));
                }
            };
            let say = xml_escape(&f.call_text.replace("{name}", &first_name));
            let call = VoiceCall {
                to: phone.clone(),
                from,
                twiml: format!("<Response><Say>{say}</Say></Response>"),
            };
            inner.twilio.create_call(&creds, &call).await
        }
    };
    match sent {
        Ok(created) => {
            info!(sid = %created.sid, to = %phone, "follow-up sent");
            settle_guard(w, &guard, "SENT", Some(&created.sid)).await?;
            extra.push(("followup_sid", AttributeValue::S(created.sid.clone())));
            extra.push((
                "followup_sent_at",
                AttributeValue::N(crate::now_millis().to_string()),
            ));
            Ok((
                Outcome::Done {
                    call_id: None,
                    detail: Some(format!("Task upserted; follow-up {}", created.sid)),
                },
                extra,
            ))
        }
        Err(e @ TwilioError::Ambiguous { .. }) => {
            settle_guard(w, &guard, "NEEDS_REVIEW", None).await?;
            Ok((Outcome::NeedsReview { why: e.to_string() }, extra))
        }
        Err(e) if e.is_retryable() => {
            // Twilio proved nothing was sent: free the guard so the retry may send.
            release_guard(w, &guard).await?;
            Ok((
                Outcome::Retry {
                    error: e.to_string(),
                    not_before: None,
                },
                extra,
            ))
        }
        Err(e) => {
            settle_guard(w, &guard, "FAILED", None).await?;
            Ok((
                Outcome::Failed {
                    error: format!("follow-up rejected: {e}"),
                },
                extra,
            ))
        }
    }
}

/// Whether a retry cadence goes on after this call.
enum Cadence {
    /// The next call is scheduled (or was, by an earlier run of this job).
    Next,
    Over,
}

/// Schedule the next call of the cadence when this one reached nobody: the event's dial job
/// again under its own key (`evt#sf#<id>#<n>`), waiting in RETRY until the rule's delay has
/// passed. A second run of this report job finds it written and changes nothing.
async fn schedule_retry(
    w: &Worker,
    retry: &crate::policy::Retry,
    p: &ReportPayload,
    c: &Correlation,
    contact_id: &SalesforceId,
    extra: &mut Extra,
) -> Result<Cadence, StoreError> {
    let Some(dial) = c.dial.as_ref() else {
        return Ok(Cadence::Over);
    };
    let store = w.inner.queue.store();
    let n = read_call(store, &p.call_id)
        .await?
        .map_or(1, |r| r.call_number);
    let Some(delay) = retry.next_after(n, &p.ended_reason) else {
        if n > 1 {
            extra.push((
                "retry",
                AttributeValue::S(format!(
                    "call {n} of at most {} was the last",
                    retry.max_calls
                )),
            ));
        }
        return Ok(Cadence::Over);
    };
    // An opt-out ends the cadence.
    if let Some(call) = crate::policy::ledger::contact_opted_out(store, contact_id).await? {
        extra.push((
            "retry",
            AttributeValue::S(format!("none: the customer opted out on call {call}")),
        ));
        return Ok(Cadence::Over);
    }
    let next = n + 1;
    let now = crate::now_millis();
    let due = now + delay.as_millis() as i64;
    let req = DialRequest {
        contact_id: Some(contact_id.clone()),
        ..dial.clone()
    };
    let reason = format!(
        "call {next} of at most {}: call {n} ended {} ({}); due {}",
        retry.max_calls,
        p.ended_reason,
        p.call_id,
        crate::policy::utc_text(due)
    );
    let item =
        crate::queue::item::new_retry_dial_job(&req, next, due, &reason, now, w.inner.config.ttl);
    let pk = crate::queue::item::call_job_pk(&req.event_id, next);
    if store.put_if_absent(item).await? == PutOutcome::Created {
        info!(job = %pk, due, "retry cadence: next call scheduled");
        metric("policy_retry_scheduled", 1.0, Unit::Count);
    }
    extra.push(("retry", AttributeValue::S(format!("{reason} ({pk})"))));
    Ok(Cadence::Next)
}

fn opted_out<'a>(contact: &Contact, fields: &'a [String]) -> Option<&'a str> {
    if contact.do_not_call {
        return Some("DoNotCall");
    }
    fields
        .iter()
        .map(String::as_str)
        .find(|f| contact.custom.get(*f).and_then(|v| v.as_bool()) == Some(true))
}

fn xml_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

enum Guard {
    Claimed,
    Released,
    AlreadySent(String),
    Unknown(String),
}

async fn claim_guard(w: &Worker, pk: &str, channel: FollowupChannel) -> Result<Guard, StoreError> {
    let store = w.inner.queue.store();
    let now = crate::now_millis();
    let item = crate::store::Item::from([
        (PK.to_owned(), attr::s(pk)),
        ("status".to_owned(), attr::s("SENDING")),
        (
            "channel".to_owned(),
            attr::s(if channel == FollowupChannel::Sms {
                "sms"
            } else {
                "call"
            }),
        ),
        ("started_at".to_owned(), attr::n(now)),
        (
            EXPIRES_AT.to_owned(),
            attr::n(now / 1000 + w.inner.config.ttl.as_secs() as i64),
        ),
    ]);
    match store.put_if_absent(item).await? {
        PutOutcome::Created => Ok(Guard::Claimed),
        PutOutcome::AlreadyExists => {
            let existing = store.get(pk).await?.unwrap_or_default();
            match attr::opt_s(&existing, "status") {
                Some("SENT") => Ok(Guard::AlreadySent(
                    attr::opt_s(&existing, "twilio_sid")
                        .unwrap_or_default()
                        .to_owned(),
                )),
                Some(other) => Ok(Guard::Unknown(other.to_owned())),
                // Released between our put and our read (a retryable failure): nothing was sent.
                None => Ok(Guard::Released),
            }
        }
    }
}

async fn settle_guard(
    w: &Worker,
    pk: &str,
    status: &str,
    sid: Option<&str>,
) -> Result<(), StoreError> {
    let store = w.inner.queue.store();
    let mut req = store
        .client()
        .update_item()
        .table_name(store.table())
        .key(PK, attr::s(pk))
        .update_expression(if sid.is_some() {
            "SET #s = :st, settled_at = :now, twilio_sid = :sid"
        } else {
            "SET #s = :st, settled_at = :now"
        })
        .expression_attribute_names("#s", "status")
        .expression_attribute_values(":st", attr::s(status))
        .expression_attribute_values(":now", attr::n(crate::now_millis()));
    if let Some(sid) = sid {
        req = req.expression_attribute_values(":sid", attr::s(sid));
    }
    req.send()
        .await
        .map_err(|e| unavailable("UpdateItem(sms guard)", &e))?;
    Ok(())
}

async fn release_guard(w: &Worker, pk: &str) -> Result<(), StoreError> {
    let store = w.inner.queue.store();
    let res = store
        .client()
        .delete_item()
        .table_name(store.table())
        .key(PK, attr::s(pk))
        .condition_expression("#s = :sending")
        .expression_attribute_names("#s", "status")
        .expression_attribute_values(":sending", attr::s("SENDING"))
        .send()
        .await;
    match res {
        Ok(_) => Ok(()),
        Err(SdkError::ServiceError(e)) if e.err().is_conditional_check_failed_exception() => Ok(()),
        Err(e) => Err(unavailable("DeleteItem(sms guard)", &e)),
    }
}

pub(crate) async fn run_note(w: &Worker, job: &ClaimedJob) -> Result<(Outcome, Extra), StoreError> {
    let p: NotePayload = match job.payload_as() {
        Ok(p) => p,
        Err(unreadable) => return Ok((unreadable, vec![])),
    };
    // Each note job runs once per toolCallId; a retry after an unknown outcome could add the
    // comment twice, which is harmless for a note (unlike a call or an SMS).
    match w
        .inner
        .salesforce
        .rest
        .add_case_comment(&p.case_id, &p.note)
        .await
    {
        Ok(id) => Ok((
            Outcome::Done {
                call_id: None,
                detail: Some(format!("CaseComment {id}")),
            },
            vec![],
        )),
        Err(e) => Ok((sf_outcome("adding the note to the Case", &e), vec![])),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339() {
        assert_eq!(parse_rfc3339_ms("1970-01-01T00:00:00Z"), Some(0));
        assert_eq!(
            parse_rfc3339_ms("2026-11-26T10:00:05.000Z"),
            Some(1_795_687_205_000)
        );
        assert_eq!(
            parse_rfc3339_ms("2026-11-26T10:00:05.5+01:00"),
            Some(1_795_683_605_500)
        );
        assert_eq!(parse_rfc3339_ms("2026-11-26"), None);
        assert_eq!(parse_rfc3339_ms("2026-13-26T10:00:05Z"), None, "month 13");
        assert_eq!(
            parse_rfc3339_ms("2026-02-30T10:00:05Z"),
            None,
            "30 February"
        );
        assert_eq!(parse_rfc3339_ms("2026-11-26T25:00:05Z"), None, "25 o'clock");
        assert_eq!(parse_rfc3339_ms("garbage-that-is-long-enough"), None);
    }
}
