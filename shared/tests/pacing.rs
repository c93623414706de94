//! Dial pacing slots on DynamoDB Local: never more holders than slots, however many workers race;
//! a slot frees itself at its expiry; only its holder (and its own call) releases it.

mod support;

use std::time::Duration;

use sfvapi::ids::VapiCallId;
use sfvapi::pacing::{release_for_call, Acquired, CallSlots};
use sfvapi::store::attr;
use support::*;

fn held(a: &Acquired) -> Option<&sfvapi::pacing::Slot> {
    match a {
        Acquired::Slot(s) => Some(s),
        Acquired::Full { .. } => None,
    }
}

#[tokio::test]
async fn racing_workers_never_hold_more_slots_than_there_are() {
    let (store, _) = fresh_store().await;
    let slots = CallSlots::new(store.clone(), 5, Duration::from_secs(600));
    let now = sfvapi::now_millis();
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..20 {
        let slots = slots.clone();
        tasks.spawn(async move { slots.acquire(&format!("event-{i}"), now).await });
    }
    let mut got = Vec::new();
    let mut full = 0;
    while let Some(r) = tasks.join_next().await {
        match r.expect("task").expect("DynamoDB") {
            Acquired::Slot(s) => got.push(s),
            Acquired::Full { live } => {
                assert!(live <= 5, "live {live}");
                full += 1;
            }
        }
    }
    assert_eq!(got.len(), 5, "exactly one holder per slot: {got:?}");
    let mut pks: Vec<_> = got.iter().map(|s| s.pk.clone()).collect();
    pks.sort();
    pks.dedup();
    assert_eq!(pks.len(), 5, "no slot handed out twice");
    assert_eq!(full, 15);
    assert_eq!(slots.live(now).await.unwrap(), 5);
}

#[tokio::test]
async fn a_slot_frees_itself_at_its_expiry_and_a_rerun_keeps_its_own() {
    let (store, _) = fresh_store().await;
    let slots = CallSlots::new(store.clone(), 1, Duration::from_millis(300));
    let now = sfvapi::now_millis();
    let a = slots.acquire("event-a", now).await.unwrap();
    let a = held(&a).expect("a free slot").clone();
    // The same job running again (a retry) finds its own slot, not a new one.
    let again = slots.acquire("event-a", now + 10).await.unwrap();
    assert_eq!(held(&again), Some(&a));
    assert_eq!(
        slots.acquire("event-b", now + 10).await.unwrap(),
        Acquired::Full { live: 1 }
    );
    // A call whose end never arrives holds its slot only until the call's maximum duration.
    let b = slots.acquire("event-b", now + 400).await.unwrap();
    assert_eq!(held(&b).map(|s| s.pk.as_str()), Some(a.pk.as_str()));
    // The old holder can no longer release what is not its own.
    assert!(!slots.release(&a).await.unwrap());
    assert_eq!(slots.live(now + 400).await.unwrap(), 1);
}

#[tokio::test]
async fn only_the_calls_own_end_releases_its_slot() {
    let (store, _) = fresh_store().await;
    let slots = CallSlots::new(store.clone(), 1, Duration::from_secs(600));
    let now = sfvapi::now_millis();
    let slot = held(&slots.acquire("event-a", now).await.unwrap())
        .cloned()
        .expect("slot");
    let call = VapiCallId::parse("id", "c0ffee00-1111-4222-8333-444455556666").unwrap();
    let other = VapiCallId::parse("id", "0badca11-1111-4222-8333-444455556666").unwrap();
    assert!(slots.attach_call(&slot, &call).await.unwrap());
    // call# as the worker writes it: the slot and the event that holds it.
    let write_call = |id: &VapiCallId| {
        let store = store.clone();
        let id = id.clone();
        let slot = slot.pk.clone();
        async move {
            store
                .client()
                .put_item()
                .table_name(store.table())
                .item("pk", attr::s(format!("call#{}", id.as_str())))
                .item("event_id", attr::s("event-a"))
                .item("slot", attr::s(slot))
                .send()
                .await
                .unwrap();
        }
    };
    write_call(&other).await;
    // Another call naming this slot (a stale or forged call# item) does not free it.
    assert!(!release_for_call(&store, &other).await.unwrap());
    assert_eq!(slots.live(now).await.unwrap(), 1);
    // A call sfvapi never recorded releases nothing.
    let unknown = VapiCallId::parse("id", "deadbeef-1111-4222-8333-444455556666").unwrap();
    assert!(!release_for_call(&store, &unknown).await.unwrap());
    write_call(&call).await;
    assert!(release_for_call(&store, &call).await.unwrap());
    assert_eq!(slots.live(now).await.unwrap(), 0);
    // Repeating it (Vapi's ended and the end-of-call report both release) is harmless.
    assert!(!release_for_call(&store, &call).await.unwrap());
}
