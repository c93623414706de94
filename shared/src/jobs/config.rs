//! The job worker's settings: queue timing, Vapi and Twilio endpoints, the follow-up policy and
//! quiet hours. Read once at cold start; an invalid value names its variable.

use std::time::Duration;

use crate::config::{CommonConfig, ConfigError, Env, Problems, SalesforceConfig};
use crate::queue::QueueSettings;
use crate::twilio::Sender;

pub use crate::policy::followup::{FollowupChannel, FollowupPolicy};

#[derive(Debug, Clone)]
pub struct Followup {
    /// `FOLLOWUP_POLICY` (default `not-reached`): after an outbound call.
    pub policy: FollowupPolicy,
    /// `FOLLOWUP_INBOUND_POLICY` (default `never`): after a call the customer made to us. The
    /// high-value rule below does not apply to inbound calls: a customer who called us needs no
    /// "we tried to reach you".
    pub inbound_policy: FollowupPolicy,
    /// `FOLLOWUP_HIGH_VALUE` (default true): also follow up customers whose
    /// `Account.AnnualRevenue` ≥ `HIGH_VALUE_REVENUE` (default 100000).
    pub high_value: bool,
    pub high_value_revenue: f64,
    /// `FOLLOWUP_CHANNEL` (default `sms`).
    pub channel: FollowupChannel,
    /// `FOLLOWUP_SMS_TEXT`: `{name}` is replaced by the customer's first name.
    pub sms_text: String,
    /// `FOLLOWUP_CALL_TEXT`: what the Twilio voice follow-up says (`{name}` likewise).
    pub call_text: String,
    /// `FOLLOWUP_OPT_OUT_FIELDS`: Contact checkbox fields that, when true, stop any follow-up
    /// (DoNotCall always does).
    pub opt_out_fields: Vec<String>,
}

/// The deprecated fixed-offset quiet hours (`QUIET_HOURS`), now owned by the calling policy.
pub use crate::policy::QuietHours;

#[derive(Debug, Clone)]
pub struct WorkerConfig {
    pub common: CommonConfig,
    pub salesforce: SalesforceConfig,
    pub queue: QueueSettings,
    /// `VAPI_SECRET_ARN`: `{"api_key":"<private key>"}`, read by the worker only.
    pub vapi_secret_arn: String,
    /// `VAPI_SERVER_SECRET_ARN`: `{"server_secrets":[…],"context_key":"…"}`, shared with the
    /// webhook; the worker reads `context_key` to sign each call's context.
    pub vapi_server_secret_arn: Option<String>,
    /// `VAPI_BASE_URL` (default `https://api.vapi.ai`).
    pub vapi_base_url: String,
    /// `VAPI_ASSISTANT_ID`, `VAPI_PHONE_NUMBER_ID`: who calls, from which number.
    pub vapi_assistant_id: String,
    pub vapi_phone_number_id: String,
    /// `VAPI_HTTP_TIMEOUT_SECS` (default 10): past it the dial's outcome is unknown (NEEDS_REVIEW).
    pub vapi_timeout: Duration,
    /// `TWILIO_SECRET_ARN`: `{"account_sid","auth_token"}` or API key; unset disables follow-ups.
    pub twilio_secret_arn: Option<String>,
    /// `TWILIO_BASE_URL` (default `https://api.twilio.com`).
    pub twilio_base_url: String,
    /// `TWILIO_FROM` or `TWILIO_MESSAGING_SERVICE_SID`.
    pub twilio_sender: Option<Sender>,
    pub twilio_timeout: Duration,
    pub followup: Followup,
    /// `QUIET_HOURS` (e.g. `21:00-08:00`) in `QUIET_HOURS_UTC_OFFSET` (default `+00:00`).
    pub quiet_hours: Option<QuietHours>,
    /// `CALL_HOURS` (default `08:00-21:00`, the customer's local time) and `CALL_CAP` (default
    /// `2/24h`, or `none`: calls per Contact and per number in a rolling window): what applies
    /// where the routing document's `policy` says nothing.
    pub call_policy: crate::policy::spec::Deployment,
    /// `EVENT_TTL_DAYS` (default 7): how long `call#` and `sms#` items are kept.
    pub ttl: Duration,
    pub pacing: Pacing,
    pub reconcile: Reconcile,
    /// `INBOUND_RECENT_CALL_DAYS` (default 3, at most `EVENT_TTL_DAYS`; 0 turns it off): how long
    /// a number sfvapi called is remembered (`crate::callers`), so a call back from it is known
    /// without a Salesforce search.
    pub recent_calls_ttl: Duration,
    /// The routing document (`ROUTING_FILE`, else the built-in `routing.yaml`): each job's rule
    /// says which assistant calls, its quiet hours, follow-up policy and write-back.
    pub routing: std::sync::Arc<crate::routing::Routing>,
    /// `RECORDINGS_BUCKET` (unset: recordings stay at Vapi and the Task links Vapi's URL) and
    /// `RECORDING_SOURCE_HOSTS` (default: any https DNS name): where the report job keeps each
    /// call's recording (`crate::recording`).
    pub recordings: Option<crate::recording::RecordingSettings>,
}

