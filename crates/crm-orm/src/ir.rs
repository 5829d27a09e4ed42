//! The query IR: plain data describing reads and writes, independent of SQL and GraphQL.
//!
//! Each input family has its parser next to its definition ([`Filter::parse`],
//! [`OrderBy::parse`], [`Data::parse`]), reading the JSON form of API.md (`{"email_contains":
//! "acme", "account": {"name": "X"}}`) against the [`Catalog`], so unknown fields, operators that
//! do not apply to a type and badly typed values are rejected here, naming the input path.

use crm_model::{Catalog, Field, FieldKind, FieldName, Model, ModelName, ScalarType, TypeClass, Value, input};
use indexmap::IndexMap;
use serde::{Deserialize, Serialize};
use serde_json::Value as Json;
use uuid::Uuid;

use crate::error::{OrmError, Result};

/// An operation on rows: what a query does, and what a role can be granted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Op {
    /// Read rows.
    Read,
    /// Insert rows.
    Create,
    /// Change rows.
    Update,
    /// Move rows to the trash (soft delete) and restore them.
    Delete,
    /// Remove rows for good (from the trash or not).
    Destroy,
}

/// Scalar filter operators with their API suffix: the one list both the schema generator and the
/// parser read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FilterOp {
    /// `f`: equal (or `IS NULL` for null).
    Eq,
    /// `f_not`: not equal (nulls included; `f_not: null` is `IS NOT NULL`).
    Not,
    /// `f_in`.
    In,
    /// `f_not_in` (nulls included).
    NotIn,
    /// `f_contains`, case-insensitive.
    Contains,
    /// `f_not_contains`.
    NotContains,
    /// `f_starts_with`, case-insensitive.
    StartsWith,
    /// `f_not_starts_with`.
    NotStartsWith,
    /// `f_ends_with`, case-insensitive.
    EndsWith,
    /// `f_not_ends_with`.
    NotEndsWith,
    /// `f_lt`.
    Lt,
    /// `f_lte`.
    Lte,
    /// `f_gt`.
    Gt,
    /// `f_gte`.
    Gte,
    /// `f_contains_all` (lists).
    ContainsAll,
    /// `f_contains_some` (lists).
    ContainsSome,
    /// `f_contains_none` (lists).
    ContainsNone,
}

impl FilterOp {
    /// Every operator.
    pub const ALL: [Self; 17] = [
        Self::Eq,
        Self::Not,
        Self::In,
        Self::NotIn,
        Self::Contains,
        Self::NotContains,
        Self::StartsWith,
        Self::NotStartsWith,
        Self::EndsWith,
        Self::NotEndsWith,
        Self::Lt,
        Self::Lte,
        Self::Gt,
        Self::Gte,
        Self::ContainsAll,
        Self::ContainsSome,
        Self::ContainsNone,
    ];

    /// The suffix appended to the field name in `WhereInput`.
    #[must_use]
    pub fn suffix(self) -> &'static str {
        match self {
            Self::Eq => "",
            Self::Not => "_not",
            Self::In => "_in",
            Self::NotIn => "_not_in",
            Self::Contains => "_contains",
            Self::NotContains => "_not_contains",
            Self::StartsWith => "_starts_with",
            Self::NotStartsWith => "_not_starts_with",
            Self::EndsWith => "_ends_with",
            Self::NotEndsWith => "_not_ends_with",
            Self::Lt => "_lt",
            Self::Lte => "_lte",
            Self::Gt => "_gt",
            Self::Gte => "_gte",
            Self::ContainsAll => "_contains_all",
            Self::ContainsSome => "_contains_some",
            Self::ContainsNone => "_contains_none",
        }
    }

    /// Whether the operator applies to a type family.
    #[must_use]
    pub fn applies_to(self, class: TypeClass) -> bool {
        use FilterOp as O;
        match class {
            TypeClass::String => !matches!(self, O::Lt | O::Lte | O::Gt | O::Gte | O::ContainsAll | O::ContainsSome | O::ContainsNone),
            TypeClass::Ordered => matches!(self, O::Eq | O::Not | O::In | O::NotIn | O::Lt | O::Lte | O::Gt | O::Gte),
            TypeClass::Boolean | TypeClass::Json => matches!(self, O::Eq | O::Not),
            TypeClass::Enum => matches!(self, O::Eq | O::Not | O::In | O::NotIn),
            TypeClass::List => matches!(self, O::ContainsAll | O::ContainsSome | O::ContainsNone),
        }
    }

    /// Whether the operator matches text (contains / starts / ends, and their negations).
    #[must_use]
    pub fn is_text_match(self) -> bool {
        matches!(self, Self::Contains | Self::NotContains | Self::StartsWith | Self::NotStartsWith | Self::EndsWith | Self::NotEndsWith)
    }

    /// Whether the operand is a list.
    #[must_use]
    pub fn takes_list(self) -> bool {
        matches!(self, Self::In | Self::NotIn | Self::ContainsAll | Self::ContainsSome | Self::ContainsNone)
    }

    /// Splits `email_not_contains` into (`email`, `NotContains`).
    #[must_use]
    pub fn split(key: &str) -> Option<(&str, Self)> {
        match key.split_once('_') {
            None => Some((key, Self::Eq)),
            Some((field, _)) => {
                let rest = &key[field.len()..];
                Self::ALL.iter().find(|op| op.suffix() == rest).map(|op| (field, *op))
            }
        }
    }
}

