//! The fake Salesforce's side of inbound calls: the SOSL phone search and the open-Case query.
//!
//! - `GET /services/data/vXX.X/search/?q=FIND {<terms>} IN PHONE FIELDS RETURNING Contact(<fields>)
//!   [LIMIT n]`: the REST Search resource runs the SOSL in `q` and answers
//!   `{"searchRecords":[{"attributes":{"type":"Contact","url":…},"Id":…,<fields>}]}` ("Search for a
//!   String", <https://developer.salesforce.com/docs/platform/api-rest/guide/dome-search.html>).
//!   `IN PHONE FIELDS` searches "only phone number fields"
//!   (<https://developer.salesforce.com/docs/atlas.en-us.soql_sosl.meta/soql_sosl/sforce_api_calls_sosl_in.htm>):
//!   here every phone field of a Contact (Phone, MobilePhone, HomePhone, OtherPhone,
//!   AssistantPhone). A term is a phone number given as digits, as in Salesforce's own sample
//!   search ("Example of phoneNumber format: 4155551212" finds the stored "(415) 555-1212",
//!   <https://developer.salesforce.com/docs/atlas.en-us.api.meta/api/sample_search_call.htm>); terms
//!   are joined by `OR` (a logical operator of the FIND clause,
//!   <https://developer.salesforce.com/docs/atlas.en-us.soql_sosl.meta/soql_sosl/sforce_api_calls_sosl_find.htm>).
//!   The model of the index: a field matches a term when the field's digits are the term's digits,
//!   whatever the punctuation. Salesforce documents no more precise rule, so the sandbox does not
//!   pretend to one (no partial-number matches).
//!   A query it cannot read is 400 `MALFORMED_SEARCH`, an unknown field 400 `INVALID_FIELD`
//!   (REST status codes and error bodies,
//!   <https://developer.salesforce.com/docs/atlas.en-us.api_rest.meta/api_rest/errorcodes.htm>).
//! - `GET /query?q=SELECT <fields> FROM Case WHERE ContactId = '<id>' AND IsClosed = false ORDER BY
//!   CreatedDate DESC LIMIT 1`: the Contact's most recent open Case (`Case.IsClosed`,
//!   `Case.CreatedDate`: Case object reference,
//!   <https://developer.salesforce.com/docs/atlas.en-us.object_reference.meta/object_reference/sforce_api_objects_case.htm>),
//!   answered like every query (`totalSize`, `done`, `records`).

use serde_json::{json, Value};

use super::{project, same_id, sf_error, State};
use crate::{Req, Resp};

/// Every phone field of a Contact the search looks in.
const PHONE_FIELDS: &[&str] = &[
    "Phone",
    "MobilePhone",
    "HomePhone",
    "OtherPhone",
    "AssistantPhone",
];

fn malformed(detail: &str) -> Resp {
    sf_error(400, "MALFORMED_SEARCH", detail)
}

struct Sosl {
    terms: Vec<String>,
    fields: String,
    limit: usize,
}

/// `FIND {t1 OR t2} IN PHONE FIELDS RETURNING Contact(f1, f2) [LIMIT n]`, keywords in any case.
fn parse(q: &str) -> Result<Sosl, String> {
    let q = q.trim();
    let upper = q.to_ascii_uppercase();
    let rest = upper
        .strip_prefix("FIND")
        .map(|_| q[4..].trim_start())
        .ok_or("a SOSL search starts with FIND")?;
    let inner = rest
        .strip_prefix('{')
        .and_then(|r| r.split_once('}'))
        .ok_or("the search term must be inside { }")?;
    let (terms_raw, after) = inner;
    let mut terms = Vec::new();
    for t in terms_raw.split(" OR ").map(str::trim) {
        let t = t.trim_matches('"');
        if t.is_empty() || !t.bytes().all(|b| b.is_ascii_digit()) {
            return Err(format!(
                "the sandbox searches phone numbers given as digits, joined by OR; got {t:?}"
            ));
        }
        terms.push(t.to_owned());
    }
    let after = after.trim_start();
    let after_upper = after.to_ascii_uppercase();
    let after = after_upper
        .strip_prefix("IN PHONE FIELDS")
        .map(|_| after["IN PHONE FIELDS".len()..].trim_start())
        .ok_or("the sandbox answers IN PHONE FIELDS searches only")?;
    let returning = after
        .get(..9)
        .filter(|w| w.eq_ignore_ascii_case("RETURNING"))
        .map(|_| after[9..].trim_start())
        .ok_or("RETURNING Contact(…) is required")?;
    let fields_and_rest = returning
        .get(..7)
        .filter(|w| w.eq_ignore_ascii_case("Contact"))
        .map(|_| returning[7..].trim_start())
        .ok_or("the sandbox returns Contact records only")?;
    let (fields, tail) = fields_and_rest
        .strip_prefix('(')
        .and_then(|r| r.split_once(')'))
        .ok_or("Contact(<fields>) needs its field list")?;
    let tail = tail.trim();
    let limit = if tail.is_empty() {
        2_000
    } else {
        tail.get(..5)
            .filter(|w| w.eq_ignore_ascii_case("LIMIT"))
            .and_then(|_| tail[5..].trim().parse::<usize>().ok())
            .filter(|n| (1..=2_000).contains(n))
            .ok_or("expected LIMIT n (1 to 2000) or nothing after RETURNING")?
    };
    Ok(Sosl {
        terms,
        fields: fields.to_owned(),
        limit,
    })
}

