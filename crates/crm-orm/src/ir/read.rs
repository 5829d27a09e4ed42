//! Reads: pages, ordering, selections (fields, relations, connections, extras), aggregates and
//! groups, and the other queries a caller can make (targets, stages, events, deliveries, the audit
//! log, locating a record).

use super::filter::Filter;
use super::op::Op;
use crate::error::{OrmError, Result};
use crm_model::{Field, FieldKind, FieldName, Model, ModelName, ScalarType, TypeClass};
use uuid::Uuid;

/// One ordering key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrderBy {
    /// The field.
    pub field: FieldName,
    /// Descending.
    pub desc: bool,
}

impl OrderBy {
    /// Parses `createdAt_DESC` against `model`.
    ///
    /// # Errors
    /// Unknown field or a field that cannot be ordered (relations, lists, JSON).
    pub fn parse(model: &Model, s: &str) -> Result<OrderBy> {
        let (name, desc) = if let Some(n) = s.strip_suffix("_DESC") {
            (n, true)
        } else if let Some(n) = s.strip_suffix("_ASC") {
            (n, false)
        } else {
            return Err(OrmError::bad("orderBy", format!("`{s}` must end in _ASC or _DESC")));
        };
        let f = model.field(name).ok_or_else(|| OrmError::bad("orderBy", format!("unknown field `{name}`")))?;
        if !orderable(f) {
            return Err(OrmError::bad("orderBy", format!("`{name}` cannot be ordered")));
        }
        Ok(OrderBy { field: f.name.clone(), desc })
    }
}

/// Whether a field can be an ordering key.
#[must_use]
pub fn orderable(f: &Field) -> bool {
    matches!(&f.kind, FieldKind::Scalar(t) if !matches!(t.class(), TypeClass::List | TypeClass::Json))
}

/// Pagination arguments as given.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Page {
    /// Forward page size.
    pub first: Option<u32>,
    /// Backward page size.
    pub last: Option<u32>,
    /// Rows skipped in the direction of travel.
    pub skip: u32,
    /// Cursor to continue after.
    pub after: Option<String>,
    /// Cursor to continue before.
    pub before: Option<String>,
}

impl Page {
    /// Reading backwards (`last` / `before`).
    #[must_use]
    pub fn backward(&self) -> bool {
        self.last.is_some() || self.before.is_some()
    }

    /// Starting at a cursor or after skipped rows: rows lie before the page in its direction.
    #[must_use]
    pub fn from_cursor(&self) -> bool {
        self.after.is_some() || self.before.is_some() || self.skip > 0
    }

    /// The number of rows asked for, `default` when neither `first` nor `last` is given.
    #[must_use]
    pub fn size(&self, default: u32) -> u32 {
        self.first.or(self.last).unwrap_or(default)
    }

    /// `(has_next, has_previous)` of this page when `more` rows lie beyond it in its direction.
    #[must_use]
    pub fn flags(&self, more: bool) -> (bool, bool) {
        page_flags(self.backward(), self.from_cursor(), more)
    }
}

/// `(has_next, has_previous)` of a page read `backward` or forwards, `from_cursor` or from the
/// start, when `more` rows lie beyond it in its direction of travel: the one rule every page
/// (root, nested, batch) follows.
#[must_use]
pub fn page_flags(backward: bool, from_cursor: bool, more: bool) -> (bool, bool) {
    if backward { (from_cursor, more) } else { (more, from_cursor) }
}

/// What to return of each row: fields by API name and nested relations.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Selection {
    /// Stored fields (scalars, to-one ids are not selected this way: use `nested`).
    pub fields: Vec<FieldName>,
    /// Relations to follow.
    pub nested: Vec<Nested>,
    /// Property history and stage transitions of each row.
    pub extras: Vec<Extra>,
    /// The row object as a GraphQL response writes it, when given: these keys in this order,
    /// so a row's JSON is the response object as is. Otherwise the fields under their names,
    /// then the nested relations and extras under their keys.
    pub output: Option<Vec<Output>>,
}

/// One key of a row object written as a response (see [`Selection::output`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Output {
    /// A stored field of [`Selection::fields`], under `key` (its alias or name).
    Field {
        /// The response key.
        key: String,
        /// The field.
        field: FieldName,
    },
    /// The relation of [`Selection::nested`] with this key.
    Nested(String),
    /// The model's name, under `key` (`__typename`).
    Typename {
        /// The response key.
        key: String,
    },
}

