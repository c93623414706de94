//! Salesforce REST client: read a Contact (with its Account) and a Case, write a Task keyed by an
//! external id, add a CaseComment. Every answer becomes a typed value or a typed [`RestError`]
//! that says whether retrying can help.
//!
//! A 401 `INVALID_SESSION_ID` (matched on `errorCode`; the message varies) gets exactly one
//! coordinated refresh (see `token.rs`) and one retry; a second 401 is a configuration problem
//! (IP restrictions, wrong instance, revoked app) and is surfaced, never looped on.
//!
//! **Contact + Account in one call.** Relationship fields (`Account.AnnualRevenue`) are a SOQL
//! feature; the `fields` parameter of `GET /sobjects/Contact/{id}` takes the object's own fields.
//! So the Contact is read with one query (`GET /query?q=SELECT … FROM Contact WHERE Id = '…'`,
//! <https://developer.salesforce.com/docs/platform/api-rest/guide/resources-query.html>): still one
//! API call, and the answer nests `Account` (null when the Contact has none).
//!
//! **Task write: create, then update without create-only fields.** `TaskSubtype` can be set on
//! create but is not updateable (Task object reference: its properties list Create but not Update,
//! <https://developer.salesforce.com/docs/atlas.en-us.object_reference.meta/object_reference/sforce_api_objects_task.htm>).
//! An upsert by external id (`PATCH /sobjects/Task/{Field}/{value}`,
//! <https://developer.salesforce.com/docs/platform/api-rest/guide/dome-upsert.html>) cannot know in
//! advance whether it creates or updates, so one body cannot be right for both. Instead:
//! 1. `POST /sobjects/Task` with every field, the external id field included. The external id
//!    field must be **Unique** (docs/connect-salesforce.md), so a Task for this call that already
//!    exists makes Salesforce answer 400 `DUPLICATE_VALUE` instead of creating a second one.
//! 2. On `DUPLICATE_VALUE`, `PATCH /sobjects/Task/{Field}/{value}` without the create-only fields
//!    ([`TASK_CREATE_ONLY_FIELDS`]): it updates the existing Task (200 `created:false`, or 204 on
//!    old API versions). Should the Task vanish in between, the PATCH creates it (201).
//!
//! A first delivery costs one call, a repeated one two; a repeated report never duplicates.
//!
//! **Record updates** (the routing document's `writeBack`): `PATCH …/sobjects/{Object}/{id}` with
//! the fields to set answers 204 and no body ("Update a Record",
//! <https://developer.salesforce.com/docs/platform/api-rest/guide/dome-update-fields.html>; 204 is
//! "No Content … for … some PATCH requests" in "Status Codes and Error Responses",
//! <https://developer.salesforce.com/docs/platform/api-rest/guide/errorcodes.html>). A field the
//! object does not have, or the user may not edit, fails the whole request with 400 and
//! `[{"message","errorCode","fields"?}]`; [`SalesforceClient::update_record`] hands such a refusal
//! back as a value, so the caller can record it and go on.

use std::collections::BTreeMap;
use std::sync::Arc;

use reqwest::{Method, StatusCode};
use serde::Deserialize;
use serde_json::{json, Value};
use tracing::{info, warn};

use super::oauth::{map_reqwest, AccessToken, TokenError};
use super::token::TokenProvider;
use crate::ids::{E164Phone, Priority, SalesforceId};
use crate::telemetry::{metric, Unit};

/// Task.Description holds at most 32,000 characters.
pub const TASK_DESCRIPTION_MAX_CHARS: usize = 32_000;
/// CaseComment.CommentBody holds at most 4,000 **bytes** ("Fields like CaseComment.Body have a
/// limit of 4,000 bytes", <https://help.salesforce.com/s/articleView?id=000382141&type=1>; the
/// object reference says the same); a longer note is rejected with STRING_TOO_LONG.
pub const CASE_COMMENT_MAX_BYTES: usize = 4_000;

