//! Raw writes to an item on DynamoDB Local, as time passing or another writer would leave it:
//! ageing a job so the sweep sees it due, a status an operator or a dead worker left behind.

use aws_sdk_dynamodb::types::AttributeValue;
use sfvapi::store::{attr, Store};

/// One `UpdateItem` on `pk`: `expression` with `#name` placeholders from `names` and `:value`
/// placeholders from `values`. Panics when DynamoDB refuses it (a broken test set-up).
pub async fn raw_update(
    store: &Store,
    pk: &str,
    expression: &str,
    names: &[(&str, &str)],
    values: &[(&str, AttributeValue)],
) {
    let mut update = store
        .client()
        .update_item()
        .table_name(store.table())
        .key("pk", attr::s(pk))
        .update_expression(expression);
    for (k, v) in names {
        update = update.expression_attribute_names(*k, *v);
    }
    for (k, v) in values {
        update = update.expression_attribute_values(*k, v.clone());
    }
    update
        .send()
        .await
        .unwrap_or_else(|e| panic!("UpdateItem {pk} `{expression}`: {e:?}"));
}

/// Sets each of `fields` (e.g. `next_at`, `lease_until`) to `ago_ms` milliseconds in the past:
/// the job is due (or its lease has run out) as if time had passed.
pub async fn age_fields(store: &Store, pk: &str, fields: &[&str], ago_ms: i64) {
    let sets: Vec<String> = fields.iter().map(|f| format!("{f} = :past")).collect();
    raw_update(
        store,
        pk,
        &format!("SET {}", sets.join(", ")),
        &[],
        &[(":past", attr::n(sfvapi::now_millis() - ago_ms))],
    )
    .await;
}

/// Makes the job `pk` due now (`next_at` 1 ms in the past), as time would.
pub async fn age(store: &Store, pk: &str) {
    age_fields(store, pk, &["next_at"], 1).await;
}

/// Sets the item's `status` (as an operator's redrive or a dead worker would leave it).
pub async fn set_status(store: &Store, pk: &str, status: &str) {
    raw_update(
        store,
        pk,
        "SET #s = :s",
        &[("#s", "status")],
        &[(":s", attr::s(status))],
    )
    .await;
}

/// Every item of the table (one `Scan` page: the tests' tables are small).
pub async fn scan_table(store: &Store) -> aws_sdk_dynamodb::operation::scan::ScanOutput {
    store
        .client()
        .scan()
        .table_name(store.table())
        .send()
        .await
        .expect("scan the table")
}

/// The item `pk` as stored now (panics when there is none: the test expected it written).
pub async fn stored(store: &Store, pk: &str) -> sfvapi::store::Item {
    store
        .get(pk)
        .await
        .expect("read the item")
        .unwrap_or_else(|| panic!("{pk} is not stored"))
}
