//! The names of the generated GraphQL API, decided once: the platform's own types and root
//! fields ([`builtin`], [`roots`]), and each model's ([`ApiNames`], derived when metadata is
//! resolved and stored on its [`crate::Model`]). The schema generator only reads them, and
//! resolution refuses a model whose names would clash with any of them.

use indexmap::IndexMap;

use crate::names::FieldName;

/// The platform's own GraphQL types.
pub mod builtin {
    /// The query root.
    pub const QUERY: &str = "Query";
    /// The mutation root.
    pub const MUTATION: &str = "Mutation";
    /// The subscription root (live changes, over WebSocket).
    pub const SUBSCRIPTION: &str = "Subscription";
    /// What happened to a record: `CREATED`, `UPDATED`, `DELETED`.
    pub const CHANGE_KIND: &str = "ChangeKind";
    /// The interface of every record.
    pub const NODE: &str = "Node";
    /// A connection's page information.
    pub const PAGE_INFO: &str = "PageInfo";
    /// A calendar date.
    pub const DATE: &str = "Date";
    /// An instant.
    pub const DATETIME: &str = "DateTime";
    /// An exact decimal number.
    pub const DECIMAL: &str = "Decimal";
    /// A 64-bit integer (the `int` fields).
    pub const LONG: &str = "Long";
    /// Any JSON value.
    pub const JSON: &str = "JSON";
    /// An amount with its currency.
    pub const MONEY: &str = "Money";
    /// An amount with its currency, as input.
    pub const MONEY_INPUT: &str = "MoneyInput";
    /// A reference to a record of one of several models.
    pub const RECORD_REF: &str = "RecordRef";
    /// A reference to a record of one of several models, as input.
    pub const RECORD_REF_INPUT: &str = "RecordRefInput";
    /// A change of a tracked field.
    pub const HISTORY: &str = "History";
    /// A stay in a stage.
    pub const STAGE_TRANSITION: &str = "StageTransition";
    /// An entry of a record's timeline.
    pub const TIMELINE_ENTRY: &str = "TimelineEntry";
    /// The metadata API: a field's value checks.
    pub const FIELD_VALIDATION: &str = "FieldValidation";
    /// An entry of the audit log.
    pub const AUDIT_ENTRY: &str = "AuditEntry";
    /// The metadata API: the tenant's schema.
    pub const METADATA: &str = "Metadata";
    /// The metadata API: one model.
    pub const MODEL_INFO: &str = "ModelInfo";
    /// The metadata API: one field.
    pub const FIELD_INFO: &str = "FieldInfo";
    /// The metadata API: an option of a select field and what people see for it.
    pub const OPTION_LABEL: &str = "OptionLabel";
    /// The metadata API: a stored custom definition.
    pub const CUSTOM_DEFINITION: &str = "CustomDefinition";
    /// The metadata API: what a change did.
    pub const METADATA_CHANGE: &str = "MetadataChange";
    /// Tagging: what re-tagging did.
    pub const TAG_OUTCOME: &str = "TagOutcome";
    /// Routing: one lead's routing decision.
    pub const ROUTING_DECISION: &str = "RoutingDecision";
    /// Social ingestion: one event, as input.
    pub const SOCIAL_EVENT_INPUT: &str = "SocialEventInput";
    /// Social ingestion: what a batch did.
    pub const INGEST_OUTCOME: &str = "IngestOutcome";
    /// Social ingestion: what one event did.
    pub const INGEST_ITEM: &str = "IngestItem";
    /// Reports: the summary.
    pub const REPORT_SUMMARY: &str = "ReportSummary";
    /// Reports: leads.
    pub const LEAD_REPORT: &str = "LeadReport";
    /// Reports: one bucket of a breakdown.
    pub const REPORT_BUCKET: &str = "ReportBucket";
    /// Reports: one stage of a funnel.
    pub const FUNNEL_STAGE: &str = "FunnelStage";
    /// Reports: time spent in a stage.
    pub const STAGE_TIME: &str = "StageTime";
    /// Reports: one rep's workload.
    pub const REP_WORKLOAD: &str = "RepWorkload";
    /// Webhooks: one delivery.
    pub const WEBHOOK_DELIVERY: &str = "WebhookDelivery";
    /// Files: a signed upload URL for a new attachment.
    pub const ATTACHMENT_UPLOAD: &str = "AttachmentUpload";
    /// Files: a signed download URL.
    pub const FILE_LINK: &str = "FileLink";
}

