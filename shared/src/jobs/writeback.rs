//! Writing a call's outcome back where the admin wants it: the routing rule's `writeBack` maps
//! parts of Vapi's end-of-call report (`analysis.successEvaluation`, `analysis.structuredData`,
//! the summary, the ended reason) onto Case or Contact fields. Run by the report job right after
//! the Task upsert.
//!
//! - **Idempotent.** Each object gets one `PATCH …/sobjects/{Object}/{id}` setting the mapped
//!   fields to the report's values; a repeated report sets the same values again.
//! - **A refusal is recorded, not fatal.** Salesforce refuses the whole update when one field is
//!   unknown, read-only or fails a validation rule (400, `[{"message","errorCode","fields"?}]`).
//!   The fields it names are set aside and the rest written again; when it names none (an
//!   unknown field's INVALID_FIELD names none), each field is written on its own to find the
//!   ones refused. Every refusal is kept on the job with Salesforce's code and message
//!   (`writeback_refused`), and the report job goes on to the follow-up.
//! - **Retryable failures retry the job** (Salesforce down, a row lock, the API limit): the Task
//!   upsert and these updates are safe to repeat, and the follow-up is guarded by `sms#<callId>`.

use serde_json::{Map, Value};
use tracing::{info, warn};

use crate::ids::SalesforceId;
use crate::routing::{OutcomeSource, WriteBack, WriteBackObject};
use crate::salesforce::rest::{RestError, SalesforceClient, UpdateOutcome};
use crate::vapi::jobs::ReportPayload;

/// Longest text written into one field (Salesforce's long text areas hold 131,072 characters;
/// a text field's own limit, if smaller, is Salesforce's to refuse, with STRING_TOO_LONG).
const MAX_VALUE_CHARS: usize = 32_000;

/// What the write-back did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WriteBackReport {
    /// `Case.Call_Outcome__c`, … written.
    pub written: Vec<String>,
    /// `Case.Bad__c: INVALID_FIELD No such column …`: what Salesforce refused, with its words.
    pub refused: Vec<String>,
    /// Mapped fields the report had no value for (nothing written, nothing refused).
    pub missing: Vec<String>,
}

impl WriteBackReport {
    pub fn is_empty(&self) -> bool {
        self.written.is_empty() && self.refused.is_empty() && self.missing.is_empty()
    }
}

/// The report's value for one outcome source, as a Salesforce field value: text stays text,
/// numbers and booleans keep their type (number and checkbox fields), anything else is JSON text.
pub fn outcome_value(p: &ReportPayload, source: &OutcomeSource) -> Option<Value> {
    let text = |s: &Option<String>| s.as_ref().map(|s| Value::String(s.clone()));
    let v = match source {
        OutcomeSource::SuccessEvaluation => text(&p.success_evaluation),
        OutcomeSource::Summary => text(&p.summary),
        OutcomeSource::EndedReason => Some(Value::String(p.ended_reason.clone())),
        OutcomeSource::StructuredData(path) => {
            let mut cur: Option<&Value> = None;
            let mut map = p.structured_data.as_ref();
            for seg in path.as_str().split('.') {
                cur = map.and_then(|m| m.get(seg));
                map = cur.and_then(Value::as_object);
            }
            cur.cloned()
        }
    }?;
    match v {
        Value::Null => None,
        Value::String(s) => Some(Value::String(
            crate::salesforce::rest::truncate_chars(&s, MAX_VALUE_CHARS).to_owned(),
        )),
        v @ (Value::Bool(_) | Value::Number(_)) => Some(v),
        other => Some(Value::String(
            crate::salesforce::rest::truncate_chars(&other.to_string(), MAX_VALUE_CHARS).to_owned(),
        )),
    }
}

