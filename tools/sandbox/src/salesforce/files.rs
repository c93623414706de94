//! The fake Salesforce's Files and Users: what a hand-off and a whole transcript need.
//!
//! - `GET /sobjects/User/{id}`: the seeded Users (`Phone`, `MobilePhone`; object reference, User),
//!   answered like every record read (`fields=` projected, an unknown field 400 `INVALID_FIELD`).
//! - `POST /sobjects/ContentVersion` `{Title, PathOnClient, VersionData}` (REST API Developer
//!   Guide, "Insert or Update Blob Data": `VersionData` base64 in the JSON body): 201
//!   `{"id","success","errors"}`, and a new `ContentDocument` (`069…`) the version belongs to.
//!   `Title` or `PathOnClient` missing is 400 `REQUIRED_FIELD_MISSING`; `VersionData` that is not
//!   base64 is 400 `JSON_PARSER_ERROR` (Salesforce cannot read the blob); a file over 37.5 MB (the
//!   50 MB JSON body less base64's growth) is 400 `STRING_TOO_LONG`.
//! - `GET /sobjects/ContentVersion/{id}`: the version with `ContentDocumentId`, `Title`,
//!   `PathOnClient`, `ContentSize` and `VersionData` as Salesforce gives it (the blob's URL).
//! - `POST /sobjects/ContentDocumentLink` `{ContentDocumentId, LinkedEntityId, ShareType}`
//!   (object reference, ContentDocumentLink: `ShareType` V, C or I): 201; a document already linked
//!   to that record is 400 `DUPLICATE_VALUE`; an unknown document 400 `INVALID_CROSS_REFERENCE_KEY`;
//!   a missing field `REQUIRED_FIELD_MISSING`; another `ShareType` `INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST`.
//!
//! The files kept are listed at `GET /_sandbox/salesforce/files` (`control`).

use base64::Engine;
use serde_json::{json, Map, Value};

use super::{get_record, sf_error, State};
use crate::{Req, Resp};

/// 37.5 MB: the largest file a JSON body of 50 MB carries in base64.
const MAX_FILE_BYTES: usize = 37_500_000;

/// A version of a file, as stored.
#[derive(Debug, Clone)]
pub(crate) struct Version {
    pub id: String,
    pub document_id: String,
    pub title: String,
    pub path_on_client: String,
    pub data: Vec<u8>,
}

/// A document's link to a record.
#[derive(Debug, Clone)]
pub(crate) struct Link {
    pub id: String,
    pub document_id: String,
    pub linked_entity_id: String,
    pub share_type: String,
}

/// The seeded Users: the owner of Ada's Case (a desk phone) and a User without a phone.
pub(crate) fn seed_users() -> Vec<Value> {
    let user = |id: &str, name: &str, phone: Value, mobile: Value| {
        json!({
            "attributes": {"type": "User", "url": format!("/services/data/v62.0/sobjects/User/{id}")},
            "Id": id, "Name": name, "Phone": phone, "MobilePhone": mobile, "IsActive": true,
        })
    };
    vec![
        user(
            CASE_OWNER,
            "Grace Hopper",
            json!("+1 (415) 555-0100"),
            Value::Null,
        ),
        user(NO_PHONE_OWNER, "Alan Turing", Value::Null, Value::Null),
    ]
}

/// The User who owns Ada's Case, with a desk phone.
pub(crate) const CASE_OWNER: &str = "0055e000001AbCdAAK";
/// A User without a phone.
pub(crate) const NO_PHONE_OWNER: &str = "0055e000002NoPhAAK";
/// A queue (a `Group`): owns a Case, has no phone.
pub(crate) const QUEUE: &str = "00G5e000000AbCdEAK";

pub(super) fn get_user(st: &State, id: &str, req: &Req) -> Resp {
    get_record(&st.users, "User", "005", id, req)
}

/// The body as a JSON object, or Salesforce's 400 JSON_PARSER_ERROR.
pub(super) fn body_object(req: &Req) -> Result<Map<String, Value>, Resp> {
    match serde_json::from_slice::<Value>(&req.body) {
        Ok(Value::Object(m)) => Ok(m),
        _ => Err(sf_error(
            400,
            "JSON_PARSER_ERROR",
            "The request body must be a JSON object",
        )),
    }
}

/// Salesforce's 400 REQUIRED_FIELD_MISSING naming `fields`.
pub(super) fn missing(fields: &[&str]) -> Resp {
    Resp::json(
        400,
        &json!([{"message": format!("Required fields are missing: [{}]", fields.join(", ")), "errorCode": "REQUIRED_FIELD_MISSING", "fields": fields}]),
    )
}

