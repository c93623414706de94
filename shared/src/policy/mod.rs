//! The calling policy: every "may we call this customer now?" decision, made before each dial and
//! each follow-up.
//!
//! - [`window`]: calling hours, days and holidays in the customer's local time (and the
//!   deprecated fixed-offset quiet hours);
//! - [`zones`]: which zone(s) the customer is in (Contact field, else her number's region, else
//!   the rule's zone);
//! - [`spec`]: the policy as the routing document states it (defaults and per rule);
//! - [`ledger`]: what must hold across events, in DynamoDB: the frequency caps and the opt-outs,
//!   checked and counted in one conditional transaction per dial;
//!
//! A customer's "stop calling me" is recorded in the ledger and carried to Salesforce by
//! `crate::jobs::optout`.
//!
//! [`check`] is the in-process part (consent, window): no network, microseconds (`make bench`).

use chrono::{DateTime, Utc};

use crate::ids::E164Phone;
use crate::salesforce::rest::Contact;

pub mod followup;
pub mod ledger;
pub mod optout;
pub mod spec;
pub mod window;
pub mod zones;

pub use spec::{Cap, Consent, OnCap, Policy, RawPolicy, Retry, RetryFollowUp};
pub use window::{QuietHours, Window};
pub use zones::{CustomerZones, ZoneSource};

/// The worker's clock. Production reads the system clock; a test or the local demo may run the
/// policy some time ahead (or behind) to show what happens at another hour.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Clock {
    offset_ms: i64,
}

impl Clock {
    pub const SYSTEM: Clock = Clock { offset_ms: 0 };

    /// A clock that reads `offset_ms` ahead of the system's.
    pub fn offset(offset_ms: i64) -> Self {
        Self { offset_ms }
    }

    /// A clock whose present is `at` now (and moves on with the system's).
    pub fn starting_at(at: DateTime<Utc>) -> Self {
        Self::offset(at.timestamp_millis() - crate::now_millis())
    }

    pub fn offset_ms(&self) -> i64 {
        self.offset_ms
    }

    pub fn now(&self) -> DateTime<Utc> {
        DateTime::from_timestamp_millis(crate::now_millis() + self.offset_ms).unwrap_or_default()
    }

    /// A moment of this clock on the system's (what `next_at` is written in).
    pub fn to_system_ms(&self, t: DateTime<Utc>) -> i64 {
        t.timestamp_millis() - self.offset_ms
    }
}

/// What the in-process part of the policy says.
#[derive(Debug, Clone, PartialEq)]
pub enum Verdict {
    /// Inside the window, with consent.
    Call { zones: CustomerZones },
    /// Outside the window: try again at `until`; `reason` says why and when, in local and UTC time.
    Wait {
        until: DateTime<Utc>,
        reason: String,
    },
    /// Never: no consent, or no calling time at all.
    Skip { reason: String },
}

/// Whether the Contact's consent field holds one of the values that mean yes. Consent in the
/// consent objects is read by the worker before [`check`] (`Consent::ContactPoint`).
fn consent_given(c: &Consent, contact: &Contact) -> Result<(), String> {
    let Consent::Field { field, values } = c else {
        return Ok(());
    };
    let value = match contact.custom.get(field) {
        None => {
            return Err(format!(
                "no consent: Contact.{field} was not read (is it a Contact field?)"
            ))
        }
        Some(serde_json::Value::Null) => None,
        Some(serde_json::Value::Bool(b)) => Some(b.to_string()),
        Some(serde_json::Value::String(s)) => Some(s.clone()),
        Some(serde_json::Value::Number(n)) => Some(n.to_string()),
        Some(_) => None,
    };
    match value {
        Some(v) if values.contains(&v) => Ok(()),
        Some(v) => Err(format!(
            "no consent: Contact.{field} is {:?}, not one of {values:?}",
            v.chars().take(40).collect::<String>(),
        )),
        None => Err(format!("no consent: Contact.{field} is empty")),
    }
}

