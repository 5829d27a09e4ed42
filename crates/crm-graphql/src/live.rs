//! Subscriptions: `subscription { leadChanged(where: …) { kind id record { … } } }`, prepared
//! once ([`Api::subscribe`]) and answered per committed change ([`Live::payload`]) by a read the
//! subscriber could send themselves: the record's selection, `where` and its id, run as an
//! ordinary query as the subscriber. So a subscriber never receives a record or a field their
//! reads would not return (tenant, row rules, field denials), and a change that leaves the record
//! outside `where` is not sent. A deletion is sent only for a record this subscription delivered.
//! The transport (graphql-transport-ws over WebSocket) is the server's.

use std::collections::HashSet;

use apollo_compiler::executable::{OperationType, Selection};
use crm_model::ErrorCode;
use crm_orm::{Event, Principal, Store};
use serde_json::{Map, Value as Json, json};
use uuid::Uuid;

use crate::Api;
use crate::error::{Response, coded};
use crate::request::{Request, Variables};

/// The variable carrying the changed record's id in the read run per change.
const ID_VARIABLE: &str = "crmLiveRecordId";

/// One part of the change object a subscriber selected.
#[derive(Debug, Clone)]
enum Part {
    Kind,
    Id,
    Typename(String),
    Record,
}

/// A prepared subscription.
#[derive(Debug)]
pub struct Live {
    principal: Principal,
    model: String,
    /// The model's list root field (`leads`).
    list: String,
    /// The response key of the root field.
    key: String,
    /// The selected parts of the change object, by response key.
    parts: Vec<(String, Part)>,
    /// The read run per change (none when `record` is not selected).
    query: Option<String>,
    variables: Variables,
    /// Records delivered so far: their deletions are sent.
    delivered: HashSet<Uuid>,
}

impl Api {
    /// Prepares `request`, a subscription document, for `principal`: validated against the
    /// tenant's schema; one root field (`<model>Changed`) whose selection names the change's
    /// fields directly.
    ///
    /// # Errors
    /// The response to send instead: an invalid document, an operation that is not a
    /// subscription, a selection the live feed does not serve.
    /// `Ok(None)`: a query or mutation, for the transport to execute once.
    pub async fn subscribe(&self, store: &Store, principal: &Principal, request: &Request) -> Result<Option<Live>, Response> {
        let bad = |m: &str| Response::from_errors(vec![coded(m, ErrorCode::BadUserInput)]);
        let (version, built) = self.schema_for(store, &principal.org_id).await.map_err(|e| {
            tracing::error!(error = %e, org = %principal.org_id, "could not build the tenant's GraphQL schema");
            Response::from_errors(vec![coded("the schema could not be built", ErrorCode::Internal)])
        })?;
        let key = crate::SchemaKey::of(&principal.org_id, version);
        let doc = self.validate(&key, &built.schema, &request.query)?;
        let op = doc.operations.get(request.operation_name.as_deref()).map_err(|e| bad(&e.message().to_string()))?;
        if op.operation_type != OperationType::Subscription {
            return Ok(None);
        }
        let Some(Selection::Field(root)) = op.selection_set.selections.first() else {
            return Err(bad("select the subscription field directly (no fragment at the root)"));
        };
        let model = built
            .catalog
            .models()
            .find(|m| m.api.changed == root.name.as_str())
            .ok_or_else(|| bad(&format!("`{}` is not a change feed", root.name)))?;
        let mut parts = Vec::new();
        let mut record = None;
        for s in &root.selection_set.selections {
            let Selection::Field(f) = s else {
                return Err(bad("select the change's fields directly (`kind`, `id`, `record { … }`), without fragments"));
            };
            let part = match f.name.as_str() {
                "kind" => Part::Kind,
                "id" => Part::Id,
                "__typename" => Part::Typename(model.api.change.clone()),
                _ => {
                    record = Some(f);
                    Part::Record
                }
            };
            parts.push((f.response_key().to_string(), part));
        }
        let query = record.map(|r| {
            let mut vars: Vec<String> = op.variables.iter().map(|v| v.serialize().no_indent().to_string()).collect();
            vars.push(format!("${ID_VARIABLE}: ID!"));
            let filter = match root.arguments.iter().find(|a| a.name == "where") {
                Some(w) => format!("{{AND: [{{id: ${ID_VARIABLE}}}, {}]}}", w.value.serialize().no_indent()),
                None => format!("{{id: ${ID_VARIABLE}}}"),
            };
            let fragments: Vec<String> = doc.fragments.values().map(|f| f.serialize().no_indent().to_string()).collect();
            format!(
                "query CrmLive({}) {{ r: {}(where: {filter}, first: 1) {} }} {}",
                vars.join(", "),
                model.api.list,
                r.selection_set.serialize().no_indent(),
                fragments.join(" ")
            )
        });
        Ok(Some(Live {
            principal: principal.clone(),
            model: model.name.to_string(),
            list: model.api.list.clone(),
            key: root.response_key().to_string(),
            parts,
            query,
            variables: request.variables.clone(),
            delivered: HashSet::new(),
        }))
    }
}

