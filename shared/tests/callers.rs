//! The recent-callers index (`sfvapi::callers`) on DynamoDB Local: what the worker writes when it
//! places a call, and what the webhook may conclude from it when the number calls back
//! (`scripts/services.sh cargo test -p sfvapi --test callers`).

use std::time::Duration;

use aws_sdk_dynamodb::types::AttributeValue;
use sfvapi::callers::{lookup, phone_pk, record_outbound, OutboundCall};
use sfvapi::ids::{E164Phone, SalesforceId, VapiCallId};
use sfvapi::secrets::SecretString;
use sfvapi::store::attr;
use sfvapi_test_support as support;

const KEY: &str = "context-key-for-tests-0123456789abcdef";
const ADA: &str = "0035e00000XyZ12AAF";
const GRACE: &str = "0035e00000DnCa1AAF";
const DAY: Duration = Duration::from_secs(86_400);

fn ids(call: &str, contact: &str) -> (VapiCallId, SalesforceId) {
    (
        VapiCallId::parse("c", call).unwrap(),
        SalesforceId::parse("c", contact).unwrap(),
    )
}

#[tokio::test]
async fn a_called_number_names_its_contact_and_latest_call_and_nothing_else() {
    let (store, _) = support::fresh_store().await;
    let key = SecretString::new(KEY);
    let phone = E164Phone::parse("p", "+14155550123").unwrap();
    let now = sfvapi::now_millis();
    let (c1, ada) = ids("call-1", ADA);
    let (c2, _) = ids("call-2", ADA);
    let (c0, _) = ids("call-0", ADA);
    for (call, at) in [(&c1, now - 10_000), (&c2, now), (&c0, now - 60_000)] {
        record_outbound(
            &store,
            &key,
            &OutboundCall {
                phone: &phone,
                call_id: call,
                contact_id: &ada,
                placed_at_ms: at,
            },
            3 * DAY,
        )
        .await
        .unwrap();
    }
    let found = lookup(&store, &key, &phone, sfvapi::now_secs())
        .await
        .unwrap()
        .expect("the number is known");
    // The latest call wins, even when an older one is recorded after it.
    assert_eq!(found.call_id, c2);
    assert_eq!(found.only_contact(), Some(&ada));
    assert_eq!(found.placed_at_ms, now);

    // The item holds pointers only: no number, no name.
    let item = store.get(&phone_pk(&key, &phone)).await.unwrap().unwrap();
    let mut names: Vec<&str> = item.keys().map(String::as_str).collect();
    names.sort_unstable();
    assert_eq!(
        names,
        ["call_id", "contact_ids", "expires_at", "pk", "placed_at"]
    );
    let text = format!("{item:?}");
    assert!(!text.contains("4155550123"), "{text}");
    assert_eq!(
        attr::opt_n(&item, "expires_at"),
        Some(now / 1000 + 3 * 86_400)
    );

    // Another key (a rotated context_key) does not find it; another number neither.
    let other_key = SecretString::new("another-context-key-0123456789abcdef");
    assert!(lookup(&store, &other_key, &phone, sfvapi::now_secs())
        .await
        .unwrap()
        .is_none());
    let other = E164Phone::parse("p", "+14155550124").unwrap();
    assert!(lookup(&store, &key, &other, sfvapi::now_secs())
        .await
        .unwrap()
        .is_none());
}

#[tokio::test]
async fn a_number_called_for_two_contacts_names_neither() {
    let (store, _) = support::fresh_store().await;
    let key = SecretString::new(KEY);
    let phone = E164Phone::parse("p", "+14155550177").unwrap();
    let now = sfvapi::now_millis();
    let (c1, ada) = ids("call-a", ADA);
    let (c2, grace) = ids("call-g", GRACE);
    for (call, contact, at) in [(&c2, &grace, now), (&c1, &ada, now - 1_000)] {
        record_outbound(
            &store,
            &key,
            &OutboundCall {
                phone: &phone,
                call_id: call,
                contact_id: contact,
                placed_at_ms: at,
            },
            DAY,
        )
        .await
        .unwrap();
    }
    let found = lookup(&store, &key, &phone, sfvapi::now_secs())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(found.only_contact(), None, "{found:?}");
    assert_eq!(found.contact_ids.len(), 2);
    assert_eq!(found.call_id, c2, "still the latest call");
}

#[tokio::test]
async fn an_expired_entry_is_absent_and_a_new_call_starts_it_afresh() {
    let (store, _) = support::fresh_store().await;
    let key = SecretString::new(KEY);
    let phone = E164Phone::parse("p", "+14155550123").unwrap();
    let (old_call, grace) = ids("call-old", GRACE);
    // An entry past its expiry that DynamoDB has not deleted yet (TTL deletes lazily).
    let pk = phone_pk(&key, &phone);
    store
        .client()
        .put_item()
        .table_name(store.table())
        .item("pk", attr::s(&pk))
        .item("call_id", attr::s(old_call.as_str()))
        .item(
            "contact_ids",
            AttributeValue::Ss(vec![grace.as_str().into()]),
        )
        .item("placed_at", attr::n(sfvapi::now_millis() - 10 * 86_400_000))
        .item("expires_at", attr::n(sfvapi::now_secs() - 60))
        .send()
        .await
        .unwrap();
    assert!(lookup(&store, &key, &phone, sfvapi::now_secs())
        .await
        .unwrap()
        .is_none());
    let (call, ada) = ids("call-new", ADA);
    record_outbound(
        &store,
        &key,
        &OutboundCall {
            phone: &phone,
            call_id: &call,
            contact_id: &ada,
            placed_at_ms: sfvapi::now_millis(),
        },
        DAY,
    )
    .await
    .unwrap();
    let found = lookup(&store, &key, &phone, sfvapi::now_secs())
        .await
        .unwrap()
        .unwrap();
    // The expired Contact is gone, not mixed into the new entry.
    assert_eq!(found.only_contact(), Some(&ada));
    assert_eq!(found.call_id, call);
}

#[tokio::test]
async fn a_zero_ttl_writes_nothing() {
    let (store, counter) = support::fresh_store().await;
    let key = SecretString::new(KEY);
    let phone = E164Phone::parse("p", "+14155550123").unwrap();
    let (call, ada) = ids("call-1", ADA);
    counter.reset();
    record_outbound(
        &store,
        &key,
        &OutboundCall {
            phone: &phone,
            call_id: &call,
            contact_id: &ada,
            placed_at_ms: sfvapi::now_millis(),
        },
        Duration::ZERO,
    )
    .await
    .unwrap();
    assert_eq!(counter.total(), 0);
    assert!(store.get(&phone_pk(&key, &phone)).await.unwrap().is_none());
}