/// Consent first (a job that will never call should not wait), then the window in the
/// customer's zone(s). `quiet` is the deprecated fixed-offset window, applied on top.
pub fn check(
    policy: &Policy,
    quiet: Option<&QuietHours>,
    contact: &Contact,
    phone: &E164Phone,
    now: DateTime<Utc>,
) -> Verdict {
    if let Some(c) = &policy.consent {
        if let Err(reason) = consent_given(c, contact) {
            return Verdict::Skip { reason };
        }
    }
    let field = policy
        .time_zone_field
        .as_deref()
        .map(|f| (f, contact.custom.get(f).and_then(serde_json::Value::as_str)));
    let mut zones = zones::resolve(field, phone, policy.time_zone);
    let mut next = policy.window.next_open(&zones.zones, quiet, now);
    if next.is_none() && zones.zones.len() > 1 {
        // The number's zones are too far apart ever to be open together: the rule's zone decides.
        zones = CustomerZones {
            zones: vec![policy.time_zone],
            source: ZoneSource::Rule,
            invalid_field: zones.invalid_field,
        };
        next = policy.window.next_open(&zones.zones, quiet, now);
    }
    match next {
        Some(t) if t <= now => Verdict::Call { zones },
        Some(until) => {
            let window_open = zones
                .zones
                .iter()
                .all(|z| policy.window.is_open_in(*z, now));
            let reason = if window_open {
                // Only the deprecated fixed-offset quiet hours hold the call back.
                format!(
                    "quiet hours (a fixed UTC offset, deprecated): calls at {}",
                    until.format("%Y-%m-%dT%H:%M:%SZ")
                )
            } else {
                wait_reason(policy, &zones, until)
            };
            Verdict::Wait { until, reason }
        }
        None => Verdict::Skip {
            reason: format!(
                "no calling time in the next two weeks ({} in {})",
                describe_window(&policy.window),
                zone_names(&zones)
            ),
        },
    }
}

/// Unix ms as `2026-07-15T15:00:00Z`.
pub fn utc_text(ms: i64) -> String {
    DateTime::from_timestamp_millis(ms)
        .unwrap_or_default()
        .format("%Y-%m-%dT%H:%M:%SZ")
        .to_string()
}

fn zone_names(z: &CustomerZones) -> String {
    let names: Vec<&str> = z.zones.iter().map(|t| t.name()).collect();
    format!("{} from {}", names.join(" and "), z.source)
}

fn describe_window(w: &Window) -> String {
    format!(
        "{:02}:{:02}-{:02}:{:02}",
        w.start / 60,
        w.start % 60,
        w.end / 60,
        w.end % 60
    )
}

