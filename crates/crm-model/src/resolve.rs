//! Resolution: the models and fields users declare ([`ModelDef`]) checked and turned into a
//! [`Catalog`], and a catalog extended with a tenant's custom definitions.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use indexmap::IndexMap;

use crate::api::{ApiNames, BUILTIN_ROOTS, BUILTIN_TYPES, RESERVED_TYPES};
use crate::catalog::{
    Catalog, Checks, Extension, Field, FieldKind, Index, MAX_CUSTOM_FIELDS, MAX_CUSTOM_OBJECTS, Model, RECORDS_TABLE, RESERVED_FIELDS,
    RESERVED_TABLE_PREFIXES, SYSTEM_COLUMNS, SYSTEM_FIELDS, ScalarType, TypeClass,
};
use crate::def::{FieldDef, FieldType, ModelDef, OnDelete};
use crate::error::{MetadataError, NameError};
use crate::input;
use crate::names::{FieldName, ModelName, OptionName, SqlName, english_plural, humanize, lower_first, snake_case};
use crate::value::Value;

fn sys_field(name: &str, column: &str, ty: ScalarType) -> Option<Field> {
    Some(Field {
        name: FieldName::new(name).ok()?,
        column: SqlName::new(column).ok()?,
        kind: FieldKind::Scalar(ty),
        required: true,
        unique: false,
        indexed: false,
        searchable: false,
        tracked: false,
        stage: false,
        default: None,
        description: None,
        checks: Checks::default(),
        label: humanize(name),
        option_labels: indexmap::IndexMap::new(),
        system: true,
        read_only: false,
        custom: false,
    })
}

fn system_fields() -> Vec<Field> {
    [
        sys_field("id", "id", ScalarType::Id),
        sys_field("createdAt", "created_at", ScalarType::DateTime),
        sys_field("updatedAt", "updated_at", ScalarType::DateTime),
        sys_field("createdBy", "created_by", ScalarType::Text),
        sys_field("updatedBy", "updated_by", ScalarType::Text),
        sys_field("version", "version", ScalarType::Int),
        sys_field("deletedAt", "deleted_at", ScalarType::DateTime),
    ]
    .into_iter()
    .flatten()
    .map(|mut f| {
        if matches!(f.name.as_str(), "createdBy" | "updatedBy" | "deletedAt") {
            f.required = false;
        }
        f
    })
    .collect()
}

struct Ctx<'a> {
    model: &'a str,
}

impl Ctx<'_> {
    fn bad_name(&self, source: NameError) -> MetadataError {
        MetadataError::BadName { model: self.model.to_owned(), source }
    }
    fn bad_field(&self, field: &str, reason: impl Into<String>) -> MetadataError {
        MetadataError::BadField { model: self.model.to_owned(), field: field.to_owned(), reason: reason.into() }
    }
    fn clash(&self, what: &'static str, name: &str, other: impl Into<String>) -> MetadataError {
        MetadataError::Clash { model: self.model.to_owned(), what, name: name.to_owned(), other: other.into() }
    }
}

/// The label of every option of a select or multi-select field `fd`: given, or the option in
/// words (`CLOSED_WON` → `Closed won`). A label for an option the field does not have is refused.
fn option_labels(cx: &Ctx<'_>, fd: &FieldDef) -> Result<indexmap::IndexMap<String, String>, MetadataError> {
    let (FieldType::Select { options, option_labels } | FieldType::MultiSelect { options, option_labels }) = &fd.ty else {
        return Ok(indexmap::IndexMap::new());
    };
    if let Some(stray) = option_labels.keys().find(|k| !options.contains(k)) {
        return Err(cx.bad_field(&fd.name, format!("a label for `{stray}`, which is not an option")));
    }
    Ok(options
        .iter()
        .map(|o| {
            let label = option_labels.get(o).cloned().unwrap_or_else(|| {
                let words = o.to_lowercase().replace('_', " ");
                let mut c = words.chars();
                c.next().map(|f| f.to_uppercase().collect::<String>() + c.as_str()).unwrap_or_default()
            });
            (o.clone(), label)
        })
        .collect())
}

