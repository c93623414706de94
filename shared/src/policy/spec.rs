//! The calling policy as the routing document states it: a `policy:` block at the top of the
//! document (the deployment's defaults) and one per rule (its own values, key by key over the
//! defaults). Parsed once, with the document, into a [`Policy`] per rule; an invalid value names
//! its key.
//!
//! ```yaml
//! policy:                              # every key optional; these are the defaults
//!   timeZone: America/New_York         # when neither the Contact nor the number says (UTC)
//!   timeZoneField: Time_Zone__c        # a Contact field holding an IANA id (none)
//!   hours: "08:00-21:00"               # local calling hours (08:00-21:00, the TCPA's)
//!   days: [Mon-Sat]                    # (every day)
//!   skipDates: [2026-12-25]            # local dates without calls (none)
//!   consent: {field: Voice_Consent__c, values: [true]}   # required consent (none)
//!   cap: {calls: 2, per: 24h, onCap: wait}               # per Contact and per number
//!   retry: {on: [customer-did-not-answer, customer-busy, voicemail], after: [2h, 1d],
//!           maxCalls: 3, followUp: after-last}           # (none: one call)
//! ```

use std::collections::BTreeMap;
use std::sync::OnceLock;
use std::time::Duration;

use chrono_tz::Tz;
use serde::Deserialize;
use serde_json::Value;

use super::window::Window;

/// The most calls a cap may allow in its window (the cap's ledger keeps this many).
pub const MAX_CAP_CALLS: u32 = 10;
/// The most calls a retry cadence may make for one event.
pub const MAX_RETRY_CALLS: u32 = 10;
/// Vapi's `endedReason` values (`ServerMessageEndOfCallReport.endedReason` in Vapi's OpenAPI
/// document; `shared/tests/contracts.rs` holds this copy to the schema).
const ENDED_REASONS: &str = include_str!("../../data/vapi-ended-reasons.txt");

fn ended_reasons() -> &'static [&'static str] {
    static LIST: OnceLock<Vec<&'static str>> = OnceLock::new();
    LIST.get_or_init(|| {
        ENDED_REASONS
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty() && !l.starts_with('#'))
            .collect()
    })
}

/// Short names for the ended reasons of a call that reached nobody (Vapi's "Call ended reasons",
/// <https://docs.vapi.ai/calls/call-ended-reason>: `customer-did-not-answer` "The customer didn't
/// answer the call", `customer-busy` "The customer's line was busy", `voicemail` "The call went to
/// voicemail").
pub const ALIASES: &[(&str, &str)] = &[
    ("no-answer", "customer-did-not-answer"),
    ("busy", "customer-busy"),
];

/// What the worker must hold before it dials; without it the job is SKIPPED, never dialled.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Consent {
    /// A Contact field with one of these values (compared as text: `true` for a checkbox, a
    /// picklist's value), read in the Contact's own query.
    Field { field: String, values: Vec<String> },
    /// An `OptIn` `ContactPointTypeConsent` in effect for this contact point type (`Phone`) of the
    /// Contact's `Individual`, and none `OptOut` (`crate::salesforce::consent`): one more query.
    ContactPoint {
        channel: String,
        /// A `DataUsePurpose` name the consent must be for.
        purpose: Option<String>,
    },
}

/// What a job does when the cap is reached.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnCap {
    /// Waits (RETRY, no attempt used) until the oldest counted call leaves the window.
    Wait,
    /// Ends SKIPPED.
    Skip,
}

/// At most `calls` calls per Contact and per phone number in any `per`, across every event and
/// rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cap {
    pub calls: u32,
    pub per: Duration,
    pub on_cap: OnCap,
}

impl Default for Cap {
    fn default() -> Self {
        Self {
            calls: 2,
            per: Duration::from_secs(24 * 3600),
            on_cap: OnCap::Wait,
        }
    }
}

/// When the follow-up message goes during a retry cadence.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RetryFollowUp {
    /// After the last call of the cadence only (the default).
    AfterLast,
    /// After every call the follow-up policy asks for.
    Each,
    Never,
}