/// Per-row data kept beside the record: its property history or its stage transitions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Extra {
    /// Changes of tracked fields, newest first: `[{"field", "oldValue", "newValue", "changedAt",
    /// "changedBy"}]`.
    History {
        /// Key of the result in the row object.
        key: String,
        /// Only this field's changes.
        field: Option<FieldName>,
        /// Most entries.
        first: u32,
    },
    /// Stage transitions, oldest first: `[{"field", "stage", "enteredAt", "exitedAt",
    /// "enteredBy"}]`.
    Stages {
        /// Key of the result in the row object.
        key: String,
        /// Only this stage field's transitions.
        field: Option<FieldName>,
    },
    /// The record's timeline, newest first: its property changes merged with the records that
    /// point at it through a polymorphic reference (activities): `[{"kind": "change", "at",
    /// "actor", "field", "oldValue", "newValue"} | {"kind": "<model>", "at", "actor", "id",
    /// "record": {…all stored fields…}}]`.
    Timeline {
        /// Key of the result in the row object.
        key: String,
        /// Most entries.
        first: u32,
    },
}

impl Extra {
    /// The result key.
    #[must_use]
    pub fn key(&self) -> &str {
        match self {
            Extra::History { key, .. } | Extra::Stages { key, .. } | Extra::Timeline { key, .. } => key,
        }
    }
}

impl Selection {
    /// Every stored field of the model (to-one relations as their id), no nested relations.
    #[must_use]
    pub fn scalars(model: &Model) -> Selection {
        Selection { fields: model.stored().map(|f| f.name.clone()).collect(), ..Selection::default() }
    }
    /// Adds a nested relation.
    #[must_use]
    pub fn with(mut self, nested: Nested) -> Selection {
        self.nested.push(nested);
        self
    }
}

/// A relation followed inside a selection.
#[derive(Debug, Clone, PartialEq)]
pub struct Nested {
    /// Key of the result in the parent object (the field name or a GraphQL alias).
    pub key: String,
    /// The relation field.
    pub field: FieldName,
    /// What to return of the related rows.
    pub select: Selection,
    /// Filter on related rows (to-many).
    pub filter: Filter,
    /// Ordering of related rows (to-many).
    pub order: Vec<OrderBy>,
    /// Pagination of related rows (to-many), limited in SQL per parent row.
    pub page: Page,
    /// Connection form (to-many): the value is `{"e": [{"n": row, "k": keys}, …], "a": aggregate}`
    /// with one probe row beyond the page, so the caller can tell whether more rows exist and
    /// build cursors; otherwise a plain array of rows.
    pub connection: bool,
    /// Aggregate of all related rows matching `filter` (connection form only).
    pub aggregate: Aggregate,
}

impl Nested {
    /// Follows `field` with `select`, no filter, default order.
    #[must_use]
    pub fn new(field: FieldName, select: Selection) -> Nested {
        Nested {
            key: field.to_string(),
            field,
            select,
            filter: Filter::True,
            order: Vec::new(),
            page: Page::default(),
            connection: false,
            aggregate: Aggregate::default(),
        }
    }
    /// Forward page of `first` rows.
    #[must_use]
    pub fn first(mut self, n: u32) -> Nested {
        self.page.first = Some(n);
        self
    }
}

/// An aggregate function over a numeric field.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AggFn {
    /// Sum.
    Sum,
    /// Average.
    Avg,
    /// Smallest value.
    Min,
    /// Largest value.
    Max,
}

impl AggFn {
    /// Every function, in output order.
    pub const ALL: [Self; 4] = [Self::Sum, Self::Avg, Self::Min, Self::Max];
    /// The key of the function in aggregate results and in the API (`sum`, `avg`, `min`, `max`).
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            Self::Sum => "sum",
            Self::Avg => "avg",
            Self::Min => "min",
            Self::Max => "max",
        }
    }
    /// The SQL aggregate.
    #[must_use]
    pub fn sql(self) -> &'static str {
        match self {
            Self::Sum => "SUM",
            Self::Avg => "AVG",
            Self::Min => "MIN",
            Self::Max => "MAX",
        }
    }
}

/// Which aggregates to compute over the rows matching a filter (pagination ignored). The result
/// is a JSON object `{"count": n, "sum": {"amount": x, …}, "avg": {…}, …}` with only the asked
/// parts; numeric aggregates are floats (null over no rows).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Aggregate {
    /// Count the rows.
    pub count: bool,
    /// Numeric aggregates by function and field.
    pub numeric: Vec<(AggFn, FieldName)>,
}

impl Aggregate {
    /// Nothing asked.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        !self.count && self.numeric.is_empty()
    }
}

/// Whether a field has numeric aggregates.
#[must_use]
pub fn aggregatable(f: &Field) -> bool {
    !f.system && matches!(&f.kind, FieldKind::Scalar(t) if t.is_numeric())
}

