//! The Vapi webhook service (`POST /vapi/webhook`): verify → parse → act → answer.
//!
//! - `tool-calls` / legacy `function-call`: answered in the response. One BatchGetItem (per 100
//!   keys) reads the call's snapshot and any cached answers together; each new answer costs one conditional PutItem.
//! - `status-update`: one conditional PutItem (dedup per status) + one UpdateItem on `call#`.
//! - `end-of-call-report`: ONE conditional PutItem that dedups and enqueues the `report` job.
//! - `transfer-destination-request`: answered from `call#` (one GetItem) with the rule's
//!   `call.handoff` (`crate::vapi::transfer`); `transfer-update`: one conditional PutItem on the
//!   call's timeline + one UpdateItem on `call#`.
//! - `assistant-request` (an inbound call): answered in the response with the inbound assistant,
//!   and the caller's context when she is known (`crate::vapi::inbound`), within its deadline.
//! - anything else: 200, logged, nothing stored.
//!
//! A DynamoDB or Secrets Manager failure is a 503 (Vapi may retry); nothing is half-accepted.

use std::collections::HashMap;
use std::sync::Arc;

use aws_sdk_dynamodb::types::{AttributeValue, KeysAndAttributes};
use lambda_http::http::{HeaderMap, Method, StatusCode};
use lambda_http::{Body, Request, Response};
use serde_json::{json, Value};
use tracing::{field, info, info_span, warn, Instrument};

use crate::calls::{call_pk, record_status, CallRecord, CallSnapshot, StatusWrite};
use crate::config::{ConfigError, Env};
use crate::http::{body_bytes, json_response, ApiError};
use crate::secrets::{parse_json, SecretsCache};
use crate::signature::{verify_vapi, SignatureError};
use crate::store::{attr, unavailable, Item, PutOutcome, Store, StoreError, PK};
use crate::telemetry::{metric, Unit};
use crate::vapi::config::{VapiServerSecret, VapiWebhookConfig};
use crate::vapi::inbound::{CallerDirectory, Inbound};
use crate::vapi::jobs::{
    new_note_job, new_report_job, new_status_record, status_pk, truncate_chars, NotePayload,
    ReportPayload, MAX_NOTE_CHARS,
};
use crate::vapi::messages::{
    self, Arguments, AssistantRequest, CallRef, CallStatus, EndOfCallReport, MessageKind,
    ServerMessage, StatusUpdate, ToolCall, ToolCallId,
};
use crate::vapi::tools::{
    answer_from_snapshot, answer_item, cached_outcome, live_request, tool_pk, LiveLookup, Tool,
    ToolOutcome, NO_CONTEXT,
};

/// BatchGetItem reads at most 100 items per request
/// (<https://docs.aws.amazon.com/amazondynamodb/latest/APIReference/API_BatchGetItem.html>).
const BATCH_GET_MAX_KEYS: usize = 100;

/// Built once per cold start; every request borrows it.
#[derive(Clone)]
pub struct VapiWebhookApp {
    config: Arc<VapiWebhookConfig>,
    store: Store,
    secrets: SecretsCache,
    live: Option<Arc<dyn LiveLookup>>,
    inbound: Option<Arc<Inbound>>,
}

fn is_webhook_path(path: &str) -> bool {
    // By suffix, so a stage prefix (`/prod/vapi/webhook`) routes the same.
    path.trim_end_matches('/').ends_with("/vapi/webhook")
}

/// Where a tool call's customer context came from, fetched at most once per message.
enum Context {
    Unresolved,
    Snapshot(Box<CallSnapshot>),
    Missing(ToolOutcome),
}

impl VapiWebhookApp {
    pub fn new(config: VapiWebhookConfig, store: Store, secrets: SecretsCache) -> Self {
        let inbound = config
            .inbound
            .clone()
            .map(|c| Arc::new(Inbound::new(c, store.clone(), None, config.event_ttl)));
        Self {
            config: Arc::new(config),
            store,
            secrets,
            live: None,
            inbound,
        }
    }

