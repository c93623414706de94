//! The dial job: one Salesforce event becomes at most one Vapi call.
//!
//! At-most-once argument: POST /call is not idempotent, so before sending it the job is moved to
//! DIALING under a condition on this run's claim token and live lease. Only one run can make
//! that write; any later run finds DIALING (not claimable) and the sweep turns an unresolved
//! DIALING job into NEEDS_REVIEW, never back to PENDING. A POST whose answer proves no call was
//! created (429/5xx/refused connection) may go back to RETRY; a timeout or dropped connection
//! after sending is NEEDS_REVIEW.
//!
//! The job's routing rule (`crate::routing`, named in its payload) says who calls (assistant,
//! phone number, extra prompt variables) and when (quiet hours); unset settings fall back to the
//! worker's environment. A job whose payload names no Contact (a Change Data Capture event:
//! the change carries only the changed fields) takes the Case's Contact, read here, at dial time,
//! so the ingest stays one write.

use aws_sdk_dynamodb::types::AttributeValue;
use rand::Rng;
use serde_json::{Map, Value};
use tracing::{error, info, warn};

use super::context::Worker;
use super::outcome::{sf_outcome, slot_holder, Extra};
use crate::calls::{record_call, CallSnapshot, NewCall};
use crate::ids::SalesforceEventId;
use crate::pacing::{release_for_call, Acquired};
use crate::policy::ledger::{self, Admission};
use crate::policy::{OnCap, Verdict};
use crate::queue::{ClaimedJob, Outcome};
use crate::routing::Action;
use crate::salesforce::events::DialRequest;
use crate::salesforce::rest::Contact;
use crate::store::StoreError;
use crate::telemetry::{metric, Unit};
use crate::vapi::client::{CreateCall, CreatedCall, VapiError};
use crate::vapi::config::VapiSecret;

