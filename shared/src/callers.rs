//! The recent-callers index: whom sfvapi last called at a phone number, so that when that number
//! calls back the Vapi webhook knows the caller without asking Salesforce (`vapi::inbound`).
//!
//! One item per number, written by the job worker in the step that writes `call#` (right after
//! `POST /call` succeeded), read by the webhook when an `assistant-request` arrives:
//!
//! | name | type | meaning |
//! |---|---|---|
//! | `pk` | S | `phone#<hex HMAC-SHA256(context_key, "sfvapi-phone-v1\n" + E.164)>` |
//! | `call_id` | S | the latest outbound call to the number; its `call#` holds the snapshot |
//! | `contact_ids` | SS | every Contact sfvapi called at this number while the item lived |
//! | `placed_at` | N | ms, when that call was placed (a later call wins, never an earlier one) |
//! | `expires_at` | N | TTL, unix seconds: `placed_at` + `INBOUND_RECENT_CALL_DAYS` |
//!
//! Why these and nothing else:
//! - **The number is never stored**, not even hashed plainly: a SHA-256 of a phone number is
//!   reversed by trying the ~10^10 numbers of a country. The key is an HMAC under the Vapi server
//!   secret's `context_key`, which only the worker and the webhook can read; rotating that key
//!   orphans the old items (they expire) and callers are found by the Salesforce search meanwhile.
//! - **No customer data**: the item points at the call (`call#` already holds the snapshot the
//!   assistant's tools answer from, with its own TTL) and names the Contact ids only.
//! - **Several Contacts on one number** (a family phone, a switchboard) stay visible: every
//!   Contact called at the number is added to `contact_ids`, so a caller on a shared number is
//!   never taken for whichever Contact was called last.
//! - **Expiry is checked on read**: DynamoDB deletes expired items only eventually ("typically
//!   within a few days", <https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/howitworks-ttl.html>),
//!   so an item past `expires_at` is treated as absent.

use std::time::Duration;

use aws_sdk_dynamodb::types::AttributeValue;
use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

use crate::ids::{E164Phone, SalesforceId, VapiCallId};
use crate::secrets::SecretString;
use crate::store::{applied, attr, unavailable, Store, StoreError, EXPIRES_AT};

/// The key prefix of the index's items.
pub const PREFIX: &str = "phone#";

/// The item key of a number: an HMAC under `key`, never the number itself.
pub fn phone_pk(key: &SecretString, phone: &E164Phone) -> String {
    // HMAC accepts a key of any length, so building it cannot fail; the fallback never runs.
    let Ok(mut mac) = <Hmac<Sha256> as KeyInit>::new_from_slice(key.expose().as_bytes()) else {
        return format!("{PREFIX}-");
    };
    mac.update(b"sfvapi-phone-v1\n");
    mac.update(phone.expose().as_bytes());
    format!("{PREFIX}{}", hex::encode(mac.finalize().into_bytes()))
}

/// One outbound call, as the worker records it.
#[derive(Debug, Clone)]
pub struct OutboundCall<'a> {
    pub phone: &'a E164Phone,
    pub call_id: &'a VapiCallId,
    pub contact_id: &'a SalesforceId,
    pub placed_at_ms: i64,
}