fn options(cx: &Ctx<'_>, field: &str, opts: &[String]) -> Result<Vec<OptionName>, MetadataError> {
    if opts.is_empty() {
        return Err(cx.bad_field(field, "a select needs at least one option"));
    }
    let mut seen = HashSet::new();
    let mut out = Vec::with_capacity(opts.len());
    for o in opts {
        let name = OptionName::new(o.as_str()).map_err(|e| cx.bad_field(field, e.to_string()))?;
        if !seen.insert(o.as_str()) {
            return Err(cx.bad_field(field, format!("option `{o}` is listed twice")));
        }
        out.push(name);
    }
    Ok(out)
}

fn compile_checks(cx: &Ctx<'_>, def: &FieldDef) -> Result<Checks, MetadataError> {
    let v = &def.validation;
    if let (Some(a), Some(b)) = (v.min_length, v.max_length)
        && a > b
    {
        return Err(cx.bad_field(&def.name, "minLength is greater than maxLength"));
    }
    if let (Some(a), Some(b)) = (v.min, v.max)
        && (a > b || a.is_nan() || b.is_nan())
    {
        return Err(cx.bad_field(&def.name, "min is greater than max"));
    }
    let pattern = match &v.pattern {
        None => None,
        Some(p) => Some(
            regex::RegexBuilder::new(&format!("^(?:{p})$"))
                .size_limit(1 << 20)
                .build()
                .map_err(|_| cx.bad_field(&def.name, format!("invalid pattern `{p}`")))?,
        ),
    };
    Ok(Checks { min_length: v.min_length, max_length: v.max_length, min: v.min, max: v.max, pattern })
}

/// The rules custom (tenant-defined) fields follow beyond those of every field: their values
/// live in a shared JSON column, so nothing that needs a column, an index or a trigger of its own.
fn custom_field_rules(cx: &Ctx<'_>, fd: &FieldDef) -> Result<(), MetadataError> {
    let refuse = |reason: &str| Err(cx.bad_field(&fd.name, reason));
    if fd.unique {
        return refuse("custom fields cannot be unique");
    }
    if fd.indexed {
        return refuse("custom fields cannot be indexed");
    }
    if fd.stage {
        return refuse("stage fields are declared in code, not at runtime");
    }
    if fd.read_only {
        return refuse("read-only fields are set by the platform's engines, declared in code");
    }
    match &fd.ty {
        FieldType::Polymorphic { .. } => refuse("custom fields cannot be polymorphic references"),
        FieldType::Relation { on_delete: Some(OnDelete::Cascade), .. } => {
            refuse("custom relations support onDelete setNull or restrict, not cascade")
        }
        _ => Ok(()),
    }
}

/// Which fields of a definition are custom, and whether it is a custom object.
#[derive(Debug, Clone, Copy)]
struct Mark {
    /// Fields from this index on are custom.
    custom_from: usize,
    /// A custom object (every field custom, stored in the shared records table).
    object: bool,
}