pub(crate) async fn run(w: &Worker, job: &ClaimedJob) -> Result<(Outcome, Extra), StoreError> {
    let inner = &w.inner;
    let mut req: DialRequest = match job.payload_as() {
        Ok(p) => p,
        Err(unreadable) => return Ok((unreadable, vec![])),
    };

    let default_action = Action::default();
    let (action, rule_policy) = match req.rule.as_deref() {
        None => (&default_action, inner.config.routing.default_policy()),
        Some(id) => match inner.config.routing.rule(id) {
            Some(rule) => (&rule.action, &rule.policy),
            None => {
                return Ok((
                    Outcome::Failed {
                        error: format!(
                            "routing rule {id:?} is not in this deployment's routing document ({}): it changed after the event arrived; restore the rule, then `sfvapi-admin redrive`",
                            inner.config.routing.source_name()
                        ),
                    },
                    vec![],
                ))
            }
        },
    };
    let assistant_id = action
        .assistant_id
        .as_deref()
        .unwrap_or(&inner.config.vapi_assistant_id);
    // The Contact an earlier run read from the Case (kept on the job with DIALING).
    if req.contact_id.is_none() {
        req.contact_id = job
            .contact_id
            .as_deref()
            .and_then(|c| crate::ids::SalesforceId::parse("contact_id", c).ok());
    }

    // An earlier dial of this event has an unknown outcome: ask Vapi before anything else.
    if let Some(since) = job.verify_from {
        match super::placed::verify_dial(w, job, &req, assistant_id, since).await? {
            super::placed::Verdict::Settled(outcome, extra) => return Ok((outcome, extra)),
            super::placed::Verdict::Absent => {}
        }
    }

    // The deprecated fixed-offset quiet hours apply on top of the policy's window.
    let quiet_hours = match action.quiet_hours {
        Some(rule_setting) => rule_setting,
        None => inner.config.quiet_hours,
    };

    // The Contact named by the event, else the Case's (read first, then).
    let mut case = None;
    let mut from_case = None;
    let contact_id = match req.contact_id.clone() {
        Some(id) => id,
        None => {
            let Some(case_id) = req.case_id.as_ref() else {
                return Ok((
                    Outcome::Failed {
                        error: "the job names neither a Contact nor a Case".into(),
                    },
                    vec![],
                ));
            };
            let c = match inner.salesforce.rest.get_case(case_id).await {
                Ok(c) => c,
                Err(e) => return Ok((sf_outcome("reading the Case", &e), vec![])),
            };
            let Some(id) = c.contact_id.clone() else {
                return Ok((
                    Outcome::Skipped {
                        reason: format!(
                            "the Case {case_id} has no Contact (ContactId is empty): nobody to call"
                        ),
                    },
                    vec![],
                ));
            };
            info!(contact_id = %id, "the Contact comes from the Case");
            case = Some(c);
            from_case = Some(id.clone());
            id
        }
    };
    req.contact_id = Some(contact_id.clone());
    let contact = match inner.salesforce.rest.get_contact(&contact_id).await {
        Ok(c) => c,
        Err(e) => {
            // Salesforce cannot say whether she may be called; the local opt-out can say she
            // may not, for good.
            if let Some(call) = ledger::contact_opted_out(inner.queue.store(), &contact_id).await? {
                metric("policy_opted_out", 1.0, Unit::Count);
                return Ok((
                    Outcome::Skipped {
                        reason: format!("opted out on call {call} (the Contact)"),
                    },
                    vec![],
                ));
            }
            return Ok((sf_outcome("reading the Contact", &e), vec![]));
        }
    };
    if case.is_none() {
        case = match &req.case_id {
            Some(id) => match inner.salesforce.rest.get_case(id).await {
                Ok(c) => Some(c),
                Err(e) => return Ok((sf_outcome("reading the Case", &e), vec![])),
            },
            None => None,
        };
    }
    let contact_read_at = crate::now_millis();
    let read_at = vec![(
        "contact_read_at",
        AttributeValue::N(contact_read_at.to_string()),
    )];

    if contact.do_not_call {
        return Ok((
            Outcome::Skipped {
                reason: "the Contact is marked Do Not Call".into(),
            },
            read_at,
        ));
    }
    let Some(phone) = contact.best_phone().cloned() else {
        let why = if contact.phone_problems.is_empty() {
            "the Contact has no phone number".to_owned()
        } else {
            let problems: Vec<String> = contact
                .phone_problems
                .iter()
                .map(|(f, p)| format!("{f} {p}"))
                .collect();
            format!("no valid E.164 phone: {}", problems.join("; "))
        };
        return Ok((Outcome::Skipped { reason: why }, read_at));
    };

    // The calling policy: consent and the window (in process), then the opt-outs and the caps
    // (one conditional write). Waiting uses no attempt.
    let policy = rule_policy.effective(&inner.config.call_policy);
    if let Some(crate::policy::Consent::ContactPoint { channel, purpose }) = &policy.consent {
        if let Some(outcome) = contact_point_consent(w, &contact, channel, purpose.as_deref()).await
        {
            return Ok((outcome, read_at));
        }
    }
    match crate::policy::check(
        &policy,
        quiet_hours.as_ref(),
        &contact,
        &phone,
        w.clock().now(),
    ) {
        Verdict::Call { zones } => {
            if let Some(problem) = zones.invalid_field {
                warn!(
                    problem,
                    "the Contact's time zone is not usable; the number's decides"
                );
                metric("policy_zone_invalid", 1.0, Unit::Count);
            }
        }
        Verdict::Wait { until, reason } => {
            info!(reason, "outside the calling window: waiting");
            metric("policy_wait_window", 1.0, Unit::Count);
            return Ok((
                Outcome::Defer {
                    until: w.clock().to_system_ms(until),
                    reason,
                },
                read_at,
            ));
        }
        Verdict::Skip { reason } => {
            info!(reason, "the calling policy says never");
            // No consent; else no calling time at all in the next two weeks (counted with the
            // waits: a window that never opens is a window problem).
            if reason.starts_with("no consent") {
                metric("policy_no_consent", 1.0, Unit::Count);
            } else {
                metric("policy_wait_window", 1.0, Unit::Count);
            }
            return Ok((Outcome::Skipped { reason }, read_at));
        }
    }
    let n = crate::queue::item::call_number_of(&job.pk);
    let cap = policy.cap();
    match ledger::admit(
        inner.queue.store(),
        &contact_id,
        &phone,
        &job.pk,
        cap,
        crate::now_millis(),
    )
    .await?
    {
        Admission::Admitted => {}
        Admission::OptedOut { call_id, by } => {
            metric("policy_opted_out", 1.0, Unit::Count);
            return Ok((
                Outcome::Skipped {
                    reason: format!("opted out on call {call_id} (the {by})"),
                },
                read_at,
            ));
        }
        Admission::Capped { until_ms, by } => {
            metric("policy_capped", 1.0, Unit::Count);
            let Some(cap) = cap else {
                // No cap was asked for, so none can be reached.
                return Err(StoreError::Corrupt {
                    pk: job.pk.clone(),
                    detail: "capped without a cap".into(),
                });
            };
            let what = format!(
                "cap reached: {} call(s) per {} for this {by}",
                cap.calls,
                crate::policy::spec::describe_duration(cap.per)
            );
            return Ok((
                match cap.on_cap {
                    OnCap::Skip => Outcome::Skipped { reason: what },
                    OnCap::Wait => Outcome::Defer {
                        until: until_ms,
                        reason: format!(
                            "{what}: waits until {}",
                            crate::policy::utc_text(until_ms)
                        ),
                    },
                },
                read_at,
            ));
        }
        Admission::Contended => {
            return Ok((
                Outcome::Defer {
                    until: crate::now_millis() + rand::rng().random_range(500..2_000),
                    reason: "another call for this customer was being counted; looking again"
                        .into(),
                },
                read_at,
            ));
        }
    }
    if n > 1 {
        info!(call_number = n, "a call of the retry cadence");
    }

    let mut snapshot = CallSnapshot::from_salesforce(
        &contact,
        case.as_ref(),
        req.reason.as_deref(),
        inner.config.followup.high_value_revenue,
        contact_read_at,
    );
    // `call.handoff`: who takes the call if the customer asks for a person, read now so the
    // webhook answers Vapi's transfer-destination-request from call# alone (jobs::handoff).
    if let Some(handoff) = &action.handoff {
        match crate::salesforce::owner::resolve_handoff(
            &inner.salesforce.rest,
            handoff,
            case.as_ref(),
            &contact_id,
            &phone,
            rule_policy,
        )
        .await
        {
            Ok(h) => snapshot.handoff = Some(h),
            Err(e) => {
                return Ok((
                    sf_outcome("reading the owner for call.handoff", &e),
                    read_at,
                ))
            }
        }
    }
    let snapshot_json = serde_json::to_string(&snapshot).unwrap_or_default();

    let api_key = match inner
        .secrets
        .get_json::<VapiSecret>(&inner.config.vapi_secret_arn)
        .await
    {
        Ok(VapiSecret {
            api_key: Some(k), ..
        }) => k,
        Ok(_) => {
            return Ok((
                Outcome::Failed {
                    error: "the Vapi secret has no api_key".into(),
                },
                read_at,
            ))
        }
        Err(e) => return Ok((secret_unavailable(&e), read_at)),
    };

    // The call context the webhook may trust: signed with the Vapi server secret's context_key
    // (which also keys the recent-callers index, crate::callers).
    let context_key = match &inner.config.vapi_server_secret_arn {
        None => None,
        Some(arn) => match inner
            .secrets
            .get_json::<crate::vapi::config::VapiServerSecret>(arn)
            .await
        {
            Ok(s) => s.context_key,
            Err(e) => return Ok((secret_unavailable(&e), read_at)),
        },
    };
    let context_sig = context_key.as_ref().and_then(|k| {
        crate::vapi::context::sign(k, &req.event_id, &contact_id, req.case_id.as_ref())
    });
    if context_sig.is_none() {
        warn!("no context_key in VAPI_SERVER_SECRET_ARN: the call's metadata is unsigned and the webhook will not trust it");
    }

    // Pacing: a slot per live call, taken before the commit point so that a job that finds
    // none simply waits (no attempt used up) instead of being dialled and blocked by Vapi.
    // A first run holds no slot (a Defer gives its attempt back, so a job that only waited is
    // still on its first): its home slot is tried with one write. A rerun may hold one already,
    // and so may a dial that follows a verification (Verify gives its attempt back too, and the
    // ambiguous dial before it kept its slot).
    let now = crate::now_millis();
    let holder = slot_holder(job, &req);
    let acquired = if job.attempts <= 1 && job.verify_from.is_none() {
        inner.slots.acquire_new(holder, now).await?
    } else {
        inner.slots.acquire(holder, now).await?
    };
    let slot = match acquired {
        Acquired::Slot(s) => s,
        Acquired::Full { live } => {
            let wait = inner.config.pacing.slot_wait.as_millis() as i64;
            let until = crate::now_millis() + wait + rand::rng().random_range(0..=wait / 2);
            info!(
                live,
                max = inner.slots.max(),
                "every call slot is busy: waiting"
            );
            metric("dial_slot_waits", 1.0, Unit::Count);
            return Ok((
                Outcome::Defer {
                    until,
                    reason: format!(
                        "waiting for a free call slot ({live} of {} live)",
                        inner.slots.max()
                    ),
                },
                read_at,
            ));
        }
    };

    // The commit point: after this write no other run can dial this event.
    if !inner
        .queue
        .mark_dialing(job, &snapshot_json, from_case.as_ref(), crate::now_millis())
        .await?
    {
        // Nothing was sent: if this run still owns the job, it may simply run again later.
        warn!("lease lost before dialing; not dialing");
        inner.slots.release(&slot).await?;
        return Ok((
            Outcome::Retry {
                error: "lease expired before dialing".into(),
                not_before: None,
            },
            read_at,
        ));
    }

    let call = CreateCall {
        assistant_id: assistant_id.to_owned(),
        phone_number_id: action
            .phone_number_id
            .clone()
            .unwrap_or_else(|| inner.config.vapi_phone_number_id.clone()),
        customer_number: phone.clone(),
        customer_name: Some(contact.name.clone()).filter(|n| !n.is_empty()),
        event_id: req.event_id.clone(),
        contact_id: contact_id.clone(),
        case_id: req.case_id.clone(),
        variable_values: variable_values(&req, &contact, &snapshot, action),
        context_sig,
    };
    let sent_at = crate::now_millis();
    metric(
        "dial_latency_ms",
        (sent_at - job.received_at) as f64,
        Unit::Milliseconds,
    );
    info!(phone = %phone, latency_ms = sent_at - job.received_at, "placing the call");
    let created = match inner.vapi.create_call(&api_key, &call).await {
        Ok(c) => c,
        // A call may exist: its slot stays held, and the next run asks Vapi whether it does
        // (crate::jobs::reconcile) instead of dialling again or handing it to a person.
        Err(e @ VapiError::Ambiguous { .. }) => {
            metric("dial_outcome_unknown", 1.0, Unit::Count);
            // Ask soon (the call is found as soon as Vapi lists it); absence is only trusted
            // after the grace period (reconcile::verify_dial).
            let grace = inner.config.reconcile.verify_grace;
            let first_look = inner.queue.backoff(1).min(grace);
            return Ok((
                Outcome::Verify {
                    why: e.to_string(),
                    since: sent_at,
                    next: crate::now_millis() + first_look.as_millis() as i64,
                },
                read_at,
            ));
        }
        Err(e) if e.is_retryable() => {
            inner.slots.release(&slot).await?;
            if matches!(e, VapiError::LimitReached { .. }) {
                metric("dial_limit_refused", 1.0, Unit::Count);
            }
            let not_before = match &e {
                VapiError::RateLimited {
                    retry_after: Some(d),
                    ..
                } => Some(sent_at + d.as_millis() as i64),
                _ => None,
            };
            return Ok((
                Outcome::Retry {
                    error: e.to_string(),
                    not_before,
                },
                read_at,
            ));
        }
        Err(e) => {
            inner.slots.release(&slot).await?;
            return Ok((
                Outcome::Failed {
                    error: e.to_string(),
                },
                read_at,
            ));
        }
    };
    observe_limits(&created, inner.slots.max());
    if created.concurrency_blocked() {
        // docs.vapi.ai/calls/call-concurrency: a blocked call "does not connect"; nothing was
        // dialled, so dialling again later is safe.
        inner.slots.release(&slot).await?;
        warn!(call_id = %created.id, "Vapi blocked the call: the org's concurrency limit is reached");
        metric("dial_concurrency_blocked", 1.0, Unit::Count);
        return Ok((
            Outcome::Retry {
                error: format!(
                    "Vapi blocked call {} (subscriptionLimits.concurrencyBlocked: the org's concurrency limit is reached); no call was placed",
                    created.id
                ),
                not_before: None,
            },
            read_at,
        ));
    }
    info!(call_id = %created.id, "call placed");
    if let Err(e) = inner.slots.attach_call(&slot, &created.id).await {
        // The slot still frees itself at its expiry.
        warn!(error = %e, "call slot not tied to the call");
    }

    let event_id: SalesforceEventId = req.event_id.clone();
    let new_call = NewCall {
        call_id: created.id.clone(),
        event_id,
        contact_id: contact_id.clone(),
        case_id: req.case_id.clone(),
        snapshot,
        created_at_ms: sent_at,
        slot: Some(slot.pk.clone()),
        call_number: n,
    };
    // The call exists now: record it for the tool answers, retrying briefly before giving up
    // (an unrecorded call still ends DONE below; the webhook falls back to a live lookup).
    let mut recorded = false;
    for attempt in 0..3 {
        match record_call(&inner.queue.store().clone(), &new_call, inner.config.ttl).await {
            Ok(ended) => {
                recorded = true;
                if ended {
                    // The call's `ended` arrived before call# named its slot: release it here.
                    if let Err(e) = release_for_call(inner.queue.store(), &created.id).await {
                        warn!(error = %e, "call slot not released");
                    }
                }
                break;
            }
            // call# already names another event: trying again cannot change that.
            Err(e @ StoreError::Corrupt { .. }) => {
                error!(error = %e, "call# not written");
                break;
            }
            Err(e) => {
                warn!(error = %e, attempt, "call# not written yet");
                tokio::time::sleep(std::time::Duration::from_millis(100 << attempt)).await;
            }
        }
    }
    // Remember whom this number belongs to, so a call back from it is known at once
    // (crate::callers). Best effort: without it, the caller is found by the Salesforce search.
    if let (true, Some(key)) = (recorded, context_key.as_ref()) {
        let outbound = crate::callers::OutboundCall {
            phone: &phone,
            call_id: &created.id,
            contact_id: &contact_id,
            placed_at_ms: sent_at,
        };
        if let Err(e) = crate::callers::record_outbound(
            inner.queue.store(),
            key,
            &outbound,
            inner.config.recent_calls_ttl,
        )
        .await
        {
            warn!(error = %e, "recent-callers entry not written; a call back is found by searching");
        }
    }
    let mut extra = read_at;
    extra.push(("dialed_at", AttributeValue::N(sent_at.to_string())));
    extra.push(("phone_masked", AttributeValue::S(phone.masked())));
    Ok((
        Outcome::Placed {
            call_id: created.id.as_str().to_owned(),
            detail: (!recorded).then(|| "call placed; call# could not be written".to_owned()),
            // Past this, a missing end-of-call report is fetched from Vapi.
            check_report_at: sent_at + inner.config.reconcile.report_after.as_millis() as i64,
        },
        extra,
    ))
}