/// Quantifiers of to-many relation filters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Quantifier {
    /// `r_some`: at least one related record matches.
    Some,
    /// `r_every`: every related record matches (true when there are none).
    Every,
    /// `r_none`: no related record matches.
    None,
}

impl Quantifier {
    /// Every quantifier.
    pub const ALL: [Self; 3] = [Self::Some, Self::Every, Self::None];
    /// The API suffix.
    #[must_use]
    pub fn suffix(self) -> &'static str {
        match self {
            Self::Some => "_some",
            Self::Every => "_every",
            Self::None => "_none",
        }
    }
}

/// The right-hand side of a comparison.
#[derive(Debug, Clone, PartialEq)]
pub enum Operand {
    /// One value.
    One(Value),
    /// A list (`_in`, `_contains_all`, …).
    Many(Vec<Value>),
}

/// A filter over one model's rows.
#[derive(Debug, Clone, PartialEq)]
pub enum Filter {
    /// Every row.
    True,
    /// No row (what an absent grant compiles to).
    False,
    /// All of.
    And(Vec<Filter>),
    /// Any of.
    Or(Vec<Filter>),
    /// The complement (rows for which the inner filter is not true).
    Not(Box<Filter>),
    /// A comparison of a stored field.
    Cmp {
        /// The field.
        field: FieldName,
        /// The operator.
        op: FilterOp,
        /// The typed operand.
        value: Operand,
    },
    /// The to-one relation's target matches (`account: {...}`); `None` means the reference is null.
    ToOne {
        /// The to-one field.
        field: FieldName,
        /// Filter on the target, or `None` for `account: null`.
        filter: Option<Box<Filter>>,
    },
    /// A to-many relation quantified (`contacts_some: {...}`).
    ToMany {
        /// The to-many field.
        field: FieldName,
        /// some / every / none.
        quantifier: Quantifier,
        /// Filter on the targets.
        filter: Box<Filter>,
    },
    /// Case-insensitive match of a term across the searchable fields.
    Search(String),
}

impl Filter {
    /// The records whose id is one of `ids`.
    ///
    /// # Errors
    /// Never in practice (`id` is a valid field name); typed so callers never unwrap.
    pub fn ids(ids: &[Uuid]) -> Result<Filter> {
        Ok(Filter::Cmp {
            field: FieldName::new("id").map_err(|e| OrmError::invariant(e.to_string()))?,
            op: FilterOp::In,
            value: Operand::Many(ids.iter().map(|u| Value::Uuid(*u)).collect()),
        })
    }

    /// AND with simplification (`True` vanishes, `False` absorbs).
    #[must_use]
    pub fn and(items: Vec<Filter>) -> Filter {
        let mut out = Vec::with_capacity(items.len());
        for f in items {
            match f {
                Filter::True => {}
                Filter::False => return Filter::False,
                Filter::And(inner) => out.extend(inner),
                other => out.push(other),
            }
        }
        match out.len() {
            0 => Filter::True,
            1 => out.pop().unwrap_or(Filter::True),
            _ => Filter::And(out),
        }
    }