/// Apply the rule's write-back for one call. `Err` only for a retryable failure.
pub async fn apply(
    rest: &SalesforceClient,
    mapping: &[WriteBack],
    report: &ReportPayload,
    case_id: Option<&SalesforceId>,
    contact_id: Option<&SalesforceId>,
) -> Result<WriteBackReport, RestError> {
    let mut out = WriteBackReport::default();
    for object in [WriteBackObject::Case, WriteBackObject::Contact] {
        let name = object.as_str();
        let mut fields = Map::new();
        for wb in mapping.iter().filter(|w| w.object == object) {
            match outcome_value(report, &wb.source) {
                Some(v) => {
                    fields.insert(wb.field.clone(), v);
                }
                None => out
                    .missing
                    .push(format!("{name}.{} ({})", wb.field, wb.source.describe())),
            }
        }
        if fields.is_empty() {
            continue;
        }
        let id = match object {
            WriteBackObject::Case => case_id,
            WriteBackObject::Contact => contact_id,
        };
        let Some(id) = id else {
            out.refused.extend(
                fields
                    .keys()
                    .map(|f| format!("{name}.{f}: the call has no {name} to write to")),
            );
            continue;
        };
        write_object(rest, object, id, fields, &mut out).await?;
    }
    if !out.is_empty() {
        info!(written = ?out.written, refused = ?out.refused, missing = ?out.missing, "write-back");
    }
    Ok(out)
}

async fn write_object(
    rest: &SalesforceClient,
    object: WriteBackObject,
    id: &SalesforceId,
    mut fields: Map<String, Value>,
    out: &mut WriteBackReport,
) -> Result<(), RestError> {
    let name = object.as_str();
    let refusal = |f: &str, code: &str, message: &str| format!("{name}.{f}: {code} {message}");
    // One request for all fields; at most one more without the fields Salesforce named.
    let mut unnamed = None;
    for _ in 0..2 {
        match rest.update_record(name, id, &fields).await? {
            UpdateOutcome::Updated => {
                out.written
                    .extend(fields.keys().map(|f| format!("{name}.{f}")));
                return Ok(());
            }
            UpdateOutcome::Refused {
                code,
                message,
                fields: named,
                ..
            } => {
                let ours: Vec<String> = named
                    .iter()
                    .filter_map(|n| fields.keys().find(|k| k.eq_ignore_ascii_case(n)).cloned())
                    .collect();
                if ours.is_empty() {
                    unnamed = Some((code, message));
                    break;
                }
                warn!(object = name, fields = ?ours, code = %code, "Salesforce refused write-back fields");
                for f in ours {
                    fields.remove(&f);
                    out.refused.push(refusal(&f, &code, &message));
                }
                if fields.is_empty() {
                    return Ok(());
                }
            }
        }
    }
    // Refused without naming a field we sent: with one field left, that is the one; otherwise
    // find the refused ones one by one (a mapping holds a handful of fields).
    if let (1, Some((code, message))) = (fields.len(), &unnamed) {
        if let Some(f) = fields.keys().next() {
            warn!(object = name, field = %f, code = %code, "Salesforce refused a write-back field");
            out.refused.push(refusal(f, code, message));
        }
        return Ok(());
    }
    for (f, v) in fields {
        let one = Map::from_iter([(f.clone(), v)]);
        single(rest, object, id, &f, one, out).await?;
    }
    Ok(())
}

async fn single(
    rest: &SalesforceClient,
    object: WriteBackObject,
    id: &SalesforceId,
    field: &str,
    one: Map<String, Value>,
    out: &mut WriteBackReport,
) -> Result<(), RestError> {
    let name = object.as_str();
    match rest.update_record(name, id, &one).await? {
        UpdateOutcome::Updated => out.written.push(format!("{name}.{field}")),
        UpdateOutcome::Refused { code, message, .. } => {
            warn!(object = name, field, code = %code, "Salesforce refused a write-back field");
            out.refused
                .push(format!("{name}.{field}: {code} {message}"));
        }
    }
    Ok(())
}