/// First pass over one model: names, columns, field kinds (targets not yet checked).
fn resolve_model(def: &ModelDef, mark: Mark) -> Result<Model, MetadataError> {
    let cx = Ctx { model: &def.name };
    let name = ModelName::new(def.name.as_str()).map_err(|e| cx.bad_name(e))?;
    if BUILTIN_TYPES.contains(&def.name.as_str()) || RESERVED_TYPES.contains(&def.name.as_str()) {
        return Err(MetadataError::Reserved { model: def.name.clone(), name: def.name.clone() });
    }
    let singular = lower_first(&def.name);
    let plural = match &def.plural {
        Some(p) => FieldName::new(p.as_str()).map_err(|e| cx.bad_name(e))?.as_str().to_owned(),
        None => lower_first(&english_plural(&def.name)),
    };
    if plural == singular {
        return Err(cx.clash("plural", &plural, "the singular name; declare a distinct plural"));
    }
    let table = match &def.table {
        Some(_) if mark.object => {
            return Err(MetadataError::BadModel {
                model: def.name.clone(),
                reason: "custom objects live in a shared table; `table` cannot be set".to_owned(),
            });
        }
        None if mark.object => SqlName::new(RECORDS_TABLE).map_err(|e| cx.bad_name(e))?,
        Some(t) => SqlName::new(t.as_str()).map_err(|e| cx.bad_name(e))?,
        None => SqlName::new(snake_case(&plural)).map_err(|e| cx.bad_name(e))?,
    };
    if !mark.object && RESERVED_TABLE_PREFIXES.iter().any(|p| table.as_str().starts_with(p)) {
        return Err(MetadataError::Reserved { model: def.name.clone(), name: table.to_string() });
    }

    let mut fields = IndexMap::new();
    let mut columns: HashMap<String, String> = HashMap::new();
    for f in system_fields() {
        columns.insert(f.column.to_string(), f.name.to_string());
        fields.insert(f.name.clone(), f);
    }
    for c in SYSTEM_COLUMNS {
        columns.entry((*c).to_owned()).or_insert_with(|| "a system column".to_owned());
    }

    for (index, fd) in def.fields.iter().enumerate() {
        let custom = mark.object || index >= mark.custom_from;
        if SYSTEM_FIELDS.contains(&fd.name.as_str()) || RESERVED_FIELDS.contains(&fd.name.as_str()) {
            return Err(MetadataError::Reserved { model: def.name.clone(), name: fd.name.clone() });
        }
        let fname = FieldName::new(fd.name.as_str()).map_err(|e| cx.bad_name(e))?;
        if fields.contains_key(&fname) {
            return Err(cx.clash("field", &fd.name, "another field of the same name"));
        }
        if custom {
            custom_field_rules(&cx, fd)?;
        }
        let snake = snake_case(&fd.name);
        let mut extra_columns = Vec::new();
        let (kind, column) = match &fd.ty {
            FieldType::Relation { target, on_delete } => {
                let target = ModelName::new(target.as_str()).map_err(|e| cx.bad_name(e))?;
                let on_delete = on_delete.unwrap_or(if fd.required { OnDelete::Restrict } else { OnDelete::SetNull });
                if on_delete == OnDelete::SetNull && fd.required {
                    return Err(cx.bad_field(&fd.name, "a required relation cannot use onDelete: setNull"));
                }
                (FieldKind::ToOne { target, on_delete }, format!("{snake}_id"))
            }
            FieldType::Inverse { target, via } => {
                let target = ModelName::new(target.as_str()).map_err(|e| cx.bad_name(e))?;
                let via = FieldName::new(via.as_str()).map_err(|e| cx.bad_name(e))?;
                if fd.required || fd.unique || fd.default.as_ref().is_some_and(|d| !d.is_null()) {
                    return Err(cx.bad_field(&fd.name, "a to-many relation cannot be required, unique or defaulted"));
                }
                (FieldKind::ToMany { target, via }, snake.clone())
            }
            FieldType::Polymorphic { targets, on_delete } => {
                if targets.is_empty() {
                    return Err(cx.bad_field(&fd.name, "a polymorphic reference needs at least one target (`*` for any model)"));
                }
                // `["*"]`: any model, kept as no list.
                let targets = if targets.iter().any(|t| t == "*") {
                    if targets.len() > 1 {
                        return Err(cx.bad_field(&fd.name, "`*` stands for every model: list no other target with it"));
                    }
                    Vec::new()
                } else {
                    targets.iter().map(|t| ModelName::new(t.as_str()).map_err(|e| cx.bad_name(e))).collect::<Result<Vec<_>, _>>()?
                };
                let on_delete = match on_delete {
                    None | Some(OnDelete::SetNull) if fd.required => {
                        return Err(cx.bad_field(&fd.name, "a required polymorphic reference needs onDelete: cascade"));
                    }
                    None | Some(OnDelete::SetNull) => OnDelete::SetNull,
                    Some(OnDelete::Cascade) => OnDelete::Cascade,
                    Some(OnDelete::Restrict) => {
                        return Err(cx.bad_field(&fd.name, "a polymorphic reference supports onDelete setNull or cascade"));
                    }
                };
                let type_column = SqlName::new(format!("{snake}_type")).map_err(|e| cx.bad_name(e))?;
                extra_columns.push(type_column.to_string());
                (FieldKind::Polymorphic { targets, type_column, on_delete }, format!("{snake}_id"))
            }
            other => {
                let st = match other {
                    FieldType::Text => ScalarType::Text,
                    FieldType::LongText => ScalarType::LongText,
                    FieldType::Email => ScalarType::Email,
                    FieldType::Phone => ScalarType::Phone,
                    FieldType::Url => ScalarType::Url,
                    FieldType::Int => ScalarType::Int,
                    FieldType::Float => ScalarType::Float,
                    FieldType::Decimal => ScalarType::Decimal,
                    FieldType::Money => {
                        let c = SqlName::new(format!("{snake}_currency")).map_err(|e| cx.bad_name(e))?;
                        extra_columns.push(c.to_string());
                        ScalarType::Money { currency_column: c }
                    }
                    FieldType::Boolean => ScalarType::Boolean,
                    FieldType::Date => ScalarType::Date,
                    FieldType::DateTime => ScalarType::DateTime,
                    FieldType::Select { options: o, .. } => ScalarType::Select(options(&cx, &fd.name, o)?),
                    FieldType::MultiSelect { options: o, .. } => ScalarType::MultiSelect(options(&cx, &fd.name, o)?),
                    FieldType::Tags => ScalarType::Tags,
                    _ => ScalarType::Json,
                };
                (FieldKind::Scalar(st), snake.clone())
            }
        };
        let column = SqlName::new(column).map_err(|e| cx.bad_name(e))?;
        for c in std::iter::once(column.to_string()).chain(extra_columns) {
            if let Some(other) = columns.insert(c.clone(), fd.name.clone()) {
                return Err(cx.clash("column", &c, format!("the column of `{other}`")));
            }
        }
        if let FieldKind::Scalar(st) = &kind {
            if fd.unique && matches!(st.class(), TypeClass::List | TypeClass::Json) {
                return Err(cx.bad_field(&fd.name, "lists and JSON cannot be unique"));
            }
            if fd.searchable && !st.is_text() {
                return Err(cx.bad_field(&fd.name, "only text fields can be searchable"));
            }
            let v = &fd.validation;
            if (v.min_length.is_some() || v.max_length.is_some() || v.pattern.is_some()) && !st.is_text() {
                return Err(cx.bad_field(&fd.name, "length and pattern checks apply to text fields only"));
            }
            if (v.min.is_some() || v.max.is_some()) && !st.is_numeric() {
                return Err(cx.bad_field(&fd.name, "range checks apply to numeric fields only"));
            }
        } else if fd.searchable || !fd.validation.is_empty() {
            return Err(cx.bad_field(&fd.name, "relations cannot be searchable or carry value checks"));
        }
        if fd.stage && !matches!(kind, FieldKind::Scalar(ScalarType::Select(_))) {
            return Err(cx.bad_field(&fd.name, "only select fields can be stage fields"));
        }
        let checks = compile_checks(&cx, fd)?;
        let mut field = Field {
            name: fname.clone(),
            column,
            kind,
            required: fd.required,
            unique: fd.unique,
            indexed: fd.indexed,
            searchable: fd.searchable,
            // Every change of a custom value is kept.
            tracked: fd.tracked || custom,
            stage: fd.stage,
            default: None,
            description: fd.description.clone(),
            label: fd.label.clone().unwrap_or_else(|| humanize(&fd.name)),
            option_labels: option_labels(&cx, fd)?,
            checks,
            system: false,
            read_only: fd.read_only,
            custom,
        };
        // `"default": null` means no default.
        if let Some(d) = fd.default.as_ref().filter(|d| !d.is_null()) {
            if !matches!(field.kind, FieldKind::Scalar(_)) {
                return Err(cx.bad_field(&fd.name, "only scalar fields can have a default"));
            }
            let v = input::parse(&field, d)
                .and_then(|v| input::validate(&field, &v).map(|()| v))
                .map_err(|e| cx.bad_field(&fd.name, format!("invalid default: {}", e.reason)))?;
            // `parse` takes a bare amount for filters; a stored money value needs its currency.
            if matches!(field.scalar(), Some(ScalarType::Money { .. })) && !matches!(v, Value::Money { .. }) {
                return Err(cx.bad_field(&fd.name, "invalid default: money needs {\"amount\", \"currency\"}"));
            }
            if field.unique {
                return Err(cx.bad_field(&fd.name, "a unique field cannot have a default"));
            }
            field.default = Some(v);
        }
        fields.insert(fname, field);
    }
    for f in fields.values() {
        if matches!(f.kind, FieldKind::ToMany { .. }) {
            let conn = format!("{}Connection", f.name);
            if fields.contains_key(conn.as_str()) {
                return Err(cx.clash("field", &conn, format!("the connection field of `{}`", f.name)));
            }
        }
    }
    let owner = match &def.owner_field {
        None => None,
        Some(o) => {
            let f = fields.get(o.as_str()).ok_or_else(|| MetadataError::BadModel {
                model: def.name.clone(),
                reason: format!("owner field `{o}` is not a field of the model"),
            })?;
            let ok = matches!(f.kind, FieldKind::ToOne { .. } | FieldKind::Scalar(ScalarType::Text)) && !f.system;
            if !ok {
                return Err(MetadataError::BadModel {
                    model: def.name.clone(),
                    reason: format!("owner field `{o}` must be a to-one relation or a text field"),
                });
            }
            Some(f.name.clone())
        }
    };
    let indexes = resolve_indexes(def, mark, &fields)?;
    let label = def.label.clone().unwrap_or_else(|| humanize(&def.name));
    let enums = fields.values().filter(|f| matches!(f.kind, FieldKind::Scalar(ScalarType::Select(_) | ScalarType::MultiSelect(_))));
    let to_many = fields.values().filter(|f| matches!(f.kind, FieldKind::ToMany { .. }));
    let api = ApiNames::derive(name.as_str(), &singular, &plural, enums.map(|f| &f.name), to_many.map(|f| &f.name));
    Ok(Model {
        name,
        singular,
        plural,
        table,
        description: def.description.clone(),
        label,
        custom: mark.object,
        owner,
        fields,
        indexes,
        api,
    })
}