impl Live {
    /// The model whose changes this subscription follows.
    #[must_use]
    pub fn model(&self) -> &str {
        &self.model
    }

    /// The subscriber.
    #[must_use]
    pub fn principal(&self) -> &Principal {
        &self.principal
    }

    /// What to send for `event` (a committed change in the subscriber's tenant), if anything:
    /// the change as selected, its record read as the subscriber; nothing for another model, a
    /// record the subscriber may not read or `where` does not match, or the deletion of a record
    /// this subscription never delivered.
    pub async fn payload(&mut self, api: &Api, store: &Store, event: &Event) -> Option<Response> {
        if event.model != self.model || event.org != self.principal.org_id.as_str() {
            return None;
        }
        let kind = match event.kind.rsplit('.').next() {
            Some("created") => "CREATED",
            Some("updated" | "restored") => "UPDATED",
            Some("deleted" | "destroyed") => "DELETED",
            _ => return None,
        };
        let id = event.record_id;
        let mut record = Json::Null;
        if kind == "DELETED" {
            if !self.delivered.remove(&id) {
                return None;
            }
        } else {
            let Some(query) = &self.query else {
                // No record selected: the change is still only sent if the subscriber may read it.
                return self.visible(api, store, id).await.then(|| self.response(kind, id, &Json::Null));
            };
            let mut vars = self.variables.as_map().clone();
            vars.insert(ID_VARIABLE.to_owned(), json!(id.to_string()));
            let resp =
                api.execute(store, &self.principal, Request::new(query.clone()).variables(Variables::from_json(Json::Object(vars)))).await;
            if !resp.errors.is_empty() {
                return Some(Response { errors: resp.errors, data: None, executed: false });
            }
            let first = resp.data.and_then(|d| d.get("r").cloned()).and_then(|r| r.as_array().and_then(|a| a.first().cloned()))?;
            record = serde_json::to_value(first).ok()?;
            self.delivered.insert(id);
        }
        Some(self.response(kind, id, &record))
    }

    /// Whether the subscriber may read record `id` of the model (and `where` matches it).
    async fn visible(&mut self, api: &Api, store: &Store, id: Uuid) -> bool {
        let q = format!("query($i: ID!) {{ r: {}(where: {{id: $i}}, first: 1) {{ id }} }}", self.list);
        let resp =
            api.execute(store, &self.principal, Request::new(q).variables(Variables::from_json(json!({ "i": id.to_string() })))).await;
        let found = resp.data.and_then(|d| d.get("r").cloned()).is_some_and(|r| r.as_array().is_some_and(|a| !a.is_empty()));
        if found {
            self.delivered.insert(id);
        }
        found
    }

    fn response(&self, kind: &str, id: Uuid, record: &Json) -> Response {
        let mut change = Map::new();
        for (key, part) in &self.parts {
            let v = match part {
                Part::Kind => json!(kind),
                Part::Id => json!(id.to_string()),
                Part::Typename(t) => json!(t),
                Part::Record => record.clone(),
            };
            change.insert(key.clone(), v);
        }
        let mut data = apollo_compiler::response::JsonMap::new();
        data.insert(self.key.as_str(), Json::Object(change).into());
        Response { errors: Vec::new(), data: Some(data), executed: true }
    }
}
