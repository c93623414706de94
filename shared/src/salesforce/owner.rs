//! Who owns a Case or a Contact, and the number they take calls on: what a warm transfer
//! (`call.handoff`, `crate::vapi::transfer`) dials, read by the worker at dial time.
//!
//! A record's `OwnerId` is a `User` (key prefix `005`) or, for a Case, a queue (a `Group`, key
//! prefix `00G`; object reference, Case: "OwnerId — ID of the contact or queue that owns the
//! case"). A queue has no phone: the transfer goes to the rule's fallback. A User's numbers are
//! `Phone` and `MobilePhone` (object reference, User), read with
//! `GET …/sobjects/User/{id}?fields=Phone,MobilePhone` (REST API, "Get Field Values from a
//! Standard Object Record").

use reqwest::Method;
use serde_json::{json, Value};

use super::rest::Case;
use super::rest::{expect_json, RestError, SalesforceClient};
use crate::calls::{HandoffHours, HandoffSnapshot};
use crate::ids::{E164Phone, SalesforceId};
use crate::ids::{QUEUE_PREFIX, USER_PREFIX};
use crate::policy::spec::Policy;
use crate::routing::{Handoff, HandoffTarget};

/// What an owner's record says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OwnerPhone {
    /// The User's `Phone`, else `MobilePhone` (E.164).
    Number(E164Phone),
    /// Nobody to dial, and why (a queue, no phone, a phone that is not E.164).
    None(String),
}

impl SalesforceClient {
    /// The number an owner takes calls on. A queue (`00G…`) or anything but a User is answered
    /// without a request.
    pub async fn owner_phone(&self, owner: &SalesforceId) -> Result<OwnerPhone, RestError> {
        let id = owner.as_str();
        if id.starts_with(QUEUE_PREFIX) {
            return Ok(OwnerPhone::None(
                "the Case is owned by a queue, which has no phone".into(),
            ));
        }
        if !id.starts_with(USER_PREFIX) {
            return Ok(OwnerPhone::None(format!(
                "the owner {id} is not a User (key prefix 005)"
            )));
        }
        let answer = self
            .send(
                Method::GET,
                &format!("/sobjects/User/{id}"),
                &[("fields", "Id,Phone,MobilePhone".into())],
                None,
            )
            .await?;
        let v = expect_json(answer, "User", id)?;
        Ok(phone_of(&v))
    }

    /// `Contact.OwnerId` (`GET …/sobjects/Contact/{id}?fields=OwnerId`).
    pub async fn contact_owner(
        &self,
        contact: &SalesforceId,
    ) -> Result<Option<SalesforceId>, RestError> {
        let answer = self
            .send(
                Method::GET,
                &format!("/sobjects/Contact/{}", contact.as_str()),
                &[("fields", "Id,OwnerId".into())],
                None,
            )
            .await?;
        let v = expect_json(answer, "Contact", contact.as_str())?;
        Ok(v.get("OwnerId")
            .and_then(Value::as_str)
            .and_then(|o| SalesforceId::parse("OwnerId", o).ok()))
    }

    /// `POST …/sobjects/Task` with these fields; the new record's id.
    pub async fn create_task(&self, fields: &Value) -> Result<String, RestError> {
        let answer = self
            .send(Method::POST, "/sobjects/Task", &[], Some(fields))
            .await?;
        let v = expect_json(answer, "Task", "(new)")?;
        v.get("id")
            .and_then(Value::as_str)
            .map(str::to_owned)
            .ok_or_else(|| RestError::Malformed {
                detail: "Task create answer has no id".into(),
            })
    }
}

/// `Phone`, else `MobilePhone`, when E.164.
pub fn phone_of(user: &Value) -> OwnerPhone {
    let field = |k: &'static str| {
        user.get(k)
            .and_then(Value::as_str)
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(|s| E164Phone::parse(k, s))
    };
    let mut problems = Vec::new();
    for k in ["Phone", "MobilePhone"] {
        match field(k) {
            Some(Ok(p)) => return OwnerPhone::Number(p),
            Some(Err(e)) => problems.push(e.to_string()),
            None => {}
        }
    }
    OwnerPhone::None(if problems.is_empty() {
        "the owner has no Phone or MobilePhone".into()
    } else {
        format!("the owner has no E.164 phone: {}", problems.join("; "))
    })
}