/// The declared indexes: keys are stored scalar or to-one fields (`_DESC` for descending), at
/// most 8, none twice; custom objects and custom fields have no columns to index.
fn resolve_indexes(def: &ModelDef, mark: Mark, fields: &IndexMap<FieldName, Field>) -> Result<Vec<Index>, MetadataError> {
    let bad = |reason: String| MetadataError::BadModel { model: def.name.clone(), reason };
    if mark.object && !def.indexes.is_empty() {
        return Err(bad("a custom object cannot declare indexes: its records share one table".to_owned()));
    }
    let mut out = Vec::with_capacity(def.indexes.len());
    for ix in &def.indexes {
        if ix.keys.is_empty() || ix.keys.len() > 8 {
            return Err(bad(format!("an index has 1 to 8 keys, not {}", ix.keys.len())));
        }
        let mut keys: Vec<(FieldName, bool)> = Vec::with_capacity(ix.keys.len());
        for k in &ix.keys {
            let (name, desc) = match k.strip_suffix("_DESC") {
                Some(n) => (n, true),
                None => (k.strip_suffix("_ASC").unwrap_or(k), false),
            };
            let f = fields.get(name).ok_or_else(|| bad(format!("index key `{k}` is not a field of the model")))?;
            let indexable = match &f.kind {
                FieldKind::Scalar(t) => !matches!(t, ScalarType::Json | ScalarType::Tags | ScalarType::MultiSelect(_)),
                // A polymorphic reference indexes its id (ids are unique across models).
                FieldKind::ToOne { .. } | FieldKind::Polymorphic { .. } => true,
                FieldKind::ToMany { .. } => false,
            };
            if !indexable || f.custom || f.name.as_str() == "id" {
                return Err(bad(format!("index key `{k}` must be a stored scalar, to-one or polymorphic field other than `id`")));
            }
            if keys.iter().any(|(n, _)| n == &f.name) {
                return Err(bad(format!("index key `{name}` appears twice")));
            }
            keys.push((f.name.clone(), desc));
        }
        out.push(Index { keys });
    }
    Ok(out)
}