/// Settling doubts by asking Vapi (see `crate::jobs::reconcile`).
#[derive(Debug, Clone)]
pub struct Reconcile {
    /// `VAPI_VERIFY_GRACE_SECS` (default 60): after a dial whose outcome is unknown, how long
    /// Vapi's call list must show no call for the event before dialling again is safe.
    pub verify_grace: Duration,
    /// `VAPI_VERIFY_MAX_TRIES` (default 12, about 1.5 h with backoff): how often Vapi may be
    /// unreachable while we ask before the job needs a person.
    pub verify_max_tries: u32,
    /// When a placed call's end-of-call report is overdue and Vapi is asked for the call: its
    /// maximum duration (`VAPI_MAX_CALL_SECS`) + `VAPI_REPORT_GRACE_SECS` (default 300: Vapi
    /// sends the report after its post-call analysis).
    pub report_after: Duration,
}

/// Dial pacing (see `crate::pacing`).
#[derive(Debug, Clone)]
pub struct Pacing {
    /// `VAPI_MAX_CONCURRENT_CALLS` (default 10, Vapi's default org limit): live calls this
    /// deployment places at most. Keep it at or under the org's limit (the worker warns when
    /// Vapi's `subscriptionLimits.concurrencyLimit` is lower) minus what inbound calls need.
    pub max_concurrent_calls: u32,
    /// How long a slot is held at most: `VAPI_MAX_CALL_SECS` (default 600, the assistant's
    /// `maxDurationSeconds` default) plus the dial lease, for a call whose end never reports.
    pub slot_hold: Duration,
    /// `VAPI_SLOT_WAIT_SECS` (default 10): how long a job waits for a free slot before it looks
    /// again (jittered; no attempt is used up).
    pub slot_wait: Duration,
}

