//! The routing document: which Salesforce events call whom, with which assistant, and where the
//! call's outcome is written back. One YAML file (`routing.yaml` at the repository root, built
//! into every function; `ROUTING_FILE` points a function at another one), validated once at cold
//! start: a bad document stops the init with its path and the problem.
//!
//! # Why YAML, in the bundle
//! - **YAML** because a Salesforce admin reads and edits it: comments next to each rule, no
//!   quoting of every key, and field names exactly as Setup shows them (`Contact__c`).
//! - **In the bundle** (compiled in with `include_str!`) rather than SSM Parameter Store or a
//!   template parameter: it is reviewed and versioned with the code, `make test` validates the
//!   very file that ships (so a broken document never reaches AWS), every function of one deploy
//!   sees the same document (the ingest and the worker agree on rule ids), a cold start reads no
//!   network and needs no IAM, and a rollback is the previous deploy. A change reaches running
//!   functions the way code does: `sam deploy` publishes new versions and every new instance
//!   starts with the new document. A template parameter would hit Lambda's 4 KB environment
//!   limit; SSM would let a bad edit reach half-warm fleets at random cold starts.
//!
//! # What a rule says
//! ```yaml
//! - id: case-priority-high            # stored on the job (`sfvapi-admin show`)
//!   when:                             # all of these must hold
//!     detailType: CaseChangeEvent     # relayed events: the EventBridge detail-type (or a list)
//!     changeType: UPDATE              # CDC: ChangeEventHeader.changeType (or a list)
//!     changed: [Priority]             # CDC: every one of these is in changedFields
//!     fields:                         # field predicates (a value, a list of values,
//!       Priority: High                #   {present: true|false} or {not: value|list})
//!   case: $recordId                   # CDC: the changed record, one job per record id
//!                                     #   (`contact: $recordId` for a ContactChangeEvent)
//!   contact: [ContactId, case.ContactId]  # first present wins; `case.ContactId` = read the
//!                                     #   Case at dial time, in the worker
//!   priority: Priority
//!   reason: Subject                   # (eventId: only for the signed HTTP route)
//!   call:                             # what it does; every key optional (env defaults)
//!     assistantId: asst-escalations
//!     phoneNumberId: pn-support
//!     variables: { campaign: escalations }
//!     followUp: always                # never | not-reached | always
//!     quietHours: "21:00-08:00"       # or "none"; quietHoursUtcOffset: "-05:00"
//!     handoff:                        # a customer asking for a person is transferred (warm)
//!       to: caseOwner                 #   caseOwner | contactOwner, or number: "+1…"
//!       fallback: "+15550100123"      #   when the owner has no number (a queue)
//!   writeBack:                        # the call's outcome onto the Case / Contact
//!     Case:
//!       Call_Outcome__c: successEvaluation
//!       Callback_Requested__c: structuredData.callbackRequested
//! ```
//! `when` takes `route: events | outbound-message` (the signed HTTP and Outbound Message routes)
//! or `detailType` (Event Relay), never both. Paths are dot-separated: for the HTTP route they
//! start at the JSON body, for an Outbound Message at the notification (`sObjectType`,
//! `sObject.<Field>`), for a relayed event at its fields (`detail.payload`; the CDC header is
//! `ChangeEventHeader.<field>`).
//!
//! # Where it lives
//! - `model`: the document as typed values (rules, paths, predicates, actions) and `Routing`'s
//!   read-only view of it;
//! - `parse`: YAML (or the built-in JSON) to the model, every mistake named by its rule and key;
//! - `eval`: one event against the model: the first rule that matches, and the ids and values
//!   its mapping takes from the event.

mod eval;
mod model;
mod parse;

pub use eval::{clean_reason, Extracted, Input, Routed};
pub use model::*;
pub use parse::{BUILT_IN, BUILT_IN_NAME, ROUTING_FILE};

#[cfg(test)]
mod test_util {
    use serde_json::{Map, Value};

    use super::{Routing, RoutingError};

    pub fn doc(rules: &str) -> Result<Routing, RoutingError> {
        Routing::parse("test.yaml", &format!("version: 1\nrules:\n{rules}"))
    }

    pub const CDC: &str = "
- id: case-priority-high
  when:
    detailType: CaseChangeEvent
    changeType: UPDATE
    changed: [Priority]
    fields: {Priority: High}
  case: $recordId
  contact: [ContactId, case.ContactId]
  priority: Priority
  reason: Subject
  writeBack:
    Case: {Call_Outcome__c: successEvaluation, Callback__c: structuredData.callback.when}
- id: request
  when: {detailType: Call_Request__e, fields: {Reason__c: {not: [test, ignore]}}}
  contact: Contact__c
  case: Case__c
  reason: Reason__c
  call: {assistantId: asst-2, followUp: always, quietHours: none, variables: {campaign: x}}
";

    pub fn obj(v: Value) -> Map<String, Value> {
        match v {
            Value::Object(m) => m,
            _ => panic!("not an object"),
        }
    }
}