/// Record that `call.contact_id` was called at `call.phone`. `ttl` zero disables the index (nothing
/// is written). At most three conditional `UpdateItem`s, one in the common case (a number called
/// for the first time in the window):
/// 1. the item is absent or expired: start it afresh (`contact_ids` = this Contact);
/// 2. else, when this call is the latest: point at it and add the Contact;
/// 3. else (a later call is already recorded): only add the Contact.
pub async fn record_outbound(
    store: &Store,
    key: &SecretString,
    call: &OutboundCall<'_>,
    ttl: Duration,
) -> Result<(), StoreError> {
    if ttl.is_zero() {
        return Ok(());
    }
    let pk = phone_pk(key, call.phone);
    let expires_at = call.placed_at_ms / 1000 + ttl.as_secs() as i64;
    let contact = AttributeValue::Ss(vec![call.contact_id.as_str().to_owned()]);
    let update = |expr: &str| {
        store
            .client()
            .update_item()
            .table_name(store.table())
            .key(crate::store::PK, attr::s(pk.clone()))
            .update_expression(expr)
            .expression_attribute_values(":c", contact.clone())
    };
    let fresh = update("SET call_id = :call, placed_at = :at, expires_at = :exp, contact_ids = :c")
        .condition_expression("attribute_not_exists(placed_at) OR expires_at < :now")
        .expression_attribute_values(":call", attr::s(call.call_id.as_str()))
        .expression_attribute_values(":at", attr::n(call.placed_at_ms))
        .expression_attribute_values(":exp", attr::n(expires_at))
        .expression_attribute_values(":now", attr::n(crate::now_secs()))
        .send()
        .await;
    if applied(fresh, "UpdateItem(phone#)")?.is_some() {
        return Ok(());
    }
    let latest =
        update("SET call_id = :call, placed_at = :at, expires_at = :exp ADD contact_ids :c")
            .condition_expression("placed_at <= :at")
            .expression_attribute_values(":call", attr::s(call.call_id.as_str()))
            .expression_attribute_values(":at", attr::n(call.placed_at_ms))
            .expression_attribute_values(":exp", attr::n(expires_at))
            .send()
            .await;
    if applied(latest, "UpdateItem(phone#)")?.is_some() {
        return Ok(());
    }
    update("ADD contact_ids :c")
        .send()
        .await
        .map_err(|e| unavailable("UpdateItem(phone#)", &e))?;
    Ok(())
}

/// What the index knows about a number.
#[derive(Debug, Clone, PartialEq)]
pub struct RecentCall {
    /// The latest outbound call to the number.
    pub call_id: VapiCallId,
    /// Every Contact called at the number (at least one).
    pub contact_ids: Vec<SalesforceId>,
    pub placed_at_ms: i64,
}

impl RecentCall {
    /// The Contact, when the number was only ever used to call one.
    pub fn only_contact(&self) -> Option<&SalesforceId> {
        match self.contact_ids.as_slice() {
            [one] => Some(one),
            _ => None,
        }
    }
}

/// The index entry of `phone`, if there is a live one (one GetItem). An item past its
/// `expires_at`, or one that cannot be read as written, is `None`: the caller then asks Salesforce.
pub async fn lookup(
    store: &Store,
    key: &SecretString,
    phone: &E164Phone,
    now_secs: i64,
) -> Result<Option<RecentCall>, StoreError> {
    let Some(item) = store.get(&phone_pk(key, phone)).await? else {
        return Ok(None);
    };
    if attr::opt_n(&item, EXPIRES_AT).is_none_or(|exp| exp < now_secs) {
        return Ok(None);
    }
    let call_id = attr::opt_s(&item, "call_id").and_then(|c| VapiCallId::parse("call_id", c).ok());
    let contact_ids: Vec<SalesforceId> = match item.get("contact_ids") {
        Some(AttributeValue::Ss(ids)) => ids
            .iter()
            .filter_map(|c| SalesforceId::parse("contact_ids", c).ok())
            .collect(),
        _ => Vec::new(),
    };
    match (call_id, contact_ids.is_empty()) {
        (Some(call_id), false) => Ok(Some(RecentCall {
            call_id,
            contact_ids,
            placed_at_ms: attr::opt_n(&item, "placed_at").unwrap_or(0),
        })),
        _ => Ok(None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_key_hides_the_number_and_depends_on_the_secret() {
        let phone = E164Phone::parse("p", "+14155550123").unwrap();
        let k1 = SecretString::new("context-key-one-0123456789abcdefghij");
        let k2 = SecretString::new("context-key-two-0123456789abcdefghij");
        let pk = phone_pk(&k1, &phone);
        assert!(
            pk.starts_with(PREFIX) && pk.len() == PREFIX.len() + 64,
            "{pk}"
        );
        assert!(!pk.contains("4155550123"));
        assert_eq!(pk, phone_pk(&k1, &phone), "stable");
        assert_ne!(pk, phone_pk(&k2, &phone), "keyed");
        // The same number in another format is the same E.164 value, so the same key.
        let formatted = E164Phone::parse("p", "+1 (415) 555-0123").unwrap();
        assert_eq!(pk, phone_pk(&k1, &formatted));
        let other = E164Phone::parse("p", "+14155550124").unwrap();
        assert_ne!(pk, phone_pk(&k1, &other));
    }
}