    /// OR with simplification (`False` vanishes, `True` absorbs).
    #[must_use]
    pub fn or(items: Vec<Filter>) -> Filter {
        let mut out = Vec::with_capacity(items.len());
        for f in items {
            match f {
                Filter::False => {}
                Filter::True => return Filter::True,
                Filter::Or(inner) => out.extend(inner),
                other => out.push(other),
            }
        }
        match out.len() {
            0 => Filter::False,
            1 => out.pop().unwrap_or(Filter::False),
            _ => Filter::Or(out),
        }
    }

    /// A comparison of `field` with one JSON value (typed against the model).
    ///
    /// # Errors
    /// Unknown field, operator not applicable, badly typed value.
    pub fn cmp(model: &Model, field: &str, op: FilterOp, value: &Json) -> Result<Filter> {
        parse_cmp(model, field, op, value, field)
    }

    /// Parses a `WhereInput` in its JSON form against `model`.
    ///
    /// # Errors
    /// Unknown keys, operators that do not apply, badly typed values; the error names the path.
    pub fn parse(catalog: &Catalog, model: &Model, input: &Json) -> Result<Filter> {
        parse_where(catalog, model, input, "where", 0)
    }
}

/// Deepest nesting of a where input (AND/OR/NOT and relations) accepted.
pub const MAX_FILTER_DEPTH: usize = 16;

fn parse_where(catalog: &Catalog, model: &Model, input: &Json, path: &str, depth: usize) -> Result<Filter> {
    if depth > MAX_FILTER_DEPTH {
        return Err(OrmError::bad(path, format!("filters nest deeper than {MAX_FILTER_DEPTH} levels")));
    }
    let obj = match input {
        Json::Null => return Ok(Filter::True),
        Json::Object(o) => o,
        _ => return Err(OrmError::bad(path, "expected an object")),
    };
    let mut items = Vec::with_capacity(obj.len());
    for (key, val) in obj {
        let p = format!("{path}.{key}");
        match key.as_str() {
            "AND" | "OR" | "NOT" => {
                let list: Vec<&Json> = match val {
                    Json::Array(a) => a.iter().collect(),
                    Json::Null => Vec::new(),
                    one => vec![one],
                };
                let parsed = list
                    .iter()
                    .enumerate()
                    .map(|(i, v)| parse_where(catalog, model, v, &format!("{p}[{i}]"), depth + 1))
                    .collect::<Result<Vec<_>>>()?;
                items.push(match key.as_str() {
                    "AND" => Filter::and(parsed),
                    "OR" => Filter::or(parsed),
                    _ => Filter::Not(Box::new(Filter::and(parsed))),
                });
            }
            "_search" => match val {
                Json::String(s) if s.contains('\0') => return Err(OrmError::bad(p, crm_model::value::NUL_MESSAGE)),
                Json::String(s) if !s.trim().is_empty() => items.push(Filter::Search(s.trim().to_owned())),
                Json::String(_) | Json::Null => {}
                _ => return Err(OrmError::bad(p, "expected a string")),
            },
            _ => items.push(parse_entry(catalog, model, key, val, &p, depth)?),
        }
    }
    Ok(Filter::and(items))
}

fn parse_entry(catalog: &Catalog, model: &Model, key: &str, val: &Json, path: &str, depth: usize) -> Result<Filter> {
    // Relation quantifiers first: `contacts_some`.
    for q in Quantifier::ALL {
        if let Some(name) = key.strip_suffix(q.suffix())
            && let Some(f) = model.field(name)
            && let FieldKind::ToMany { target, .. } = &f.kind
        {
            let t = target_model(catalog, target, path)?;
            let inner = parse_where(catalog, t, val, path, depth + 1)?;
            return Ok(Filter::ToMany { field: f.name.clone(), quantifier: q, filter: Box::new(inner) });
        }
    }
    if let Some(f) = model.field(key)
        && let FieldKind::ToOne { target, .. } = &f.kind
    {
        if val.is_null() {
            return Ok(Filter::ToOne { field: f.name.clone(), filter: None });
        }
        let t = target_model(catalog, target, path)?;
        let inner = parse_where(catalog, t, val, path, depth + 1)?;
        return Ok(Filter::ToOne { field: f.name.clone(), filter: Some(Box::new(inner)) });
    }
    let Some((name, op)) = FilterOp::split(key) else {
        return Err(OrmError::bad(path, format!("unknown filter `{key}` on {}", model.name)));
    };
    parse_cmp(model, name, op, val, path)
}

