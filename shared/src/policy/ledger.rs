//! What the policy must remember across events, in DynamoDB: how often each customer was called
//! (the frequency caps) and who said "stop calling me" (the opt-outs).
//!
//! Before each dial one `TransactWriteItems` checks both opt-outs (the Contact's and the number's)
//! and counts the call against both caps, or writes nothing: one request per dial, whatever the
//! cap. Each cap item keeps the last [`MAX_CAP_CALLS`] dials (`t1` oldest … `t10` newest, with
//! the job that made each in `j1` … `j10`); a dial shifts them down by one and writes itself last,
//! on the condition that the cap's n-th newest dial is older than its window. So two events for
//! one customer a minute apart race on one conditional write, and only as many win as the cap
//! allows. A job run again (a retry after a refused dial, a wait for a call slot) finds itself
//! among the `j`s and is not counted twice.
//!
//! Keys: `cap#contact#<ContactId>`, `cap#phone#<sha256(E.164)>` (a number is not stored in the
//! clear), `optout#contact#<ContactId>`, `optout#phone#<sha256(E.164)>`.

use aws_sdk_dynamodb::error::SdkError;
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::types::{
    ConditionCheck, ReturnValuesOnConditionCheckFailure, TransactWriteItem, Update,
};
use sha2::{Digest, Sha256};

use super::spec::{Cap, MAX_CAP_CALLS};
use crate::ids::{E164Phone, SalesforceId};
use crate::store::{attr, unavailable, Item, Store, StoreError, EXPIRES_AT, PK};

/// How long a cap item lives after its last dial: the longest window a cap may have.
const CAP_ITEM_TTL_SECS: i64 = 31 * 86_400;

pub fn phone_key(phone: &E164Phone) -> String {
    hex::encode(Sha256::digest(format!("sfvapi-phone:{}", phone.expose())))
}

pub fn cap_pks(contact: &SalesforceId, phone: &E164Phone) -> [String; 2] {
    [
        format!("cap#contact#{contact}"),
        format!("cap#phone#{}", phone_key(phone)),
    ]
}

pub fn optout_contact_pk(contact: &SalesforceId) -> String {
    format!("optout#contact#{contact}")
}

pub fn optout_phone_pk(phone: &E164Phone) -> String {
    format!("optout#phone#{}", phone_key(phone))
}

