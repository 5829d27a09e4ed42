//! The CRM engines in the API: re-tagging and routing leads on demand, social ingestion, the
//! summary report and webhook deliveries. Each runs with the caller's access: on-demand work
//! touches only the records the caller may update, reports read under the caller's scope.

use async_graphql::dynamic::{Field, FieldFuture, FieldValue, InputObject, InputValue, Object, ResolverContext, SchemaBuilder, TypeRef};
use crm_engines::ingest::{Ingest, SocialInput};
use crm_engines::routing::RouteLeads;
use crm_engines::rows::Record;
use crm_engines::tagging::Retag;
use crm_model::api::builtin::{
    DATETIME, FUNNEL_STAGE, INGEST_ITEM, INGEST_OUTCOME, LEAD_REPORT, REP_WORKLOAD, REPORT_BUCKET, REPORT_SUMMARY, ROUTING_DECISION,
    SOCIAL_EVENT_INPUT, STAGE_TIME, TAG_OUTCOME, WEBHOOK_DELIVERY,
};
use crm_model::api::roots;
use crm_orm::{Deliveries, Op, OrmError};
use serde_json::{Value as Json, json};

use crate::args::args_json;
use crate::fields::{json_object, parent_json};
use crate::meta::{json_list, leaf};
use crate::request::{bad, err, request};

fn list(key: &'static str, ty: &'static str) -> Field {
    Field::new(key, TypeRef::named_nn_list_nn(ty), json_list(key))
}

/// A list that is `null` when the report leaves it out (a field the caller may not read).
fn opt_list(key: &'static str, ty: &'static str) -> Field {
    Field::new(key, TypeRef::named_nn_list(ty), move |ctx| {
        let items = parent_json(&ctx).and_then(|p| p.get(key)).and_then(Json::as_array);
        FieldFuture::Value(items.map(|items| FieldValue::list(items.iter().map(|x| FieldValue::borrowed_any(x)))))
    })
}

fn int() -> TypeRef {
    TypeRef::named_nn(TypeRef::INT)
}