fn target_model<'c>(catalog: &'c Catalog, target: &ModelName, path: &str) -> Result<&'c Model> {
    catalog.model(target.as_str()).map(AsRef::as_ref).ok_or_else(|| OrmError::bad(path, format!("unknown model `{target}`")))
}

fn field_class(f: &Field) -> Option<TypeClass> {
    match &f.kind {
        FieldKind::Scalar(t) => Some(t.class()),
        // A to-one compares its id; a polymorphic reference only null checks.
        FieldKind::ToOne { .. } => Some(TypeClass::Enum),
        FieldKind::Polymorphic { .. } => Some(TypeClass::Json),
        FieldKind::ToMany { .. } => None,
    }
}

fn parse_cmp(model: &Model, name: &str, op: FilterOp, val: &Json, path: &str) -> Result<Filter> {
    let f = model.field(name).ok_or_else(|| OrmError::bad(path, format!("unknown field `{name}` on {}", model.name)))?;
    let class =
        field_class(f).ok_or_else(|| OrmError::bad(path, format!("`{name}` is a to-many relation: use {name}_some / _every / _none")))?;
    if !op.applies_to(class) {
        return Err(OrmError::bad(path, format!("operator `{}{}` does not apply to `{name}`", name, op.suffix())));
    }
    let typed = |j: &Json| -> Result<Value> {
        match (&f.kind, j) {
            // List operators take single options / tags.
            (FieldKind::Scalar(ScalarType::MultiSelect(_) | ScalarType::Tags), Json::String(s)) => Ok(Value::Text(s.clone())),
            (FieldKind::Scalar(ScalarType::MultiSelect(_) | ScalarType::Tags), _) => Err(OrmError::bad(path, "list filters take strings")),
            // Text matching on an id takes any part of its text form.
            (FieldKind::Scalar(ScalarType::Id), Json::String(s)) if op.is_text_match() => Ok(Value::Text(s.clone())),
            (FieldKind::Polymorphic { .. }, Json::Null) => Ok(Value::Null),
            (FieldKind::Polymorphic { .. }, _) => Err(OrmError::bad(path, "a polymorphic reference can only be compared with null")),
            (FieldKind::Scalar(ScalarType::Json), Json::Null) => Ok(Value::Null),
            (FieldKind::Scalar(ScalarType::Json), _) => Err(OrmError::bad(path, "a JSON field can only be compared with null")),
            _ => input::parse(f, j).map_err(|e| OrmError::bad(path, e.reason)),
        }
    };
    let value = if op.takes_list() {
        let Json::Array(items) = val else {
            return Err(OrmError::bad(path, "expected a list"));
        };
        Operand::Many(items.iter().map(typed).collect::<Result<_>>()?)
    } else {
        let v = typed(val)?;
        if v.is_null() && !matches!(op, FilterOp::Eq | FilterOp::Not) {
            return Err(OrmError::bad(path, "only equality compares with null"));
        }
        Operand::One(v)
    };
    Ok(Filter::Cmp { field: f.name.clone(), op, value })
}

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
}

/// Identifies one record: by id or by a unique field.
#[derive(Debug, Clone, PartialEq)]
pub enum Unique {
    /// By id.
    Id(Uuid),
    /// By a unique field's value.
    Field(FieldName, Value),
}

impl Unique {
    /// Parses a `WhereUniqueInput` (`{"id": …}` or `{"email": …}`, exactly one key).
    ///
    /// # Errors
    /// No key, several keys, a field that is not unique, a bad value.
    pub fn parse(model: &Model, input: &Json, path: &str) -> Result<Unique> {
        let Json::Object(o) = input else {
            return Err(OrmError::bad(path, "expected an object with exactly one unique field"));
        };
        let given: Vec<(&String, &Json)> = o.iter().filter(|(_, v)| !v.is_null()).collect();
        let [(key, val)] = given.as_slice() else {
            return Err(OrmError::bad(path, "exactly one unique field must be given"));
        };
        let p = format!("{path}.{key}");
        if key.as_str() == "id" {
            return match val {
                Json::String(s) => Uuid::parse_str(s).map(Unique::Id).map_err(|_| OrmError::bad(p, "not a valid id")),
                _ => Err(OrmError::bad(p, "expected an id")),
            };
        }
        let f = model
            .field(key)
            .filter(|f| f.unique)
            .ok_or_else(|| OrmError::bad(&p, format!("`{key}` is not a unique field of {}", model.name)))?;
        let v = input::parse(f, val).map_err(|e| OrmError::bad(&p, e.reason))?;
        Ok(Unique::Field(f.name.clone(), v))
    }
}

