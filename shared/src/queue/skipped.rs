//! What a SKIPPED job keeps of its event ([`RoutingInput`], attribute `input`), so that
//! `sfvapi-admin reroute` (`crate::jobs::reroute`) can route it again once the document is fixed.
//! Written by ingest and relay, read by reroute: it sits with the queue, below all three.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::store::attr::s;
use crate::store::Item;

/// The attribute of a SKIPPED item that keeps its routing input.
pub const INPUT: &str = "input";
/// Larger inputs are not kept (the item stays far under DynamoDB's 400 KB); such an event can
/// only be sent again from Salesforce.
pub const MAX_INPUT_BYTES: usize = 64 * 1024;

/// What the routing document saw of an event, per route.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "route", rename_all = "kebab-case")]
pub enum RoutingInput {
    /// `POST /salesforce/events`: the JSON body as received.
    Events { body: String },
    /// One Outbound Message notification (`{"Id","sObjectType","sObject":{…}}`).
    OutboundMessage { notification: Map<String, Value> },
    /// A relayed event: its `detail-type`, its fields and, for CDC, the record of this job.
    #[serde(rename_all = "camelCase")]
    Relay {
        detail_type: String,
        payload: Map<String, Value>,
        record: Option<String>,
        change_event: bool,
    },
}

impl RoutingInput {
    /// Keep the input on a SKIPPED item, unless it is larger than [`MAX_INPUT_BYTES`].
    pub fn keep_on(&self, item: &mut Item) {
        match serde_json::to_string(self) {
            Ok(json) if json.len() <= MAX_INPUT_BYTES => {
                item.insert(INPUT.to_owned(), s(json));
            }
            _ => {}
        }
    }
}