/// Task fields that can be set on create but not on update (Task object reference:
/// `TaskSubtype` has the Create property, not Update). Sent on the create, never on the update.
pub const TASK_CREATE_ONLY_FIELDS: &[&str] = &["TaskSubtype"];

/// The standard Contact fields read for every call; the configured custom fields follow them.
pub const CONTACT_FIELDS: &[&str] = &[
    "Id",
    "Name",
    "Phone",
    "MobilePhone",
    "Email",
    "DoNotCall",
    "Account.AnnualRevenue",
];

/// One entry of Salesforce's REST error array `[{"message","errorCode","fields"?}]`.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
pub struct ApiErrorEntry {
    #[serde(rename = "errorCode", default)]
    pub error_code: String,
    #[serde(default)]
    pub message: String,
    /// The fields the error is about, when Salesforce names them.
    #[serde(default)]
    pub fields: Vec<String>,
}

#[derive(Debug, Clone, thiserror::Error)]
pub enum RestError {
    /// Could not get a token; retryable or not as the token error says.
    #[error("no Salesforce access token: {0}")]
    Token(#[from] TokenError),
    /// Still 401 after a fresh token: IP restrictions, wrong instance URL, app revoked. Terminal.
    #[error("Salesforce rejected a freshly issued token ({code}); check the Connected App's IP relaxation, policies and the instance URL")]
    Unauthorized { code: String },
    /// 403 REQUEST_LIMIT_EXCEEDED: the org's 24 h API allowance is used up. Retry later.
    #[error("Salesforce API request limit exceeded; retry later")]
    RequestLimit,
    /// 400 UNABLE_TO_LOCK_ROW: another transaction held the record's lock past the lock timeout.
    /// The same request succeeds once that transaction is done. Retry later.
    #[error("Salesforce could not lock the {object} record (UNABLE_TO_LOCK_ROW); retry later")]
    RowLocked { object: &'static str },
    /// 404: the record does not exist (or the user cannot see it). Terminal.
    #[error("{object} {id} not found in Salesforce")]
    NotFound { object: &'static str, id: String },
    /// 300 on an upsert: the external id matches several records. Terminal, needs a human.
    #[error("{field} = {value} matches several {object} records; make the field unique")]
    MultipleMatches {
        object: &'static str,
        field: String,
        value: String,
    },
    /// Any other 4xx: a validation or permission problem. Terminal.
    #[error("Salesforce rejected the request ({status} {code}): {message}")]
    Rejected {
        status: u16,
        code: String,
        message: String,
    },
    /// 5xx or 429. Retry later.
    #[error("Salesforce answered {status}; retry later")]
    Upstream { status: u16 },
    #[error("Salesforce request timed out; retry later")]
    Timeout,
    #[error("could not reach Salesforce: {detail}")]
    Network { detail: String },
    /// A 2xx body we cannot read. Terminal (wrong API version or field mapping).
    #[error("unexpected Salesforce answer: {detail}")]
    Malformed { detail: String },
}

impl RestError {
    pub fn is_retryable(&self) -> bool {
        match self {
            Self::Token(e) => e.is_retryable(),
            Self::RequestLimit
            | Self::RowLocked { .. }
            | Self::Upstream { .. }
            | Self::Timeout
            | Self::Network { .. } => true,
            Self::Unauthorized { .. }
            | Self::NotFound { .. }
            | Self::MultipleMatches { .. }
            | Self::Rejected { .. }
            | Self::Malformed { .. } => false,
        }
    }
    pub fn is_terminal(&self) -> bool {
        !self.is_retryable()
    }
}

impl From<reqwest::Error> for RestError {
    fn from(e: reqwest::Error) -> Self {
        match map_reqwest(&e) {
            TokenError::Timeout => Self::Timeout,
            TokenError::Network { detail } => Self::Network { detail },
            other => Self::Network {
                detail: other.to_string(),
            },
        }
    }
}

/// Parse a phone field: `Ok(None)` when empty, `Err(reason)` when present but not E.164.
fn parse_phone(field: &'static str, raw: Option<&str>) -> Result<Option<E164Phone>, String> {
    match raw.map(str::trim).filter(|s| !s.is_empty()) {
        None => Ok(None),
        Some(s) => E164Phone::parse(field, s)
            .map(Some)
            .map_err(|e| e.to_string()),
    }
}

/// The Contact fields the worker and the tools use.
#[derive(Debug, Clone)]
pub struct Contact {
    pub id: SalesforceId,
    pub name: String,
    /// `Phone`, when it is a valid E.164 number.
    pub phone: Option<E164Phone>,
    /// `MobilePhone`, when it is a valid E.164 number.
    pub mobile: Option<E164Phone>,
    /// Why a present phone field was not usable, by field name (`Phone`, `MobilePhone`); the raw
    /// number is not kept, so this is safe to log and to write as a SKIPPED reason.
    pub phone_problems: BTreeMap<&'static str, String>,
    pub email: Option<String>,
    pub do_not_call: bool,
    pub annual_revenue: Option<f64>,
    /// The configured custom fields, present or null, keyed by API name.
    pub custom: BTreeMap<String, Value>,
}

impl Contact {
    /// The number to dial: Phone, else MobilePhone.
    pub fn best_phone(&self) -> Option<&E164Phone> {
        self.phone.as_ref().or(self.mobile.as_ref())
    }
}

#[derive(Debug, Clone)]
pub struct Case {
    pub id: SalesforceId,
    pub case_number: Option<String>,
    pub subject: Option<String>,
    pub status: Option<String>,
    pub priority: Option<Priority>,
    pub contact_id: Option<SalesforceId>,
    pub description: Option<String>,
    /// `OwnerId`: a `User` (`005…`) or a queue (`00G…`); whom a `call.handoff: {to: caseOwner}`
    /// transfers to (`salesforce::owner`).
    pub owner_id: Option<SalesforceId>,
}

/// What a record update did: applied, or refused by Salesforce for good (an unknown or
/// read-only field, a validation rule, a record that is gone). Retryable failures are errors.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UpdateOutcome {
    Updated,
    Refused {
        status: u16,
        code: String,
        message: String,
        /// The fields Salesforce named (may be empty: "No such column" names none).
        fields: Vec<String>,
    },
}

/// What the upsert did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UpsertOutcome {
    Created {
        id: String,
    },
    /// `id` is absent when Salesforce answered 204 (older API versions).
    Updated {
        id: Option<String>,
    },
}

/// The Task written for a call. `extra` holds org-specific fields (e.g. `CallDurationInSeconds`).
#[derive(Debug, Clone, Default)]
pub struct TaskFields {
    pub subject: String,
    pub description: String,
    pub status: String,
    pub who_id: Option<SalesforceId>,
    pub what_id: Option<SalesforceId>,
    pub extra: serde_json::Map<String, Value>,
}

/// Cut at a character boundary after at most `max` characters (fields limited in characters).
pub fn truncate_chars(s: &str, max: usize) -> &str {
    match s.char_indices().nth(max) {
        Some((i, _)) => &s[..i],
        None => s,
    }
}

/// Cut to at most `max` UTF-8 bytes, on a character boundary (fields limited in bytes).
pub fn truncate_bytes(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

/// `(used, limit)` from `Sforce-Limit-Info`. Its parts are separated by `;`
/// (`api-usage=25/5000; per-app-api-usage=17/250(appName=x)`,
/// <https://developer.salesforce.com/docs/atlas.en-us.api_rest.meta/api_rest/headers_api_usage.htm>);
/// only the org-wide `api-usage` is recorded, other parts are ignored.
pub fn parse_limit_info(header: &str) -> Option<(u64, u64)> {
    let usage = header
        .split([';', ','])
        .find_map(|p| p.trim().strip_prefix("api-usage="))?;
    let (used, max) = usage.split_once('/')?;
    Some((used.trim().parse().ok()?, max.trim().parse().ok()?))
}

/// The SOQL that reads one Contact with its Account's revenue and the configured custom fields.
/// `id` is a parsed [`SalesforceId`] (15 or 18 alphanumerics) and the custom field names are
/// checked API names (config), so nothing here can close the quote or inject SOQL.
pub fn contact_soql(id: &SalesforceId, custom: &[String]) -> String {
    let mut fields: Vec<&str> = CONTACT_FIELDS.to_vec();
    for f in custom {
        if !fields.iter().any(|k| k.eq_ignore_ascii_case(f)) {
            fields.push(f);
        }
    }
    format!(
        "SELECT {} FROM Contact WHERE Id = '{}'",
        fields.join(", "),
        id.as_str()
    )
}

/// The answer of `GET /query`: `totalSize`, `done`, `records[]`
/// (<https://developer.salesforce.com/docs/platform/api-rest/guide/dome-query.html>).
#[derive(Debug, Deserialize)]
pub(super) struct QueryAnswer {
    #[serde(rename = "totalSize")]
    pub(super) total_size: u64,
    #[serde(default)]
    pub(super) done: bool,
    pub(super) records: Vec<Value>,
}

/// REST client of one connection. Build once per cold start; clone-cheap.
#[derive(Clone)]
pub struct SalesforceClient {
    http: reqwest::Client,
    tokens: Arc<TokenProvider>,
}

pub(super) struct Answer {
    status: StatusCode,
    body: Vec<u8>,
    /// `Sforce-Limit-Info`'s `api-usage=N/M`, when Salesforce sent it.
    api_usage: Option<(u64, u64)>,
}

impl SalesforceClient {
    pub fn new(http: reqwest::Client, tokens: Arc<TokenProvider>) -> Self {
        Self { http, tokens }
    }

    pub fn tokens(&self) -> &Arc<TokenProvider> {
        &self.tokens
    }

    /// The configured custom Contact fields (`SF_CONTACT_CUSTOM_FIELDS`).
    pub fn contact_custom_fields(&self) -> &[String] {
        &self.tokens.oauth().config().contact_custom_fields
    }

    fn data_url(&self, token: &AccessToken, path: &str) -> String {
        format!(
            "{}/services/data/{}{path}",
            token.instance_url,
            self.tokens.oauth().config().api_version
        )
    }

    /// Send with the current token; on 401 INVALID_SESSION_ID refresh once and retry once.
    pub(super) async fn send(
        &self,
        method: Method,
        path: &str,
        query: &[(&str, String)],
        body: Option<&Value>,
    ) -> Result<Answer, RestError> {
        let token = self.tokens.access_token().await?;
        let first = self
            .send_once(&token, method.clone(), path, query, body)
            .await?;
        if first.status != StatusCode::UNAUTHORIZED {
            return Ok(first);
        }
        let code = first_error(&first.body)
            .map(|e| e.error_code)
            .unwrap_or_default();
        if code != "INVALID_SESSION_ID" {
            return Err(RestError::Unauthorized { code });
        }
        info!("salesforce session rejected; refreshing once");
        let fresh = self.tokens.after_rejection(&token.access_token).await?;
        let second = self.send_once(&fresh, method, path, query, body).await?;
        if second.status == StatusCode::UNAUTHORIZED {
            let code = first_error(&second.body)
                .map(|e| e.error_code)
                .unwrap_or_default();
            return Err(RestError::Unauthorized { code });
        }
        Ok(second)
    }

    async fn send_once(
        &self,
        token: &AccessToken,
        method: Method,
        path: &str,
        query: &[(&str, String)],
        body: Option<&Value>,
    ) -> Result<Answer, RestError> {
        let mut req = self
            .http
            .request(method, self.data_url(token, path))
            .bearer_auth(token.access_token.expose())
            .header(reqwest::header::ACCEPT, "application/json");
        if !query.is_empty() {
            req = req.query(query);
        }
        if let Some(b) = body {
            req = req.json(b);
        }
        let resp = req.send().await?;
        let status = resp.status();
        let api_usage = resp
            .headers()
            .get("sforce-limit-info")
            .and_then(|v| v.to_str().ok())
            .and_then(parse_limit_info);
        if let Some((used, max)) = api_usage {
            info!(
                sf_api_usage = used,
                sf_api_limit = max,
                "salesforce api usage"
            );
            metric("sf_api_usage", used as f64, Unit::Count);
            metric("sf_api_limit", max as f64, Unit::Count);
        }
        let body = resp.bytes().await?.to_vec();
        Ok(Answer {
            status,
            body,
            api_usage,
        })
    }

    /// Any request under `/services/data/vXX.X` (the Tooling API's `/tooling/…` among them):
    /// the status and the JSON body (Null when there is none). For the admin commands, which
    /// read Salesforce's error array themselves ([`ApiErrorEntry`]).
    pub async fn request(
        &self,
        method: Method,
        path: &str,
        query: &[(&str, String)],
        body: Option<&Value>,
    ) -> Result<(u16, Value), RestError> {
        let answer = self.send(method, path, query, body).await?;
        let value = serde_json::from_slice(&answer.body).unwrap_or(Value::Null);
        Ok((answer.status.as_u16(), value))
    }

    /// `GET …/sobjects/{object}/describe`: the object's metadata, `fields[]` with `name`, `type`,
    /// `externalId`, `unique`, `updateable` among others
    /// (<https://developer.salesforce.com/docs/atlas.en-us.api_rest.meta/api_rest/resources_sobject_describe.htm>).
    /// What `sfvapi-admin doctor` checks the org's fields with.
    /// With it, the org's API usage and limit from `Sforce-Limit-Info`, when sent.
    pub async fn describe(
        &self,
        object: &'static str,
    ) -> Result<(Value, Option<(u64, u64)>), RestError> {
        let answer = self
            .send(
                Method::GET,
                &format!("/sobjects/{object}/describe"),
                &[],
                None,
            )
            .await?;
        let usage = answer.api_usage;
        Ok((expect_json(answer, object, "describe")?, usage))
    }

    /// One SOQL query (`GET …/query?q=SELECT … FROM Contact WHERE Id = '…'`) for the standard
    /// fields, `Account.AnnualRevenue` and the configured custom fields. No record → `NotFound`.
    pub async fn get_contact(&self, id: &SalesforceId) -> Result<Contact, RestError> {
        let custom = &self.tokens.oauth().config().contact_custom_fields;
        let answer = self
            .send(
                Method::GET,
                "/query",
                &[("q", contact_soql(id, custom))],
                None,
            )
            .await?;
        let v = expect_json(answer, "Contact", id.as_str())?;
        let q: QueryAnswer = serde_json::from_value(v).map_err(|e| RestError::Malformed {
            detail: format!("Contact query answer: {e}"),
        })?;
        // `WHERE Id = …` matches at most one record; `done` is true for a one-record answer.
        if !q.done {
            warn!(total = q.total_size, "contact query answer not done");
        }
        match q.records.into_iter().next() {
            Some(record) => Ok(parse_contact(id, &record, custom)),
            None => Err(RestError::NotFound {
                object: "Contact",
                id: id.as_str().to_owned(),
            }),
        }
    }

    /// `GET …/sobjects/Case/{id}?fields=Subject,Status,Priority,ContactId,CaseNumber,Description,OwnerId`.
    pub async fn get_case(&self, id: &SalesforceId) -> Result<Case, RestError> {
        let path = format!("/sobjects/Case/{}", id.as_str());
        let answer = self
            .send(
                Method::GET,
                &path,
                &[(
                    "fields",
                    "Id,Subject,Status,Priority,ContactId,CaseNumber,Description,OwnerId".into(),
                )],
                None,
            )
            .await?;
        let v = expect_json(answer, "Case", id.as_str())?;
        let s = |k: &str| v.get(k).and_then(Value::as_str).map(str::to_owned);
        Ok(Case {
            id: id.clone(),
            case_number: s("CaseNumber"),
            subject: s("Subject"),
            status: s("Status"),
            priority: s("Priority").and_then(|p| Priority::parse("Priority", &p).ok()),
            contact_id: s("ContactId").and_then(|c| SalesforceId::parse("ContactId", &c).ok()),
            description: s("Description"),
            owner_id: s("OwnerId").and_then(|o| SalesforceId::parse("OwnerId", &o).ok()),
        })
    }

    /// The id of the Task whose external id is `external_id`
    /// (`GET …/sobjects/Task/{ExternalIdField}/{value}?fields=Id`): for an upsert that answered
    /// without one (204 on older API versions).
    pub async fn task_id(&self, external_id: &str) -> Result<SalesforceId, RestError> {
        let field = self.tokens.oauth().config().task_external_id_field.clone();
        let value: String = url::form_urlencoded::byte_serialize(external_id.as_bytes()).collect();
        let answer = self
            .send(
                Method::GET,
                &format!("/sobjects/Task/{field}/{value}"),
                &[("fields", "Id".into())],
                None,
            )
            .await?;
        let v = expect_json(answer, "Task", external_id)?;
        v.get("Id")
            .and_then(Value::as_str)
            .and_then(|s| SalesforceId::parse("Id", s).ok())
            .ok_or_else(|| RestError::Malformed {
                detail: "Task answer has no Id".into(),
            })
    }

    /// Write the call's Task keyed by `external_id`: create it (`POST …/sobjects/Task`, with the
    /// create-only fields), or, when Salesforce answers `DUPLICATE_VALUE` because it exists,
    /// update it (`PATCH …/sobjects/Task/{ExternalIdField}/{value}`, without them). See the module
    /// doc for why.
    pub async fn upsert_task(
        &self,
        external_id: &str,
        task: &TaskFields,
    ) -> Result<UpsertOutcome, RestError> {
        if external_id.is_empty() {
            return Err(RestError::Rejected {
                status: 0,
                code: "INVALID_INPUT".into(),
                message: "empty external id".into(),
            });
        }
        let field = self.tokens.oauth().config().task_external_id_field.clone();
        let mut body = task.extra.clone();
        body.insert("Subject".into(), json!(truncate_chars(&task.subject, 255)));
        body.insert(
            "Description".into(),
            json!(truncate_chars(
                &task.description,
                TASK_DESCRIPTION_MAX_CHARS
            )),
        );
        body.insert("Status".into(), json!(task.status));
        if let Some(w) = &task.who_id {
            body.insert("WhoId".into(), json!(w.as_str()));
        }
        if let Some(w) = &task.what_id {
            body.insert("WhatId".into(), json!(w.as_str()));
        }
        // The create carries the key as a field; the update carries it in the URL only.
        body.remove(&field);
        let mut create = body.clone();
        create.insert(field.clone(), json!(external_id));
        let id_of = |b: &[u8]| {
            serde_json::from_slice::<Value>(b)
                .ok()
                .and_then(|v| v.get("id").and_then(Value::as_str).map(str::to_owned))
        };
        let created = self
            .send(
                Method::POST,
                "/sobjects/Task",
                &[],
                Some(&Value::Object(create)),
            )
            .await?;
        if created.status == StatusCode::CREATED {
            return Ok(UpsertOutcome::Created {
                id: id_of(&created.body).unwrap_or_default(),
            });
        }
        let duplicate = created.status == StatusCode::BAD_REQUEST
            && first_error(&created.body).is_some_and(|e| e.error_code == "DUPLICATE_VALUE");
        if !duplicate {
            return Err(error_for(created, "Task", external_id));
        }
        info!("task exists for this call; updating it");
        for f in TASK_CREATE_ONLY_FIELDS {
            body.remove(*f);
        }
        let value: String = url::form_urlencoded::byte_serialize(external_id.as_bytes()).collect();
        let path = format!("/sobjects/Task/{field}/{value}");
        let answer = self
            .send(Method::PATCH, &path, &[], Some(&Value::Object(body)))
            .await?;
        match answer.status.as_u16() {
            201 => Ok(UpsertOutcome::Created {
                id: id_of(&answer.body).unwrap_or_default(),
            }),
            // 200 {"created":false} on recent versions, 204 on older ones.
            200 | 204 => Ok(UpsertOutcome::Updated {
                id: id_of(&answer.body),
            }),
            300 => Err(RestError::MultipleMatches {
                object: "Task",
                field,
                value: external_id.to_owned(),
            }),
            _ => Err(error_for(answer, "Task", external_id)),
        }
    }

    /// Set `fields` on one record (`PATCH …/sobjects/{object}/{id}`, see the module doc).
    /// Setting the same values again changes nothing, so a repeated update is harmless.
    pub async fn update_record(
        &self,
        object: &'static str,
        id: &SalesforceId,
        fields: &serde_json::Map<String, Value>,
    ) -> Result<UpdateOutcome, RestError> {
        let path = format!("/sobjects/{object}/{}", id.as_str());
        let answer = self
            .send(
                Method::PATCH,
                &path,
                &[],
                Some(&Value::Object(fields.clone())),
            )
            .await?;
        if answer.status.is_success() {
            return Ok(UpdateOutcome::Updated);
        }
        let named = first_error(&answer.body)
            .map(|e| e.fields)
            .unwrap_or_default();
        match error_for(answer, object, id.as_str()) {
            RestError::Rejected {
                status,
                code,
                message,
            } => Ok(UpdateOutcome::Refused {
                status,
                code,
                message,
                fields: named,
            }),
            RestError::NotFound { object, id } => Ok(UpdateOutcome::Refused {
                status: 404,
                code: "NOT_FOUND".into(),
                message: format!(
                    "{object} {id} not found (deleted, or not visible to the integration user)"
                ),
                fields: Vec::new(),
            }),
            e => Err(e),
        }
    }

    /// Add a note to a Case as a CaseComment (`POST …/sobjects/CaseComment`).
    pub async fn add_case_comment(
        &self,
        case_id: &SalesforceId,
        body: &str,
    ) -> Result<String, RestError> {
        let payload = json!({
            "ParentId": case_id.as_str(),
            "CommentBody": truncate_bytes(body, CASE_COMMENT_MAX_BYTES),
        });
        let answer = self
            .send(Method::POST, "/sobjects/CaseComment", &[], Some(&payload))
            .await?;
        let v = expect_json(answer, "Case", case_id.as_str())?;
        v.get("id")
            .and_then(Value::as_str)
            .map(str::to_owned)
            .ok_or_else(|| RestError::Malformed {
                detail: "CaseComment create answer has no id".into(),
            })
    }
}

fn first_error(body: &[u8]) -> Option<ApiErrorEntry> {
    serde_json::from_slice::<Vec<ApiErrorEntry>>(body)
        .ok()
        .and_then(|v| v.into_iter().next())
}

/// The `errorCode` of a refused answer (`None` for a success).
pub(super) fn first_error_code(answer: &Answer) -> Option<String> {
    if answer.status.is_success() {
        return None;
    }
    first_error(&answer.body).map(|e| e.error_code)
}

pub(super) fn expect_json(
    answer: Answer,
    object: &'static str,
    id: &str,
) -> Result<Value, RestError> {
    if answer.status.is_success() {
        serde_json::from_slice(&answer.body).map_err(|_| RestError::Malformed {
            detail: format!("{object} answer is not JSON"),
        })
    } else {
        Err(error_for(answer, object, id))
    }
}

fn error_for(answer: Answer, object: &'static str, id: &str) -> RestError {
    let status = answer.status.as_u16();
    let entry = first_error(&answer.body);
    let code = entry.as_ref().map(|e| e.error_code.as_str()).unwrap_or("");
    match (status, code) {
        (403, "REQUEST_LIMIT_EXCEEDED") => RestError::RequestLimit,
        (400, "UNABLE_TO_LOCK_ROW") => RestError::RowLocked { object },
        (404, _) => RestError::NotFound {
            object,
            id: id.to_owned(),
        },
        (429, _) | (500..=599, _) => RestError::Upstream { status },
        _ => {
            let e = entry.unwrap_or(ApiErrorEntry {
                error_code: String::new(),
                message: String::new(),
                fields: Vec::new(),
            });
            warn!(status, code = %e.error_code, "salesforce rejected a request");
            RestError::Rejected {
                status,
                code: e.error_code,
                message: crate::ids::mask_phones_in(
                    &e.message.chars().take(300).collect::<String>(),
                ),
            }
        }
    }
}

pub(super) fn parse_contact(id: &SalesforceId, v: &Value, custom: &[String]) -> Contact {
    let s = |k: &str| v.get(k).and_then(Value::as_str);
    let custom = custom
        .iter()
        .map(|f| {
            // Relationship fields (`Account.Foo__c`) come back nested.
            let value = f
                .split('.')
                .try_fold(v, |cur, part| cur.get(part))
                .cloned()
                .unwrap_or(Value::Null);
            (f.clone(), value)
        })
        .collect();
    let mut phone_problems = BTreeMap::new();
    let mut phone = |field: &'static str| {
        parse_phone(field, s(field)).unwrap_or_else(|reason| {
            phone_problems.insert(field, reason);
            None
        })
    };
    let (phone, mobile) = (phone("Phone"), phone("MobilePhone"));
    Contact {
        id: id.clone(),
        name: s("Name").unwrap_or_default().to_owned(),
        phone,
        mobile,
        phone_problems,
        email: s("Email").map(str::to_owned),
        do_not_call: v.get("DoNotCall").and_then(Value::as_bool).unwrap_or(false),
        annual_revenue: v
            .get("Account")
            .and_then(|a| a.get("AnnualRevenue"))
            .and_then(Value::as_f64),
        custom,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limit_info_header() {
        assert_eq!(parse_limit_info("api-usage=25/15000"), Some((25, 15000)));
        // Salesforce's documented shape: `;`-separated, per-app part last.
        assert_eq!(
            parse_limit_info(
                "api-usage=25/5000; per-app-api-usage=17/250(appName=sample-connected-app)"
            ),
            Some((25, 5000))
        );
        assert_eq!(
            parse_limit_info("per-app-api-usage=17/250(appName=x); api-usage=7/100"),
            Some((7, 100))
        );
        assert_eq!(
            parse_limit_info("per-app-api-usage=17/250(appName=x)"),
            None
        );
        assert_eq!(parse_limit_info("nonsense"), None);
    }

    #[test]
    fn truncation_counts_characters_or_bytes() {
        let s = "é".repeat(10);
        assert_eq!(truncate_chars(&s, 3).chars().count(), 3);
        assert_eq!(truncate_chars("abc", 10), "abc");
        // "é" is 2 bytes: 5 bytes hold 2 of them, never half a character.
        assert_eq!(truncate_bytes(&s, 5), "éé");
        assert_eq!(truncate_bytes("abc", 10), "abc");
        // "€" is 3 bytes: 4,000 bytes end inside the 1,334th one, so 1,333 are kept.
        let note = "€".repeat(2_000);
        let cut = truncate_bytes(&note, CASE_COMMENT_MAX_BYTES);
        assert_eq!(cut.len(), 3_999);
        assert_eq!(cut.chars().count(), 1_333);
    }

    #[test]
    fn contact_soql_names_every_field_once() {
        let id = SalesforceId::parse("id", "0035e00000XyZ12AAF").unwrap();
        let q = contact_soql(
            &id,
            &["Tier__c".into(), "Name".into(), "Account.Industry".into()],
        );
        assert_eq!(
            q,
            "SELECT Id, Name, Phone, MobilePhone, Email, DoNotCall, Account.AnnualRevenue, Tier__c, Account.Industry FROM Contact WHERE Id = '0035e00000XyZ12AAF'"
        );
    }

    #[test]
    fn errors_say_retryable_or_terminal() {
        assert!(RestError::RequestLimit.is_retryable());
        assert!(RestError::RowLocked { object: "Task" }.is_retryable());
        assert!(RestError::Upstream { status: 503 }.is_retryable());
        assert!(RestError::NotFound {
            object: "Contact",
            id: "x".into()
        }
        .is_terminal());
        assert!(RestError::Unauthorized { code: "x".into() }.is_terminal());
    }
}
