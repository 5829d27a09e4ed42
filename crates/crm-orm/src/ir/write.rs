//! Writes: the unique target of a write, its data (values and relation writes, parsed from the
//! JSON form of the create and update inputs) and the write itself.

use super::filter::{Filter, MAX_FILTER_DEPTH, target_model};
use super::read::{OrderBy, Page};
use crate::error::{OrmError, Result};
use crm_model::{Catalog, FieldKind, FieldName, Model, ModelName, Value, input};
use indexmap::IndexMap;
use serde_json::Value as Json;
use uuid::Uuid;

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
        let (key, val) =
            one_entry(input, path, "expected an object with exactly one unique field", "exactly one unique field must be given")?;
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
        parse_data(catalog, model, input, path, &mut budget, 0, false)
    }

    /// As [`Data::parse`], for the platform's own writes (the engines'): read-only fields
    /// ([`crm_model::Field::read_only`]) may be set.
    ///
    /// # Errors
    /// As [`Data::parse`].
    pub fn parse_platform(catalog: &Catalog, model: &Model, input: &Json, path: &str) -> Result<Data> {
        let mut budget = MAX_NESTED_WRITES;
        parse_data(catalog, model, input, path, &mut budget, 0, true)
    }
}

fn parse_data(
    catalog: &Catalog,
    model: &Model,
    input: &Json,
    path: &str,
    budget: &mut usize,
    depth: usize,
    platform: bool,
) -> Result<Data> {
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
        if f.system || (f.read_only && !platform) {
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
    let (key, v) = one_entry(val, path, "expected {connect | create | disconnect}", "give exactly one of connect, create, disconnect")?;
    let p = format!("{path}.{key}");
    match key.as_str() {
        "connect" => Ok(ToOneWrite::Connect(Unique::parse(target, v, &p)?)),
        "create" => Ok(ToOneWrite::Create(Box::new(parse_data(catalog, target, v, &p, budget, depth + 1, false)?))),
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
                    .map(|(i, d)| parse_data(catalog, target, d, &format!("{p}[{i}]"), budget, depth + 1, false))
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

/// The one non-null entry of the input object `input` at `path`: `not_object` when it is no
/// object, `not_one` when it has none or several.
fn one_entry<'j>(input: &'j Json, path: &str, not_object: &str, not_one: &str) -> Result<(&'j String, &'j Json)> {
    let Json::Object(o) = input else {
        return Err(OrmError::bad(path, not_object));
    };
    let mut given = o.iter().filter(|(_, v)| !v.is_null());
    match (given.next(), given.next()) {
        (Some(entry), None) => Ok(entry),
        _ => Err(OrmError::bad(path, not_one)),
    }
}