/// Call again when a call reached nobody.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Retry {
    /// Vapi `endedReason` values that mean "try again".
    pub on: Vec<String>,
    /// The delay before call 2, 3, …; the last one repeats.
    pub after: Vec<Duration>,
    /// Calls in all, the first included.
    pub max_calls: u32,
    pub follow_up: RetryFollowUp,
}

impl Retry {
    /// Whether call number `call` (1-based) that ended so is followed by another, and after
    /// how long.
    pub fn next_after(&self, call: u32, ended_reason: &str) -> Option<Duration> {
        if call >= self.max_calls || !self.on.iter().any(|r| r == ended_reason) {
            return None;
        }
        let i = (call as usize).saturating_sub(1).min(self.after.len() - 1);
        self.after.get(i).copied()
    }
}

/// One rule's calling policy, its defaults resolved.
#[derive(Debug, Clone, PartialEq)]
pub struct Policy {
    /// The zone when neither the Contact nor her number says (default UTC).
    pub time_zone: Tz,
    /// Whether `timeZone` was set (the deprecated UTC-offset settings may not be mixed with it).
    pub time_zone_set: bool,
    pub time_zone_field: Option<String>,
    pub window: Window,
    /// Whether `hours` was set (else the deployment's `CALL_HOURS`).
    pub hours_set: bool,
    pub consent: Option<Consent>,
    /// `None`: the deployment's (`CALL_CAP`, default 2 per 24 h); `Some(None)`: no cap.
    pub cap: Option<Option<Cap>>,
    pub retry: Option<Retry>,
}

impl Default for Policy {
    fn default() -> Self {
        Self {
            time_zone: chrono_tz::UTC,
            time_zone_set: false,
            time_zone_field: None,
            window: Window::default(),
            hours_set: false,
            consent: None,
            cap: None,
            retry: None,
        }
    }
}

/// The deployment's defaults for what the routing document leaves unsaid: `CALL_HOURS` (default
/// 08:00-21:00) and `CALL_CAP` (default 2/24h).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Deployment {
    pub hours: (u32, u32),
    pub cap: Option<Cap>,
}

impl Default for Deployment {
    fn default() -> Self {
        let w = Window::default();
        Self {
            hours: (w.start, w.end),
            cap: Some(Cap::default()),
        }
    }
}

impl Policy {
    /// This policy with the deployment's defaults filled in.
    pub fn effective(&self, d: &Deployment) -> Policy {
        let mut p = self.clone();
        if !p.hours_set {
            (p.window.start, p.window.end) = d.hours;
        }
        p.cap = Some(p.cap.unwrap_or(d.cap));
        p
    }

    /// The cap that applies (after [`Policy::effective`]).
    pub fn cap(&self) -> Option<&Cap> {
        self.cap.as_ref().and_then(Option::as_ref)
    }

    /// The Contact fields the worker must read for this policy.
    pub fn contact_fields(&self) -> impl Iterator<Item = &str> {
        self.time_zone_field
            .as_deref()
            .into_iter()
            .chain(self.consent.as_ref().map(|c| match c {
                Consent::Field { field, .. } => field.as_str(),
                Consent::ContactPoint { .. } => "IndividualId",
            }))
    }
}

/// A `policy:` block as written. Each key is kept as raw JSON so that a rule's block can be laid
/// key by key over the document's before either is checked.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(transparent)]
pub struct RawPolicy(BTreeMap<String, Value>);

const KEYS: &[&str] = &[
    "timeZone",
    "timeZoneField",
    "hours",
    "days",
    "skipDates",
    "consent",
    "cap",
    "retry",
];

impl RawPolicy {
    /// The rule's keys over the defaults'.
    pub fn over(&self, defaults: Option<&RawPolicy>) -> RawPolicy {
        let mut merged = defaults.map(|d| d.0.clone()).unwrap_or_default();
        merged.extend(self.0.iter().map(|(k, v)| (k.clone(), v.clone())));
        RawPolicy(merged)
    }