/// Validates and links a set of model definitions into an immutable [`Catalog`].
///
/// # Errors
/// The first problem found, naming the model and field: bad or reserved names, GraphQL or SQL
/// name clashes, unknown relation targets, inverse relations without their to-one side, bad
/// defaults or options. Never panics.
pub fn resolve(defs: &[ModelDef]) -> Result<Catalog, MetadataError> {
    let marks: Vec<Mark> = defs.iter().map(|d| Mark { custom_from: d.fields.len(), object: false }).collect();
    let mut cat = resolve_marked(defs, &marks)?;
    cat.base = Arc::new(defs.to_vec());
    Ok(cat)
}

impl Catalog {
    /// This catalog's base definitions plus a tenant's `ext`: custom fields appended to their
    /// models, custom objects after the base models, everything validated again by the same rules
    /// as [`resolve`] plus those of custom definitions (no unique, indexed, stage or polymorphic
    /// custom fields, no cascading custom relations, no table of their own). Extending an
    /// extended catalog starts again from the base: extensions replace, they do not stack.
    ///
    /// # Errors
    /// The first problem found, naming the model and field.
    pub fn extend(&self, ext: &Extension) -> Result<Catalog, MetadataError> {
        let mut defs: Vec<ModelDef> = self.base.to_vec();
        let mut marks: Vec<Mark> = defs.iter().map(|d| Mark { custom_from: d.fields.len(), object: false }).collect();
        if ext.objects.len() > MAX_CUSTOM_OBJECTS {
            let model = ext.objects.last().map(|o| o.name.clone()).unwrap_or_default();
            return Err(MetadataError::BadModel {
                model,
                reason: format!("a tenant may define at most {MAX_CUSTOM_OBJECTS} custom objects"),
            });
        }
        for o in &ext.objects {
            if o.fields.len() > MAX_CUSTOM_FIELDS {
                return Err(MetadataError::BadModel {
                    model: o.name.clone(),
                    reason: format!("a custom object may have at most {MAX_CUSTOM_FIELDS} fields"),
                });
            }
            defs.push(o.clone());
            marks.push(Mark { custom_from: 0, object: true });
        }
        let mut added: HashMap<&str, usize> = HashMap::new();
        for (model, fd) in &ext.fields {
            let def = defs
                .iter_mut()
                .find(|d| &d.name == model)
                .ok_or_else(|| MetadataError::BadModel { model: model.clone(), reason: "there is no such model".to_owned() })?;
            def.fields.push(fd.clone());
            let n = added.entry(model.as_str()).or_default();
            *n += 1;
            if *n > MAX_CUSTOM_FIELDS {
                return Err(MetadataError::BadModel {
                    model: model.clone(),
                    reason: format!("a model may get at most {MAX_CUSTOM_FIELDS} custom fields"),
                });
            }
        }
        let mut cat = resolve_marked(&defs, &marks)?;
        cat.base = Arc::clone(&self.base);
        // A model the extension adds nothing to resolves to what it is in this catalog when it
        // has nothing custom here either (a model's resolution depends on its own definition
        // alone): the tenant's catalog shares it, and so only pays for what it changed.
        for (name, model) in &mut cat.models {
            if let Some(own) = self.models.get(name)
                && !added.contains_key(name.as_str())
                && !own.custom
                && own.fields.values().all(|f| !f.custom)
            {
                *model = Arc::clone(own);
            }
        }
        Ok(cat)
    }