/// Consent from the consent objects (`crate::salesforce::consent`): `None` when an `OptIn` is in
/// effect; else what the job does: SKIPPED (no consent, no Individual, an org without Data
/// Protection and Privacy: fail closed), or RETRY when Salesforce could not answer.
async fn contact_point_consent(
    w: &Worker,
    contact: &Contact,
    channel: &str,
    purpose: Option<&str>,
) -> Option<Outcome> {
    let skip = |why: String| {
        metric("policy_no_consent", 1.0, Unit::Count);
        Some(Outcome::Skipped {
            reason: format!("no consent: {why}"),
        })
    };
    let Some(individual) = contact
        .custom
        .get("IndividualId")
        .and_then(Value::as_str)
        .and_then(|s| crate::ids::SalesforceId::parse("IndividualId", s).ok())
    else {
        return skip("the Contact has no Individual (Contact.IndividualId is empty)".into());
    };
    let records = match w
        .inner
        .salesforce
        .rest
        .contact_point_consents(&individual, channel, purpose)
        .await
    {
        Ok(r) => r,
        Err(e) if e.is_retryable() => return Some(sf_outcome("reading the consent", &e)),
        Err(e) => return skip(format!("the consent could not be read ({e})")),
    };
    match crate::salesforce::consent::decide(&records, w.clock().now().timestamp_millis()) {
        Ok(()) => None,
        Err(why) => skip(format!(
            "{why} (ContactPointTypeConsent {channel}{} of Individual {individual})",
            purpose
                .map(|p| format!(", purpose {p}"))
                .unwrap_or_default()
        )),
    }
}