    pub fn parse(&self) -> Result<Policy, String> {
        if let Some(k) = self.0.keys().find(|k| !KEYS.contains(&k.as_str())) {
            return Err(format!(
                "policy.{k}: unknown key (expected one of {})",
                KEYS.join(", ")
            ));
        }
        let mut p = Policy::default();
        let text = |key: &str| -> Result<Option<&str>, String> {
            match self.0.get(key) {
                None | Some(Value::Null) => Ok(None),
                Some(Value::String(s)) => Ok(Some(s.as_str())),
                Some(_) => Err(format!("policy.{key}: must be text")),
            }
        };
        if let Some(z) = text("timeZone")? {
            p.time_zone = z.trim().parse::<Tz>().map_err(|_| {
                format!("policy.timeZone: {z:?} is not an IANA time zone (e.g. America/New_York)")
            })?;
            p.time_zone_set = true;
        }
        if let Some(f) = text("timeZoneField")? {
            p.time_zone_field = Some(api_name("timeZoneField", f)?);
        }
        if let Some(h) = text("hours")? {
            (p.window.start, p.window.end) =
                Window::parse_hours(h).map_err(|e| format!("policy.hours: {e}"))?;
            p.hours_set = true;
        }
        if let Some(days) = self.0.get("days") {
            let list = strings("days", days)?;
            p.window.days = Window::parse_days(&list).map_err(|e| format!("policy.days: {e}"))?;
        }
        if let Some(dates) = self.0.get("skipDates") {
            let mut skip = strings("skipDates", dates)?
                .iter()
                .map(|d| Window::parse_date(d))
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| format!("policy.skipDates: {e}"))?;
            skip.sort_unstable();
            skip.dedup();
            p.window.skip = skip;
        }
        p.consent = match self.0.get("consent") {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) if s == "none" => None,
            Some(Value::Object(m)) => Some(consent(m)?),
            Some(_) => return Err("policy.consent: expected {field, values} or none".into()),
        };
        p.cap = match self.0.get("cap") {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) if s == "none" => Some(None),
            Some(v) => Some(Some(cap(v)?)),
        };
        p.retry = match self.0.get("retry") {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) if s == "none" => None,
            Some(Value::Object(m)) => Some(retry(m)?),
            Some(_) => return Err("policy.retry: expected {on, after, maxCalls} or none".into()),
        };
        Ok(p)
    }
}

fn api_name(key: &str, raw: &str) -> Result<String, String> {
    let s = raw.trim();
    if !s.is_empty() && s.len() <= 80 && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
        Ok(s.to_owned())
    } else {
        Err(format!("policy.{key}: {raw:?} is not a field API name"))
    }
}