/// "outside the calling window 08:00-21:00 (America/Los_Angeles from the number's area (+1213)):
/// calls at 08:00 PDT on Wed 2026-07-15 (2026-07-15T15:00:00Z)".
pub fn wait_reason(policy: &Policy, zones: &CustomerZones, until: DateTime<Utc>) -> String {
    let local = zones
        .zones
        .first()
        .map(|z| {
            until
                .with_timezone(z)
                .format("%H:%M %Z on %a %Y-%m-%d")
                .to_string()
        })
        .unwrap_or_default();
    format!(
        "outside the calling window {} ({}): calls at {local} ({})",
        describe_window(&policy.window),
        zone_names(zones),
        until.format("%Y-%m-%dT%H:%M:%SZ")
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::SalesforceId;
    use std::collections::BTreeMap;

    fn contact(phone: &str, custom: &[(&str, serde_json::Value)]) -> (Contact, E164Phone) {
        let p = E164Phone::parse("Phone", phone).unwrap();
        let c = Contact {
            id: SalesforceId::parse("contactId", "003000000000001AAA").unwrap(),
            name: "Ada".into(),
            phone: Some(p.clone()),
            mobile: None,
            phone_problems: BTreeMap::new(),
            email: None,
            do_not_call: false,
            annual_revenue: None,
            custom: custom
                .iter()
                .map(|(k, v)| ((*k).to_owned(), v.clone()))
                .collect(),
        };
        (c, p)
    }

    fn utc(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    #[test]
    fn a_los_angeles_number_at_six_pacific_waits_until_eight_and_says_when() {
        let (c, p) = contact("+12135550100", &[]);
        let v = check(
            &Policy::default(),
            None,
            &c,
            &p,
            utc("2026-07-15T13:00:00Z"),
        );
        let Verdict::Wait { until, reason } = v else {
            panic!("{v:?}")
        };
        assert_eq!(until, utc("2026-07-15T15:00:00Z"));
        assert!(reason.contains("08:00 PDT on Wed 2026-07-15"), "{reason}");
        assert!(reason.contains("2026-07-15T15:00:00Z"), "{reason}");
        assert!(
            reason.contains("America/Los_Angeles from the number's area (+1213)"),
            "{reason}"
        );
        assert!(matches!(
            check(
                &Policy::default(),
                None,
                &c,
                &p,
                utc("2026-07-15T15:00:00Z")
            ),
            Verdict::Call { .. }
        ));
    }

    #[test]
    fn a_two_zone_area_code_waits_for_the_later_zone() {
        // Idaho's 208-332: Boise (Mountain) and Los Angeles (Pacific). 14:30 UTC in January is
        // 07:30 in Boise and 06:30 in Los Angeles: the call waits for 08:00 Pacific.
        let (c, p) = contact("+12083325555", &[]);
        let v = check(
            &Policy::default(),
            None,
            &c,
            &p,
            utc("2027-01-13T14:30:00Z"),
        );
        let Verdict::Wait { until, reason } = v else {
            panic!("{v:?}")
        };
        assert_eq!(until, utc("2027-01-13T16:00:00Z"));
        assert!(
            reason.contains("America/Boise and America/Los_Angeles"),
            "{reason}"
        );
    }

    #[test]
    fn the_contact_zone_overrides_the_number() {
        let policy = Policy {
            time_zone_field: Some("Time_Zone__c".into()),
            ..Policy::default()
        };
        // A Los Angeles number, a Contact in Berlin: 13:00 UTC is 15:00 in Berlin → call.
        let (c, p) = contact("+12135550100", &[("Time_Zone__c", "Europe/Berlin".into())]);
        let v = check(&policy, None, &c, &p, utc("2026-07-15T13:00:00Z"));
        assert!(
            matches!(&v, Verdict::Call { zones } if zones.source == ZoneSource::ContactField("Time_Zone__c".into())),
            "{v:?}"
        );
    }

    #[test]
    fn consent_fails_closed() {
        let policy = Policy {
            consent: Some(Consent::Field {
                field: "Voice_Consent__c".into(),
                values: vec!["true".into()],
            }),
            ..Policy::default()
        };
        let noon = utc("2026-07-15T19:00:00Z");
        for custom in [
            vec![("Voice_Consent__c", serde_json::Value::Bool(false))],
            vec![("Voice_Consent__c", serde_json::Value::Null)],
            vec![],
            vec![("Voice_Consent__c", "yes".into())],
        ] {
            let (c, p) = contact("+12135550100", &custom);
            let v = check(&policy, None, &c, &p, noon);
            assert!(
                matches!(&v, Verdict::Skip { reason } if reason.starts_with("no consent: Contact.Voice_Consent__c")),
                "{custom:?}: {v:?}"
            );
        }
        let (c, p) = contact("+12135550100", &[("Voice_Consent__c", true.into())]);
        assert!(matches!(
            check(&policy, None, &c, &p, noon),
            Verdict::Call { .. }
        ));
        // A picklist.
        let policy = Policy {
            consent: Some(Consent::Field {
                field: "Consent__c".into(),
                values: vec!["Granted".into()],
            }),
            ..Policy::default()
        };
        let (c, p) = contact("+12135550100", &[("Consent__c", "Granted".into())]);
        assert!(matches!(
            check(&policy, None, &c, &p, noon),
            Verdict::Call { .. }
        ));
    }

    #[test]
    fn the_clock_maps_back_to_the_system() {
        let at = utc("2030-01-01T12:00:00Z");
        let clock = Clock::starting_at(at);
        let now = clock.now();
        assert!((now - at).num_seconds().abs() < 5);
        let sys = clock.to_system_ms(now + chrono::Duration::hours(1));
        assert!((sys - crate::now_millis() - 3_600_000).abs() < 5_000);
    }
}
