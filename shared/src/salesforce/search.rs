//! Finding who is calling: the Contact whose phone fields hold a number, by one Salesforce search,
//! and that Contact's most recent open Case. Used by the Vapi webhook for inbound calls
//! (`vapi::inbound`, through [`CallerDirectory`]).
//!
//! **Search, do not compare.** Salesforce keeps a phone field as it was typed ("(415) 555-0123",
//! "+1 415-555-0123", "4155550123"), and formats 10-digit numbers itself for US and Canadian
//! users ("Standard 'Phone' field length and formatting",
//! <https://help.salesforce.com/s/articleView?id=000385963&type=1>), so a SOQL
//! `WHERE Phone = '+14155550123'` misses most of them. SOSL's phone search is made for this:
//! `FIND {4155551212} IN PHONE FIELDS RETURNING Contact(…)` is Salesforce's own sample, with the
//! number given as digits ("Example of phoneNumber format: 4155551212",
//! <https://developer.salesforce.com/docs/atlas.en-us.api.meta/api/sample_search_call.htm>;
//! `IN PHONE FIELDS` "Search only phone number fields",
//! <https://developer.salesforce.com/docs/atlas.en-us.soql_sosl.meta/soql_sosl/sforce_api_calls_sosl_in.htm>).
//! It is sent as `GET /services/data/vXX.X/search/?q=<SOSL>`, whose answer is
//! `{"searchRecords":[{"attributes":{"type","url"},"Id",…}]}` (REST API "Search for a String",
//! <https://developer.salesforce.com/docs/platform/api-rest/guide/dome-search.html>; versions
//! before 36.0 answered a bare array, still read). The FIND clause holds digits and `OR` only, so
//! none of SOSL's reserved characters (`& | ! { } [ ] ( ) ^ ~ * : \ " ' + -`,
//! <https://developer.salesforce.com/docs/atlas.en-us.soql_sosl.meta/soql_sosl/sforce_api_calls_sosl_find.htm>)
//! can reach it: the search asks for the full international digits and, for a +1 (NANP) number,
//! the 10-digit national form US and Canadian orgs store.
//!
//! **Then confirm.** A search hit is a candidate. It is kept only if one of the Contact's own
//! numbers — `Phone`, `MobilePhone`, `HomePhone`, `OtherPhone`; not `AssistantPhone` or `Fax`,
//! which are someone else's — is this number once punctuation, an extension and an international
//! prefix (`00`, `011`) are set aside. So the Contact's assistant calling from `AssistantPhone` is
//! not taken for the Contact, and a search token that matches part of a longer number never counts.
//!
//! **The Case** is one SOQL query, `SELECT … FROM Case WHERE ContactId = '<id>' AND IsClosed =
//! false ORDER BY CreatedDate DESC LIMIT 1` (`Case.IsClosed`, `Case.CreatedDate`: Case object
//! reference, <https://developer.salesforce.com/docs/atlas.en-us.object_reference.meta/object_reference/sforce_api_objects_case.htm>;
//! the query resource: <https://developer.salesforce.com/docs/platform/api-rest/guide/resources-query.html>).
//! A found caller costs two API calls; nobody or several cost one.

use reqwest::Method;
use serde_json::Value;

use super::rest::{
    expect_json, parse_contact, Case, Contact, QueryAnswer, RestError, SalesforceClient,
};
use crate::calls::CallSnapshot;
use crate::ids::{E164Phone, Priority, SalesforceId};
use crate::vapi::inbound::{
    BoxFuture, CallerDirectory, DirectoryError, DirectoryMatch, FoundCaller, SEARCH_LIMIT,
};

/// The Contact's own phone fields: a match must be in one of these.
pub const OWN_PHONE_FIELDS: &[&str] = &["Phone", "MobilePhone", "HomePhone", "OtherPhone"];

/// The digit strings the search looks for: the E.164 digits, and for +1 numbers the 10-digit
/// national number too.
pub fn search_digits(phone: &E164Phone) -> Vec<String> {
    let digits = phone.expose().trim_start_matches('+').to_owned();
    let mut out = vec![digits.clone()];
    if let Some(national) = nanp_national(&digits) {
        out.push(national.to_owned());
    }
    out
}

/// `1NXXNXXXXXX` → `NXXNXXXXXX`.
fn nanp_national(digits: &str) -> Option<&str> {
    digits
        .strip_prefix('1')
        .filter(|n| n.len() == 10 && n.bytes().all(|b| b.is_ascii_digit()))
}