/// A to-one relation write.
#[derive(Debug, Clone, PartialEq)]
pub enum ToOneWrite {
    /// Point at an existing record.
    Connect(Unique),
    /// Create the target and point at it.
    Create(Box<Data>),
    /// Clear the reference.
    Disconnect,
}

/// A to-many relation write.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ToManyWrite {
    /// Point these existing records here.
    pub connect: Vec<Unique>,
    /// Create these records pointing here.
    pub create: Vec<Data>,
    /// Detach these records (their reference becomes null).
    pub disconnect: Vec<Unique>,
    /// Make exactly these records the related ones.
    pub set: Option<Vec<Unique>>,
}

/// One field's write.
#[derive(Debug, Clone, PartialEq)]
pub enum FieldWrite {
    /// A stored value (already parsed and validated).
    Set(Value),
    /// To-one relation write.
    ToOne(ToOneWrite),
    /// To-many relation write.
    ToMany(ToManyWrite),
}

/// The data of a create or update.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Data {
    /// Writes by field, in input order.
    pub fields: IndexMap<FieldName, FieldWrite>,
}

/// Most records one nested write may touch.
pub const MAX_NESTED_WRITES: usize = 1000;

impl Data {
    /// Parses a create or update input (`LeadCreateInput` in JSON form) against `model`. Values are
    /// typed and validated; relations take `{connect, create, disconnect, set}`.
    ///
    /// # Errors
    /// Unknown fields, system fields, bad values (typed error naming the field), malformed relation
    /// inputs.
    pub fn parse(catalog: &Catalog, model: &Model, input: &Json, path: &str) -> Result<Data> {
        let mut budget = MAX_NESTED_WRITES;
        parse_data(catalog, model, input, path, &mut budget, 0)
    }
}

fn parse_data(catalog: &Catalog, model: &Model, input: &Json, path: &str, budget: &mut usize, depth: usize) -> Result<Data> {
    if depth > MAX_FILTER_DEPTH {
        return Err(OrmError::bad(path, "nested writes are too deep"));
    }
    *budget = budget.checked_sub(1).ok_or_else(|| OrmError::bad(path, format!("more than {MAX_NESTED_WRITES} nested writes")))?;
    let Json::Object(obj) = input else {
        return Err(OrmError::bad(path, "expected an object"));
    };
    let mut fields = IndexMap::with_capacity(obj.len());
    for (key, val) in obj {
        let p = format!("{path}.{key}");
        let f = model.field(key).ok_or_else(|| OrmError::bad(&p, format!("unknown field `{key}` on {}", model.name)))?;
        if f.system {
            return Err(OrmError::bad(&p, format!("`{key}` is set by the system")));
        }
        let w = match &f.kind {
            FieldKind::Scalar(_) | FieldKind::Polymorphic { .. } => {
                let v = input::parse(f, val)?;
                input::validate(f, &v)?;
                FieldWrite::Set(v)
            }
            FieldKind::ToOne { target, .. } => {
                let t = target_model(catalog, target, &p)?;
                FieldWrite::ToOne(parse_to_one(catalog, t, val, &p, budget, depth)?)
            }
            FieldKind::ToMany { target, .. } => {
                let t = target_model(catalog, target, &p)?;
                FieldWrite::ToMany(parse_to_many(catalog, t, val, &p, budget, depth)?)
            }
        };
        fields.insert(f.name.clone(), w);
    }
    Ok(Data { fields })
}

fn parse_to_one(catalog: &Catalog, target: &Model, val: &Json, path: &str, budget: &mut usize, depth: usize) -> Result<ToOneWrite> {
    let Json::Object(o) = val else {
        return Err(OrmError::bad(path, "expected {connect | create | disconnect}"));
    };
    let given: Vec<(&String, &Json)> = o.iter().filter(|(_, v)| !v.is_null()).collect();
    let [(key, v)] = given.as_slice() else {
        return Err(OrmError::bad(path, "give exactly one of connect, create, disconnect"));
    };
    let p = format!("{path}.{key}");
    match key.as_str() {
        "connect" => Ok(ToOneWrite::Connect(Unique::parse(target, v, &p)?)),
        "create" => Ok(ToOneWrite::Create(Box::new(parse_data(catalog, target, v, &p, budget, depth + 1)?))),
        "disconnect" => match v {
            Json::Bool(true) => Ok(ToOneWrite::Disconnect),
            _ => Err(OrmError::bad(p, "disconnect takes true")),
        },
        other => Err(OrmError::bad(p, format!("unknown relation operation `{other}`"))),
    }
}