    /// Plug in the search that finds an inbound caller sfvapi has not called recently (only
    /// when inbound calls are configured).
    pub fn with_caller_directory(mut self, directory: Arc<dyn CallerDirectory>) -> Self {
        if let Some(c) = self.config.inbound.clone() {
            self.inbound = Some(Arc::new(Inbound::new(
                c,
                self.store.clone(),
                Some(directory),
                self.config.event_ttl,
            )));
        }
        self
    }

    /// Plug in a live Salesforce lookup for calls without a snapshot.
    pub fn with_live_lookup(mut self, live: Arc<dyn LiveLookup>) -> Self {
        self.live = Some(live);
        self
    }

    /// Read the configuration and build the AWS clients (no network yet). With
    /// `SF_LIVE_LOOKUPS=true`, tools fall back to live lookups that only *read* the token item the
    /// refresher keeps fresh: the webhook's role cannot read the connection secret (client
    /// secret, refresh token, private key), so it never refreshes; a missing, expired or rejected
    /// token answers "not available right now".
    pub async fn from_env() -> Result<Self, ConfigError> {
        let env = Env::process();
        let config = VapiWebhookConfig::from_env(&env)?;
        let (store, secrets) = crate::store::connect(&config.common).await;
        Self::wired(&env, config, store, secrets)
    }

