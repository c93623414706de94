//! Dial pacing: the deployment's live-call slots, so the worker never dials more calls than
//! Vapi lets the org run at once.
//!
//! Vapi's concurrency limit is per account (10 by default, shared by inbound, outbound and web
//! calls); a call over it is answered 201 with `subscriptionLimits.concurrencyBlocked: true` and
//! never connects (docs.vapi.ai/calls/call-concurrency). Rather than dial and be blocked, a job
//! takes a slot before `POST /call` and waits (a short RETRY) when none is free.
//!
//! Slots are items `slot#vapi#<n>`, `n` in `0..VAPI_MAX_CONCURRENT_CALLS`, held with conditional
//! writes (nothing in memory, so every worker instance sees the same count):
//!
//! | attribute | meaning |
//! |---|---|
//! | `holder` | the event id of the dial job that holds the slot (absent: free) |
//! | `until` | ms; past it the slot is free again, whoever holds it |
//! | `call_id` | the Vapi call the slot is for, once `POST /call` answered |
//!
//! A slot is released when the call ends: on `status-update` `ended` or the end-of-call report
//! (both through [`release_for_call`], via the `slot` attribute the worker puts on `call#`), or
//! by the dial job itself when no call was placed. A slot whose end never arrives (a lost
//! message, a dial whose outcome is unknown) frees itself at `until` = taken + the call's maximum
//! duration + a margin: taking a slot accepts an expired one, so no sweep write is needed.

use std::time::Duration;

use aws_sdk_dynamodb::types::{AttributeValue, KeysAndAttributes};
use rand::Rng;

use crate::calls::call_pk;
use crate::ids::VapiCallId;
use crate::store::{applied, attr, unavailable, Item, Store, StoreError, PK};

/// Vapi's default org concurrency limit (docs.vapi.ai/calls/call-concurrency: "Every Vapi account
/// includes 10 concurrent call slots by default").
pub const DEFAULT_MAX_CONCURRENT_CALLS: u32 = 10;
/// `BatchGetItem` reads at most 100 keys per request.
const BATCH_GET_MAX: usize = 100;

pub fn slot_pk(n: u32) -> String {
    format!("slot#vapi#{n}")
}

/// A slot this job holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Slot {
    pub pk: String,
    pub holder: String,
}

/// What a look for a free slot found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Acquired {
    Slot(Slot),
    /// Every slot is held by a live call.
    Full {
        live: u32,
    },
}

/// Handle on the slots. Cheap to clone; build once per cold start.
#[derive(Clone, Debug)]
pub struct CallSlots {
    store: Store,
    max: u32,
    /// How long a slot is held at most: the call's maximum duration plus a margin.
    hold: Duration,
}

impl CallSlots {
    pub fn new(store: Store, max: u32, hold: Duration) -> Self {
        Self {
            store,
            max: max.max(1),
            hold,
        }
    }

    pub fn max(&self) -> u32 {
        self.max
    }

    /// [`Self::acquire`] for a holder that cannot hold a slot yet (a dial job's first run): its
    /// home slot (a hash of the holder) is tried first with one conditional write and no read.
    /// Below the limit that slot is usually free, so a dial costs 1 write instead of a read of
    /// every slot (`VAPI_MAX_CONCURRENT_CALLS` keys, one BatchGetItem per 100) + 1 write. When
    /// the home slot is held, the full look of [`Self::acquire`] follows.
    ///
    /// Only for a holder with no slot: one that might hold another slot already (a rerun) must
    /// use [`Self::acquire`], which finds and keeps that one instead of taking a second.
    pub async fn acquire_new(&self, holder: &str, now_ms: i64) -> Result<Acquired, StoreError> {
        let home = slot_pk(home_slot(holder, self.max));
        if self.take(&home, holder, now_ms).await? {
            return Ok(Acquired::Slot(Slot {
                pk: home,
                holder: holder.to_owned(),
            }));
        }
        self.acquire(holder, now_ms).await
    }