/// A value as text: YAML's `true` and a picklist's `Granted` alike.
fn as_text(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Bool(b) => Some(b.to_string()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

fn strings(key: &str, v: &Value) -> Result<Vec<String>, String> {
    match v {
        Value::Array(items) => items
            .iter()
            .map(|i| as_text(i).ok_or_else(|| format!("policy.{key}: items must be text")))
            .collect(),
        other => as_text(other)
            .map(|s| vec![s])
            .ok_or_else(|| format!("policy.{key}: expected a list")),
    }
}

fn object_keys(
    key: &str,
    m: &serde_json::Map<String, Value>,
    known: &[&str],
) -> Result<(), String> {
    match m.keys().find(|k| !known.contains(&k.as_str())) {
        Some(k) => Err(format!(
            "policy.{key}.{k}: unknown key (expected {})",
            known.join(", ")
        )),
        None => Ok(()),
    }
}

fn consent(m: &serde_json::Map<String, Value>) -> Result<Consent, String> {
    if let Some(channel) = m.get("contactPointType") {
        object_keys("consent", m, &["contactPointType", "purpose"])?;
        // ContactPointTypeConsent.ContactPointType's values (Object Reference).
        const CHANNELS: &[&str] = &["Phone", "Email", "MailingAddress", "Social", "Web"];
        let channel = channel
            .as_str()
            .filter(|c| CHANNELS.contains(c))
            .ok_or(format!(
                "policy.consent.contactPointType: one of {}",
                CHANNELS.join(", ")
            ))?;
        let purpose = match m.get("purpose") {
            None => None,
            Some(p) => {
                let p = p.as_str().map(str::trim).unwrap_or_default();
                let ok = !p.is_empty()
                    && p.len() <= 80
                    && p.chars()
                        .all(|c| c.is_ascii_alphanumeric() || " -_".contains(c));
                if !ok {
                    return Err("policy.consent.purpose: a DataUsePurpose name (letters, digits, spaces, - and _)".into());
                }
                Some(p.to_owned())
            }
        };
        return Ok(Consent::ContactPoint {
            channel: channel.to_owned(),
            purpose,
        });
    }
    object_keys("consent", m, &["field", "values"])?;
    let field = m
        .get("field")
        .and_then(Value::as_str)
        .ok_or("policy.consent.field: the Contact field that holds the consent is required (or contactPointType: Phone, for the consent objects)")?;
    let values = match m.get("values") {
        None => vec!["true".to_owned()],
        Some(v) => strings("consent.values", v)?,
    };
    if values.is_empty() {
        return Err("policy.consent.values: at least one value means consent".into());
    }
    Ok(Consent::Field {
        field: api_name("consent.field", field)?,
        values,
    })
}

/// `30m`, `2h`, `1d`, `90s`.
pub fn parse_duration(raw: &str) -> Result<Duration, String> {
    let s = raw.trim();
    let (n, unit) = s.split_at(s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len()));
    let n: u64 = n
        .parse()
        .map_err(|_| format!("{raw:?} is not a duration (e.g. 30m, 2h, 1d)"))?;
    let secs = match unit {
        "s" => n,
        "m" => n * 60,
        "h" => n * 3600,
        "d" => n * 86_400,
        _ => return Err(format!("{raw:?} is not a duration (e.g. 30m, 2h, 1d)")),
    };
    if secs == 0 || secs > 30 * 86_400 {
        return Err(format!("{raw:?}: must be more than 0 and at most 30d"));
    }
    Ok(Duration::from_secs(secs))
}

/// `CALL_CAP`: `2/24h` (calls per window, `onCap: wait`) or `none`.
pub fn parse_env_cap(raw: &str) -> Result<Option<Cap>, String> {
    let raw = raw.trim();
    if raw == "none" {
        return Ok(None);
    }
    let (calls, per) = raw
        .split_once('/')
        .ok_or("expected CALLS/WINDOW, e.g. 2/24h, or none")?;
    let calls: u32 = calls
        .trim()
        .parse()
        .ok()
        .filter(|c| (1..=MAX_CAP_CALLS).contains(c))
        .ok_or(format!(
            "calls must be a whole number from 1 to {MAX_CAP_CALLS}"
        ))?;
    Ok(Some(Cap {
        calls,
        per: parse_duration(per)?,
        on_cap: OnCap::Wait,
    }))
}

/// `24h`, `90m`, `2d`, `45s`: the largest whole unit.
pub fn describe_duration(d: Duration) -> String {
    let s = d.as_secs();
    match s {
        _ if s > 0 && s.is_multiple_of(86_400) => format!("{}d", s / 86_400),
        _ if s > 0 && s.is_multiple_of(3600) => format!("{}h", s / 3600),
        _ if s > 0 && s.is_multiple_of(60) => format!("{}m", s / 60),
        _ => format!("{s}s"),
    }
}

fn cap(v: &Value) -> Result<Cap, String> {
    let Value::Object(m) = v else {
        return Err("policy.cap: expected {calls, per, onCap} or none".into());
    };
    object_keys("cap", m, &["calls", "per", "onCap"])?;
    let mut cap = Cap::default();
    if let Some(c) = m.get("calls") {
        cap.calls = c
            .as_u64()
            .filter(|c| (1..=u64::from(MAX_CAP_CALLS)).contains(c))
            .ok_or(format!(
                "policy.cap.calls: a whole number from 1 to {MAX_CAP_CALLS}"
            ))? as u32;
    }
    if let Some(per) = m.get("per") {
        let per = per
            .as_str()
            .ok_or("policy.cap.per: a duration such as 24h")?;
        cap.per = parse_duration(per).map_err(|e| format!("policy.cap.per: {e}"))?;
    }
    cap.on_cap = match m.get("onCap").and_then(Value::as_str) {
        None if !m.contains_key("onCap") => OnCap::Wait,
        Some("wait") => OnCap::Wait,
        Some("skip") => OnCap::Skip,
        _ => return Err("policy.cap.onCap: wait or skip".into()),
    };
    Ok(cap)
}

fn retry(m: &serde_json::Map<String, Value>) -> Result<Retry, String> {
    object_keys("retry", m, &["on", "after", "maxCalls", "followUp"])?;
    let on = match m.get("on") {
        None => vec![
            "customer-did-not-answer".to_owned(),
            "customer-busy".to_owned(),
            "voicemail".to_owned(),
        ],
        Some(v) => strings("retry.on", v)?
            .into_iter()
            .map(|r| {
                let r = ALIASES
                    .iter()
                    .find(|(alias, _)| *alias == r)
                    .map_or(r.clone(), |(_, full)| (*full).to_owned());
                if ended_reasons().contains(&r.as_str()) {
                    Ok(r)
                } else {
                    Err(format!(
                        "policy.retry.on: {r:?} is not one of Vapi's endedReason values (e.g. customer-did-not-answer, customer-busy, voicemail; or no-answer, busy)"
                    ))
                }
            })
            .collect::<Result<Vec<_>, _>>()?,
    };
    let after = strings(
        "retry.after",
        m.get("after").ok_or(
            "policy.retry.after: the delays before each further call are required (e.g. [2h, 1d])",
        )?,
    )?
    .iter()
    .map(|d| parse_duration(d))
    .collect::<Result<Vec<_>, _>>()
    .map_err(|e| format!("policy.retry.after: {e}"))?;
    if after.is_empty() {
        return Err("policy.retry.after: at least one delay".into());
    }
    let max_calls = m
        .get("maxCalls")
        .map(|v| {
            v.as_u64()
                .filter(|c| (2..=u64::from(MAX_RETRY_CALLS)).contains(c))
                .map(|c| c as u32)
                .ok_or(format!(
                    "policy.retry.maxCalls: a whole number from 2 to {MAX_RETRY_CALLS} (calls in all, the first included)"
                ))
        })
        .transpose()?
        .unwrap_or(after.len() as u32 + 1);
    let follow_up = match m.get("followUp").and_then(Value::as_str) {
        None if !m.contains_key("followUp") => RetryFollowUp::AfterLast,
        Some("after-last") => RetryFollowUp::AfterLast,
        Some("each") => RetryFollowUp::Each,
        Some("never") => RetryFollowUp::Never,
        _ => return Err("policy.retry.followUp: after-last, each or never".into()),
    };
    Ok(Retry {
        on,
        after,
        max_calls,
        follow_up,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw(yaml: &str) -> RawPolicy {
        serde_norway::from_str(yaml).unwrap()
    }

    #[test]
    fn defaults_are_the_tcpa_window_two_calls_a_day_and_one_call_per_event() {
        let p = RawPolicy::default().parse().unwrap();
        assert_eq!((p.window.start, p.window.end), (8 * 60, 21 * 60));
        assert_eq!(p.window.days, [true; 7]);
        assert_eq!(p.cap, None, "the deployment's CALL_CAP");
        assert_eq!(
            (Cap::default().calls, Cap::default().per.as_secs()),
            (2, 86_400)
        );
        assert_eq!(parse_env_cap("2/24h"), Ok(Some(Cap::default())));
        assert_eq!(parse_env_cap("none"), Ok(None));
        assert!(parse_env_cap("0/1h").is_err());
        assert!(parse_env_cap("3").is_err());
        let p = raw("{cap: none}").parse().unwrap();
        assert_eq!(p.cap, Some(None));
        let p = raw("{cap: {calls: 1, per: 1h, onCap: skip}}")
            .parse()
            .unwrap();
        assert_eq!(
            p.cap,
            Some(Some(Cap {
                calls: 1,
                per: Duration::from_secs(3600),
                on_cap: OnCap::Skip
            }))
        );
        assert_eq!(p.retry, None);
        assert_eq!(p.consent, None);
        assert_eq!(p.time_zone, chrono_tz::UTC);
    }

    #[test]
    fn a_rule_overrides_the_defaults_key_by_key() {
        let defaults = raw("{timeZone: America/New_York, hours: '09:00-20:00', consent: {field: Voice_Consent__c}}");
        let rule = raw("{hours: '10:00-18:00', consent: none, retry: {on: [no-answer, voicemail], after: [2h, 1d], maxCalls: 3}}");
        let p = rule.over(Some(&defaults)).parse().unwrap();
        assert_eq!(p.time_zone, chrono_tz::America::New_York);
        assert_eq!((p.window.start, p.window.end), (600, 1080));
        assert_eq!(p.consent, None, "`none` turns the default off");
        let r = p.retry.unwrap();
        assert_eq!(r.on, ["customer-did-not-answer", "voicemail"]);
        assert_eq!(r.max_calls, 3);
        assert_eq!(r.follow_up, RetryFollowUp::AfterLast);
        assert_eq!(
            r.next_after(1, "customer-did-not-answer"),
            Some(Duration::from_secs(7200))
        );
        assert_eq!(
            r.next_after(2, "voicemail"),
            Some(Duration::from_secs(86_400))
        );
        assert_eq!(
            r.next_after(3, "voicemail"),
            None,
            "the third call was the last"
        );
        assert_eq!(r.next_after(1, "customer-ended-call"), None, "reached");
        let p = raw("{consent: {contactPointType: Phone, purpose: Customer Service}}")
            .parse()
            .unwrap();
        assert_eq!(
            p.consent,
            Some(Consent::ContactPoint {
                channel: "Phone".into(),
                purpose: Some("Customer Service".into())
            })
        );
        assert_eq!(p.contact_fields().collect::<Vec<_>>(), ["IndividualId"]);
        let p = raw("{}").over(Some(&defaults)).parse().unwrap();
        assert_eq!(
            p.consent,
            Some(Consent::Field {
                field: "Voice_Consent__c".into(),
                values: vec!["true".into()]
            })
        );
    }

    #[test]
    fn each_mistake_names_its_key() {
        for (yaml, key) in [
            ("{timeZone: Mars/Olympus}", "policy.timeZone"),
            ("{timezone: UTC}", "policy.timezone"),
            ("{hours: '21:00-08:00'}", "policy.hours"),
            ("{days: [Funday]}", "policy.days"),
            ("{skipDates: [2026-02-30]}", "policy.skipDates"),
            ("{consent: {values: [true]}}", "policy.consent.field"),
            ("{consent: {field: 'a b'}}", "policy.consent.field"),
            (
                "{consent: {contactPointType: Fax}}",
                "policy.consent.contactPointType",
            ),
            (
                "{consent: {contactPointType: Phone, purpose: \"x'; DELETE\"}}",
                "policy.consent.purpose",
            ),
            (
                "{consent: {contactPointType: Phone, field: A__c}}",
                "policy.consent.field",
            ),
            ("{cap: {calls: 0}}", "policy.cap.calls"),
            ("{cap: {calls: 11}}", "policy.cap.calls"),
            ("{cap: {per: 2y}}", "policy.cap.per"),
            ("{cap: {onCap: later}}", "policy.cap.onCap"),
            (
                "{retry: {on: [customer-fell-asleep], after: [1h]}}",
                "policy.retry.on",
            ),
            ("{retry: {on: [busy]}}", "policy.retry.after"),
            (
                "{retry: {after: [1h], maxCalls: 1}}",
                "policy.retry.maxCalls",
            ),
            (
                "{retry: {after: [1h], followUp: sometimes}}",
                "policy.retry.followUp",
            ),
        ] {
            let e = raw(yaml).parse().unwrap_err();
            assert!(e.starts_with(key), "{yaml}: {e}");
        }
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("90s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("2h"), Ok(Duration::from_secs(7200)));
        assert_eq!(parse_duration("1d"), Ok(Duration::from_secs(86_400)));
        assert!(parse_duration("0h").is_err());
        assert!(parse_duration("h").is_err());
        assert!(parse_duration("31d").is_err());
    }
}