    /// The app with the Salesforce reads its settings ask for: live lookups
    /// (`SF_LIVE_LOOKUPS`) and the inbound caller search (`VAPI_INBOUND_ASSISTANT_ID` with
    /// `INBOUND_SALESFORCE_SEARCH`), both on one token-reading connection built here, once.
    pub fn wired<F: Fn(&str) -> Option<String>>(
        env: &Env<F>,
        config: VapiWebhookConfig,
        store: Store,
        secrets: SecretsCache,
    ) -> Result<Self, ConfigError> {
        let live = config.live_lookups;
        let search = config.inbound.as_ref().is_some_and(|i| i.salesforce_search);
        let mut app = Self::new(config, store.clone(), secrets.clone());
        if !live && !search {
            return Ok(app);
        }
        let sf = crate::config::SalesforceConfig::for_token_reader(env)?;
        let revenue: f64 = env.parse_or("HIGH_VALUE_REVENUE", 100_000.0)?;
        let connection = crate::salesforce::Connection::token_reader(sf, store, secrets)?;
        if live {
            let lookup =
                crate::salesforce::lookup::SalesforceLookup::new(connection.rest.clone(), revenue);
            app = app.with_live_lookup(Arc::new(lookup));
        }
        if search {
            let directory =
                crate::salesforce::search::SalesforceCallerSearch::new(connection.rest, revenue);
            app = app.with_caller_directory(Arc::new(directory));
        }
        Ok(app)
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    /// The Lambda handler: one request in, one response out; never panics on input.
    pub async fn handle(&self, req: Request) -> Response<Body> {
        if !is_webhook_path(req.uri().path()) {
            return ApiError::NotFound.to_response();
        }
        if req.method() != Method::POST {
            return ApiError::MethodNotAllowed { allow: "POST" }.to_response();
        }
        let span = info_span!(
            "vapi",
            message_type = field::Empty,
            call_id = field::Empty,
            event_id = field::Empty
        );
        match self.process(&req).instrument(span).await {
            Ok(resp) => resp,
            Err(e) => e.to_response(),
        }
    }

    async fn process(&self, req: &Request) -> Result<Response<Body>, ApiError> {
        let body = body_bytes(req.body());
        let (small, large) = (self.config.max_body_bytes, self.config.max_report_bytes);
        if body.len() > small.max(large) {
            return Err(ApiError::TooLarge {
                limit: small.max(large),
            });
        }
        let now_ms = crate::now_millis();
        self.verify(req.headers(), body, now_ms).await?;
        // Only end-of-call reports may use the larger limit (checked after the signature, so an
        // unsigned body never costs a parse).
        if body.len() > small && !is_end_of_call_report(body) {
            return Err(ApiError::TooLarge { limit: small });
        }
        let mut msg = messages::parse(body).map_err(|e| ApiError::InvalidPayload(e.to_string()))?;
        // Metadata ids count only when the worker signed them (crate::vapi::context): anyone who
        // can start a call on the assistant sets metadata, and Vapi signs their messages too.
        if let Some(call) = msg.call.take() {
            let key = self.secret().await?.context_key;
            let (call, trusted) = call.trusted(key.as_ref());
            if !trusted {
                warn!(call_id = %call.id, "call metadata not signed by sfvapi: its ids are ignored");
                metric("call_context_rejected", 1.0, Unit::Count);
            }
            msg.call = Some(call);
        }
        let span = tracing::Span::current();
        if let Some(call) = &msg.call {
            span.record("call_id", call.id.as_str());
            if let Some(e) = &call.event_id {
                span.record("event_id", e.as_str());
            }
        }
        match &msg.kind {
            MessageKind::ToolCalls(calls) => {
                span.record("message_type", "tool-calls");
                self.tool_calls(&msg, calls, now_ms).await
            }
            MessageKind::FunctionCall(call) => {
                span.record("message_type", "function-call");
                self.function_call(&msg, call, now_ms).await
            }
            MessageKind::StatusUpdate(update) => {
                span.record("message_type", "status-update");
                self.status_update(&msg, update, now_ms).await
            }
            MessageKind::EndOfCallReport(report) => {
                span.record("message_type", "end-of-call-report");
                self.end_of_call_report(&msg, report, now_ms).await
            }
            MessageKind::AssistantRequest(req) => {
                span.record("message_type", "assistant-request");
                self.assistant_request(&msg, req).await
            }
            MessageKind::TransferDestinationRequest => {
                span.record("message_type", "transfer-destination-request");
                let call = msg
                    .require_call()
                    .map_err(|e| ApiError::InvalidPayload(e.to_string()))?;
                let (answer, _) = crate::vapi::transfer::answer_request(
                    &self.store,
                    &call.id,
                    now_ms,
                    self.config.event_ttl,
                )
                .await;
                Ok(ok(answer))
            }
            MessageKind::TransferUpdate(update) => {
                span.record("message_type", "transfer-update");
                let call = msg
                    .require_call()
                    .map_err(|e| ApiError::InvalidPayload(e.to_string()))?;
                let outcome = crate::vapi::transfer::record_update(
                    &self.store,
                    &call.id,
                    update,
                    msg.timestamp_ms.unwrap_or(now_ms),
                    now_ms,
                    self.config.event_ttl,
                )
                .await
                .map_err(unavailable_api)?;
                info!(to = %crate::vapi::transfer::describe_destination(update), "transfer recorded");
                Ok(ok(
                    json!({"status": if outcome == PutOutcome::Created { "recorded" } else { "duplicate" }}),
                ))
            }
            MessageKind::Other(kind) => {
                span.record("message_type", kind.as_str());
                info!("message type not handled; acknowledged");
                Ok(ok(json!({"status": "ignored"})))
            }
        }
    }

    /// Verify with the cached secrets; on a failure other than a stale timestamp, re-read the
    /// secret once (rate-limited) in case it was rotated, and verify again. Any mode's error may be
    /// the reported one (the first enabled mode's), so "missing header" can hide a mismatch.
    async fn verify(&self, headers: &HeaderMap, body: &[u8], now_ms: i64) -> Result<(), ApiError> {
        let check = |s: &VapiServerSecret| {
            verify_vapi(
                &self.config.auth_modes,
                headers,
                body,
                &s.server_secrets,
                now_ms,
                self.config.tolerance_secs,
            )
        };
        let secret = self.secret().await?;
        let mut result = check(&secret);
        if matches!(&result, Err(e) if *e != SignatureError::StaleTimestamp) {
            if let Some(fresh) = self.refreshed_secret().await? {
                result = check(&fresh);
            }
        }
        result.map_err(|reason| {
            warn!(%reason, "signature rejected");
            crate::telemetry::metric_by(
                "signature_failures",
                1.0,
                Unit::Count,
                "route",
                "vapi-webhook",
            );
            ApiError::InvalidSignature
        })
    }

    async fn secret(&self) -> Result<VapiServerSecret, ApiError> {
        self.secrets
            .get_json::<VapiServerSecret>(&self.config.secret_arn)
            .await
            .map_err(|e| {
                warn!(error = %e, "Vapi secret unavailable");
                ApiError::Unavailable(e.to_string())
            })
    }

    async fn refreshed_secret(&self) -> Result<Option<VapiServerSecret>, ApiError> {
        let arn = &self.config.secret_arn;
        match self.secrets.refresh(arn).await {
            Ok(Some(raw)) => parse_json(arn, &raw)
                .map(Some)
                .map_err(|e| ApiError::Unavailable(e.to_string())),
            Ok(None) => Ok(None),
            Err(e) => {
                warn!(error = %e, "Vapi secret re-read failed");
                Err(ApiError::Unavailable(e.to_string()))
            }
        }
    }

    /// An inbound call asks for its assistant. Always a 200 with an answer: a secret that cannot
    /// be read only means no context can be signed (the generic assistant).
    async fn assistant_request(
        &self,
        msg: &ServerMessage,
        req: &AssistantRequest,
    ) -> Result<Response<Body>, ApiError> {
        let Some(inbound) = &self.inbound else {
            warn!("assistant-request for an inbound call, but VAPI_INBOUND_ASSISTANT_ID is not set: the call is refused");
            return Ok(ok(crate::vapi::inbound::not_configured_body()));
        };
        let key = self.secret().await.ok().and_then(|s| s.context_key);
        let answer = inbound.answer(msg.call.as_ref(), req, key.as_ref()).await;
        Ok(ok(answer.body))
    }

    async fn tool_calls(
        &self,
        msg: &ServerMessage,
        calls: &[ToolCall],
        now_ms: i64,
    ) -> Result<Response<Body>, ApiError> {
        let call = msg.call.as_ref();
        let mut keys: Vec<String> = Vec::with_capacity(calls.len() + 1);
        if let Some(c) = call {
            keys.push(call_pk(&c.id));
        }
        let call_id = call.map(|c| &c.id);
        for id in calls.iter().filter_map(|c| c.id.as_ref()) {
            let k = tool_pk(call_id, id);
            if !keys.contains(&k) {
                keys.push(k);
            }
        }
        let items = self.read_many(keys).await.map_err(unavailable_api)?;
        let record = call
            .and_then(|c| items.get(&call_pk(&c.id)))
            .and_then(|item| {
                CallRecord::from_item(item)
                    .map_err(|e| warn!(error = %e, "call item unreadable; treated as missing"))
                    .ok()
            });
        let mut context = Context::Unresolved;
        let mut answered: HashMap<&ToolCallId, ToolOutcome> = HashMap::new();
        let mut results = Vec::with_capacity(calls.len());
        for tc in calls {
            // Parsing guarantees tool-calls entries carry an id.
            let Some(id) = tc.id.as_ref() else { continue };
            if let Some(o) = answered.get(id) {
                results.push(o.entry(id, &tc.name));
                continue;
            }
            let cached = items
                .get(&tool_pk(call_id, id))
                .and_then(|item| cached_outcome(item, call_id, &tc.name));
            let outcome = match cached {
                Some(cached) => {
                    info!(tool = %tc.name, tool_call_id = %id, "tool answer replayed from cache");
                    cached
                }
                None => {
                    let (outcome, cacheable) = self
                        .run_tool(tc, Some(id), call, record.as_ref(), &mut context, now_ms)
                        .await;
                    if cacheable {
                        self.cache_answer(id, call, &tc.name, &outcome, now_ms)
                            .await;
                    }
                    info!(tool = %tc.name, tool_call_id = %id, cacheable, "tool call answered");
                    outcome
                }
            };
            results.push(outcome.entry(id, &tc.name));
            answered.insert(id, outcome);
        }
        metric("tool_calls", calls.len() as f64, Unit::Count);
        Ok(ok(json!({ "results": results })))
    }

    async fn function_call(
        &self,
        msg: &ServerMessage,
        fc: &ToolCall,
        now_ms: i64,
    ) -> Result<Response<Body>, ApiError> {
        let call = msg.call.as_ref();
        let record = match call {
            Some(c) => crate::calls::read_call(&self.store, &c.id)
                .await
                .or_else(|e| match e {
                    StoreError::Corrupt { .. } => {
                        warn!(error = %e, "call item unreadable; treated as missing");
                        Ok(None)
                    }
                    other => Err(other),
                })
                .map_err(unavailable_api)?,
            None => None,
        };
        // The legacy message has no tool-call id; its timestamp names a logNote's job instead.
        let id = msg
            .timestamp_ms
            .and_then(|t| ToolCallId::parse("timestamp", &format!("fn-{t}")).ok());
        let mut context = Context::Unresolved;
        let (outcome, _) = self
            .run_tool(fc, id.as_ref(), call, record.as_ref(), &mut context, now_ms)
            .await;
        Ok(ok(outcome.legacy()))
    }

    /// One tool call's answer, and whether it may be replayed to a retry (transient failures are
    /// not cached, so the retry tries again).
    async fn run_tool(
        &self,
        tc: &ToolCall,
        id: Option<&ToolCallId>,
        call: Option<&CallRef>,
        record: Option<&CallRecord>,
        context: &mut Context,
        now_ms: i64,
    ) -> (ToolOutcome, bool) {
        if let Arguments::Invalid(why) = &tc.arguments {
            return (ToolOutcome::Error(format!("{}: {why}", tc.name)), true);
        }
        let tool = Tool::parse(&tc.name);
        match &tool {
            Tool::Unknown(name) => {
                warn!(tool = %name, "unknown tool called");
                (ToolOutcome::Error(format!("unknown tool {name:?}")), true)
            }
            Tool::LookupCustomer | Tool::LookupCase => {
                if let Context::Unresolved = context {
                    *context = self.resolve_context(call, record).await;
                }
                match context {
                    Context::Snapshot(s) => (
                        answer_from_snapshot(&tool, s, tc.arguments.str("caseId")),
                        true,
                    ),
                    // A missing context may appear later (the worker writes call# after dialing).
                    Context::Missing(o) => (o.clone(), false),
                    Context::Unresolved => (ToolOutcome::Error(NO_CONTEXT.into()), false),
                }
            }
            Tool::LogNote => self.log_note(tc, id, call, record, now_ms).await,
            Tool::DoNotCall => self.do_not_call(call, record, now_ms).await,
        }
    }

    async fn resolve_context(
        &self,
        call: Option<&CallRef>,
        record: Option<&CallRecord>,
    ) -> Context {
        if let Some(snapshot) = record.and_then(|r| r.snapshot.clone()) {
            return Context::Snapshot(Box::new(snapshot));
        }
        let (Some(call), Some(live)) = (call, self.live.as_ref()) else {
            return Context::Missing(ToolOutcome::Error(NO_CONTEXT.into()));
        };
        // Nothing we stored or signed names a Contact or Case: no Salesforce read at all.
        if record.is_none() && call.contact_id.is_none() && call.case_id.is_none() {
            return Context::Missing(ToolOutcome::Error(NO_CONTEXT.into()));
        }
        let req = live_request(
            &call.id,
            record,
            call.event_id.as_ref().map(|e| e.as_str()),
            call.contact_id.as_ref(),
            call.case_id.as_ref(),
        );
        // The lookup runs in its own task: the deadline stops our waiting, not the work. A token
        // refresh cut off between Salesforce rotating the refresh token and our storing it would
        // lose the only valid refresh token.
        let live = live.clone();
        let lookup = tokio::spawn(async move { live.lookup(&req).await });
        match tokio::time::timeout(self.config.live_lookup_timeout, lookup).await {
            Ok(Ok(Ok(snapshot))) => Context::Snapshot(Box::new(snapshot)),
            Ok(Err(e)) => {
                warn!(error = %e, "live lookup task failed");
                Context::Missing(ToolOutcome::Error(NO_CONTEXT.into()))
            }
            Ok(Ok(Err(e))) => {
                warn!(error = %e, "live lookup failed");
                Context::Missing(ToolOutcome::Error(NO_CONTEXT.into()))
            }
            Err(_) => {
                warn!(
                    timeout_ms = self.config.live_lookup_timeout.as_millis() as u64,
                    "live lookup timed out"
                );
                Context::Missing(ToolOutcome::Error(
                    "customer details are not available right now".into(),
                ))
            }
        }
    }

    async fn log_note(
        &self,
        tc: &ToolCall,
        id: Option<&ToolCallId>,
        call: Option<&CallRef>,
        record: Option<&CallRecord>,
        now_ms: i64,
    ) -> (ToolOutcome, bool) {
        let Some(note) = tc.arguments.str("note") else {
            return (
                ToolOutcome::Error("logNote needs a non-empty \"note\" argument".into()),
                true,
            );
        };
        let (Some(call), Some(id)) = (call, id) else {
            return (ToolOutcome::Error(NO_CONTEXT.into()), true);
        };
        // Only the call's own Case: from call#, else from the metadata of our POST /call.
        let case_id = record
            .and_then(|r| r.case_id.as_deref())
            .and_then(|s| crate::ids::SalesforceId::parse("caseId", s).ok())
            .or_else(|| call.case_id.clone());
        let Some(case_id) = case_id else {
            return (
                ToolOutcome::Error("no case is linked to this call".into()),
                false,
            );
        };
        let payload = NotePayload {
            call_id: call.id.clone(),
            case_id,
            note: truncate_chars(note.to_owned(), MAX_NOTE_CHARS, "…").0,
            tool_call_id: id.as_str().to_owned(),
        };
        let item = new_note_job(&payload, id, now_ms, self.config.event_ttl);
        match self.store.put_if_absent(item).await {
            Ok(outcome) => {
                info!(tool_call_id = %id, duplicate = (outcome == PutOutcome::AlreadyExists), "note job queued");
                (
                    ToolOutcome::Result("The note will be added to the case.".into()),
                    true,
                )
            }
            Err(e) => {
                warn!(error = %e, "note job not stored");
                (
                    ToolOutcome::Error("the note could not be saved; please try again".into()),
                    false,
                )
            }
        }
    }

    /// "Stop calling me": blocks every later dial and follow-up to the call's Contact (from our
    /// own `call#`, else the metadata of our POST /call) and the number Vapi called, at once,
    /// and queues the Salesforce update. The answer confirms it to the customer.
    async fn do_not_call(
        &self,
        call: Option<&CallRef>,
        record: Option<&CallRecord>,
        now_ms: i64,
    ) -> (ToolOutcome, bool) {
        let Some(call) = call else {
            return (ToolOutcome::Error(NO_CONTEXT.into()), true);
        };
        let contact = record
            .and_then(|r| r.contact_id.as_deref())
            .and_then(|s| crate::ids::SalesforceId::parse("contactId", s).ok())
            .or_else(|| call.contact_id.clone());
        let Some(contact) = contact else {
            return (
                ToolOutcome::Error("no customer is linked to this call".into()),
                false,
            );
        };
        match crate::policy::optout::opt_out(
            &self.store,
            &contact,
            call.customer_number.as_ref(),
            call.id.as_str(),
            "tool",
            now_ms,
            self.config.event_ttl,
        )
        .await
        {
            Ok(first) => {
                info!(first, "the customer opted out of calls");
                (
                    ToolOutcome::Result(crate::policy::optout::CONFIRMATION.into()),
                    true,
                )
            }
            Err(e) => {
                warn!(error = %e, "opt-out not stored");
                (
                    ToolOutcome::Error("the request could not be saved; please try again".into()),
                    false,
                )
            }
        }
    }

    /// Best effort: a lost cache write only means a retry recomputes the answer.
    async fn cache_answer(
        &self,
        id: &ToolCallId,
        call: Option<&CallRef>,
        tool: &str,
        outcome: &ToolOutcome,
        now_ms: i64,
    ) {
        let item = answer_item(
            id,
            call.map(|c| &c.id),
            tool,
            outcome,
            now_ms,
            self.config.tool_cache_ttl,
        );
        if let Err(e) = self.store.put_if_absent(item).await {
            warn!(error = %e, tool_call_id = %id, "tool answer not cached");
        }
    }

    /// Several items, up to [`BATCH_GET_MAX_KEYS`] per round trip (strongly consistent, like
    /// `Store::get`). Keys the service leaves unprocessed (throttling) are read one by one.
    async fn read_many(&self, keys: Vec<String>) -> Result<HashMap<String, Item>, StoreError> {
        let mut out = HashMap::new();
        for chunk in keys.chunks(BATCH_GET_MAX_KEYS) {
            self.read_batch(chunk, &mut out).await?;
        }
        Ok(out)
    }

    async fn read_batch(
        &self,
        keys: &[String],
        out: &mut HashMap<String, Item>,
    ) -> Result<(), StoreError> {
        let key_items: Vec<HashMap<String, AttributeValue>> = keys
            .iter()
            .map(|k| HashMap::from([(PK.to_owned(), attr::s(k.as_str()))]))
            .collect();
        let ka = KeysAndAttributes::builder()
            .set_keys(Some(key_items))
            .consistent_read(true)
            .build()
            .map_err(|e| StoreError::Unavailable {
                op: "BatchGetItem",
                detail: e.to_string(),
            })?;
        let res = self
            .store
            .client()
            .batch_get_item()
            .request_items(self.store.table(), ka)
            .send()
            .await
            .map_err(|e| unavailable("BatchGetItem", &e))?;
        if let Some(items) = res.responses.and_then(|mut r| r.remove(self.store.table())) {
            for item in items {
                if let Some(pk) = attr::opt_s(&item, PK) {
                    out.insert(pk.to_owned(), item.clone());
                }
            }
        }
        let unprocessed: Vec<String> = res
            .unprocessed_keys
            .and_then(|mut u| u.remove(self.store.table()))
            .map(|ka| {
                ka.keys
                    .iter()
                    .filter_map(|k| attr::opt_s(k, PK).map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default();
        for pk in unprocessed {
            if let Some(item) = self.store.get(&pk).await? {
                out.insert(pk, item);
            }
        }
        Ok(())
    }

    async fn status_update(
        &self,
        msg: &ServerMessage,
        update: &StatusUpdate,
        now_ms: i64,
    ) -> Result<Response<Body>, ApiError> {
        let call = msg
            .require_call()
            .map_err(|e| ApiError::InvalidPayload(e.to_string()))?;
        let status = update.status.as_str();
        let status_at = msg.timestamp_ms.unwrap_or(now_ms);
        let record = new_status_record(&call.id, status, status_at, now_ms, self.config.event_ttl);
        match self
            .store
            .put_if_absent(record)
            .await
            .map_err(unavailable_api)?
        {
            PutOutcome::AlreadyExists => {
                info!(status, "duplicate status update");
                metric("duplicates", 1.0, Unit::Count);
                return Ok(ok(json!({"status": "duplicate"})));
            }
            PutOutcome::Created => {}
        }
        let written = record_status(
            &self.store,
            &call.id,
            status,
            status_at,
            update.ended_reason.as_ref().map(|r| r.as_str()),
            self.config.event_ttl,
        )
        .await;
        match written {
            Ok(w) => {
                info!(
                    status,
                    superseded = matches!(w, StatusWrite::Superseded),
                    "status recorded"
                );
                if update.status == CallStatus::Ended {
                    // The status write returned call#, so freeing its slot costs one write.
                    let released = match &w {
                        StatusWrite::Recorded(item) => {
                            crate::pacing::release_recorded(&self.store, &call.id, item).await
                        }
                        StatusWrite::Superseded => {
                            crate::pacing::release_for_call(&self.store, &call.id).await
                        }
                    };
                    slot_released(released);
                }
                Ok(ok(json!({"status": "recorded"})))
            }
            Err(e) => {
                // Undo the dedup record so Vapi's retry records the status instead of being
                // taken for a duplicate.
                let pk = status_pk(&call.id, status);
                if let Err(del) = self
                    .store
                    .client()
                    .delete_item()
                    .table_name(self.store.table())
                    .key(PK, attr::s(pk))
                    .send()
                    .await
                {
                    warn!(error = %crate::secrets::error_chain(&del), "status dedup record not removed");
                }
                Err(unavailable_api(e))
            }
        }
    }

    async fn end_of_call_report(
        &self,
        msg: &ServerMessage,
        report: &EndOfCallReport,
        now_ms: i64,
    ) -> Result<Response<Body>, ApiError> {
        let call = msg
            .require_call()
            .map_err(|e| ApiError::InvalidPayload(e.to_string()))?;
        let payload = ReportPayload::new(
            call.id.clone(),
            call.event_id.clone(),
            call.contact_id.clone(),
            call.case_id.clone(),
            report.clone(),
            msg.timestamp_ms.unwrap_or(now_ms),
        )
        .with_direction(call.direction);
        let item = new_report_job(&payload, now_ms, self.config.event_ttl);
        match self
            .store
            .put_if_absent(item)
            .await
            .map_err(unavailable_api)?
        {
            PutOutcome::Created => {
                info!(ended_reason = %payload.ended_reason, truncated = payload.transcript_truncated, "report job queued");
                metric("reports_queued", 1.0, Unit::Count);
                Ok(ok(json!({"status": "queued"})))
            }
            PutOutcome::AlreadyExists => {
                info!("duplicate end-of-call report");
                metric("duplicates", 1.0, Unit::Count);
                Ok(ok(json!({"status": "duplicate"})))
            }
        }
    }
}

/// Whether a body is an end-of-call report, reading only `message.type`.
fn is_end_of_call_report(body: &[u8]) -> bool {
    #[derive(serde::Deserialize)]
    struct Peek {
        message: PeekMessage,
    }
    #[derive(serde::Deserialize)]
    struct PeekMessage {
        #[serde(rename = "type")]
        kind: String,
    }
    serde_json::from_slice::<Peek>(body).is_ok_and(|p| p.message.kind == "end-of-call-report")
}

/// A failed slot release is logged, not answered: the message itself was recorded, and the slot
/// frees itself at its expiry (`crate::pacing`).
fn slot_released(res: Result<bool, StoreError>) {
    match res {
        Ok(released) => info!(released, "call slot"),
        Err(e) => {
            warn!(error = %e, "call slot not released; it frees itself at its expiry");
            metric("call_slot_release_failed", 1.0, Unit::Count);
        }
    }
}

fn ok(body: Value) -> Response<Body> {
    json_response(StatusCode::OK, &body)
}

fn unavailable_api(e: StoreError) -> ApiError {
    warn!(error = %e, "DynamoDB unavailable");
    ApiError::Unavailable(e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_by_suffix() {
        assert!(is_webhook_path("/vapi/webhook"));
        assert!(is_webhook_path("/prod/vapi/webhook/"));
        assert!(!is_webhook_path("/vapi/webhooks"));
        assert!(!is_webhook_path("/salesforce/events"));
    }
}