    /// Take a free (or expired, or already ours) slot for `holder`. One consistent read of every
    /// slot, then one conditional write per candidate until one holds: usually 1 read + 1 write,
    /// and 1 read with no write when all are busy.
    pub async fn acquire(&self, holder: &str, now_ms: i64) -> Result<Acquired, StoreError> {
        // By key, so a dial looks each slot up once instead of scanning the list per slot.
        let slots: std::collections::HashMap<String, Item> = self
            .read_all()
            .await?
            .into_iter()
            .filter_map(|i| attr::opt_s(&i, PK).map(str::to_owned).map(|pk| (pk, i)))
            .collect();
        let mut live = 0;
        let mut ours = None;
        let mut free = Vec::new();
        for n in 0..self.max {
            let pk = slot_pk(n);
            match slots.get(&pk) {
                // A rerun of the same job keeps its slot.
                Some(item) if attr::opt_s(item, "holder") == Some(holder) => ours = Some(pk),
                Some(item) if holds(item, now_ms) => live += 1,
                _ => free.push(pk),
            }
        }
        // Start at a random free slot so that racing workers seldom pick the same one.
        if free.len() > 1 {
            let first = rand::rng().random_range(0..free.len());
            free.rotate_left(first);
        }
        let candidates = ours.into_iter().chain(free);
        for pk in candidates {
            if self.take(&pk, holder, now_ms).await? {
                return Ok(Acquired::Slot(Slot {
                    pk,
                    holder: holder.to_owned(),
                }));
            }
            // Another worker took it between the read and the write.
            live += 1;
        }
        Ok(Acquired::Full { live })
    }

    async fn take(&self, pk: &str, holder: &str, now_ms: i64) -> Result<bool, StoreError> {
        let until = now_ms + self.hold.as_millis() as i64;
        let res = self
            .store
            .client()
            .update_item()
            .table_name(self.store.table())
            .key(PK, attr::s(pk))
            .update_expression("SET holder = :h, #until = :until, taken_at = :now REMOVE call_id")
            .condition_expression("attribute_not_exists(holder) OR #until < :now OR holder = :h")
            .expression_attribute_names("#until", "until")
            .expression_attribute_values(":h", attr::s(holder))
            .expression_attribute_values(":until", attr::n(until))
            .expression_attribute_values(":now", attr::n(now_ms))
            .send()
            .await;
        conditional(res, "UpdateItem(slot take)")
    }

    /// Tie the slot to the call Vapi created, so that only that call's end releases it.
    pub async fn attach_call(&self, slot: &Slot, call_id: &VapiCallId) -> Result<bool, StoreError> {
        let res = self
            .store
            .client()
            .update_item()
            .table_name(self.store.table())
            .key(PK, attr::s(&slot.pk))
            .update_expression("SET call_id = :c")
            .condition_expression("holder = :h")
            .expression_attribute_values(":h", attr::s(&slot.holder))
            .expression_attribute_values(":c", attr::s(call_id.as_str()))
            .send()
            .await;
        conditional(res, "UpdateItem(slot call)")
    }

    /// Give a slot back when no call was placed (blocked, refused, lease lost).
    pub async fn release(&self, slot: &Slot) -> Result<bool, StoreError> {
        release(&self.store, &slot.pk, &slot.holder, None).await
    }

    /// How many slots are held by a live call now (for metrics and tests).
    pub async fn live(&self, now_ms: i64) -> Result<u32, StoreError> {
        Ok(self
            .read_all()
            .await?
            .iter()
            .filter(|i| holds(i, now_ms))
            .count() as u32)
    }