/// The SOSL of the search. `custom` are `SF_CONTACT_CUSTOM_FIELDS` (checked API names); the
/// relationship ones (`Account.X`) are left out, the search returns the Contact's own fields.
pub fn phone_sosl(phone: &E164Phone, custom: &[String], limit: u32) -> String {
    let mut fields: Vec<&str> = vec!["Id", "Name", "DoNotCall"];
    fields.extend_from_slice(OWN_PHONE_FIELDS);
    for f in custom {
        if !f.contains('.') && !fields.iter().any(|k| k.eq_ignore_ascii_case(f)) {
            fields.push(f);
        }
    }
    format!(
        "FIND {{{}}} IN PHONE FIELDS RETURNING Contact({}) LIMIT {limit}",
        search_digits(phone).join(" OR "),
        fields.join(", ")
    )
}

/// Whether a stored phone value is `phone`: its digits (before an extension such as `x12`,
/// `ext. 12`, `#12` or `;ext=12`), with an international prefix `00` / `011` dropped, are the
/// E.164 digits, or for a +1 number its 10-digit national number (with or without the leading 1).
pub fn same_number(stored: &str, phone: &E164Phone) -> bool {
    let lower = stored.to_ascii_lowercase();
    let main = lower.split(['x', '#', ';', 'e']).next().unwrap_or_default();
    let digits: String = main.chars().filter(char::is_ascii_digit).collect();
    let want = phone.expose().trim_start_matches('+');
    let digits = digits
        .strip_prefix("011")
        .filter(|_| !main.trim_start().starts_with('+'))
        .or_else(|| digits.strip_prefix("00"))
        .unwrap_or(&digits);
    if digits == want {
        return true;
    }
    nanp_national(want).is_some_and(|n| digits == n)
}

/// The SOQL of a Contact's most recent open Case. `contact` is a parsed [`SalesforceId`]
/// (alphanumerics only), so nothing can close the quote.
pub fn open_case_soql(contact: &SalesforceId) -> String {
    format!(
        "SELECT Id, CaseNumber, Subject, Status, Priority, ContactId FROM Case WHERE ContactId = '{}' AND IsClosed = false ORDER BY CreatedDate DESC LIMIT 1",
        contact.as_str()
    )
}

impl SalesforceClient {
    /// Every Contact the search finds for `phone` whose own numbers confirm it (at most
    /// [`SEARCH_LIMIT`] are looked at), each once.
    pub async fn contacts_with_phone(&self, phone: &E164Phone) -> Result<Vec<Contact>, RestError> {
        let custom = self.contact_custom_fields().to_vec();
        let answer = self
            .send(
                Method::GET,
                "/search",
                &[("q", phone_sosl(phone, &custom, SEARCH_LIMIT))],
                None,
            )
            .await?;
        let v = expect_json(answer, "Contact", "search")?;
        let records = match v {
            Value::Object(mut o) => match o.remove("searchRecords") {
                Some(Value::Array(a)) => a,
                _ => {
                    return Err(RestError::Malformed {
                        detail: "search answer has no searchRecords array".into(),
                    })
                }
            },
            Value::Array(a) => a,
            _ => {
                return Err(RestError::Malformed {
                    detail: "search answer is not an object".into(),
                })
            }
        };
        let mut out: Vec<Contact> = Vec::new();
        for r in records {
            if r.pointer("/attributes/type").and_then(Value::as_str) != Some("Contact") {
                continue;
            }
            let Some(id) = r
                .get("Id")
                .and_then(Value::as_str)
                .and_then(|s| SalesforceId::parse("Id", s).ok())
            else {
                continue;
            };
            let confirmed = OWN_PHONE_FIELDS.iter().any(|f| {
                r.get(*f)
                    .and_then(Value::as_str)
                    .is_some_and(|s| same_number(s, phone))
            });
            if confirmed && !out.iter().any(|c| c.id == id) {
                out.push(parse_contact(&id, &r, &custom));
            }
        }
        Ok(out)
    }

    /// The Contact's most recent open Case, if any.
    pub async fn latest_open_case(
        &self,
        contact: &SalesforceId,
    ) -> Result<Option<Case>, RestError> {
        let answer = self
            .send(
                Method::GET,
                "/query",
                &[("q", open_case_soql(contact))],
                None,
            )
            .await?;
        let v = expect_json(answer, "Case", contact.as_str())?;
        let q: QueryAnswer = serde_json::from_value(v).map_err(|e| RestError::Malformed {
            detail: format!("Case query answer: {e}"),
        })?;
        let _ = (q.total_size, q.done);
        let Some(r) = q.records.into_iter().next() else {
            return Ok(None);
        };
        let s = |k: &str| r.get(k).and_then(Value::as_str).map(str::to_owned);
        let Some(id) = s("Id").and_then(|i| SalesforceId::parse("Id", &i).ok()) else {
            return Err(RestError::Malformed {
                detail: "Case query record has no Id".into(),
            });
        };
        Ok(Some(Case {
            id,
            case_number: s("CaseNumber"),
            subject: s("Subject"),
            status: s("Status"),
            priority: s("Priority").and_then(|p| Priority::parse("Priority", &p).ok()),
            contact_id: s("ContactId").and_then(|c| SalesforceId::parse("ContactId", &c).ok()),
            description: None,
            owner_id: None,
        }))
    }
}