pub(super) fn create_version(st: &mut State, req: &Req) -> Resp {
    let m = match body_object(req) {
        Ok(m) => m,
        Err(r) => return r,
    };
    let text = |k: &str| m.get(k).and_then(Value::as_str).unwrap_or("").to_owned();
    let (title, path, data) = (text("Title"), text("PathOnClient"), text("VersionData"));
    let absent: Vec<&str> = [
        ("Title", &title),
        ("PathOnClient", &path),
        ("VersionData", &data),
    ]
    .into_iter()
    .filter(|(_, v)| v.is_empty())
    .map(|(k, _)| k)
    .collect();
    if !absent.is_empty() {
        return missing(&absent);
    }
    let Ok(bytes) = base64::engine::general_purpose::STANDARD.decode(data.as_bytes()) else {
        return sf_error(
            400,
            "JSON_PARSER_ERROR",
            "Cannot deserialize instance of base64 from VALUE_STRING value",
        );
    };
    if bytes.len() > MAX_FILE_BYTES {
        return Resp::json(
            400,
            &json!([{"message": format!("VersionData: data value too large: {} bytes", bytes.len()), "errorCode": "STRING_TOO_LONG", "fields": ["VersionData"]}]),
        );
    }
    let id = st.next_id("068");
    let document_id = st.next_id("069");
    st.versions.push(Version {
        id: id.clone(),
        document_id,
        title,
        path_on_client: path,
        data: bytes,
    });
    Resp::json(201, &json!({"id": id, "success": true, "errors": []}))
}

pub(super) fn version_json(v: &Version) -> Value {
    json!({
        "attributes": {"type": "ContentVersion", "url": format!("/services/data/v62.0/sobjects/ContentVersion/{}", v.id)},
        "Id": v.id,
        "ContentDocumentId": v.document_id,
        "Title": v.title,
        "PathOnClient": v.path_on_client,
        "ContentSize": v.data.len(),
        "VersionData": format!("/services/data/v62.0/sobjects/ContentVersion/{}/VersionData", v.id),
    })
}

pub(super) fn get_version(st: &State, id: &str, req: &Req) -> Resp {
    let records: Vec<Value> = st.versions.iter().map(version_json).collect();
    get_record(&records, "ContentVersion", "068", id, req)
}

pub(super) fn create_link(st: &mut State, req: &Req) -> Resp {
    let m = match body_object(req) {
        Ok(m) => m,
        Err(r) => return r,
    };
    let text = |k: &str| m.get(k).and_then(Value::as_str).unwrap_or("").to_owned();
    let (doc, entity, share) = (
        text("ContentDocumentId"),
        text("LinkedEntityId"),
        text("ShareType"),
    );
    let absent: Vec<&str> = [("ContentDocumentId", &doc), ("LinkedEntityId", &entity)]
        .into_iter()
        .filter(|(_, v)| v.is_empty())
        .map(|(k, _)| k)
        .collect();
    if !absent.is_empty() {
        return missing(&absent);
    }
    let share = if share.is_empty() {
        "V".to_owned()
    } else {
        share
    };
    if !["V", "C", "I"].contains(&share.as_str()) {
        return Resp::json(
            400,
            &json!([{"message": format!("Share Type: bad value for restricted picklist field: {share}"), "errorCode": "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST", "fields": ["ShareType"]}]),
        );
    }
    if !st
        .versions
        .iter()
        .any(|v| super::same_id(&v.document_id, &doc))
    {
        return Resp::json(
            400,
            &json!([{"message": format!("Content Document ID: id value of incorrect type: {doc}"), "errorCode": "INVALID_CROSS_REFERENCE_KEY", "fields": ["ContentDocumentId"]}]),
        );
    }
    if st.links.iter().any(|l| {
        super::same_id(&l.document_id, &doc) && super::same_id(&l.linked_entity_id, &entity)
    }) {
        return Resp::json(
            400,
            &json!([{"message": "Document with ID: already linked with the entity", "errorCode": "DUPLICATE_VALUE", "fields": []}]),
        );
    }
    let id = st.next_id("06A");
    st.links.push(Link {
        id: id.clone(),
        document_id: doc,
        linked_entity_id: entity,
        share_type: share,
    });
    Resp::json(201, &json!({"id": id, "success": true, "errors": []}))
}

/// Every file with its links (the control API's view).
pub(crate) fn files_json(st: &State) -> Value {
    let files: Vec<Value> = st
        .versions
        .iter()
        .map(|v| {
            let links: Vec<Value> = st
                .links
                .iter()
                .filter(|l| super::same_id(&l.document_id, &v.document_id))
                .map(|l| json!({"id": l.id, "linkedEntityId": l.linked_entity_id, "shareType": l.share_type}))
                .collect();
            json!({
                "contentVersionId": v.id, "contentDocumentId": v.document_id,
                "title": v.title, "pathOnClient": v.path_on_client,
                "size": v.data.len(), "text": String::from_utf8_lossy(&v.data),
                "links": links,
            })
        })
        .collect();
    json!({"files": files})
}