    /// Like [`Self::extend`], keeping what resolves when the whole does not (stored definitions
    /// that a newer base catalog now contradicts): objects are added while any can be, then
    /// fields one by one; what could not be added comes back with its error.
    #[must_use]
    pub fn extend_lenient(&self, ext: &Extension) -> (Catalog, Vec<MetadataError>) {
        let first = match self.extend(ext) {
            Ok(c) => return (c, Vec::new()),
            Err(e) => e,
        };
        let mut kept = Extension::default();
        let mut objects: Vec<&ModelDef> = ext.objects.iter().collect();
        loop {
            let before = objects.len();
            objects.retain(|o| {
                let mut trial = kept.clone();
                trial.objects.push((*o).clone());
                if self.extend(&trial).is_ok() {
                    kept = trial;
                    false
                } else {
                    true
                }
            });
            if objects.len() == before {
                break;
            }
        }
        let mut skipped: Vec<MetadataError> = Vec::new();
        for o in objects {
            let mut trial = kept.clone();
            trial.objects.push(o.clone());
            skipped.extend(self.extend(&trial).err());
        }
        for f in &ext.fields {
            let mut trial = kept.clone();
            trial.fields.push(f.clone());
            match self.extend(&trial) {
                Ok(_) => kept = trial,
                Err(e) => skipped.push(e),
            }
        }
        if skipped.is_empty() {
            skipped.push(first);
        }
        (self.extend(&kept).unwrap_or_else(|_| self.clone()), skipped)
    }