impl WorkerConfig {
    /// Every problem at once (`ConfigError::Several`), not one per restart.
    pub fn from_env<F: Fn(&str) -> Option<String>>(env: &Env<F>) -> Result<Self, ConfigError> {
        let mut p = Problems::new();
        let invalid = |var: &'static str, reason: String| ConfigError::Invalid { var, reason };
        let secs = |p: &mut Problems, var: &'static str, default: u64| {
            p.or(env.secs_or(var, default), Duration::from_secs(default))
        };
        let max_attempts: u32 = p.or(env.parse_or("MAX_ATTEMPTS", 5), 5);
        if !(1..=50).contains(&max_attempts) {
            p.push(invalid("MAX_ATTEMPTS", "must be between 1 and 50".into()));
        }
        let queue = QueueSettings {
            lease: secs(&mut p, "JOB_LEASE_SECS", 60),
            dial_lease: secs(&mut p, "DIAL_LEASE_SECS", 120),
            max_attempts,
            backoff_base: secs(&mut p, "RETRY_BASE_SECS", 30),
            backoff_max: secs(&mut p, "RETRY_MAX_SECS", 900),
        };
        let twilio_sender = match (
            env.optional("TWILIO_MESSAGING_SERVICE_SID"),
            env.optional("TWILIO_FROM"),
        ) {
            (Some(sid), _) => Some(Sender::MessagingService(sid)),
            (None, Some(from)) => Some(Sender::From(from)),
            (None, None) => None,
        };
        let followup = Followup {
            policy: p.or(
                env.parse_or("FOLLOWUP_POLICY", FollowupPolicy::NotReached),
                FollowupPolicy::NotReached,
            ),
            inbound_policy: p.or(
                env.parse_or("FOLLOWUP_INBOUND_POLICY", FollowupPolicy::Never),
                FollowupPolicy::Never,
            ),
            high_value: p.or(env.parse_or("FOLLOWUP_HIGH_VALUE", true), true),
            high_value_revenue: p.or(env.parse_or("HIGH_VALUE_REVENUE", 100_000.0), 0.0),
            channel: p.or(
                env.parse_or("FOLLOWUP_CHANNEL", FollowupChannel::Sms),
                FollowupChannel::Sms,
            ),
            sms_text: env.optional("FOLLOWUP_SMS_TEXT").unwrap_or_else(|| {
                "Hi {name}, we just tried to reach you about your support case. Reply or call us back any time.".into()
            }),
            call_text: env.optional("FOLLOWUP_CALL_TEXT").unwrap_or_else(|| {
                "Hello {name}. We tried to reach you about your support case. A specialist will call you back shortly.".into()
            }),
            opt_out_fields: env.list("FOLLOWUP_OPT_OUT_FIELDS"),
        };
        let quiet_hours = env.optional("QUIET_HOURS").and_then(|w| {
            let offset = env
                .optional("QUIET_HOURS_UTC_OFFSET")
                .unwrap_or_else(|| "+00:00".into());
            p.ok(QuietHours::parse(&w, &offset).map_err(|e| invalid("QUIET_HOURS", e)))
        });
        let mut salesforce = SalesforceConfig::collect(env, &mut p);
        // Opt-out checkboxes must come back with the Contact.
        for f in &followup.opt_out_fields {
            if !salesforce.contact_custom_fields.contains(f) {
                salesforce.contact_custom_fields.push(f.clone());
            }
        }
        let ttl_days: u64 = p.or(env.parse_or("EVENT_TTL_DAYS", 7), 7);
        let recent_days: u64 = p.or(
            env.parse_or("INBOUND_RECENT_CALL_DAYS", 3.min(ttl_days.max(1))),
            0,
        );
        // The index points at call#, which lives EVENT_TTL_DAYS: it must not outlive it.
        if recent_days > ttl_days.max(1) {
            p.push(invalid(
                "INBOUND_RECENT_CALL_DAYS",
                format!(
                    "must be at most EVENT_TTL_DAYS ({ttl_days}): the index points at call# items"
                ),
            ));
        }
        let vapi_timeout = secs(&mut p, "VAPI_HTTP_TIMEOUT_SECS", 10);
        // A dial must be answered (or time out) well before the sweep gives up on it.
        if queue.dial_lease < vapi_timeout + Duration::from_secs(30) {
            p.push(invalid(
                "DIAL_LEASE_SECS",
                format!(
                    "must exceed VAPI_HTTP_TIMEOUT_SECS ({}) by at least 30 s",
                    vapi_timeout.as_secs()
                ),
            ));
        }
        let max_concurrent_calls: u32 = p.or(
            env.parse_or(
                "VAPI_MAX_CONCURRENT_CALLS",
                crate::pacing::DEFAULT_MAX_CONCURRENT_CALLS,
            ),
            crate::pacing::DEFAULT_MAX_CONCURRENT_CALLS,
        );
        if !(1..=1000).contains(&max_concurrent_calls) {
            p.push(invalid(
                "VAPI_MAX_CONCURRENT_CALLS",
                "must be between 1 and 1000".into(),
            ));
        }
        let max_call = secs(&mut p, "VAPI_MAX_CALL_SECS", 600);
        // Vapi's assistant `maxDurationSeconds` is 10..=43200 (OpenAPI CreateAssistantDTO).
        if !(10..=43_200).contains(&max_call.as_secs()) {
            p.push(invalid(
                "VAPI_MAX_CALL_SECS",
                "must be between 10 and 43200 (Vapi's maxDurationSeconds range)".into(),
            ));
        }
        let reconcile = Reconcile {
            verify_grace: secs(&mut p, "VAPI_VERIFY_GRACE_SECS", 60),
            verify_max_tries: p.or(env.parse_or("VAPI_VERIFY_MAX_TRIES", 12), 12),
            report_after: max_call + secs(&mut p, "VAPI_REPORT_GRACE_SECS", 300),
        };
        if reconcile.verify_max_tries == 0 {
            p.push(invalid(
                "VAPI_VERIFY_MAX_TRIES",
                "must be at least 1".into(),
            ));
        }
        let pacing = Pacing {
            max_concurrent_calls,
            slot_hold: max_call + queue.dial_lease,
            slot_wait: secs(&mut p, "VAPI_SLOT_WAIT_SECS", 10).max(Duration::from_secs(1)),
        };
        let required = |p: &mut Problems, var: &'static str, hint: &'static str| {
            p.or(env.required(var, hint), String::new())
        };
        let common = CommonConfig::collect(env, &mut p);
        let vapi_secret_arn =
            required(&mut p, "VAPI_SECRET_ARN", "the Vapi secret holding api_key");
        let vapi_assistant_id = required(
            &mut p,
            "VAPI_ASSISTANT_ID",
            "the Vapi assistant that places the calls",
        );
        let vapi_phone_number_id = required(
            &mut p,
            "VAPI_PHONE_NUMBER_ID",
            "the Vapi phone number calls come from",
        );
        let twilio_timeout = secs(&mut p, "TWILIO_HTTP_TIMEOUT_SECS", 10);
        let mut call_policy = crate::policy::spec::Deployment::default();
        if let Some(raw) = env.optional("CALL_CAP") {
            call_policy.cap = p.or(
                crate::policy::spec::parse_env_cap(&raw).map_err(|e| invalid("CALL_CAP", e)),
                call_policy.cap,
            );
        }
        if let Some(raw) = env.optional("CALL_HOURS") {
            call_policy.hours = p.or(
                crate::policy::Window::parse_hours(&raw).map_err(|e| invalid("CALL_HOURS", e)),
                call_policy.hours,
            );
        }
        let Some(routing) = p.ok(crate::routing::Routing::from_env(env)) else {
            return Err(p.into_error());
        };
        // The deprecated fixed-offset window and the policy's zones say the same thing two ways
        // that disagree twice a year: a deployment uses one.
        if env.optional("QUIET_HOURS").is_some() && routing.sets_time_zone() {
            p.push(invalid(
                "QUIET_HOURS",
                format!(
                    "(with QUIET_HOURS_UTC_OFFSET) is deprecated and may not be mixed with the routing document's policy.timeZone ({}): remove it and say the hours as policy.hours or CALL_HOURS, in the customer's own zone",
                    routing.source_name()
                ),
            ));
        }
        // The policy's consent and time-zone fields must come back with the Contact too.
        for f in routing.policy_contact_fields() {
            if !salesforce.contact_custom_fields.contains(&f) {
                salesforce.contact_custom_fields.push(f);
            }
        }
        let recordings =
            env.optional("RECORDINGS_BUCKET")
                .map(|bucket| crate::recording::RecordingSettings {
                    bucket,
                    sources: crate::recording::Sources::new(env.list("RECORDING_SOURCE_HOSTS")),
                });
        p.finish(Self {
            recordings,
            call_policy,
            pacing,
            reconcile,
            routing: std::sync::Arc::new(routing),
            common,
            salesforce,
            queue,
            vapi_secret_arn,
            vapi_server_secret_arn: env.optional("VAPI_SERVER_SECRET_ARN"),
            vapi_base_url: env
                .optional("VAPI_BASE_URL")
                .unwrap_or_else(|| crate::vapi::client::DEFAULT_BASE_URL.into()),
            vapi_assistant_id,
            vapi_phone_number_id,
            vapi_timeout,
            twilio_secret_arn: env.optional("TWILIO_SECRET_ARN"),
            twilio_base_url: env
                .optional("TWILIO_BASE_URL")
                .unwrap_or_else(|| crate::twilio::DEFAULT_BASE_URL.into()),
            twilio_sender,
            twilio_timeout,
            followup,
            quiet_hours,
            ttl: Duration::from_secs(ttl_days.max(1) * 86_400),
            recent_calls_ttl: Duration::from_secs(recent_days * 86_400),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::tests::env;

    fn worker(extra: &[(&str, &str)]) -> Result<WorkerConfig, ConfigError> {
        let mut vars = vec![
            ("TABLE_NAME", "t"),
            ("SF_CONNECTION_SECRET_ARN", "s"),
            ("VAPI_SECRET_ARN", "v"),
            ("VAPI_ASSISTANT_ID", "a"),
            ("VAPI_PHONE_NUMBER_ID", "p"),
        ];
        vars.extend_from_slice(extra);
        WorkerConfig::from_env(&env(&vars))
    }

    #[test]
    fn inbound_calls_follow_up_never_and_numbers_are_remembered_three_days_by_default() {
        let c = worker(&[]).unwrap();
        assert_eq!(c.followup.inbound_policy, FollowupPolicy::Never);
        assert_eq!(c.followup.policy, FollowupPolicy::NotReached);
        assert_eq!(c.recent_calls_ttl, Duration::from_secs(3 * 86_400));
        let c = worker(&[
            ("FOLLOWUP_INBOUND_POLICY", "always"),
            ("INBOUND_RECENT_CALL_DAYS", "0"),
        ])
        .unwrap();
        assert_eq!(c.followup.inbound_policy, FollowupPolicy::Always);
        assert!(c.recent_calls_ttl.is_zero(), "0 turns the index off");
        // The index points at call#: it may not outlive it.
        let e = worker(&[("EVENT_TTL_DAYS", "2"), ("INBOUND_RECENT_CALL_DAYS", "3")]).unwrap_err();
        assert!(e.to_string().contains("INBOUND_RECENT_CALL_DAYS"), "{e}");
        assert_eq!(
            worker(&[("EVENT_TTL_DAYS", "1")]).unwrap().recent_calls_ttl,
            Duration::from_secs(86_400)
        );
        let e = worker(&[("FOLLOWUP_INBOUND_POLICY", "sometimes")]).unwrap_err();
        assert!(e.to_string().contains("FOLLOWUP_INBOUND_POLICY"), "{e}");
    }

    #[test]
    fn a_worker_without_configuration_names_every_missing_variable_at_once() {
        let e = WorkerConfig::from_env(&env(&[
            ("QUIET_HOURS", "22:00"),
            ("FOLLOWUP_CHANNEL", "pigeon"),
        ]))
        .unwrap_err();
        let mut vars = e.vars();
        vars.sort_unstable();
        assert_eq!(
            vars,
            [
                "FOLLOWUP_CHANNEL",
                "QUIET_HOURS",
                "SF_CONNECTION_SECRET_ARN",
                "TABLE_NAME",
                "VAPI_ASSISTANT_ID",
                "VAPI_PHONE_NUMBER_ID",
                "VAPI_SECRET_ARN"
            ],
            "{e}"
        );
        assert!(e.to_string().contains("unknown channel \"pigeon\""), "{e}");
    }
}
