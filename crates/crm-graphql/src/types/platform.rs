//! The platform's own types and root fields, beside the models': metadata (the models and
//! fields a client can render, custom definitions and their changes) and the CRM engines
//! (tagging, routing, ingestion, reports, webhook deliveries).

use apollo_compiler::schema::ExtendedType;
use crm_model::api::builtin::{
    ATTACHMENT_UPLOAD, CUSTOM_DEFINITION, DATETIME, FIELD_INFO, FIELD_VALIDATION, FILE_LINK, FUNNEL_STAGE, INGEST_ITEM, INGEST_OUTCOME,
    JSON, LEAD_REPORT, LONG, METADATA, METADATA_CHANGE, MODEL_INFO, OPTION_LABEL, RECORD_REF_INPUT, REP_WORKLOAD, REPORT_BUCKET,
    REPORT_SUMMARY, ROUTING_DECISION, SOCIAL_EVENT_INPUT, STAGE_TIME, TAG_OUTCOME, WEBHOOK_DELIVERY,
};
use crm_model::api::roots;

use super::build::{Arg, Fld, Input, Obj, list, named, nn, nn_list, nn_list_nn};
use super::{BOOLEAN, FLOAT, ID, INT, STRING};

/// The metadata types, root queries and mutations.
pub(super) fn metadata(types: &mut Vec<ExtendedType>, query: Obj, mutation: Obj) -> (Obj, Obj) {
    let s = || nn(STRING);
    let b = || nn(BOOLEAN);
    types.push(
        Obj::new(FIELD_VALIDATION)
            .describe("A field's value checks, as a form enforces them.")
            .field(Fld::new("minLength", named(INT)))
            .field(Fld::new("maxLength", named(INT)))
            .field(Fld::new("min", named(FLOAT)))
            .field(Fld::new("max", named(FLOAT)))
            .field(Fld::new("pattern", named(STRING)).describe("A regular expression the whole value must match."))
            .done(),
    );
    types.push(
        Obj::new(OPTION_LABEL)
            .describe("An option of a select field and its label.")
            .field(Fld::new("value", s()).describe("The enum value."))
            .field(Fld::new("label", s()).describe("What people see: the definition's `optionLabels`, else the value in words."))
            .done(),
    );
    types.push(
        Obj::new(FIELD_INFO)
            .describe("A field as clients render it: type, label, options, checks, and what the caller may do with it.")
            .field(Fld::new("name", s()))
            .field(Fld::new("label", s()))
            .field(Fld::new("type", s()).describe("text, longText, email, phone, url, int, float, decimal, money, boolean, date, dateTime, select, multiSelect, tags, json, relation, inverse, polymorphic or id."))
            .field(Fld::new("description", named(STRING)))
            .field(Fld::new("required", b()))
            .field(Fld::new("unique", b()))
            .field(Fld::new("searchable", b()))
            .field(Fld::new("tracked", b()).describe("Changes are kept in the property history."))
            .field(Fld::new("stage", b()).describe("A lifecycle stage field."))
            .field(Fld::new("custom", b()).describe("Defined by the tenant at runtime."))
            .field(Fld::new("system", b()))
            .field(Fld::new("readOnly", b()).describe("The caller cannot set it."))
            .field(Fld::new("options", list(STRING)).describe("Options of a select or multi-select."))
            .field(
                Fld::new("optionLabels", list(OPTION_LABEL))
                    .describe("Each option of a select or multi-select with what people see for it, in option order."),
            )
            .field(Fld::new("target", named(STRING)).describe("The related model of a relation."))
            .field(Fld::new("targets", list(STRING)).describe("The models a polymorphic reference may point to; `*` for any."))
            .field(Fld::new("via", named(STRING)).describe("The to-one field on the target an inverse relation follows."))
            .field(Fld::new("default", named(JSON)))
            .field(Fld::new("validation", nn(FIELD_VALIDATION)).describe("The value checks (each null when not set)."))
            .done(),
    );
    types.push(
        Obj::new(MODEL_INFO)
            .describe("A model the caller can read, with the fields they can read.")
            .field(Fld::new("name", s()))
            .field(Fld::new("plural", s()))
            .field(Fld::new("label", s()))
            .field(Fld::new("description", named(STRING)))
            .field(Fld::new("custom", b()).describe("A custom object defined by the tenant."))
            .field(Fld::new("canCreate", b()))
            .field(Fld::new("canUpdate", b()))
            .field(Fld::new("canDelete", b()))
            .field(Fld::new("fields", nn_list_nn(FIELD_INFO)))
            .done(),
    );
    types.push(
        Obj::new(METADATA)
            .describe("The models and fields of the caller's tenant.")
            .field(Fld::new("version", nn(INT)).describe("The tenant's metadata version this schema reflects."))
            .field(Fld::new("models", nn_list_nn(MODEL_INFO)))
            .done(),
    );
    types.push(
        Obj::new(CUSTOM_DEFINITION)
            .describe("A stored custom field or object definition.")
            .field(Fld::new("kind", s()).describe("field or object."))
            .field(Fld::new("model", s()).describe("The model of a field; the object's own name."))
            .field(Fld::new("name", named(STRING)).describe("The field's name; null for an object."))
            .field(Fld::new("active", b()))
            .field(Fld::new("definition", nn(JSON)).describe("The definition, in the JSON form of ModelDef / FieldDef."))
            .field(Fld::new("updatedAt", nn(DATETIME)))
            .field(Fld::new("updatedBy", named(STRING)))
            .done(),
    );
    types.push(
        Obj::new(METADATA_CHANGE)
            .describe("The result of a metadata change.")
            .field(Fld::new("version", nn(INT)).describe("The tenant's new metadata version."))
            .done(),
    );
    let query = query
        .field(Fld::new(roots::METADATA, nn(METADATA)).describe(
            "The models and fields the caller can read, with types, labels, options and checks: enough to render forms and tables.",
        ))
        .field(
            Fld::new(roots::CUSTOM_DEFINITIONS, nn_list_nn(CUSTOM_DEFINITION))
                .describe("The tenant's custom field and object definitions, deactivated ones included (roles with the metadata right).")
                .arg(Arg::new("model", named(STRING)).describe("Only definitions of this model.")),
        );
    let change = |name: &str, description: &str, args: &[&str]| {
        let mut f = Fld::new(name, nn(METADATA_CHANGE)).describe(description);
        for a in args {
            f = f.arg(Arg::new(a, nn(if *a == "definition" { JSON } else { STRING })));
        }
        f
    };
    let mutation = mutation
        .field(change(
            roots::CREATE_CUSTOM_FIELD,
            "Adds a custom field to a model (JSON form of FieldDef). Administrators only; audited.",
            &["model", "definition"],
        ))
        .field(change(
            roots::UPDATE_CUSTOM_FIELD,
            "Replaces a custom field's definition; its name and type stay, options can be added but not removed.",
            &["model", "name", "definition"],
        ))
        .field(change(roots::ACTIVATE_CUSTOM_FIELD, "Shows a deactivated custom field again.", &["model", "name"]))
        .field(change(
            roots::DEACTIVATE_CUSTOM_FIELD,
            "Hides a custom field from the schema; its values and history are kept.",
            &["model", "name"],
        ))
        .field(change(roots::DELETE_CUSTOM_FIELD, "Removes a custom field with its values and history.", &["model", "name"]))
        .field(change(
            roots::CREATE_CUSTOM_OBJECT,
            "Adds a custom object (JSON form of ModelDef); it gets the whole generated API.",
            &["definition"],
        ))
        .field(change(
            roots::UPDATE_CUSTOM_OBJECT,
            "Replaces a custom object's definition; fields keep their types, removed fields lose their values.",
            &["name", "definition"],
        ))
        .field(change(roots::DELETE_CUSTOM_OBJECT, "Removes a custom object that has no records.", &["name"]));
    (query, mutation)
}