    /// The definitions the base catalog was resolved from.
    #[must_use]
    pub fn base_defs(&self) -> &[ModelDef] {
        &self.base
    }
}

fn resolve_marked(defs: &[ModelDef], marks: &[Mark]) -> Result<Catalog, MetadataError> {
    let mut models: IndexMap<ModelName, Model> = IndexMap::new();
    let mut tables: HashMap<String, String> = HashMap::new();
    let mut roots: HashMap<String, String> = HashMap::new();
    let mut types: HashMap<String, String> =
        BUILTIN_TYPES.iter().chain(RESERVED_TYPES).map(|t| ((*t).to_owned(), "a built-in type".to_owned())).collect();
    for r in BUILTIN_ROOTS {
        roots.insert((*r).to_owned(), format!("the built-in `{r}` field"));
    }
    for (i, def) in defs.iter().enumerate() {
        let mark = marks.get(i).copied().unwrap_or(Mark { custom_from: def.fields.len(), object: false });
        let m = resolve_model(def, mark)?;
        let cx = Ctx { model: &def.name };
        if models.contains_key(&m.name) {
            return Err(cx.clash("model", m.name.as_str(), "another model of the same name"));
        }
        if !m.custom
            && let Some(other) = tables.insert(m.table.to_string(), def.name.clone())
        {
            return Err(cx.clash("table", m.table.as_str(), format!("the table of model `{other}`")));
        }
        for name in m.api.roots() {
            if let Some(other) = roots.insert(name.to_owned(), def.name.clone()) {
                return Err(cx.clash("root field", name, format!("a root field of `{other}`")));
            }
        }
        for name in m.api.types() {
            if let Some(other) = types.insert(name.to_owned(), def.name.clone()) {
                return Err(cx.clash("GraphQL type", name, format!("a type of `{other}`")));
            }
        }
        models.insert(m.name.clone(), m);
    }
    // Second pass: relation targets and inverse sides.
    for m in models.values() {
        let cx = Ctx { model: m.name.as_str() };
        for f in m.fields.values() {
            match &f.kind {
                FieldKind::ToOne { target, .. } => {
                    if !models.contains_key(target) {
                        return Err(MetadataError::UnknownTarget {
                            model: m.name.to_string(),
                            field: f.name.to_string(),
                            target: target.to_string(),
                        });
                    }
                }
                FieldKind::Polymorphic { targets, .. } => {
                    if let Some(t) = targets.iter().find(|t| !models.contains_key(*t)) {
                        return Err(MetadataError::UnknownTarget {
                            model: m.name.to_string(),
                            field: f.name.to_string(),
                            target: t.to_string(),
                        });
                    }
                }
                FieldKind::ToMany { target, via } => {
                    let t = models.get(target).ok_or_else(|| MetadataError::UnknownTarget {
                        model: m.name.to_string(),
                        field: f.name.to_string(),
                        target: target.to_string(),
                    })?;
                    let back = t.fields.get(via);
                    let ok = matches!(back.map(|b| &b.kind), Some(FieldKind::ToOne { target: tt, .. }) if tt == &m.name);
                    if !ok {
                        return Err(cx.bad_field(f.name.as_str(), format!("`{target}.{via}` must be a to-one relation to `{}`", m.name)));
                    }
                }
                FieldKind::Scalar(_) => {}
            }
        }
    }
    Ok(Catalog { models: models.into_iter().map(|(k, v)| (k, Arc::new(v))).collect(), base: Arc::default() })
}