/// Whether a field can be a group-by key: ordered, text-like, enum and boolean scalars, and
/// to-one relations (grouped by the related id).
#[must_use]
pub fn groupable(f: &Field) -> bool {
    match &f.kind {
        FieldKind::Scalar(ScalarType::LongText | ScalarType::Json | ScalarType::Tags | ScalarType::MultiSelect(_)) => false,
        FieldKind::Scalar(ScalarType::Text) => true,
        FieldKind::Scalar(_) | FieldKind::ToOne { .. } => !f.system,
        _ => false,
    }
}

/// Rows of `model` grouped by fields, with aggregates per group: the report query.
#[derive(Debug, Clone, PartialEq)]
pub struct GroupBy {
    /// The model.
    pub model: ModelName,
    /// The caller's filter.
    pub filter: Filter,
    /// Group keys, in output order (at least one).
    pub by: Vec<FieldName>,
    /// Aggregates per group (`count` is always computed).
    pub aggregate: Aggregate,
    /// Most groups returned (default/max page size apply).
    pub first: Option<u32>,
    /// Groups skipped.
    pub skip: u32,
}

/// The records of `model` matching `filter` that the caller may `op`: the target set of on-demand
/// store work (re-tagging, routing). Only ids are read. `filter` is the caller's and is checked
/// against their field denials; `platform` is a condition the store adds itself (such as "not
/// assigned yet") and is not.
#[derive(Debug, Clone, PartialEq)]
pub struct Targets {
    /// The model.
    pub model: ModelName,
    /// The operation the caller must be granted on every target.
    pub op: Op,
    /// The caller's filter.
    pub filter: Filter,
    /// The store's own condition, AND-ed to the caller's.
    pub platform: Filter,
}

/// Funnel and time-in-stage statistics of a stage field over the live records the caller may
/// read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StageQuery {
    /// The model.
    pub model: ModelName,
    /// The stage field.
    pub field: FieldName,
    /// The funnel order of the stages.
    pub order: Vec<String>,
}

/// The outbox events of one record the caller may read, oldest first, with the fields the caller
/// may not read left out of their `before`/`after`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordEvents {
    /// The record's model.
    pub model: ModelName,
    /// The record.
    pub record: Uuid,
    /// Most events.
    pub first: u32,
}

/// The webhook deliveries of the webhooks the caller may read, newest first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Deliveries {
    /// Only this webhook's.
    pub webhook: Option<Uuid>,
    /// Most deliveries.
    pub first: u32,
}

/// The newest entries of the tenant's audit log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditQuery {
    /// Only entries about this model.
    pub model: Option<ModelName>,
    /// Most entries.
    pub first: u32,
}

/// Finds which model a record id belongs to in the caller's tenant (for `node(id:)`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Locate {
    /// The record id.
    pub id: Uuid,
}

/// A read of a page of rows.
#[derive(Debug, Clone, PartialEq)]
pub struct Read {
    /// The model.
    pub model: ModelName,
    /// The caller's filter.
    pub filter: Filter,
    /// Ordering (the id is always appended as tie-breaker).
    pub order: Vec<OrderBy>,
    /// Pagination.
    pub page: Page,
    /// What to return.
    pub select: Selection,
    /// Whether to count all rows matching the filter.
    pub count: bool,
    /// Numeric aggregates over all rows matching the filter (computed with the count, in one
    /// statement).
    pub aggregates: Vec<(AggFn, FieldName)>,
    /// Read the trash (soft-deleted rows) instead of the live rows.
    pub trash: bool,
    /// Whether the rows are wanted: a connection that selects only its aggregate reads no page.
    pub rows: bool,
    /// Whether each row's cursor is wanted (a connection's `cursor`, `startCursor`, `endCursor`).
    pub cursors: bool,
}

impl Read {
    /// All scalar fields of `model`, first page, default order.
    #[must_use]
    pub fn new(model: &Model) -> Read {
        Read {
            model: model.name.clone(),
            filter: Filter::True,
            order: Vec::new(),
            page: Page::default(),
            select: Selection::scalars(model),
            count: false,
            aggregates: Vec::new(),
            trash: false,
            rows: true,
            cursors: true,
        }
    }

    /// Record `id` of `model` (all scalar fields), if the scope admits it.
    ///
    /// # Errors
    /// Never in practice (the `id` field always exists); typed for the filter's construction.
    pub fn by_id(model: &Model, id: uuid::Uuid) -> Result<Read> {
        Ok(Read { filter: Filter::ids(&[id])?, page: Page { first: Some(1), ..Page::default() }, cursors: false, ..Read::new(model) })
    }
}