/// The engines' types, root queries and mutations.
#[allow(clippy::too_many_lines)] // one type after the other, as the SDL lists them
pub(super) fn engines(types: &mut Vec<ExtendedType>, query: Obj, mutation: Obj) -> (Obj, Obj) {
    let s = || nn(STRING);
    let os = || named(STRING);
    let id = || named(ID);
    let int = || nn(INT);
    types.push(
        Obj::new(TAG_OUTCOME)
            .describe("What a re-tagging run did.")
            .field(Fld::new("matched", int()).describe("Leads looked at."))
            .field(Fld::new("changed", int()).describe("Leads that got at least one new tag."))
            .field(Fld::new("tagsAdded", int()))
            .done(),
    );
    types.push(
        Obj::new(ROUTING_DECISION)
            .describe("Who got a lead, by which rule, and why (also recorded as an Assignment).")
            .field(Fld::new("lead", nn(ID)))
            .field(Fld::new("member", id()))
            .field(Fld::new("memberName", os()))
            .field(Fld::new("rule", id()))
            .field(Fld::new("strategy", os()))
            .field(Fld::new("reason", s()))
            .done(),
    );
    types.push(
        Input::new(SOCIAL_EVENT_INPUT)
            .describe("A post, reply, DM or mention from a social platform.")
            .field(Arg::new("platform", s()))
            .field(Arg::new("kind", s()).describe("POST, REPLY, DM or MENTION."))
            .field(Arg::new("externalId", s()).describe("The platform's id: with `platform`, the idempotency key."))
            .field(Arg::new("thread", os()).describe("The external id of the conversation's first event."))
            .field(Arg::new("authorHandle", s()))
            .field(Arg::new("authorName", os()))
            .field(Arg::new("text", os()))
            .field(Arg::new("url", os()))
            .field(Arg::new("occurredAt", named(DATETIME)))
            .done(),
    );
    types.push(
        Obj::new(INGEST_ITEM)
            .field(Fld::new("externalId", s()))
            .field(Fld::new("status", s()).describe("CREATED or DUPLICATE."))
            .field(Fld::new("socialEvent", id()))
            .field(Fld::new("contact", id()))
            .field(Fld::new("lead", id()))
            .field(Fld::new("ticket", id()))
            .done(),
    );
    types.push(
        Obj::new(INGEST_OUTCOME)
            .describe("What an ingestion batch did.")
            .field(Fld::new("received", int()))
            .field(Fld::new("created", int()))
            .field(Fld::new("duplicates", int()))
            .field(Fld::new("contactsCreated", int()))
            .field(Fld::new("leadsCreated", int()))
            .field(Fld::new("ticketsCreated", int()))
            .field(Fld::new("items", nn_list_nn(INGEST_ITEM)))
            .done(),
    );
    types.push(
        Obj::new(REPORT_BUCKET)
            .field(Fld::new("key", os()).describe("The group's value (a member id for owners); null for none."))
            .field(Fld::new("name", os()).describe("The member's name, for owner buckets."))
            .field(Fld::new("count", int()))
            .done(),
    );
    types.push(
        Obj::new(LEAD_REPORT)
            .describe("Live leads the caller may read. A breakdown whose field the caller may not read is null.")
            .field(Fld::new("total", named(INT)).describe("Null when the caller may not read `status`."))
            .field(Fld::new("byStatus", nn_list(REPORT_BUCKET)))
            .field(Fld::new("bySource", nn_list(REPORT_BUCKET)))
            .field(Fld::new("byOwner", nn_list(REPORT_BUCKET)))
            .done(),
    );
    types.push(
        Obj::new(FUNNEL_STAGE)
            .describe("Leads that got at least as far as a stage.")
            .field(Fld::new("stage", s()))
            .field(Fld::new("reached", int()))
            .field(Fld::new("conversionFromPrevious", named(FLOAT)))
            .field(Fld::new("conversionFromStart", named(FLOAT)))
            .done(),
    );
    types.push(
        Obj::new(STAGE_TIME)
            .describe("Time spent in a stage, from the stage transitions.")
            .field(Fld::new("stage", s()))
            .field(Fld::new("completed", int()).describe("Stays that ended."))
            .field(Fld::new("averageSeconds", named(FLOAT)))
            .field(Fld::new("current", int()).describe("Leads in the stage now."))
            .done(),
    );
    types.push(
        Obj::new(REP_WORKLOAD)
            .field(Fld::new("member", nn(ID)))
            .field(Fld::new("name", os()).describe("Null when the caller may not read members' `name`."))
            .field(Fld::new("openLeads", int()))
            .field(Fld::new("openTickets", named(INT)).describe("Null when the caller may not read tickets' `assignee` or `status`."))
            .field(Fld::new("capacity", named(INT)))
            .field(Fld::new("utilization", named(FLOAT)).describe("Open leads over capacity."))
            .done(),
    );
    types.push(
        Obj::new(REPORT_SUMMARY)
            .describe(
                "The lead funnel, time in stage, leads by source/status/owner and rep workload, over what the caller may read. \
                 A section that needs a field the caller may not read (`status` for the funnel, `owner` and `status` for the \
                 workload) is null.",
            )
            .field(Fld::new("leads", nn(LEAD_REPORT)))
            .field(Fld::new("funnel", nn_list(FUNNEL_STAGE)))
            .field(Fld::new("conversionRate", named(FLOAT)).describe("Converted over new."))
            .field(Fld::new("timeInStage", nn_list(STAGE_TIME)))
            .field(Fld::new("workload", nn_list(REP_WORKLOAD)))
            .done(),
    );
    types.push(
        Obj::new(WEBHOOK_DELIVERY)
            .describe("One event's delivery to one webhook, with its attempts.")
            .field(Fld::new("id", nn(ID)))
            .field(Fld::new("webhook", nn(ID)))
            .field(Fld::new("eventSeq", int()))
            .field(Fld::new("eventType", s()))
            .field(Fld::new("status", s()).describe("PENDING, DELIVERED or FAILED (given up)."))
            .field(Fld::new("attempts", int()))
            .field(Fld::new("lastStatus", named(INT)).describe("The HTTP status of the last attempt."))
            .field(Fld::new("lastError", os()))
            .field(Fld::new("nextAttemptAt", named(DATETIME)))
            .field(Fld::new("createdAt", nn(DATETIME)))
            .field(Fld::new("deliveredAt", named(DATETIME)))
            .done(),
    );
    let query = query
        .field(Fld::new(roots::REPORT_SUMMARY, nn(REPORT_SUMMARY)).describe(
            "The summary report: lead funnel and conversion rates, average time in each stage, leads by source / status / owner, rep workload.",
        ))
        .field(
            Fld::new(roots::WEBHOOK_DELIVERIES, nn_list_nn(WEBHOOK_DELIVERY))
                .describe("Deliveries of the tenant's webhooks, newest first.")
                .arg(Arg::new("webhook", named(ID)))
                .arg(Arg::new("first", named(INT))),
        );
    let where_arg = || Arg::new("where", named("LeadWhereInput"));
    let mutation = mutation
        .field(
            Fld::new(roots::TAG_LEADS, nn(TAG_OUTCOME))
                .describe("Applies the enabled tag rules to the leads matching `where` that the caller may update.")
                .arg(where_arg()),
        )
        .field(
            Fld::new(roots::ROUTE_LEADS, nn_list_nn(ROUTING_DECISION))
                .describe("Routes the unassigned leads matching `where` that the caller may update (also assigned ones with `reassign: true`); availability is judged at `at` (now by default).")
                .arg(where_arg())
                .arg(Arg::new("reassign", named(BOOLEAN)))
                .arg(Arg::new("at", named(DATETIME))),
        )
        .field(
            Fld::new(roots::INGEST_SOCIAL_EVENTS, nn(INGEST_OUTCOME))
                .describe("Ingests a batch of social events (at most 1000), idempotent by platform and external id.")
                .arg(Arg::new("events", nn_list_nn(SOCIAL_EVENT_INPUT))),
        );
    (query, mutation)
}

