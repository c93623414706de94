//! The whole transcript in Salesforce: when a call's transcript does not fit its Task's
//! `Description` (32,000 characters), the report job attaches it in full as a Salesforce File
//! (`ContentVersion`) linked to the Task and the Case (`ContentDocumentLink`,
//! `salesforce::files`), exactly once per call however often the job runs.
//!
//! Salesforce has no idempotency key for a `ContentVersion`, so the upload is guarded like the
//! follow-up SMS, by one item `file#<callId>`:
//! - claimed (`state` CREATING, conditional on the item not existing) before the POST;
//! - `version_id` once Salesforce answered the POST, `document_id` once read, `linked` (a string
//!   set) as each link is made, `state` LINKED at the end. A rerun resumes from what is recorded.
//! - A POST that Salesforce refused (an error answer: nothing was created) releases the claim, so
//!   the retry uploads; one whose outcome is unknown (a timeout, a lost connection) keeps it, and
//!   every later run reports NEEDS_REVIEW instead of uploading a second copy.

use aws_sdk_dynamodb::error::SdkError;
use aws_sdk_dynamodb::types::AttributeValue;

use super::context::Worker;
use crate::ids::{SalesforceId, VapiCallId};
use crate::salesforce::files::Linked;
use crate::salesforce::rest::RestError;
use crate::store::{attr, unavailable, Item, StoreError, EXPIRES_AT, PK};

/// Key of a call's file guard.
pub fn guard_pk(call: &VapiCallId) -> String {
    format!("file#{call}")
}

/// The file's title, as the Task names it.
pub fn file_title(call: &VapiCallId) -> String {
    format!("Transcript {call}")
}

/// What the transcript step did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Kept {
    /// The file exists and is linked to every record asked (its `ContentDocumentId`).
    Linked { document: SalesforceId },
    /// An earlier run's upload has an unknown outcome: a person checks Files before anything
    /// is uploaded again.
    NeedsReview(String),
}

/// Why the step stopped: the store, or Salesforce (retry the job when retryable).
#[derive(Debug, thiserror::Error)]
pub enum KeepError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("{0}")]
    Salesforce(RestError),
}

/// Attach `transcript` to `records` (the Task, the Case), once per call.
pub(crate) async fn keep(
    w: &Worker,
    call: &VapiCallId,
    transcript: &str,
    records: &[&SalesforceId],
) -> Result<Kept, KeepError> {
    let store = w.inner.queue.store();
    let rest = &w.inner.salesforce.rest;
    let pk = guard_pk(call);
    let (mut item, mine) = match store.get(&pk).await? {
        Some(item) => (item, false),
        None => match claim(w, &pk).await? {
            Some(item) => (item, true),
            // Another run claimed it between our read and our write.
            None => (store.get(&pk).await?.unwrap_or_default(), false),
        },
    };
    let version = match attr::opt_s(&item, "version_id")
        .and_then(|v| SalesforceId::parse("version_id", v).ok())
    {
        Some(v) => v,
        None if !mine => {
            return Ok(Kept::NeedsReview(format!(
                "an earlier run started uploading the transcript file and its outcome is unknown: look for \"{}\" in Salesforce Files, then delete {pk} to upload again",
                file_title(call)
            )))
        }
        None => {
            let name = format!("transcript-{call}.txt");
            match rest
                .create_content_version(&file_title(call), &name, transcript.as_bytes())
                .await
            {
                Ok(v) => {
                    set(w, &pk, "version_id", v.as_str()).await?;
                    v
                }
                Err(e) => {
                    if answered(&e) {
                        // Salesforce refused it: nothing was created, the retry may upload.
                        release(w, &pk).await?;
                    }
                    return Err(KeepError::Salesforce(e));
                }
            }
        }
    };
    let document = match attr::opt_s(&item, "document_id")
        .and_then(|d| SalesforceId::parse("document_id", d).ok())
    {
        Some(d) => d,
        None => {
            let d = rest
                .content_document_of(&version)
                .await
                .map_err(KeepError::Salesforce)?;
            set(w, &pk, "document_id", d.as_str()).await?;
            d
        }
    };
    let linked: Vec<String> = match item.remove("linked") {
        Some(AttributeValue::Ss(v)) => v,
        _ => Vec::new(),
    };
    for record in records {
        if linked.iter().any(|l| l == record.as_str()) {
            continue;
        }
        match rest
            .link_document(&document, record)
            .await
            .map_err(KeepError::Salesforce)?
        {
            Linked::Created(_) | Linked::AlreadyLinked => {}
        }
        store
            .client()
            .update_item()
            .table_name(store.table())
            .key(PK, attr::s(&pk))
            .update_expression("ADD linked :l")
            .expression_attribute_values(":l", AttributeValue::Ss(vec![record.as_str().to_owned()]))
            .send()
            .await
            .map_err(|e| unavailable("UpdateItem", &e))?;
    }
    set(w, &pk, "state", "LINKED").await?;
    Ok(Kept::Linked { document })
}

/// An answer from Salesforce (so nothing was created), rather than no answer at all.
fn answered(e: &RestError) -> bool {
    !matches!(
        e,
        RestError::Timeout | RestError::Network { .. } | RestError::Malformed { .. }
    )
}

async fn claim(w: &Worker, pk: &str) -> Result<Option<Item>, StoreError> {
    let store = w.inner.queue.store();
    let now = crate::now_millis();
    let item = Item::from([
        (PK.to_owned(), attr::s(pk)),
        ("state".to_owned(), attr::s("CREATING")),
        ("claimed_at".to_owned(), attr::n(now)),
        (
            EXPIRES_AT.to_owned(),
            attr::n(now / 1000 + w.inner.config.ttl.as_secs() as i64),
        ),
    ]);
    match store
        .client()
        .put_item()
        .table_name(store.table())
        .set_item(Some(item.clone()))
        .condition_expression("attribute_not_exists(pk)")
        .send()
        .await
    {
        Ok(_) => Ok(Some(item)),
        Err(SdkError::ServiceError(e)) if e.err().is_conditional_check_failed_exception() => {
            Ok(None)
        }
        Err(e) => Err(unavailable("PutItem", &e)),
    }
}

async fn set(w: &Worker, pk: &str, name: &str, value: &str) -> Result<(), StoreError> {
    let store = w.inner.queue.store();
    store
        .client()
        .update_item()
        .table_name(store.table())
        .key(PK, attr::s(pk))
        .update_expression("SET #n = :v")
        .expression_attribute_names("#n", name)
        .expression_attribute_values(":v", attr::s(value))
        .send()
        .await
        .map_err(|e| unavailable("UpdateItem", &e))?;
    Ok(())
}

async fn release(w: &Worker, pk: &str) -> Result<(), StoreError> {
    let store = w.inner.queue.store();
    store
        .client()
        .delete_item()
        .table_name(store.table())
        .key(PK, attr::s(pk))
        .send()
        .await
        .map_err(|e| unavailable("DeleteItem", &e))?;
    Ok(())
}