fn types(b: SchemaBuilder) -> SchemaBuilder {
    let s = || TypeRef::named_nn(TypeRef::STRING);
    let os = || TypeRef::named(TypeRef::STRING);
    let id = || TypeRef::named(TypeRef::ID);
    b.register(
        Object::new(TAG_OUTCOME)
            .description("What a re-tagging run did.")
            .field(leaf("matched", int()).description("Leads looked at."))
            .field(leaf("changed", int()).description("Leads that got at least one new tag."))
            .field(leaf("tagsAdded", int())),
    )
    .register(
        Object::new(ROUTING_DECISION)
            .description("Who got a lead, by which rule, and why (also recorded as an Assignment).")
            .field(leaf("lead", TypeRef::named_nn(TypeRef::ID)))
            .field(leaf("member", id()))
            .field(leaf("memberName", os()))
            .field(leaf("rule", id()))
            .field(leaf("strategy", os()))
            .field(leaf("reason", s())),
    )
    .register(
        InputObject::new(SOCIAL_EVENT_INPUT)
            .description("A post, reply, DM or mention from a social platform.")
            .field(InputValue::new("platform", s()))
            .field(InputValue::new("kind", s()).description("POST, REPLY, DM or MENTION."))
            .field(InputValue::new("externalId", s()).description("The platform's id: with `platform`, the idempotency key."))
            .field(InputValue::new("thread", os()).description("The external id of the conversation's first event."))
            .field(InputValue::new("authorHandle", s()))
            .field(InputValue::new("authorName", os()))
            .field(InputValue::new("text", os()))
            .field(InputValue::new("url", os()))
            .field(InputValue::new("occurredAt", TypeRef::named(DATETIME))),
    )
    .register(
        Object::new(INGEST_ITEM)
            .field(leaf("externalId", s()))
            .field(leaf("status", s()).description("CREATED or DUPLICATE."))
            .field(leaf("socialEvent", id()))
            .field(leaf("contact", id()))
            .field(leaf("lead", id()))
            .field(leaf("ticket", id())),
    )
    .register(
        Object::new(INGEST_OUTCOME)
            .description("What an ingestion batch did.")
            .field(leaf("received", int()))
            .field(leaf("created", int()))
            .field(leaf("duplicates", int()))
            .field(leaf("contactsCreated", int()))
            .field(leaf("leadsCreated", int()))
            .field(leaf("ticketsCreated", int()))
            .field(list("items", INGEST_ITEM)),
    )
    .register(
        Object::new(REPORT_BUCKET)
            .field(leaf("key", os()).description("The group's value (a member id for owners); null for none."))
            .field(leaf("name", os()).description("The member's name, for owner buckets."))
            .field(leaf("count", int())),
    )
    .register(
        Object::new(LEAD_REPORT)
            .description("Live leads the caller may read. A breakdown whose field the caller may not read is null.")
            .field(leaf("total", TypeRef::named(TypeRef::INT)).description("Null when the caller may not read `status`."))
            .field(opt_list("byStatus", REPORT_BUCKET))
            .field(opt_list("bySource", REPORT_BUCKET))
            .field(opt_list("byOwner", REPORT_BUCKET)),
    )
    .register(
        Object::new(FUNNEL_STAGE)
            .description("Leads that got at least as far as a stage.")
            .field(leaf("stage", s()))
            .field(leaf("reached", int()))
            .field(leaf("conversionFromPrevious", TypeRef::named(TypeRef::FLOAT)))
            .field(leaf("conversionFromStart", TypeRef::named(TypeRef::FLOAT))),
    )
    .register(
        Object::new(STAGE_TIME)
            .description("Time spent in a stage, from the stage transitions.")
            .field(leaf("stage", s()))
            .field(leaf("completed", int()).description("Stays that ended."))
            .field(leaf("averageSeconds", TypeRef::named(TypeRef::FLOAT)))
            .field(leaf("current", int()).description("Leads in the stage now.")),
    )
    .register(
        Object::new(REP_WORKLOAD)
            .field(leaf("member", TypeRef::named_nn(TypeRef::ID)))
            .field(leaf("name", os()).description("Null when the caller may not read members' `name`."))
            .field(leaf("openLeads", int()))
            .field(
                leaf("openTickets", TypeRef::named(TypeRef::INT))
                    .description("Null when the caller may not read tickets' `assignee` or `status`."),
            )
            .field(leaf("capacity", TypeRef::named(TypeRef::INT)))
            .field(leaf("utilization", TypeRef::named(TypeRef::FLOAT)).description("Open leads over capacity.")),
    )
    .register(
        Object::new(REPORT_SUMMARY)
            .description(
                "The lead funnel, time in stage, leads by source/status/owner and rep workload, over what the caller may read. \
                 A section that needs a field the caller may not read (`status` for the funnel, `owner` and `status` for the \
                 workload) is null.",
            )
            .field(Field::new("leads", TypeRef::named_nn(LEAD_REPORT), json_object("leads")))
            .field(opt_list("funnel", FUNNEL_STAGE))
            .field(leaf("conversionRate", TypeRef::named(TypeRef::FLOAT)).description("Converted over new."))
            .field(opt_list("timeInStage", STAGE_TIME))
            .field(opt_list("workload", REP_WORKLOAD)),
    )
    .register(
        Object::new(WEBHOOK_DELIVERY)
            .description("One event's delivery to one webhook, with its attempts.")
            .field(leaf("id", TypeRef::named_nn(TypeRef::ID)))
            .field(leaf("webhook", TypeRef::named_nn(TypeRef::ID)))
            .field(leaf("eventSeq", int()))
            .field(leaf("eventType", s()))
            .field(leaf("status", s()).description("PENDING, DELIVERED or FAILED (given up)."))
            .field(leaf("attempts", int()))
            .field(leaf("lastStatus", TypeRef::named(TypeRef::INT)).description("The HTTP status of the last attempt."))
            .field(leaf("lastError", os()))
            .field(leaf("nextAttemptAt", TypeRef::named(DATETIME)))
            .field(leaf("createdAt", TypeRef::named_nn(DATETIME)))
            .field(leaf("deliveredAt", TypeRef::named(DATETIME))),
    )
}

fn to_json<T: serde::Serialize>(v: &T) -> Result<Json, OrmError> {
    serde_json::to_value(v).map_err(|e| OrmError::invariant(e.to_string()))
}

fn root<F>(name: &'static str, ty: TypeRef, description: &'static str, args: Vec<InputValue>, run: F) -> Field
where
    F: for<'a> Fn(&'a crate::RequestCtx, serde_json::Map<String, Json>) -> JsonFuture<'a> + Send + Sync + Copy + 'static,
{
    let mut f = Field::new(name, ty, move |ctx: ResolverContext<'_>| {
        FieldFuture::new(async move {
            let rc = request(&ctx)?;
            let out = run(rc, args_json(&ctx.args)).await.map_err(|e| err(&e))?;
            Ok(Some(match out {
                Json::Array(items) => FieldValue::list(items.into_iter().map(FieldValue::owned_any)),
                other => FieldValue::owned_any(other),
            }))
        })
    })
    .description(description);
    for a in args {
        f = f.argument(a);
    }
    f
}

/// The future of an engine operation's JSON result.
type JsonFuture<'a> = std::pin::Pin<Box<dyn std::future::Future<Output = Result<serde_json::Value, crm_orm::OrmError>> + Send + 'a>>;

