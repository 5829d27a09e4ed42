//! The records the engines read, typed: rule records, the members routing chooses from, and the
//! parts of leads, social events and groups they look at. Each is decoded with serde from the
//! JSON of a read, as the standard catalog defines its model ([`Record::MODEL`]); a record of
//! another shape fails with an internal error naming it, instead of being read as defaults.

use crm_orm::{Result, decode_value};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer};
use serde_json::Value as Json;
use uuid::Uuid;

/// A record type of a model the engines need.
pub trait Record: DeserializeOwned {
    /// The model's name in the catalog.
    const MODEL: &'static str;

    /// The record from the JSON object of a read.
    ///
    /// # Errors
    /// An object of another shape (an internal decode error).
    fn decode(row: Json) -> Result<Self> {
        decode_value(Self::MODEL, row)
    }
}

/// The models the engines read and write: a catalog without all of them (a library user's own)
/// gets no engines.
pub const MODELS: &[&str] = &[
    LEAD,
    MEMBER,
    CONTACT,
    TICKET,
    ACTIVITY,
    SocialEvent::MODEL,
    TagRule::MODEL,
    TagAssignment::MODEL,
    RoutingRule::MODEL,
    ASSIGNMENT,
    IngestionRule::MODEL,
    Webhook::MODEL,
];

/// The lead model.
pub const LEAD: &str = "Lead";
/// The member model.
pub const MEMBER: &str = "Member";
/// The contact model.
pub const CONTACT: &str = "Contact";
/// The ticket model.
pub const TICKET: &str = "Ticket";
/// The activity model.
pub const ACTIVITY: &str = "Activity";
/// The routing decision model.
pub const ASSIGNMENT: &str = "Assignment";
/// The automation rule model.
pub const AUTOMATION_RULE: &str = "AutomationRule";

/// A list field (tags): null is the empty list.
fn list<'de, D: Deserializer<'de>>(d: D) -> std::result::Result<Vec<String>, D::Error> {
    Ok(Option::<Vec<String>>::deserialize(d)?.unwrap_or_default())
}

/// A tag rule: the tags it adds to the leads its condition matches.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TagRule {
    /// The rule.
    pub id: Uuid,
    /// Its name.
    pub name: String,
    /// A `LeadWhere` filter; none matches every lead.
    pub condition: Option<Json>,
    /// The tags added.
    #[serde(default, deserialize_with = "list")]
    pub tags: Vec<String>,
}

impl Record for TagRule {
    const MODEL: &'static str = "TagRule";
}

/// A tag on a lead and the rule that set it.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TagAssignment {
    /// The lead.
    pub lead: Uuid,
    /// The tag.
    pub tag: String,
}

impl Record for TagAssignment {
    const MODEL: &'static str = "TagAssignment";
}

/// How a routing rule picks among qualifying members.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Strategy {
    /// The next member after the rule's pointer.
    RoundRobin,
    /// The fewest open leads.
    LoadBalanced,
    /// The most skills matching the lead.
    SkillMatch,
}

impl Strategy {
    /// The option as stored (`ROUND_ROBIN`, …).
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Strategy::RoundRobin => "ROUND_ROBIN",
            Strategy::LoadBalanced => "LOAD_BALANCED",
            Strategy::SkillMatch => "SKILL_MATCH",
        }
    }
}

/// A routing rule.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RoutingRule {
    /// The rule.
    pub id: Uuid,
    /// Its name.
    pub name: String,
    /// A `LeadWhere` filter; none matches every lead.
    pub condition: Option<Json>,
    /// Teams whose members may be chosen; empty for every active member.
    #[serde(default, deserialize_with = "list")]
    pub pool: Vec<String>,
    /// How it picks.
    pub strategy: Strategy,
    /// Skills every chosen member must have.
    #[serde(default, deserialize_with = "list")]
    pub required_skills: Vec<String>,
    /// Whether members outside their working hours are skipped (null: yes).
    pub respect_working_hours: Option<bool>,
    /// The member chosen last (the round-robin pointer).
    pub last_assigned: Option<Uuid>,
}

