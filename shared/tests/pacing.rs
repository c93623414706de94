//! Dial pacing slots on DynamoDB Local: never more holders than slots, however many workers race;
//! a slot frees itself at its expiry; only its holder (and its own call) releases it.

use std::time::Duration;

use sfvapi::ids::VapiCallId;
use sfvapi::pacing::{release_for_call, Acquired, CallSlots};
use sfvapi::store::attr;
use sfvapi_test_support::*;

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

#[tokio::test]
async fn a_first_dial_takes_its_home_slot_with_one_write_and_no_read() {
    let (store, counter) = fresh_store().await;
    let slots = CallSlots::new(store.clone(), 200, Duration::from_secs(600));
    let now = sfvapi::now_millis();
    counter.reset();
    let a = slots.acquire_new("event-a", now).await.unwrap();
    assert!(held(&a).is_some(), "{a:?}");
    // Not the 2 BatchGetItems (200 keys) + 1 UpdateItem of a full look.
    assert_eq!(
        counter.snapshot().get("BatchGetItem"),
        None,
        "{:?}",
        counter.snapshot()
    );
    assert_eq!(counter.total(), 1, "{:?}", counter.snapshot());
    // The same event again (home slot held by itself) keeps that slot.
    assert_eq!(
        held(&slots.acquire_new("event-a", now).await.unwrap()),
        held(&a)
    );
}

#[tokio::test]
async fn first_dials_that_collide_on_a_home_slot_still_fill_every_slot_and_no_more() {
    let (store, _) = fresh_store().await;
    // 3 slots and 12 racing first dials: home slots collide, the losers fall back to the full
    // look; exactly 3 hold a slot, each a different one.
    let slots = CallSlots::new(store.clone(), 3, Duration::from_secs(600));
    let now = sfvapi::now_millis();
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..12 {
        let slots = slots.clone();
        tasks.spawn(async move { slots.acquire_new(&format!("event-{i}"), now).await });
    }
    let mut pks = Vec::new();
    while let Some(r) = tasks.join_next().await {
        if let Acquired::Slot(s) = r.expect("task").expect("DynamoDB") {
            pks.push(s.pk);
        }
    }
    pks.sort();
    pks.dedup();
    assert_eq!(pks.len(), 3, "{pks:?}");
    assert_eq!(slots.live(now).await.unwrap(), 3);
}