/// Files: starting an upload and signing a download (see `crm_engines::files`).
pub(super) fn files(types: &mut Vec<ExtendedType>, query: Obj, mutation: Obj) -> (Obj, Obj) {
    types.push(
        Obj::new(ATTACHMENT_UPLOAD)
            .describe("A new attachment (PENDING) and where to send its bytes: `PUT <url>` with the `Content-Type` given and exactly the declared size, before `expiresAt`.")
            .field(Fld::new("id", nn(ID)).describe("The attachment."))
            .field(Fld::new("url", nn(STRING)).describe("The signed upload URL."))
            .field(Fld::new("method", nn(STRING)).describe("PUT."))
            .field(Fld::new("contentType", nn(STRING)).describe("The `Content-Type` header the upload must carry."))
            .field(Fld::new("expiresAt", nn(DATETIME)))
            .done(),
    );
    types.push(
        Obj::new(FILE_LINK)
            .describe("A signed download URL: a GET needs no token until `expiresAt`.")
            .field(Fld::new("url", nn(STRING)))
            .field(Fld::new("expiresAt", nn(DATETIME)))
            .done(),
    );
    let query = query.field(
        Fld::new(roots::ATTACHMENT_DOWNLOAD, nn(FILE_LINK))
            .describe("A signed, short-lived download URL of a READY attachment the caller may read (and whose record they may read).")
            .arg(Arg::new("id", nn(ID))),
    );
    let mutation = mutation.field(
        Fld::new(roots::START_ATTACHMENT_UPLOAD, nn(ATTACHMENT_UPLOAD))
            .describe("Attaches a file to a record the caller may read: creates the Attachment (PENDING) and answers with a signed upload URL. Size and media type are checked against the server's limits.")
            .arg(Arg::new("subject", nn(RECORD_REF_INPUT)).describe("The record, `{type, id}`."))
            .arg(Arg::new("fileName", nn(STRING)))
            .arg(Arg::new("contentType", nn(STRING)).describe("The media type, e.g. `application/pdf`."))
            .arg(Arg::new("size", nn(LONG)).describe("Bytes.")),
    );
    (query, mutation)
}