fn digits(s: &str) -> String {
    s.chars().filter(char::is_ascii_digit).collect()
}

/// `GET /search?q=…`.
pub(super) fn sosl(st: &State, req: &Req) -> Resp {
    let Some(q) = req.query_param("q").filter(|q| !q.trim().is_empty()) else {
        return malformed(
            "No search term found. The search term must be at least 2 characters long.",
        );
    };
    let parsed = match parse(&q) {
        Ok(p) => p,
        Err(detail) => return malformed(&detail),
    };
    let mut records = Vec::new();
    for c in &st.contacts {
        let hit = PHONE_FIELDS.iter().any(|f| {
            c.get(*f)
                .and_then(Value::as_str)
                .map(digits)
                .is_some_and(|d| parsed.terms.contains(&d))
        });
        if !hit {
            continue;
        }
        match project(c, "Contact", &parsed.fields) {
            Ok(v) => records.push(v),
            Err(resp) => return resp,
        }
    }
    // Field names are checked even when nothing matched, as Salesforce compiles the query first.
    if records.is_empty() {
        if let Some(first) = st.contacts.first() {
            if let Err(resp) = project(first, "Contact", &parsed.fields) {
                return resp;
            }
        }
    }
    records.truncate(parsed.limit);
    Resp::json(200, &json!({"searchRecords": records}))
}

/// The open-Case query, when `q` is one; `None` lets the other query shapes try.
pub(super) fn open_case_query(st: &State, q: &str) -> Option<Resp> {
    let q = q.trim();
    let upper = q.to_ascii_uppercase();
    if !upper.starts_with("SELECT ") {
        return None;
    }
    let from = upper.find(" FROM CASE WHERE CONTACTID = '")?;
    let fields = q.get(7..from)?;
    let after = &q[from + " FROM CASE WHERE CONTACTID = '".len()..];
    let (id, tail) = after.split_once('\'')?;
    let tail_upper = tail.trim().to_ascii_uppercase();
    if tail_upper != "AND ISCLOSED = FALSE ORDER BY CREATEDDATE DESC LIMIT 1" {
        return None;
    }
    let id_shaped =
        (id.len() == 15 || id.len() == 18) && id.bytes().all(|b| b.is_ascii_alphanumeric());
    if !id_shaped {
        return Some(sf_error(
            400,
            "INVALID_QUERY_FILTER_OPERATOR",
            &format!("invalid ID field: {id}"),
        ));
    }
    let mut open: Vec<&Value> = st
        .cases
        .iter()
        .filter(|c| {
            c.get("ContactId")
                .and_then(Value::as_str)
                .is_some_and(|cid| same_id(cid, id))
                && c.get("IsClosed") == Some(&Value::Bool(false))
        })
        .collect();
    // ISO 8601 timestamps of one offset sort as strings.
    open.sort_by(|a, b| {
        b.get("CreatedDate")
            .and_then(Value::as_str)
            .cmp(&a.get("CreatedDate").and_then(Value::as_str))
    });
    let mut out = Vec::new();
    if let Some(c) = open.first() {
        match project(c, "Case", fields) {
            Ok(v) => out.push(v),
            Err(resp) => return Some(resp),
        }
    } else if let Some(first) = st.cases.first() {
        if let Err(resp) = project(first, "Case", fields) {
            return Some(resp);
        }
    }
    Some(Resp::json(
        200,
        &json!({"totalSize": out.len(), "done": true, "records": out}),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_sosl_sfvapi_sends_and_refuses_the_rest() {
        let s = parse(
            "FIND {14155550123 OR 4155550123} IN PHONE FIELDS RETURNING Contact(Id, Name) LIMIT 10",
        )
        .unwrap();
        assert_eq!(s.terms, ["14155550123", "4155550123"]);
        assert_eq!(s.limit, 10);
        assert_eq!(s.fields, "Id, Name");
        for bad in [
            "FIND {+14155550123} IN PHONE FIELDS RETURNING Contact(Id)",
            "FIND {ada} IN PHONE FIELDS RETURNING Contact(Id)",
            "FIND {4155550123} RETURNING Contact(Id)",
            "FIND {4155550123} IN PHONE FIELDS RETURNING Lead(Id)",
            "SELECT Id FROM Contact",
        ] {
            assert!(parse(bad).is_err(), "{bad}");
        }
    }
}