/// What the ledger says about one dial.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Admission {
    /// Counted now, or by an earlier run of the same job.
    Admitted,
    /// The cap is reached for the Contact or the number; its oldest counted dial leaves the
    /// window at `until_ms`.
    Capped { until_ms: i64, by: &'static str },
    /// The customer said "stop calling me" (on call `call_id`).
    OptedOut { call_id: String, by: &'static str },
    /// Another dial for this customer wrote at the same moment: look again shortly.
    Contended,
}

fn cap_update(table: &str, pk: &str, job: &str, cap: &Cap, now_ms: i64) -> Update {
    let k = MAX_CAP_CALLS;
    let mut sets: Vec<String> = (1..k)
        .map(|i| {
            format!(
                "t{i} = if_not_exists(t{n}, :zero), j{i} = if_not_exists(j{n}, :none)",
                n = i + 1
            )
        })
        .collect();
    sets.push(format!("t{k} = :now, j{k} = :job, {EXPIRES_AT} = :exp"));
    // The cap's n-th newest dial.
    let nth = k - cap.calls + 1;
    let mine: Vec<String> = (1..=k).map(|i| format!("j{i} = :job")).collect();
    let window_start = now_ms - cap.per.as_millis() as i64;
    Update::builder()
        .table_name(table)
        .key(PK, attr::s(pk))
        .update_expression(format!("SET {}", sets.join(", ")))
        .condition_expression(format!(
            "(attribute_not_exists(t{nth}) OR t{nth} < :start) AND NOT ({})",
            mine.join(" OR ")
        ))
        .expression_attribute_values(":zero", attr::n(0))
        .expression_attribute_values(":none", attr::s("-"))
        .expression_attribute_values(":now", attr::n(now_ms))
        .expression_attribute_values(":job", attr::s(job))
        .expression_attribute_values(":start", attr::n(window_start))
        .expression_attribute_values(":exp", attr::n(now_ms / 1000 + CAP_ITEM_TTL_SECS))
        .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
        .build()
        // Every required member (key, update expression, table) is set above.
        .expect("a complete Update")
}

fn optout_check(table: &str, pk: &str) -> TransactWriteItem {
    let check = ConditionCheck::builder()
        .table_name(table)
        .key(PK, attr::s(pk))
        .condition_expression("attribute_not_exists(pk)")
        .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
        .build()
        .expect("a complete ConditionCheck");
    TransactWriteItem::builder().condition_check(check).build()
}

/// Check both opt-outs and count this dial against both caps, in one request.
pub async fn admit(
    store: &Store,
    contact: &SalesforceId,
    phone: &E164Phone,
    job: &str,
    cap: Option<&Cap>,
    now_ms: i64,
) -> Result<Admission, StoreError> {
    let [cap_contact, cap_phone] = cap_pks(contact, phone);
    let optouts = [optout_contact_pk(contact), optout_phone_pk(phone)];
    let table = store.table();
    let mut items = vec![
        optout_check(table, &optouts[0]),
        optout_check(table, &optouts[1]),
    ];
    if let Some(cap) = cap {
        for pk in [&cap_contact, &cap_phone] {
            items.push(
                TransactWriteItem::builder()
                    .update(cap_update(table, pk, job, cap, now_ms))
                    .build(),
            );
        }
    }
    let res = store
        .client()
        .transact_write_items()
        .set_transact_items(Some(items))
        .send()
        .await;
    let reasons = match res {
        Ok(_) => return Ok(Admission::Admitted),
        Err(SdkError::ServiceError(e)) => match e.err() {
            TransactWriteItemsError::TransactionCanceledException(c) => {
                c.cancellation_reasons().to_vec()
            }
            other => return Err(unavailable("TransactWriteItems(policy)", other)),
        },
        Err(e) => return Err(unavailable("TransactWriteItems(policy)", &e)),
    };
    let failed = |i: usize| {
        reasons
            .get(i)
            .and_then(|r| r.code())
            .is_some_and(|c| c == "ConditionalCheckFailed")
    };
    if reasons
        .iter()
        .any(|r| r.code() == Some("TransactionConflict"))
    {
        return Ok(Admission::Contended);
    }
    if !(0..4).any(failed) {
        let codes: Vec<&str> = reasons.iter().filter_map(|r| r.code()).collect();
        return Err(StoreError::Unavailable {
            op: "TransactWriteItems(policy)",
            detail: format!("cancelled: {codes:?}"),
        });
    }
    // The item a failed condition saw: from the answer, else read (a DynamoDB without
    // ReturnValuesOnConditionCheckFailure in transactions).
    let old = |i: usize, pk: String| {
        let given = reasons.get(i).and_then(|r| r.item()).cloned();
        async move {
            match given {
                Some(item) => Ok::<_, StoreError>(Some(item)),
                None => store.get(&pk).await,
            }
        }
    };
    for (i, by) in [(0, "Contact"), (1, "number")] {
        if failed(i) {
            let item = old(i, optouts[i].clone()).await?.unwrap_or_default();
            return Ok(Admission::OptedOut {
                call_id: attr::opt_s(&item, "call_id").unwrap_or("?").to_owned(),
                by,
            });
        }
    }
    // What is left are the caps: full, or holding this very job already (an earlier run of it
    // was counted, in both items at once).
    let mut until: Option<(i64, &'static str)> = None;
    for (i, by, pk) in [(2, "Contact", cap_contact), (3, "number", cap_phone)] {
        let Some(cap) = cap.filter(|_| failed(i)) else {
            continue;
        };
        let item = old(i, pk).await?.unwrap_or_default();
        if holds_job(&item, job) {
            continue;
        }
        let nth = MAX_CAP_CALLS - cap.calls + 1;
        let oldest = attr::opt_n(&item, &format!("t{nth}")).unwrap_or(now_ms);
        let u = oldest + cap.per.as_millis() as i64;
        if until.is_none_or(|(t, _)| u > t) {
            until = Some((u, by));
        }
    }
    Ok(match until {
        Some((until_ms, by)) => Admission::Capped { until_ms, by },
        None => Admission::Admitted,
    })
}

fn holds_job(item: &Item, job: &str) -> bool {
    (1..=MAX_CAP_CALLS).any(|i| attr::opt_s(item, &format!("j{i}")) == Some(job))
}

/// The opt-out that blocks this Contact, if any (the call it was said on): read where the
/// customer's number is not known yet (Salesforce unreachable).
pub async fn contact_opted_out(
    store: &Store,
    contact: &SalesforceId,
) -> Result<Option<String>, StoreError> {
    opted_out(store, &optout_contact_pk(contact)).await
}

/// The call an `optout#` item names, if the item exists.
async fn opted_out(store: &Store, pk: &str) -> Result<Option<String>, StoreError> {
    Ok(store
        .get(pk)
        .await?
        .map(|item| attr::opt_s(&item, "call_id").unwrap_or("?").to_owned()))
}

/// The opt-out that blocks this number, if any (the call it was said on): read before a
/// follow-up message.
pub async fn phone_opted_out(
    store: &Store,
    phone: &E164Phone,
) -> Result<Option<String>, StoreError> {
    opted_out(store, &optout_phone_pk(phone)).await
}

/// Remember "stop calling me" for the Contact and the number, for good (no TTL): every later
/// dial and follow-up is refused from this write on, whatever Salesforce says or whether it
/// answers.
pub async fn record_opt_out(
    store: &Store,
    contact: &SalesforceId,
    phone: Option<&E164Phone>,
    call_id: &str,
    now_ms: i64,
) -> Result<(), StoreError> {
    let mut pks = vec![optout_contact_pk(contact)];
    pks.extend(phone.map(optout_phone_pk));
    for pk in pks {
        // The first "no" is the one kept (put_if_absent); a second one changes nothing.
        store
            .put_if_absent(Item::from([
                (PK.to_owned(), attr::s(pk)),
                ("call_id".to_owned(), attr::s(call_id)),
                ("contact_id".to_owned(), attr::s(contact.as_str())),
                ("opted_out_at".to_owned(), attr::n(now_ms)),
            ]))
            .await?;
    }
    Ok(())
}
