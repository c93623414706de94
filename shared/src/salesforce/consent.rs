//! Consent kept in Salesforce's consent data model: the `ContactPointTypeConsent` records of the
//! Contact's `Individual` (`Contact.IndividualId`) for one contact point type, e.g. `Phone`.
//!
//! Object reference, ContactPointTypeConsent
//! (<https://developer.salesforce.com/docs/atlas.en-us.object_reference.meta/object_reference/sforce_api_objects_contactpointtypeconsent.htm>):
//! "Represents consent for a contact point type, such as email or phone"; `PartyId` is the
//! Individual, `ContactPointType` the channel (Email, MailingAddress, Phone, Social, Web),
//! `PrivacyConsentStatus` the decision (OptIn, OptOut, NotSeen, Seen), `EffectiveFrom` /
//! `EffectiveTo` when it holds, `DataUsePurposeId` what for. "This object is available if Data
//! Protection and Privacy is enabled": in an org without it the query is refused (INVALID_TYPE),
//! and the policy fails closed.

use reqwest::Method;
use serde_json::Value;

use super::rest::{QueryAnswer, RestError, SalesforceClient};
use crate::ids::SalesforceId;

/// One consent decision as Salesforce holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsentRecord {
    pub status: String,
    pub effective_from_ms: Option<i64>,
    pub effective_to_ms: Option<i64>,
}

/// `SELECT … FROM ContactPointTypeConsent WHERE PartyId = '<Individual>' AND ContactPointType =
/// '<channel>' [AND DataUsePurpose.Name = '<purpose>']`. The id is a parsed [`SalesforceId`];
/// channel and purpose are checked when the policy is read (letters, digits, spaces, `-` `_`),
/// so nothing here can close a quote.
pub fn consent_soql(individual: &SalesforceId, channel: &str, purpose: Option<&str>) -> String {
    let mut q = format!(
        "SELECT PrivacyConsentStatus, EffectiveFrom, EffectiveTo FROM ContactPointTypeConsent WHERE PartyId = '{}' AND ContactPointType = '{channel}'",
        individual.as_str()
    );
    if let Some(p) = purpose {
        q.push_str(&format!(" AND DataUsePurpose.Name = '{p}'"));
    }
    q
}

/// Whether the records say yes at `now_ms`: an `OptIn` in effect, and no `OptOut` in effect (a
/// later "no" wins over an earlier "yes"; two records that disagree now are a no).
pub fn decide(records: &[ConsentRecord], now_ms: i64) -> Result<(), String> {
    let in_effect = |r: &&ConsentRecord| {
        r.effective_from_ms.is_none_or(|f| f <= now_ms)
            && r.effective_to_ms.is_none_or(|t| now_ms < t)
    };
    let now: Vec<&ConsentRecord> = records.iter().filter(in_effect).collect();
    if now.iter().any(|r| r.status == "OptOut") {
        return Err("OptOut in effect".into());
    }
    if now.iter().any(|r| r.status == "OptIn") {
        return Ok(());
    }
    Err(match records.len() {
        0 => "no ContactPointTypeConsent record".into(),
        _ => "no OptIn in effect".into(),
    })
}

/// Salesforce writes datetimes as `2026-01-01T00:00:00.000+0000` (no colon in the offset);
/// RFC 3339 (`…Z`, `…+00:00`) is read too.
fn time_ms(v: &Value) -> Option<i64> {
    let s = v.as_str()?.trim();
    chrono::DateTime::parse_from_rfc3339(s)
        .or_else(|_| chrono::DateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%S%.f%z"))
        .ok()
        .map(|t| t.timestamp_millis())
}

impl SalesforceClient {
    /// The Individual's consent records for `channel` (and `purpose`): one SOQL query.
    pub async fn contact_point_consents(
        &self,
        individual: &SalesforceId,
        channel: &str,
        purpose: Option<&str>,
    ) -> Result<Vec<ConsentRecord>, RestError> {
        let answer = self
            .send(
                Method::GET,
                "/query",
                &[("q", consent_soql(individual, channel, purpose))],
                None,
            )
            .await?;
        let v = super::rest::expect_json(answer, "ContactPointTypeConsent", individual.as_str())?;
        let q: QueryAnswer = serde_json::from_value(v).map_err(|e| RestError::Malformed {
            detail: format!("ContactPointTypeConsent query answer: {e}"),
        })?;
        Ok(q.records
            .iter()
            .map(|r| ConsentRecord {
                status: r["PrivacyConsentStatus"]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned(),
                effective_from_ms: time_ms(&r["EffectiveFrom"]),
                effective_to_ms: time_ms(&r["EffectiveTo"]),
            })
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(status: &str, from: Option<i64>, to: Option<i64>) -> ConsentRecord {
        ConsentRecord {
            status: status.into(),
            effective_from_ms: from,
            effective_to_ms: to,
        }
    }

    #[test]
    fn an_opt_in_in_effect_and_no_opt_out_is_a_yes() {
        let now = 1_000;
        assert_eq!(decide(&[rec("OptIn", None, None)], now), Ok(()));
        assert_eq!(decide(&[rec("OptIn", Some(500), Some(2_000))], now), Ok(()));
        assert!(decide(&[], now)
            .unwrap_err()
            .contains("no ContactPointTypeConsent"));
        assert!(
            decide(&[rec("OptIn", Some(1_500), None)], now).is_err(),
            "not yet"
        );
        assert!(
            decide(&[rec("OptIn", None, Some(1_000))], now).is_err(),
            "expired"
        );
        assert!(decide(&[rec("Seen", None, None)], now).is_err());
        assert!(decide(&[rec("NotSeen", None, None)], now).is_err());
        assert_eq!(
            decide(
                &[rec("OptIn", None, None), rec("OptOut", Some(900), None)],
                now
            ),
            Err("OptOut in effect".into())
        );
    }

    #[test]
    fn the_query_names_the_individual_the_channel_and_the_purpose() {
        let id = SalesforceId::parse("IndividualId", "0PK5e000000AbCdGAK").unwrap();
        assert_eq!(
            consent_soql(&id, "Phone", Some("Customer Service")),
            "SELECT PrivacyConsentStatus, EffectiveFrom, EffectiveTo FROM ContactPointTypeConsent WHERE PartyId = '0PK5e000000AbCdGAK' AND ContactPointType = 'Phone' AND DataUsePurpose.Name = 'Customer Service'"
        );
        assert_eq!(
            time_ms(&Value::String("2026-01-01T00:00:00.000+0000".into())),
            Some(1_767_225_600_000)
        );
    }
}