/// The callback Task's fields: assigned to the owner when a User (a Task cannot be owned by a
/// queue: it is then the connection user's, on the Case), on the Case and the Contact.
pub fn callback_task(
    owner: &SalesforceId,
    case: Option<&SalesforceId>,
    contact: Option<&SalesforceId>,
    description: &str,
) -> Value {
    let mut t = json!({
        "Subject": "Customer asked to speak to you",
        "Status": "Not Started",
        "Priority": "High",
        "Description": super::rest::truncate_chars(description, 32_000),
    });
    if let Value::Object(m) = &mut t {
        if owner.as_str().starts_with(USER_PREFIX) {
            m.insert("OwnerId".into(), owner.as_str().into());
        }
        if let Some(c) = case {
            m.insert("WhatId".into(), c.as_str().into());
        }
        if let Some(c) = contact {
            m.insert("WhoId".into(), c.as_str().into());
        }
    }
    t
}

/// Who takes the call, read from Salesforce: the owner's `User` phone (a queue has none), else
/// the fallback. A retryable Salesforce error is returned (the dial retries): a call placed
/// without its hand-off would tell a customer asking for a person that nobody is there. A refusal
/// for good (the owner's record is gone or not readable by the connection user) does not stop the
/// call: the hand-off is then "unavailable", with Salesforce's reason.
pub async fn resolve_handoff(
    rest: &SalesforceClient,
    handoff: &Handoff,
    case: Option<&Case>,
    contact: &SalesforceId,
    customer: &E164Phone,
    policy: &Policy,
) -> Result<HandoffSnapshot, RestError> {
    let unreadable = |e: RestError| -> Result<String, RestError> {
        if e.is_retryable() {
            Err(e)
        } else {
            Ok(format!("the owner could not be read: {e}"))
        }
    };
    let mut problem = None;
    let owner = match &handoff.to {
        HandoffTarget::CaseOwner => case.and_then(|c| c.owner_id.clone()),
        HandoffTarget::ContactOwner => match rest.contact_owner(contact).await {
            Ok(o) => o,
            Err(e) => {
                problem = Some(unreadable(e)?);
                None
            }
        },
        HandoffTarget::Number(_) => None,
    };
    let (number, source, unavailable) = match (&handoff.to, &owner) {
        (HandoffTarget::Number(n), _) => (Some(n.clone()), "number", None),
        (_, None) => (
            None,
            handoff.to.as_str(),
            Some(problem.unwrap_or_else(|| "the record has no owner".to_owned())),
        ),
        (_, Some(o)) => match rest.owner_phone(o).await {
            Ok(OwnerPhone::Number(p)) => (Some(p), handoff.to.as_str(), None),
            Ok(OwnerPhone::None(why)) => (None, handoff.to.as_str(), Some(why)),
            Err(e) => (None, handoff.to.as_str(), Some(unreadable(e)?)),
        },
    };
    let (number, source, unavailable) = match (number, &handoff.fallback) {
        (Some(n), _) => (Some(n), source, None),
        (None, Some(f)) => (Some(f.clone()), "fallback", unavailable),
        (None, None) => (None, source, unavailable),
    };
    Ok(HandoffSnapshot {
        source: source.to_owned(),
        number: number.map(|n| n.expose().to_owned()),
        owner_id: owner.map(|o| o.as_str().to_owned()),
        caller_id: Some(customer.expose().to_owned()),
        hours: policy.hours_set.then(|| HandoffHours {
            start: policy.window.start,
            end: policy.window.end,
            days: policy.window.days,
            skip: policy
                .window
                .skip
                .iter()
                .map(|d| d.format("%Y-%m-%d").to_string())
                .collect(),
            time_zone: policy.time_zone.name().to_owned(),
        }),
        unavailable,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn phone_then_mobile_then_why_not() {
        assert_eq!(
            phone_of(&json!({"Phone": "+1 415 555 0100", "MobilePhone": "+14155550199"})),
            OwnerPhone::Number(E164Phone::parse("p", "+14155550100").unwrap())
        );
        assert_eq!(
            phone_of(&json!({"Phone": "555-0100", "MobilePhone": "+14155550199"})),
            OwnerPhone::Number(E164Phone::parse("p", "+14155550199").unwrap())
        );
        assert!(
            matches!(phone_of(&json!({"Phone": null})), OwnerPhone::None(w) if w.contains("no Phone"))
        );
        assert!(
            matches!(phone_of(&json!({"Phone": "555-0100"})), OwnerPhone::None(w) if w.contains("E.164"))
        );
    }

    #[test]
    fn a_queue_owned_task_stays_on_the_case() {
        let case = SalesforceId::parse("c", "5005e00000AbCdEAAV").unwrap();
        let q = SalesforceId::parse("o", "00G5e000000AbCdEAK").unwrap();
        let t = callback_task(&q, Some(&case), None, "why");
        assert!(t.get("OwnerId").is_none());
        assert_eq!(t["WhatId"], "5005e00000AbCdEAAV");
        let u = SalesforceId::parse("o", "0055e000001AbCdAAK").unwrap();
        assert_eq!(
            callback_task(&u, None, None, "x")["OwnerId"],
            "0055e000001AbCdAAK"
        );
    }
}