fn tag_leads(rc: &crate::RequestCtx, args: serde_json::Map<String, Json>) -> JsonFuture<'_> {
    Box::pin(async move {
        let filter = args.get("where").cloned().filter(|w| !w.is_null()).unwrap_or_else(|| json!({}));
        to_json(&rc.store.transaction(&rc.access, &Retag { filter }).await?)
    })
}

fn route_leads(rc: &crate::RequestCtx, args: serde_json::Map<String, Json>) -> JsonFuture<'_> {
    Box::pin(async move {
        let filter = args.get("where").cloned().filter(|w| !w.is_null()).unwrap_or_else(|| json!({}));
        let at = match args.get("at").and_then(Json::as_str) {
            Some(s) => {
                Some(chrono::DateTime::parse_from_rfc3339(s).map_err(|_| bad("at", "not an ISO 8601 instant"))?.with_timezone(&chrono::Utc))
            }
            None => None,
        };
        let reassign = args.get("reassign").and_then(Json::as_bool).unwrap_or(false);
        to_json(&rc.store.transaction(&rc.access, &RouteLeads { filter, reassign, at }).await?)
    })
}

fn ingest(rc: &crate::RequestCtx, args: serde_json::Map<String, Json>) -> JsonFuture<'_> {
    Box::pin(async move {
        let events: Vec<SocialInput> = serde_json::from_value(args.get("events").cloned().unwrap_or(Json::Null))
            .map_err(|e| bad("events", format!("not a list of social events: {e}")))?;
        to_json(&rc.store.transaction(&rc.access, &Ingest { events }).await?)
    })
}

fn summary(rc: &crate::RequestCtx, _: serde_json::Map<String, Json>) -> JsonFuture<'_> {
    Box::pin(async move { crm_engines::reports::summary(&rc.store, &rc.access).await })
}

pub(crate) fn register(b: SchemaBuilder, query: Object, mutation: Object) -> (SchemaBuilder, Object, Object) {
    let b = types(b);
    let query = query
        .field(root(roots::REPORT_SUMMARY, TypeRef::named_nn(REPORT_SUMMARY), "The summary report: lead funnel and conversion rates, average time in each stage, leads by source / status / owner, rep workload.", Vec::new(), summary))
        .field(
            Field::new(roots::WEBHOOK_DELIVERIES, TypeRef::named_nn_list_nn(WEBHOOK_DELIVERY), |ctx: ResolverContext<'_>| {
                FieldFuture::new(async move {
                    let rc = request(&ctx)?;
                    let out: Result<Vec<Json>, OrmError> = async {
                        let model = rc.store.catalog().model(crm_engines::rows::Webhook::MODEL).cloned().ok_or_else(|| bad("webhook", "no webhooks here"))?;
                        let args = args_json(&ctx.args);
                        let webhook = match args.get("webhook").and_then(Json::as_str) {
                            Some(s) => Some(uuid::Uuid::parse_str(s).map_err(|_| bad("webhook", "not an id"))?),
                            None => None,
                        };
                        let first = args.get("first").and_then(Json::as_u64).map_or(50, |n| u32::try_from(n).unwrap_or(u32::MAX));
                        rc.store.deliveries(&rc.access.scope(rc.store.catalog(), &model.name, Op::Read, Deliveries { webhook, first })?).await
                    }
                    .await;
                    let rows = out.map_err(|e| err(&e))?;
                    Ok(Some(FieldValue::list(rows.into_iter().map(FieldValue::owned_any))))
                })
            })
            .description("Deliveries of the tenant's webhooks, newest first.")
            .argument(InputValue::new("webhook", TypeRef::named(TypeRef::ID)))
            .argument(InputValue::new("first", TypeRef::named(TypeRef::INT))),
        );
    let where_arg = || InputValue::new("where", TypeRef::named("LeadWhereInput"));
    let mutation = mutation
        .field(root(roots::TAG_LEADS, TypeRef::named_nn(TAG_OUTCOME), "Applies the enabled tag rules to the leads matching `where` that the caller may update.", vec![where_arg()], tag_leads))
        .field(root(
            roots::ROUTE_LEADS,
            TypeRef::named_nn_list_nn(ROUTING_DECISION),
            "Routes the unassigned leads matching `where` that the caller may update (also assigned ones with `reassign: true`); availability is judged at `at` (now by default).",
            vec![where_arg(), InputValue::new("reassign", TypeRef::named(TypeRef::BOOLEAN)), InputValue::new("at", TypeRef::named(DATETIME))],
            route_leads,
        ))
        .field(root(
            roots::INGEST_SOCIAL_EVENTS,
            TypeRef::named_nn(INGEST_OUTCOME),
            "Ingests a batch of social events (at most 1000), idempotent by platform and external id.",
            vec![InputValue::new("events", TypeRef::named_nn_list_nn(SOCIAL_EVENT_INPUT))],
            ingest,
        ));
    (b, query, mutation)
}