/// A secret that could not be read is a passing failure: come back later.
fn secret_unavailable(e: &crate::secrets::SecretsError) -> Outcome {
    Outcome::Retry {
        error: e.to_string(),
        not_before: None,
    }
}

/// Every 201 says how many slots the org has and how many were open: record both, and warn when
/// this deployment is allowed more live calls than the org really has.
fn observe_limits(created: &CreatedCall, configured_max: u32) {
    let Some(limits) = created.limits else {
        return;
    };
    if let Some(limit) = limits.concurrency_limit {
        metric("vapi_concurrency_limit", limit, Unit::Count);
        if f64::from(configured_max) > limit {
            warn!(
                configured = configured_max,
                org_limit = limit,
                "VAPI_MAX_CONCURRENT_CALLS is above the Vapi org's concurrency limit: calls will be blocked; lower it"
            );
        }
    }
    if let Some(remaining) = limits.remaining_concurrent_calls {
        metric("vapi_remaining_concurrent_calls", remaining, Unit::Count);
    }
}

/// The assistant's prompt variables (`{{customerName}}` …), from the event and the snapshot,
/// then the rule's own `call.variables` (an admin's value for a name wins).
fn variable_values(
    req: &DialRequest,
    contact: &Contact,
    snapshot: &CallSnapshot,
    action: &Action,
) -> Map<String, Value> {
    let mut v = Map::new();
    let mut put = |k: &str, val: Option<String>| {
        if let Some(val) = val {
            v.insert(k.to_owned(), Value::String(val));
        }
    };
    put("customerName", Some(contact.name.clone()));
    put(
        "caseId",
        req.case_id.as_ref().map(|c| c.as_str().to_owned()),
    );
    put(
        "priority",
        req.priority.as_ref().map(|p| p.as_str().to_owned()),
    );
    put("reason", req.reason.clone());
    put("accountStatus", snapshot.customer.account_status.clone());
    put(
        "lastInteraction",
        snapshot.customer.last_interaction.clone(),
    );
    put(
        "preferredLanguage",
        snapshot.customer.preferred_language.clone(),
    );
    if let Some(case) = &snapshot.case {
        put("caseNumber", case.case_number.clone());
        put("caseSubject", case.subject.clone());
    }
    for (k, val) in &action.variables {
        v.insert(k.clone(), Value::String(val.clone()));
    }
    v
}
