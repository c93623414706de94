//! The live Salesforce lookup behind the Vapi tools: when a call has no `call#` snapshot (an
//! inbound call, or the worker has not written it yet), read the Contact and Case now. The
//! webhook applies its deadline around this.

use crate::calls::CallSnapshot;
use crate::salesforce::rest::{RestError, SalesforceClient};
use crate::vapi::tools::{BoxFuture, LiveLookup, LiveLookupError, LiveLookupRequest};

pub struct SalesforceLookup {
    rest: SalesforceClient,
    high_value_revenue: f64,
}

impl SalesforceLookup {
    pub fn new(rest: SalesforceClient, high_value_revenue: f64) -> Self {
        Self {
            rest,
            high_value_revenue,
        }
    }
}

fn map(e: RestError) -> LiveLookupError {
    match e {
        RestError::NotFound { .. } => LiveLookupError::NotFound(e.to_string()),
        other => LiveLookupError::Unavailable(other.to_string()),
    }
}

impl LiveLookup for SalesforceLookup {
    fn lookup<'a>(
        &'a self,
        req: &'a LiveLookupRequest,
    ) -> BoxFuture<'a, Result<CallSnapshot, LiveLookupError>> {
        Box::pin(async move {
            let case = match &req.case_id {
                Some(id) => Some(self.rest.get_case(id).await.map_err(map)?),
                None => None,
            };
            // A case names its contact when the call did not.
            let contact_id = req
                .contact_id
                .clone()
                .or_else(|| case.as_ref().and_then(|c| c.contact_id.clone()))
                .ok_or_else(|| {
                    LiveLookupError::NotFound("the call names no Contact or Case".into())
                })?;
            let contact = self.rest.get_contact(&contact_id).await.map_err(map)?;
            Ok(CallSnapshot::from_salesforce(
                &contact,
                case.as_ref(),
                None,
                self.high_value_revenue,
                crate::now_millis(),
            ))
        })
    }
}