/// Every type the platform defines itself, GraphQL's own scalars included: exactly the types of
/// a schema besides the models' (a test holds the generated schema to this list).
pub const BUILTIN_TYPES: &[&str] = &[
    "String",
    "Int",
    "Float",
    "Boolean",
    "ID",
    builtin::QUERY,
    builtin::MUTATION,
    builtin::SUBSCRIPTION,
    builtin::CHANGE_KIND,
    builtin::NODE,
    builtin::PAGE_INFO,
    builtin::DATE,
    builtin::DATETIME,
    builtin::DECIMAL,
    builtin::LONG,
    builtin::JSON,
    builtin::MONEY,
    builtin::MONEY_INPUT,
    builtin::RECORD_REF,
    builtin::RECORD_REF_INPUT,
    builtin::HISTORY,
    builtin::STAGE_TRANSITION,
    builtin::TIMELINE_ENTRY,
    builtin::FIELD_VALIDATION,
    builtin::AUDIT_ENTRY,
    builtin::METADATA,
    builtin::MODEL_INFO,
    builtin::FIELD_INFO,
    builtin::OPTION_LABEL,
    builtin::CUSTOM_DEFINITION,
    builtin::METADATA_CHANGE,
    builtin::TAG_OUTCOME,
    builtin::ROUTING_DECISION,
    builtin::SOCIAL_EVENT_INPUT,
    builtin::INGEST_OUTCOME,
    builtin::INGEST_ITEM,
    builtin::REPORT_SUMMARY,
    builtin::LEAD_REPORT,
    builtin::REPORT_BUCKET,
    builtin::FUNNEL_STAGE,
    builtin::STAGE_TIME,
    builtin::REP_WORKLOAD,
    builtin::WEBHOOK_DELIVERY,
    builtin::ATTACHMENT_UPLOAD,
    builtin::FILE_LINK,
];

/// Type names no model may take though no schema defines them: a spelling of a platform type
/// that only differs in case.
pub const RESERVED_TYPES: &[&str] = &["Json"];

/// The platform's own root fields.
pub mod roots {
    /// Any record by id.
    pub const NODE: &str = "node";
    /// The audit log.
    pub const AUDIT_LOG: &str = "auditLog";
    /// The tenant's schema.
    pub const METADATA: &str = "metadata";
    /// The stored custom definitions.
    pub const CUSTOM_DEFINITIONS: &str = "customDefinitions";
    /// Adds a custom field.
    pub const CREATE_CUSTOM_FIELD: &str = "createCustomField";
    /// Changes a custom field.
    pub const UPDATE_CUSTOM_FIELD: &str = "updateCustomField";
    /// Shows a custom field again.
    pub const ACTIVATE_CUSTOM_FIELD: &str = "activateCustomField";
    /// Hides a custom field.
    pub const DEACTIVATE_CUSTOM_FIELD: &str = "deactivateCustomField";
    /// Removes a custom field.
    pub const DELETE_CUSTOM_FIELD: &str = "deleteCustomField";
    /// Adds a custom object.
    pub const CREATE_CUSTOM_OBJECT: &str = "createCustomObject";
    /// Changes a custom object.
    pub const UPDATE_CUSTOM_OBJECT: &str = "updateCustomObject";
    /// Removes a custom object.
    pub const DELETE_CUSTOM_OBJECT: &str = "deleteCustomObject";
    /// Re-tags leads.
    pub const TAG_LEADS: &str = "tagLeads";
    /// Routes leads.
    pub const ROUTE_LEADS: &str = "routeLeads";
    /// Ingests social events.
    pub const INGEST_SOCIAL_EVENTS: &str = "ingestSocialEvents";
    /// The report summary.
    pub const REPORT_SUMMARY: &str = "reportSummary";
    /// Webhook deliveries.
    pub const WEBHOOK_DELIVERIES: &str = "webhookDeliveries";
    /// Starts a file upload.
    pub const START_ATTACHMENT_UPLOAD: &str = "startAttachmentUpload";
    /// A file's download URL.
    pub const ATTACHMENT_DOWNLOAD: &str = "attachmentDownload";
}