fn parse_uniques(target: &Model, v: &Json, path: &str, budget: &mut usize) -> Result<Vec<Unique>> {
    let Json::Array(items) = v else {
        return Err(OrmError::bad(path, "expected a list"));
    };
    *budget = budget.checked_sub(items.len()).ok_or_else(|| OrmError::bad(path, format!("more than {MAX_NESTED_WRITES} nested writes")))?;
    items.iter().enumerate().map(|(i, u)| Unique::parse(target, u, &format!("{path}[{i}]"))).collect()
}

fn parse_to_many(catalog: &Catalog, target: &Model, val: &Json, path: &str, budget: &mut usize, depth: usize) -> Result<ToManyWrite> {
    let Json::Object(o) = val else {
        return Err(OrmError::bad(path, "expected {connect, create, disconnect, set}"));
    };
    let mut w = ToManyWrite::default();
    for (key, v) in o {
        let p = format!("{path}.{key}");
        match key.as_str() {
            "connect" => w.connect = parse_uniques(target, v, &p, budget)?,
            "disconnect" => w.disconnect = parse_uniques(target, v, &p, budget)?,
            "set" => w.set = Some(parse_uniques(target, v, &p, budget)?),
            "create" => {
                let Json::Array(items) = v else {
                    return Err(OrmError::bad(p, "expected a list"));
                };
                w.create = items
                    .iter()
                    .enumerate()
                    .map(|(i, d)| parse_data(catalog, target, d, &format!("{p}[{i}]"), budget, depth + 1))
                    .collect::<Result<_>>()?;
            }
            other => return Err(OrmError::bad(p, format!("unknown relation operation `{other}`"))),
        }
    }
    Ok(w)
}

/// A write.
#[derive(Debug, Clone, PartialEq)]
pub enum Write {
    /// Insert one record (with nested writes).
    Create {
        /// The model.
        model: ModelName,
        /// The data.
        data: Data,
    },
    /// Update one record.
    Update {
        /// The model.
        model: ModelName,
        /// Which record.
        target: Unique,
        /// The changes.
        data: Data,
        /// Fail with a conflict unless the stored version is this.
        expected_version: Option<i64>,
    },
    /// Take a record out of the trash.
    Restore {
        /// The model.
        model: ModelName,
        /// Which record (in the trash).
        target: Unique,
    },
    /// Remove a record for good, from the trash or not.
    Destroy {
        /// The model.
        model: ModelName,
        /// Which record.
        target: Unique,
    },
    /// Move one record to the trash.
    Delete {
        /// The model.
        model: ModelName,
        /// Which record.
        target: Unique,
        /// Fail with a conflict unless the stored version is this.
        expected_version: Option<i64>,
    },
    /// Update the record if it exists, else create it.
    Upsert {
        /// The model.
        model: ModelName,
        /// Which record.
        target: Unique,
        /// Data when creating.
        create: Data,
        /// Data when updating.
        update: Data,
    },
    /// Update every matching record (scalar fields only).
    UpdateMany {
        /// The model.
        model: ModelName,
        /// Which records.
        filter: Filter,
        /// Ordering and pagination of the affected set.
        order: Vec<OrderBy>,
        /// Page of the affected set.
        page: Page,
        /// The changes (scalars).
        data: Data,
    },
    /// Delete every matching record.
    DeleteMany {
        /// The model.
        model: ModelName,
        /// Which records.
        filter: Filter,
        /// Ordering of the affected set.
        order: Vec<OrderBy>,
        /// Page of the affected set.
        page: Page,
    },
}

impl Write {
    /// The model written.
    #[must_use]
    pub fn model(&self) -> &ModelName {
        match self {
            Write::Create { model, .. }
            | Write::Update { model, .. }
            | Write::Delete { model, .. }
            | Write::Restore { model, .. }
            | Write::Destroy { model, .. }
            | Write::Upsert { model, .. }
            | Write::UpdateMany { model, .. }
            | Write::DeleteMany { model, .. } => model,
        }
    }
}
