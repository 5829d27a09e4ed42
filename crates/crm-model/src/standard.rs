//! The standard catalog every tenant has (see the domain guide), declared with the public builder
//! API, so it doubles as the reference example of how to declare models.

use serde_json::json;

use crate::catalog::Catalog;
use crate::def::{FieldDef as F, ModelDef, OnDelete};
use crate::error::MetadataError;

/// Lead lifecycle stages, in funnel order.
pub const LEAD_STATUSES: &[&str] = &["NEW", "QUALIFIED", "CONTACTED", "CONVERTED", "REJECTED"];

/// The standard model definitions, in dependency-free declaration order.
#[must_use]
pub fn standard_models() -> Vec<ModelDef> {
    vec![
        ModelDef::new("Member")
            .describe("A person of the tenant who works in the CRM; the pool routing assigns from.")
            .field(F::text("name").required().searchable().length(Some(1), Some(200)))
            .field(F::email("email").unique().searchable())
            .field(F::text("sub").unique().describe("The ZITADEL user id (`sub` claim)."))
            .field(F::tags("skills").describe("What the member is good at; skill routing matches on it."))
            .field(F::tags("teams").describe("The routing pools the member belongs to."))
            .field(F::int("capacity").range(Some(0.0), None).describe("Most open records at once; null for no limit."))
            .field(F::text("timeZone").describe("IANA time zone of the working hours, e.g. Europe/Berlin."))
            .field(F::json("workingHours").describe("Working hours per weekday, e.g. {\"mon\": [\"09:00\", \"17:00\"]}."))
            .field(F::boolean("away").default_value(json!(false)))
            .field(F::boolean("active").default_value(json!(true))),
        ModelDef::new("Account")
            .describe("A company. Accounts form a hierarchy through `parent`.")
            .owner("owner")
            .field(F::text("name").required().searchable().length(Some(1), Some(300)))
            .field(F::text("domain").indexed().searchable())
            .field(F::url("website"))
            .field(F::text("industry"))
            .field(F::select("size", &["MICRO", "SMALL", "MEDIUM", "LARGE", "ENTERPRISE"]))
            .field(F::phone("phone"))
            .field(F::relation("parent", "Account").describe("The parent company."))
            .field(F::inverse("children", "Account", "parent").describe("Subsidiaries."))
            .field(F::relation("owner", "Member"))
            .field(F::inverse("contacts", "Contact", "account"))
            .field(F::inverse("opportunities", "Opportunity", "account")),
        ModelDef::new("Contact")
            .describe("A person the tenant deals with.")
            .owner("owner")
            .field(F::text("firstName").searchable())
            .field(F::text("lastName").required().searchable().length(Some(1), Some(200)))
            .field(F::email("email").indexed().searchable())
            .field(F::phone("phone"))
            .field(F::tags("emails").describe("Further e-mail addresses."))
            .field(F::tags("phones").describe("Further phone numbers."))
            .field(
                F::tags("socialHandles").describe("Handles as `platform:handle`, e.g. `x:@ada`; social ingestion matches authors on them."),
            )
            .field(F::relation("account", "Account"))
            .field(F::relation("owner", "Member"))
            .field(F::inverse("leads", "Lead", "contact"))
            .field(F::inverse("tickets", "Ticket", "contact"))
            .index(&["account", "createdAt_DESC"]),
        ModelDef::new("Lead")
            .describe("A potential customer moving through the funnel.")
            .owner("owner")
            .field(F::text("name").required().searchable().length(Some(1), Some(300)))
            .field(F::email("email").indexed().searchable())
            .field(F::phone("phone"))
            .field(F::text("company").searchable())
            .field(F::select("source", &["WEB", "SOCIAL", "REFERRAL", "EVENT", "EMAIL", "PHONE", "OTHER"]))
            .field(F::select("status", LEAD_STATUSES).required().tracked().stage().indexed().default_value(json!("NEW")))
            .field(F::int("score").range(Some(0.0), Some(100.0)))
            .field(F::tags("tags"))
            .field(F::relation("owner", "Member").tracked().describe("The assigned sales rep."))
            .field(F::relation("contact", "Contact").describe("Set once converted."))
            .field(F::relation("account", "Account").describe("Set once converted."))
            .field(F::datetime("convertedAt"))
            .field(F::inverse("tagAssignments", "TagAssignment", "lead").describe("Which rule set which tag."))
            .field(F::inverse("assignments", "Assignment", "lead").describe("Routing decisions, with rule and reason."))
            .index(&["status", "createdAt_DESC"])
            .index(&["owner", "status", "createdAt_DESC"]),
        ModelDef::new("Opportunity")
            .plural("opportunities")
            .describe("A deal in the pipeline.")
            .owner("owner")
            .field(F::text("name").required().searchable())
            .field(F::relation("account", "Account").on_delete(OnDelete::Cascade))
            .field(F::money("amount").range(Some(0.0), None))
            .field(
                F::select("stage", &["PROSPECTING", "QUALIFICATION", "PROPOSAL", "NEGOTIATION", "CLOSED_WON", "CLOSED_LOST"])
                    .required()
                    .tracked()
                    .stage()
                    .default_value(json!("PROSPECTING")),
            )
            .field(F::date("expectedCloseDate"))
            .field(F::int("probability").range(Some(0.0), Some(100.0)))
            .field(F::relation("owner", "Member"))
            .index(&["stage", "createdAt_DESC"]),
        ModelDef::new("Ticket")
            .describe("An inquiry handled by staff: progress, assignee, contact dates.")
            .owner("assignee")
            .field(F::text("subject").required().searchable().length(Some(1), Some(500)))
            .field(F::long_text("description").searchable())
            .field(
                F::select("status", &["OPEN", "IN_PROGRESS", "WAITING", "RESOLVED", "CLOSED"])
                    .required()
                    .tracked()
                    .stage()
                    .default_value(json!("OPEN")),
            )
            .field(F::select("priority", &["LOW", "NORMAL", "HIGH", "URGENT"]).default_value(json!("NORMAL")))
            .field(F::relation("contact", "Contact"))
            .field(F::relation("assignee", "Member").tracked())
            .field(F::datetime("lastContactedAt"))
            .field(F::datetime("nextContactAt"))
            .index(&["status", "createdAt_DESC"]),
        ModelDef::new("Activity")
            .plural("activities")
            .describe("An interaction or note on any record.")
            .owner("author")
            .field(F::select("kind", &["CALL", "EMAIL", "MEETING", "NOTE", "TASK", "SOCIAL"]).required())
            .field(F::polymorphic("subject", &["Account", "Contact", "Lead", "Opportunity", "Ticket"]).describe("The record it is about."))
            .field(F::text("title").searchable())
            .field(F::long_text("body").searchable())
            .field(F::datetime("occurredAt").indexed())
            .field(F::relation("author", "Member")),
        ModelDef::new("SocialEvent")
            .describe("A post, reply, DM or mention ingested from a social platform.")
            .field(F::text("platform").required().length(Some(1), Some(50)))
            .field(F::select("kind", &["POST", "REPLY", "DM", "MENTION"]).required())
            .field(F::text("externalId").required().indexed().describe("The platform's id; with `platform` the idempotency key."))
            .field(F::text("thread").indexed())
            .field(F::text("authorHandle").searchable())
            .field(F::long_text("text").searchable())
            .field(F::url("url"))
            .field(F::datetime("occurredAt"))
            .field(F::relation("contact", "Contact"))
            .field(F::relation("lead", "Lead"))
            .field(F::relation("ticket", "Ticket")),
        ModelDef::new("TagRule")
            .describe("Adds tags to every lead its condition matches, on create and update and on demand.")
            .field(F::text("name").required().searchable().length(Some(1), Some(200)))
            .field(F::json("condition").describe("A `LeadWhere` filter, as GraphQL takes it; null matches every lead."))
            .field(F::tags("tags").required().describe("The tags added."))
            .field(F::int("priority").default_value(json!(100)).describe("Lower runs first."))
            .field(F::boolean("enabled").default_value(json!(true)))
            .field(F::inverse("assignments", "TagAssignment", "rule")),
        ModelDef::new("TagAssignment")
            .describe("A tag on a lead and the rule that set it.")
            .field(F::relation("lead", "Lead").required().on_delete(OnDelete::Cascade))
            .field(F::text("tag").required().indexed())
            .field(F::relation("rule", "TagRule")),
        ModelDef::new("RoutingRule")
            .describe("Assigns matching leads to a member of its pool by its strategy; the first rule with a qualifying member wins.")
            .field(F::text("name").required().searchable().length(Some(1), Some(200)))
            .field(F::json("condition").describe("A `LeadWhere` filter; null matches every lead."))
            .field(F::tags("pool").describe("Teams whose active members may be chosen; empty for every active member."))
            .field(F::select("strategy", &["ROUND_ROBIN", "LOAD_BALANCED", "SKILL_MATCH"]).required().default_value(json!("ROUND_ROBIN")))
            .field(F::tags("requiredSkills").describe("Skills every chosen member must have."))
            .field(F::boolean("respectWorkingHours").default_value(json!(true)).describe("Skip members outside their working hours."))
            .field(F::int("priority").default_value(json!(100)).describe("Lower is tried first."))
            .field(F::boolean("enabled").default_value(json!(true)))
            .field(F::relation("lastAssigned", "Member").describe("The round-robin position: the member chosen last."))
            .field(F::inverse("assignments", "Assignment", "rule")),
        ModelDef::new("Assignment")
            .describe("A routing decision: who got the lead, by which rule, and why.")
            .field(F::relation("lead", "Lead").required().on_delete(OnDelete::Cascade))
            .field(F::relation("member", "Member"))
            .field(F::relation("rule", "RoutingRule"))
            .field(F::text("strategy"))
            .field(F::long_text("reason")),
        ModelDef::new("AutomationRule")
            .describe("On an event of its type whose record matches the condition, sets fields of that record (e.g. qualifies new leads).")
            .field(F::text("name").required().searchable().length(Some(1), Some(200)))
            .field(F::text("event").required().describe("The event type, e.g. `lead.created`."))
            .field(F::json("condition").describe("A where filter on the event's model; null matches every record."))
            .field(
                F::json("set")
                    .required()
                    .describe("Field values to set, as the update mutation takes them, e.g. {\"status\": \"QUALIFIED\"}."),
            )
            .field(F::int("priority").default_value(json!(100)))
            .field(F::boolean("enabled").default_value(json!(true))),
        ModelDef::new("IngestionRule")
            .describe("Turns matching social conversations into leads or tickets.")
            .field(F::text("name").required().searchable().length(Some(1), Some(200)))
            .field(F::json("condition").describe("A `SocialEventWhere` filter; null matches every event."))
            .field(F::select("action", &["LEAD", "TICKET", "NONE"]).required())
            .field(F::int("priority").default_value(json!(100)))
            .field(F::boolean("enabled").default_value(json!(true))),
        ModelDef::new("Webhook")
            .describe("Posts the tenant's events of the subscribed types to a URL, signed with the secret.")
            .field(F::url("url").required())
            .field(F::tags("events").required().describe("Event types, e.g. `lead.created`; `lead.*` or `*` for more."))
            .field(F::text("secret").required().length(Some(16), Some(200)).describe("Signs every delivery (HMAC-SHA256)."))
            .field(F::text("description"))
            .field(F::boolean("active").default_value(json!(true))),
        ModelDef::new("Attachment")
            .describe(
                "A file attached to a record. Made by `startAttachmentUpload`, which answers with a signed URL to PUT the \
                 bytes to; read through a signed URL from `attachmentDownload`. Destroyed with the record it is attached to.",
            )
            .field(
                F::polymorphic("subject", &["*"])
                    .required()
                    .read_only()
                    .on_delete(OnDelete::Cascade)
                    .describe("The record the file is attached to (any model)."),
            )
            .field(
                F::text("fileName")
                    .required()
                    .searchable()
                    .length(Some(1), Some(255))
                    .describe("The file's name, as uploaded; may be renamed."),
            )
            .field(F::text("contentType").required().read_only().describe("The media type the upload was declared and stored with."))
            .field(F::int("size").required().read_only().describe("Bytes."))
            .field(
                F::select("status", &["PENDING", "READY"])
                    .required()
                    .read_only()
                    .default_value(json!("PENDING"))
                    .describe("PENDING until the bytes are uploaded, then READY."),
            )
            .field(F::text("sha256").read_only().describe("The SHA-256 of the stored bytes, hex; set when READY."))
            .field(F::text("uploadedBy").read_only().describe("The user (`sub`) who attached it: its owner for the row rules."))
            .owner("uploadedBy")
            .index(&["subject", "createdAt_DESC"]),
    ]
}

/// The standard catalog, resolved.
///
/// # Errors
/// Never in practice (a test resolves it); typed so callers never unwrap.
pub fn standard_catalog() -> Result<Catalog, MetadataError> {
    crate::resolve(&standard_models())
}