/// Every root field the platform defines itself.
pub const BUILTIN_ROOTS: &[&str] = &[
    roots::NODE,
    roots::AUDIT_LOG,
    roots::METADATA,
    roots::CUSTOM_DEFINITIONS,
    roots::CREATE_CUSTOM_FIELD,
    roots::UPDATE_CUSTOM_FIELD,
    roots::ACTIVATE_CUSTOM_FIELD,
    roots::DEACTIVATE_CUSTOM_FIELD,
    roots::DELETE_CUSTOM_FIELD,
    roots::CREATE_CUSTOM_OBJECT,
    roots::UPDATE_CUSTOM_OBJECT,
    roots::DELETE_CUSTOM_OBJECT,
    roots::TAG_LEADS,
    roots::ROUTE_LEADS,
    roots::INGEST_SOCIAL_EVENTS,
    roots::REPORT_SUMMARY,
    roots::WEBHOOK_DELIVERIES,
    roots::START_ATTACHMENT_UPLOAD,
    roots::ATTACHMENT_DOWNLOAD,
];

/// The GraphQL names of one model: its types and root fields. Derived from the model's name,
/// plural and select fields when metadata is resolved ([`ApiNames::derive`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiNames {
    /// The object type (`Lead`).
    pub object: String,
    /// `LeadWhereInput`.
    pub where_input: String,
    /// `LeadWhereUniqueInput`.
    pub where_unique_input: String,
    /// `LeadManyWhereInput`: a to-many relation's quantifiers.
    pub many_where_input: String,
    /// `LeadOrderByInput`.
    pub order_by_input: String,
    /// `LeadCreateInput`.
    pub create_input: String,
    /// `LeadUpdateInput`.
    pub update_input: String,
    /// `LeadUpsertInput`.
    pub upsert_input: String,
    /// `LeadUpdateManyInput`.
    pub update_many_input: String,
    /// `LeadCreateOneInlineInput`: a to-one relation written inline.
    pub create_one_inline_input: String,
    /// `LeadCreateManyInlineInput`: a to-many relation written inline on create.
    pub create_many_inline_input: String,
    /// `LeadUpdateOneInlineInput`: a to-one relation written inline on update.
    pub update_one_inline_input: String,
    /// `LeadUpdateManyInlineInput`: a to-many relation written inline on update.
    pub update_many_inline_input: String,
    /// `LeadConnection`.
    pub connection: String,
    /// `LeadEdge`.
    pub edge: String,
    /// `LeadAggregate`.
    pub aggregate: String,
    /// `LeadNumericAggregate`.
    pub numeric_aggregate: String,
    /// `LeadGroupBy`: one group.
    pub group_by: String,
    /// `LeadGroupByKey`: a group's key.
    pub group_by_key: String,
    /// `LeadGroupByField`: the fields a group may be keyed by.
    pub group_by_field: String,
    /// `LeadChange`: one change of a record, as a subscription delivers it.
    pub change: String,
    /// The enum of each select and multi-select field (`LeadStatus`).
    pub enums: IndexMap<FieldName, String>,
    /// The connection field of each to-many relation (`contacts` → `contactsConnection`).
    pub connection_fields: IndexMap<FieldName, String>,
    /// `lead`.
    pub one: String,
    /// `leads`.
    pub list: String,
    /// `leadsConnection`.
    pub list_connection: String,
    /// `leadsTrash`.
    pub trash: String,
    /// `leadsGroupBy`.
    pub list_group_by: String,
    /// `createLead`.
    pub create: String,
    /// `updateLead`.
    pub update: String,
    /// `deleteLead` (to the trash).
    pub delete: String,
    /// `restoreLead`.
    pub restore: String,
    /// `destroyLead` (for good).
    pub destroy: String,
    /// `upsertLead`.
    pub upsert: String,
    /// `updateManyLeadsConnection`.
    pub update_many: String,
    /// `deleteManyLeadsConnection`.
    pub delete_many: String,
    /// `leadChanged`: the subscription to changes.
    pub changed: String,
}