    async fn read_all(&self) -> Result<Vec<Item>, StoreError> {
        let keys: Vec<String> = (0..self.max).map(slot_pk).collect();
        let mut out = Vec::with_capacity(keys.len());
        for chunk in keys.chunks(BATCH_GET_MAX) {
            let mut pending: Vec<std::collections::HashMap<String, AttributeValue>> = chunk
                .iter()
                .map(|pk| std::collections::HashMap::from([(PK.to_owned(), attr::s(pk))]))
                .collect();
            // Unprocessed keys (throttling) are asked for again, a bounded number of times.
            for _ in 0..5 {
                if pending.is_empty() {
                    break;
                }
                let request = KeysAndAttributes::builder()
                    .set_keys(Some(std::mem::take(&mut pending)))
                    .consistent_read(true)
                    .build()
                    .map_err(|e| unavailable("BatchGetItem(slots)", &e))?;
                let res = self
                    .store
                    .client()
                    .batch_get_item()
                    .request_items(self.store.table(), request)
                    .send()
                    .await
                    .map_err(|e| unavailable("BatchGetItem(slots)", &e))?;
                if let Some(mut r) = res.responses {
                    out.extend(r.remove(self.store.table()).unwrap_or_default());
                }
                if let Some(mut u) = res.unprocessed_keys {
                    if let Some(k) = u.remove(self.store.table()) {
                        pending = k.keys;
                    }
                }
            }
            if !pending.is_empty() {
                return Err(StoreError::Unavailable {
                    op: "BatchGetItem(slots)",
                    detail: "keys left unprocessed after 5 tries (throttled)".into(),
                });
            }
        }
        Ok(out)
    }
}

/// A holder's home slot: FNV-1a of its id, so that event ids spread evenly over the slots.
fn home_slot(holder: &str, max: u32) -> u32 {
    let hash = holder.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    });
    (hash % u64::from(max.max(1))) as u32
}

fn holds(item: &Item, now_ms: i64) -> bool {
    attr::opt_s(item, "holder").is_some() && attr::opt_n(item, "until").unwrap_or(0) >= now_ms
}

/// Release the slot of a call that ended, if it holds one: reads `call#<id>` for the slot and
/// the holder the worker wrote there, then frees the slot only if that call still holds it (a
/// slot already taken by another job is left alone). Safe to repeat; `Ok(false)` when there was
/// nothing to release.
pub async fn release_for_call(store: &Store, call_id: &VapiCallId) -> Result<bool, StoreError> {
    match store.get(&call_pk(call_id)).await? {
        Some(item) => release_recorded(store, call_id, &item).await,
        None => Ok(false),
    }
}

/// The same, from a `call#` item already in hand (the webhook's status write returns it).
pub async fn release_recorded(
    store: &Store,
    call_id: &VapiCallId,
    call_item: &Item,
) -> Result<bool, StoreError> {
    let (Some(slot), Some(holder)) = (
        attr::opt_s(call_item, "slot"),
        attr::opt_s(call_item, "event_id"),
    ) else {
        return Ok(false);
    };
    release(store, slot, holder, Some(call_id)).await
}

async fn release(
    store: &Store,
    pk: &str,
    holder: &str,
    call_id: Option<&VapiCallId>,
) -> Result<bool, StoreError> {
    let mut req = store
        .client()
        .update_item()
        .table_name(store.table())
        .key(PK, attr::s(pk))
        .update_expression("REMOVE holder, #until, call_id, taken_at")
        .expression_attribute_names("#until", "until")
        .expression_attribute_values(":h", attr::s(holder));
    req = match call_id {
        Some(c) => req
            .condition_expression("holder = :h AND call_id = :c")
            .expression_attribute_values(":c", attr::s(c.as_str())),
        None => req.condition_expression("holder = :h"),
    };
    conditional(req.send().await, "UpdateItem(slot release)")
}

fn conditional<T, E>(
    res: Result<T, aws_sdk_dynamodb::error::SdkError<E>>,
    op: &'static str,
) -> Result<bool, StoreError>
where
    E: aws_sdk_dynamodb::error::ProvideErrorMetadata + std::error::Error + 'static,
{
    applied(res, op).map(|o| o.is_some())
}

#[cfg(test)]
mod tests {
    use super::home_slot;

    #[test]
    fn home_slots_spread_event_ids_over_every_slot() {
        let mut per_slot = [0u32; 10];
        for i in 0..10_000 {
            per_slot[home_slot(&format!("case-escalated-5005e00000AbCdEAAV-{i}"), 10) as usize] +=
                1;
        }
        // 1,000 expected per slot; a bad hash (e.g. one that ignores the id's tail) piles up.
        assert!(
            per_slot.iter().all(|&n| (800..1200).contains(&n)),
            "{per_slot:?}"
        );
        assert_eq!(home_slot("anything", 1), 0);
        assert_eq!(home_slot("anything", 0), 0);
    }
}