impl Record for RoutingRule {
    const MODEL: &'static str = "RoutingRule";
}

/// A member, as routing sees them.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Member {
    /// The member.
    pub id: Uuid,
    /// Their name.
    pub name: String,
    /// Their skills.
    #[serde(default, deserialize_with = "list")]
    pub skills: Vec<String>,
    /// Their teams.
    #[serde(default, deserialize_with = "list")]
    pub teams: Vec<String>,
    /// Most open leads at once (none: no limit).
    pub capacity: Option<i64>,
    /// Away (null: not away).
    pub away: Option<bool>,
    /// The time zone of their working hours.
    pub time_zone: Option<String>,
    /// Their working hours.
    pub working_hours: Option<Json>,
}

impl Record for Member {
    const MODEL: &'static str = MEMBER;
}

/// A member's name and capacity, as far as a report's reader may read them (a field they may
/// not read is not selected, and absent).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct MemberSummary {
    /// The member.
    pub id: Uuid,
    /// Their name.
    #[serde(default)]
    pub name: Option<String>,
    /// Their capacity.
    #[serde(default)]
    pub capacity: Option<i64>,
}

impl Record for MemberSummary {
    const MODEL: &'static str = MEMBER;
}

/// An automation rule.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AutomationRule {
    /// The rule.
    pub id: Uuid,
    /// Its name.
    pub name: String,
    /// The event type it runs on (`lead.created`).
    pub event: String,
    /// A where filter on the event's model; none matches every record.
    pub condition: Option<Json>,
    /// The values it sets, as the update mutation takes them.
    pub set: Json,
}

impl Record for AutomationRule {
    const MODEL: &'static str = AUTOMATION_RULE;
}

/// What an ingestion rule makes of a matching conversation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum IngestAction {
    /// A lead.
    Lead,
    /// A ticket.
    Ticket,
    /// Nothing.
    None,
}

/// An ingestion rule.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct IngestionRule {
    /// The rule.
    pub id: Uuid,
    /// Its name.
    pub name: String,
    /// A `SocialEventWhere` filter; none matches every event.
    pub condition: Option<Json>,
    /// What it makes.
    pub action: IngestAction,
}

impl Record for IngestionRule {
    const MODEL: &'static str = "IngestionRule";
}

/// A social event, as ingestion links it.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SocialEvent {
    /// The event.
    pub id: Uuid,
    /// The platform's id of it.
    pub external_id: String,
    /// The lead its conversation became.
    pub lead: Option<Uuid>,
    /// The ticket its conversation became.
    pub ticket: Option<Uuid>,
}

impl Record for SocialEvent {
    const MODEL: &'static str = "SocialEvent";
}

/// A webhook.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Webhook {
    /// The webhook.
    pub id: Uuid,
    /// Where deliveries go.
    pub url: String,
    /// The event type patterns it subscribes to.
    #[serde(default, deserialize_with = "list")]
    pub events: Vec<String>,
    /// The signing secret.
    pub secret: String,
    /// Whether it delivers (null: yes).
    pub active: Option<bool>,
}

impl Record for Webhook {
    const MODEL: &'static str = "Webhook";
}

/// What routing and tagging read of a lead.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LeadAttributes {
    /// The lead.
    pub id: Uuid,
    /// Its tags.
    #[serde(default, deserialize_with = "list")]
    pub tags: Vec<String>,
    /// Its source.
    pub source: Option<String>,
}

impl Record for LeadAttributes {
    const MODEL: &'static str = LEAD;
}

/// The condition of any rule record.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct RuleCondition {
    /// A where filter of the model the rule applies to; none matches everything.
    pub condition: Option<Json>,
}