/// `s` with its first character upper-cased (`status` → `Status`).
fn pascal(s: &str) -> String {
    let mut c = s.chars();
    c.next().map(|f| f.to_uppercase().collect::<String>() + c.as_str()).unwrap_or_default()
}

impl ApiNames {
    /// The names of the model `name` (`Lead`), read one at a time as `singular` (`lead`) and
    /// listed as `plural` (`leads`), with the select and multi-select fields `enum_fields` and
    /// the to-many relations `to_many`.
    #[must_use]
    pub fn derive<'f>(
        name: &str,
        singular: &str,
        plural: &str,
        enum_fields: impl IntoIterator<Item = &'f FieldName>,
        to_many: impl IntoIterator<Item = &'f FieldName>,
    ) -> ApiNames {
        let t = |suffix: &str| format!("{name}{suffix}");
        let plural_pascal = pascal(plural);
        ApiNames {
            object: name.to_owned(),
            where_input: t("WhereInput"),
            where_unique_input: t("WhereUniqueInput"),
            many_where_input: t("ManyWhereInput"),
            order_by_input: t("OrderByInput"),
            create_input: t("CreateInput"),
            update_input: t("UpdateInput"),
            upsert_input: t("UpsertInput"),
            update_many_input: t("UpdateManyInput"),
            create_one_inline_input: t("CreateOneInlineInput"),
            create_many_inline_input: t("CreateManyInlineInput"),
            update_one_inline_input: t("UpdateOneInlineInput"),
            update_many_inline_input: t("UpdateManyInlineInput"),
            connection: t("Connection"),
            edge: t("Edge"),
            aggregate: t("Aggregate"),
            numeric_aggregate: t("NumericAggregate"),
            group_by: t("GroupBy"),
            group_by_key: t("GroupByKey"),
            group_by_field: t("GroupByField"),
            change: t("Change"),
            enums: enum_fields.into_iter().map(|f| (f.clone(), format!("{name}{}", pascal(f.as_str())))).collect(),
            connection_fields: to_many.into_iter().map(|f| (f.clone(), format!("{f}Connection"))).collect(),
            one: singular.to_owned(),
            list: plural.to_owned(),
            list_connection: format!("{plural}Connection"),
            trash: format!("{plural}Trash"),
            list_group_by: format!("{plural}GroupBy"),
            create: format!("create{name}"),
            update: format!("update{name}"),
            delete: format!("delete{name}"),
            restore: format!("restore{name}"),
            destroy: format!("destroy{name}"),
            upsert: format!("upsert{name}"),
            update_many: format!("updateMany{plural_pascal}Connection"),
            delete_many: format!("deleteMany{plural_pascal}Connection"),
            changed: format!("{singular}Changed"),
        }
    }

    /// Every type name of the model.
    #[must_use]
    pub fn types(&self) -> Vec<&str> {
        let mut out = vec![
            self.object.as_str(),
            &self.where_input,
            &self.where_unique_input,
            &self.many_where_input,
            &self.order_by_input,
            &self.create_input,
            &self.update_input,
            &self.upsert_input,
            &self.update_many_input,
            &self.create_one_inline_input,
            &self.create_many_inline_input,
            &self.update_one_inline_input,
            &self.update_many_inline_input,
            &self.connection,
            &self.edge,
            &self.aggregate,
            &self.numeric_aggregate,
            &self.group_by,
            &self.group_by_key,
            &self.group_by_field,
            &self.change,
        ];
        out.extend(self.enums.values().map(String::as_str));
        out
    }

    /// Every root field of the model.
    #[must_use]
    pub fn roots(&self) -> Vec<&str> {
        vec![
            self.one.as_str(),
            &self.list,
            &self.list_connection,
            &self.trash,
            &self.list_group_by,
            &self.create,
            &self.update,
            &self.delete,
            &self.restore,
            &self.destroy,
            &self.upsert,
            &self.update_many,
            &self.delete_many,
            &self.changed,
        ]
    }
}