/// The Salesforce side of [`CallerDirectory`]: search, confirm, then the open Case.
pub struct SalesforceCallerSearch {
    rest: SalesforceClient,
    high_value_revenue: f64,
}

impl SalesforceCallerSearch {
    pub fn new(rest: SalesforceClient, high_value_revenue: f64) -> Self {
        Self {
            rest,
            high_value_revenue,
        }
    }
}

fn unavailable(e: RestError) -> DirectoryError {
    DirectoryError::Unavailable(e.to_string())
}

impl CallerDirectory for SalesforceCallerSearch {
    fn find_by_phone<'a>(
        &'a self,
        phone: &'a E164Phone,
    ) -> BoxFuture<'a, Result<DirectoryMatch, DirectoryError>> {
        Box::pin(async move {
            let contacts = self
                .rest
                .contacts_with_phone(phone)
                .await
                .map_err(unavailable)?;
            let contact = match contacts.as_slice() {
                [] => return Ok(DirectoryMatch::Nobody),
                [one] => one,
                several => return Ok(DirectoryMatch::Several(several.len())),
            };
            let case = self
                .rest
                .latest_open_case(&contact.id)
                .await
                .map_err(unavailable)?;
            Ok(DirectoryMatch::One(Box::new(FoundCaller {
                contact_id: contact.id.clone(),
                case_id: case.as_ref().map(|c| c.id.clone()),
                snapshot: CallSnapshot::from_salesforce(
                    contact,
                    case.as_ref(),
                    None,
                    self.high_value_revenue,
                    crate::now_millis(),
                ),
            })))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> E164Phone {
        E164Phone::parse("p", s).unwrap()
    }

    #[test]
    fn the_sosl_holds_digits_only_and_the_contacts_own_fields() {
        let q = phone_sosl(
            &p("+14155550123"),
            &[
                "Account_Status__c".into(),
                "Account.Industry".into(),
                "phone".into(),
            ],
            10,
        );
        assert_eq!(
            q,
            "FIND {14155550123 OR 4155550123} IN PHONE FIELDS RETURNING Contact(Id, Name, DoNotCall, Phone, MobilePhone, HomePhone, OtherPhone, Account_Status__c) LIMIT 10"
        );
        let uk = phone_sosl(&p("+44 7700 900123"), &[], 10);
        assert!(
            uk.starts_with("FIND {447700900123} IN PHONE FIELDS"),
            "{uk}"
        );
        let find = q.split_once('}').unwrap().0;
        assert!(!find.contains(['+', '-', '(', ')', '"', '\'']), "{find}");
    }

    #[test]
    fn stored_formats_of_the_same_number_match_and_others_do_not() {
        let ada = p("+14155550123");
        for same in [
            "+14155550123",
            "(415) 555-0123",
            "415.555.0123",
            "1 415 555 0123",
            "+1 (415) 555-0123 x204",
            "415-555-0123 ext. 9",
            "011 1 415 555 0123",
        ] {
            assert!(same_number(same, &ada), "{same}");
        }
        for other in [
            "555-0123",
            "(415) 555-0124",
            "+44 415 555 0123",
            "4155550123999",
            "",
        ] {
            assert!(!same_number(other, &ada), "{other}");
        }
        let uk = p("+447700900123");
        assert!(same_number("+44 7700 900123", &uk));
        assert!(same_number("0044 7700 900123", &uk));
        // A national form without the country code is not confirmed outside NANP: "07700
        // 900123" could be any country's.
        assert!(!same_number("07700 900123", &uk));
    }

    #[test]
    fn the_case_query_is_the_latest_open_one() {
        let id = SalesforceId::parse("c", "0035e00000XyZ12AAF").unwrap();
        assert_eq!(
            open_case_soql(&id),
            "SELECT Id, CaseNumber, Subject, Status, Priority, ContactId FROM Case WHERE ContactId = '0035e00000XyZ12AAF' AND IsClosed = false ORDER BY CreatedDate DESC LIMIT 1"
        );
    }
}