impl RuleCondition {
    /// The condition of a rule record of `model`.
    ///
    /// # Errors
    /// A record without a condition field (an internal decode error).
    pub fn decode(model: &'static str, row: Json) -> Result<RuleCondition> {
        decode_value(model, row)
    }
}

/// A polymorphic reference as a read returns it.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct RecordRef {
    /// The model.
    #[serde(rename = "type")]
    pub model: String,
    /// The record.
    pub id: Uuid,
}

/// A file attached to a record ([`crate::files`]).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Attachment {
    /// The attachment.
    pub id: Uuid,
    /// The record it is attached to (null only while that record is being destroyed).
    pub subject: Option<RecordRef>,
    /// The file's name.
    pub file_name: String,
    /// The media type.
    pub content_type: String,
    /// Bytes.
    pub size: i64,
    /// `PENDING` or `READY`.
    pub status: String,
}

impl Attachment {
    /// `status` while the bytes have not come.
    pub const PENDING: &'static str = "PENDING";
    /// `status` once the bytes are stored.
    pub const READY: &'static str = "READY";
}

impl Record for Attachment {
    const MODEL: &'static str = "Attachment";
}

/// Any record, by its id alone.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub struct Id {
    /// The record.
    pub id: Uuid,
}

impl Id {
    /// The id of the JSON object of a read.
    ///
    /// # Errors
    /// An object without a valid id (an internal decode error).
    pub fn decode(row: Json) -> Result<Id> {
        decode_value("record id", row)
    }
}

/// One group of a count grouped by one key: the key's value and the count.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct Group {
    /// The key object (`{"owner": "…"}`).
    pub key: serde_json::Map<String, Json>,
    /// Records in the group.
    pub count: i64,
}

impl Group {
    /// The group from the JSON of a group-by read.
    ///
    /// # Errors
    /// An object of another shape (an internal decode error).
    pub fn decode(row: Json) -> Result<Group> {
        decode_value("group", row)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use serde_json::json;

    use super::*;

    #[test]
    fn a_rule_decodes_with_null_lists_as_empty() {
        let r = RoutingRule::decode(json!({
            "id": "0190f5a2-7c1e-7a3b-9d4e-5f6a7b8c9d0e", "name": "EU", "condition": null, "pool": null,
            "strategy": "LOAD_BALANCED", "requiredSkills": ["de"], "respectWorkingHours": null, "lastAssigned": null,
            "priority": 100, "enabled": true
        }))
        .unwrap();
        assert_eq!((r.strategy, r.pool.len(), r.required_skills.as_slice()), (Strategy::LoadBalanced, 0, &["de".to_owned()][..]));
        assert_eq!(r.respect_working_hours, None);
    }

    #[test]
    fn a_record_of_another_shape_fails_naming_its_model() {
        let e =
            RoutingRule::decode(json!({ "id": "0190f5a2-7c1e-7a3b-9d4e-5f6a7b8c9d0e", "name": "x", "strategy": "RANDOM" })).unwrap_err();
        assert_eq!(e.code(), crm_model::ErrorCode::Internal);
        assert!(e.to_string().contains("RoutingRule"), "{e}");
        let e = Webhook::decode(json!({ "id": "not an id", "url": "https://x.test", "secret": "s", "events": [] })).unwrap_err();
        assert!(e.to_string().contains("Webhook"), "{e}");
    }

    #[test]
    fn an_ingestion_rule_knows_its_action() {
        let r = IngestionRule::decode(
            json!({ "id": "0190f5a2-7c1e-7a3b-9d4e-5f6a7b8c9d0e", "name": "x", "condition": { "kind": "DM" }, "action": "TICKET" }),
        )
        .unwrap();
        assert_eq!(r.action, IngestAction::Ticket);
    }

    #[test]
    fn a_group_keeps_its_key_and_count() {
        let g = Group::decode(json!({ "key": { "owner": null }, "count": 3 })).unwrap();
        assert_eq!((g.key.get("owner"), g.count), (Some(&Json::Null), 3));
    }
}
