//! Files in Salesforce: a call's whole transcript kept as a Salesforce File, linked to the call's
//! Task and Case, when it does not fit `Task.Description` (`jobs::transcript`).
//!
//! - `POST …/sobjects/ContentVersion` with `Title`, `PathOnClient` and `VersionData` (the file,
//!   base64, in the JSON body): REST API Developer Guide, "Insert or Update Blob Data" ("you can
//!   insert … a ContentVersion … the blob data is base64-encoded in the JSON body"; the body is
//!   at most 50 MB, 37.5 MB of file before base64). Object reference, ContentVersion:
//!   "Represents a specific version of a document in Salesforce CRM Content or Salesforce Files";
//!   inserting one without `ContentDocumentId` creates its `ContentDocument`.
//! - `GET …/sobjects/ContentVersion/{id}?fields=ContentDocumentId`: the document the new version
//!   belongs to (set by Salesforce on insert).
//! - `POST …/sobjects/ContentDocumentLink` with `ContentDocumentId`, `LinkedEntityId` and
//!   `ShareType` `V` (Object reference, ContentDocumentLink: "Represents the link between a
//!   Salesforce CRM Content document or Salesforce file and where it's shared"; ShareType V =
//!   "Viewer permission"). Linking a document to a record it is already linked to is refused
//!   with `DUPLICATE_VALUE`, which counts as linked here (a rerun after a lost answer).

use base64::Engine;
use reqwest::Method;
use serde_json::{json, Value};

use super::rest::{expect_json, first_error_code, RestError, SalesforceClient};
use crate::ids::SalesforceId;

/// What a link request did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Linked {
    /// A new `ContentDocumentLink` (its id).
    Created(String),
    /// Salesforce says the link exists (`DUPLICATE_VALUE`).
    AlreadyLinked,
}

impl SalesforceClient {
    /// Upload `data` as a new file; the new `ContentVersion`'s id.
    pub async fn create_content_version(
        &self,
        title: &str,
        path_on_client: &str,
        data: &[u8],
    ) -> Result<SalesforceId, RestError> {
        let body = json!({
            "Title": super::rest::truncate_chars(title, 255),
            "PathOnClient": super::rest::truncate_chars(path_on_client, 500),
            "VersionData": base64::engine::general_purpose::STANDARD.encode(data),
        });
        let answer = self
            .send(Method::POST, "/sobjects/ContentVersion", &[], Some(&body))
            .await?;
        let v = expect_json(answer, "ContentVersion", "(new)")?;
        id_field(&v, "id", "ContentVersion create answer")
    }

    /// The `ContentDocumentId` of a `ContentVersion`.
    pub async fn content_document_of(
        &self,
        version: &SalesforceId,
    ) -> Result<SalesforceId, RestError> {
        let answer = self
            .send(
                Method::GET,
                &format!("/sobjects/ContentVersion/{}", version.as_str()),
                &[("fields", "Id,ContentDocumentId".into())],
                None,
            )
            .await?;
        let v = expect_json(answer, "ContentVersion", version.as_str())?;
        id_field(&v, "ContentDocumentId", "ContentVersion")
    }

    /// Share a document with a record (a Task, a Case), viewers only.
    pub async fn link_document(
        &self,
        document: &SalesforceId,
        entity: &SalesforceId,
    ) -> Result<Linked, RestError> {
        let body = json!({
            "ContentDocumentId": document.as_str(),
            "LinkedEntityId": entity.as_str(),
            "ShareType": "V",
        });
        let answer = self
            .send(
                Method::POST,
                "/sobjects/ContentDocumentLink",
                &[],
                Some(&body),
            )
            .await?;
        if first_error_code(&answer).as_deref() == Some("DUPLICATE_VALUE") {
            return Ok(Linked::AlreadyLinked);
        }
        let v = expect_json(answer, "ContentDocumentLink", entity.as_str())?;
        Ok(Linked::Created(
            id_field(&v, "id", "ContentDocumentLink create answer")?
                .as_str()
                .to_owned(),
        ))
    }
}

fn id_field(v: &Value, field: &str, what: &str) -> Result<SalesforceId, RestError> {
    v.get(field)
        .and_then(Value::as_str)
        .and_then(|s| SalesforceId::parse("id", s).ok())
        .ok_or_else(|| RestError::Malformed {
            detail: format!("{what} has no {field}"),
        })
}
