//! What users author: model and field definitions, as a Rust builder and as serde JSON. The same
//! structure serves code, files and the runtime metadata API. Nothing here is validated; that is
//! [`crate::resolve`]'s job.

use serde::{Deserialize, Serialize};

/// A model (an entity: `Lead`, `Account`, …) as declared.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ModelDef {
    /// API name, `PascalCase` (`Lead`). GraphQL type names derive from it.
    pub name: String,
    /// Plural API name, `camelCase` (`leads`); defaults to the English plural of the name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub plural: Option<String>,
    /// SQL table name, `snake_case`; defaults to the snake-cased plural.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub table: Option<String>,
    /// Shown in the GraphQL schema and to people building forms.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// The name people see (`"Social event"`); defaults to the API name in words.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label: Option<String>,
    /// The to-one field (to `Member`) or text field holding the record's owner; row rules such as
    /// "own records only" use it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner_field: Option<String>,
    /// The fields in declaration order (the order of columns, forms and the schema).
    #[serde(default)]
    pub fields: Vec<FieldDef>,
    /// Indexes for the lists people ask for most, beyond the one per indexed field: each becomes
    /// `(org_id, keys…, id)` over the live rows, e.g. `["status", "createdAt_DESC"]` serves
    /// "leads of a stage, newest first" and counts by stage.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub indexes: Vec<IndexDef>,
}

/// A composite index as declared: its keys in order, each a field name, with `_DESC` for a
/// descending key (the names `orderBy` takes).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct IndexDef {
    /// The keys, e.g. `["status", "createdAt_DESC"]`.
    pub keys: Vec<String>,
}

/// A field as declared. Deserializing rejects unknown keys, like the other definitions (done by
/// hand: serde's `deny_unknown_fields` does not work together with the flattened `ty`).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct FieldDef {
    /// API name, `camelCase` (`lastContactedAt`); the column is its `snake_case`.
    pub name: String,
    /// The type and its type-specific settings.
    #[serde(flatten)]
    pub ty: FieldType,
    /// A value must be present on create and can never be set to null.
    #[serde(default, skip_serializing_if = "is_false")]
    pub required: bool,
    /// Unique within a tenant.
    #[serde(default, skip_serializing_if = "is_false")]
    pub unique: bool,
    /// Gets an index `(org_id, column)`.
    #[serde(default, skip_serializing_if = "is_false")]
    pub indexed: bool,
    /// Included in `_search`.
    #[serde(default, skip_serializing_if = "is_false")]
    pub searchable: bool,
    /// Changes are kept in the property history.
    #[serde(default, skip_serializing_if = "is_false")]
    pub tracked: bool,
    /// A lifecycle stage field (a select): each record keeps when it entered and left each
    /// option (lead status, opportunity stage, ticket status).
    #[serde(default, skip_serializing_if = "is_false")]
    pub stage: bool,
    /// Value used on create when none is given (JSON, in the field's input form).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default: Option<serde_json::Value>,
    /// Shown in the GraphQL schema and forms.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// The name people see in forms and tables (`"Last contacted at"`); defaults to the API name
    /// in words.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label: Option<String>,
    /// Checks on written values beyond the type's own format checks.
    #[serde(default, skip_serializing_if = "Validation::is_empty")]
    pub validation: Validation,
    /// Set by the platform (an engine), read by clients: absent from the API's create and
    /// update inputs and refused in them (`status` and `size` of an attachment).
    #[serde(default, skip_serializing_if = "is_false")]
    pub read_only: bool,
}

#[allow(clippy::trivially_copy_pass_by_ref)]
fn is_false(b: &bool) -> bool {
    !*b
}

/// The keys of a field definition besides those of its [`FieldType`].
#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct FieldCommon {
    name: String,
    #[serde(default)]
    required: bool,
    #[serde(default)]
    unique: bool,
    #[serde(default)]
    indexed: bool,
    #[serde(default)]
    searchable: bool,
    #[serde(default)]
    tracked: bool,
    #[serde(default)]
    stage: bool,
    #[serde(default)]
    description: Option<String>,
    #[serde(default)]
    label: Option<String>,
    #[serde(default)]
    validation: Validation,
    #[serde(default)]
    read_only: bool,
}

const COMMON_KEYS: &[&str] =
    &["name", "required", "unique", "indexed", "searchable", "tracked", "stage", "description", "label", "validation", "readOnly"];

impl<'de> Deserialize<'de> for FieldDef {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        use serde::de::Error;
        let mut rest = serde_json::Map::<String, serde_json::Value>::deserialize(d)?;
        let mut common = serde_json::Map::new();
        for k in COMMON_KEYS {
            if let Some(v) = rest.remove(*k) {
                common.insert((*k).to_owned(), v);
            }
        }
        // Kept apart so that an explicit `"default": null` survives a round trip as `Some(Null)`.
        let default = rest.remove("default");
        let c = FieldCommon::deserialize(serde_json::Value::Object(common)).map_err(D::Error::custom)?;
        let extra: Vec<String> = rest.keys().filter(|k| *k != "type").cloned().collect();
        let ty = FieldType::deserialize(serde_json::Value::Object(rest)).map_err(D::Error::custom)?;
        // serde lets unit variants of an internally tagged enum ignore extra keys.
        let has_settings = matches!(
            ty,
            FieldType::Select { .. }
                | FieldType::MultiSelect { .. }
                | FieldType::Relation { .. }
                | FieldType::Inverse { .. }
                | FieldType::Polymorphic { .. }
        );
        if let (false, Some(k)) = (has_settings, extra.first()) {
            return Err(D::Error::custom(format!("unknown field `{k}`")));
        }
        Ok(Self {
            name: c.name,
            ty,
            required: c.required,
            unique: c.unique,
            indexed: c.indexed,
            searchable: c.searchable,
            tracked: c.tracked,
            stage: c.stage,
            default,
            description: c.description,
            label: c.label,
            validation: c.validation,
            read_only: c.read_only,
        })
    }
}

/// Field types. Serialized as `{"type": "select", "options": [...]}` next to the other field keys.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "camelCase", deny_unknown_fields)]
pub enum FieldType {
    /// One line of text.
    Text,
    /// Multi-line text.
    LongText,
    /// An e-mail address (format checked).
    Email,
    /// A phone number (format checked: digits, spaces, `+ - ( ) .`, 5 to 20 digits).
    Phone,
    /// An `http(s)` URL (format checked).
    Url,
    /// 64-bit integer.
    Int,
    /// 64-bit float.
    Float,
    /// Exact decimal, carried as a string (`"1234.50"`).
    Decimal,
    /// An amount (decimal) with an ISO 4217 currency: `{"amount": "10.00", "currency": "EUR"}`.
    Money,
    /// true / false.
    Boolean,
    /// A calendar date, `YYYY-MM-DD`.
    Date,
    /// An instant, RFC 3339; stored in UTC.
    DateTime,
    /// One of a fixed list of options (a GraphQL enum).
    Select {
        /// The options, valid GraphQL enum values.
        options: Vec<String>,
        /// What people see for an option (`{"CLOSED_WON": "Won"}`); an option without one is
        /// shown in words (`CLOSED_WON` → `Closed won`).
        #[serde(default, rename = "optionLabels", skip_serializing_if = "indexmap::IndexMap::is_empty")]
        option_labels: indexmap::IndexMap<String, String>,
    },
    /// Any subset of a fixed list of options.
    MultiSelect {
        /// The options, valid GraphQL enum values.
        options: Vec<String>,
        /// As for [`FieldType::Select`].
        #[serde(default, rename = "optionLabels", skip_serializing_if = "indexmap::IndexMap::is_empty")]
        option_labels: indexmap::IndexMap<String, String>,
    },
    /// A free list of short strings.
    Tags,
    /// Any JSON document.
    Json,
    /// To-one relation (a foreign key `<name>_id`, carrying `org_id`).
    Relation {
        /// Target model API name (may be the model itself).
        target: String,
        /// What deleting the target does to this row.
        #[serde(default, rename = "onDelete", skip_serializing_if = "Option::is_none")]
        on_delete: Option<OnDelete>,
    },
    /// To-many relation: the inverse side of a to-one relation declared on the target.
    Inverse {
        /// Target model API name.
        target: String,
        /// The to-one field on the target that points back here.
        via: String,
    },
    /// A to-one reference to a record of one of several models (`subject` of an activity), kept
    /// as `<name>_type` + `<name>_id`; checked to exist in the same tenant on write.
    Polymorphic {
        /// The models it may point to; `["*"]` for any model of the tenant's catalog.
        targets: Vec<String>,
        /// What destroying the record pointed at does to this row: `setNull` (the default) or
        /// `cascade` (the row is destroyed with it). Moving it to the trash changes nothing.
        #[serde(default, rename = "onDelete", skip_serializing_if = "Option::is_none")]
        on_delete: Option<OnDelete>,
    },
}

/// What happens to rows pointing at a deleted record.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum OnDelete {
    /// The reference is cleared (the default for optional relations).
    SetNull,
    /// The deletion fails while references exist (the default for required relations).
    Restrict,
    /// The referencing rows are deleted too.
    Cascade,
}

/// Checks on written values.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Validation {
    /// Minimum length in characters (text types).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_length: Option<u32>,
    /// Maximum length in characters (text types).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_length: Option<u32>,
    /// Minimum value (numbers).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min: Option<f64>,
    /// Maximum value (numbers).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max: Option<f64>,
    /// A regular expression the whole value must match (text types).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pattern: Option<String>,
}

impl Validation {
    /// True when no check is set.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self == &Self::default()
    }
}

impl ModelDef {
    /// Starts a model with its API name.
    #[must_use]
    pub fn new(name: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            plural: None,
            table: None,
            description: None,
            label: None,
            owner_field: None,
            fields: Vec::new(),
            indexes: Vec::new(),
        }
    }
    /// Sets the plural API name.
    #[must_use]
    pub fn plural(mut self, plural: impl Into<String>) -> Self {
        self.plural = Some(plural.into());
        self
    }
    /// Sets the table name.
    #[must_use]
    pub fn table(mut self, table: impl Into<String>) -> Self {
        self.table = Some(table.into());
        self
    }
    /// Sets the description.
    #[must_use]
    pub fn describe(mut self, text: impl Into<String>) -> Self {
        self.description = Some(text.into());
        self
    }
    /// Sets the label people see.
    #[must_use]
    pub fn label(mut self, text: impl Into<String>) -> Self {
        self.label = Some(text.into());
        self
    }
    /// Names the owner field.
    #[must_use]
    pub fn owner(mut self, field: impl Into<String>) -> Self {
        self.owner_field = Some(field.into());
        self
    }
    /// Adds a composite index over the live rows (see [`IndexDef`]).
    #[must_use]
    pub fn index(mut self, keys: &[&str]) -> Self {
        self.indexes.push(IndexDef { keys: keys.iter().map(|k| (*k).to_owned()).collect() });
        self
    }
    /// Adds a field.
    #[must_use]
    pub fn field(mut self, field: FieldDef) -> Self {
        self.fields.push(field);
        self
    }
}

macro_rules! ctor {
    ($($(#[$doc:meta])* $fn:ident => $variant:ident),* $(,)?) => {
        $(
            $(#[$doc])*
            #[must_use]
            pub fn $fn(name: impl Into<String>) -> Self {
                Self::of(name, FieldType::$variant)
            }
        )*
    };
}

impl FieldDef {
    /// A field of any type.
    #[must_use]
    pub fn of(name: impl Into<String>, ty: FieldType) -> Self {
        Self {
            name: name.into(),
            ty,
            required: false,
            unique: false,
            indexed: false,
            searchable: false,
            tracked: false,
            stage: false,
            default: None,
            description: None,
            label: None,
            validation: Validation::default(),
            read_only: false,
        }
    }
    ctor! {
        /// A text field.
        text => Text,
        /// A long text field.
        long_text => LongText,
        /// An e-mail field.
        email => Email,
        /// A phone field.
        phone => Phone,
        /// A URL field.
        url => Url,
        /// An integer field.
        int => Int,
        /// A float field.
        float => Float,
        /// A decimal field.
        decimal => Decimal,
        /// A money field.
        money => Money,
        /// A boolean field.
        boolean => Boolean,
        /// A date field.
        date => Date,
        /// A date-time field.
        datetime => DateTime,
        /// A tags field.
        tags => Tags,
        /// A JSON field.
        json => Json,
    }
    /// A select field with its options.
    #[must_use]
    pub fn select(name: impl Into<String>, options: &[&str]) -> Self {
        Self::of(
            name,
            FieldType::Select { options: options.iter().map(|s| (*s).to_owned()).collect(), option_labels: indexmap::IndexMap::new() },
        )
    }
    /// A multi-select field with its options.
    #[must_use]
    pub fn multi_select(name: impl Into<String>, options: &[&str]) -> Self {
        Self::of(
            name,
            FieldType::MultiSelect { options: options.iter().map(|s| (*s).to_owned()).collect(), option_labels: indexmap::IndexMap::new() },
        )
    }
    /// The labels people see for some options of a select or multi-select field (the others are
    /// shown in words). No effect on other types.
    #[must_use]
    pub fn option_labels(mut self, labels: &[(&str, &str)]) -> Self {
        if let FieldType::Select { option_labels, .. } | FieldType::MultiSelect { option_labels, .. } = &mut self.ty {
            option_labels.extend(labels.iter().map(|(o, l)| ((*o).to_owned(), (*l).to_owned())));
        }
        self
    }
    /// A to-one relation to `target`.
    #[must_use]
    pub fn relation(name: impl Into<String>, target: impl Into<String>) -> Self {
        Self::of(name, FieldType::Relation { target: target.into(), on_delete: None })
    }
    /// The to-many side of `target.via`.
    #[must_use]
    pub fn inverse(name: impl Into<String>, target: impl Into<String>, via: impl Into<String>) -> Self {
        Self::of(name, FieldType::Inverse { target: target.into(), via: via.into() })
    }
    /// A polymorphic reference to one of `targets`.
    #[must_use]
    pub fn polymorphic(name: impl Into<String>, targets: &[&str]) -> Self {
        Self::of(name, FieldType::Polymorphic { targets: targets.iter().map(|s| (*s).to_owned()).collect(), on_delete: None })
    }
    /// Marks the field required.
    #[must_use]
    pub fn required(mut self) -> Self {
        self.required = true;
        self
    }
    /// Marks the field unique within a tenant.
    #[must_use]
    pub fn unique(mut self) -> Self {
        self.unique = true;
        self
    }
    /// Marks the field indexed.
    #[must_use]
    pub fn indexed(mut self) -> Self {
        self.indexed = true;
        self
    }
    /// Marks the field searchable.
    #[must_use]
    pub fn searchable(mut self) -> Self {
        self.searchable = true;
        self
    }
    /// Marks a select field as a lifecycle stage (entered / exited times per option).
    #[must_use]
    pub fn stage(mut self) -> Self {
        self.stage = true;
        self
    }
    /// Marks the field tracked (property history).
    #[must_use]
    pub fn tracked(mut self) -> Self {
        self.tracked = true;
        self
    }
    /// Sets the default (JSON, as the field's input).
    #[must_use]
    pub fn default_value(mut self, value: serde_json::Value) -> Self {
        self.default = Some(value);
        self
    }
    /// Sets the description.
    #[must_use]
    pub fn describe(mut self, text: impl Into<String>) -> Self {
        self.description = Some(text.into());
        self
    }
    /// Sets the label people see.
    #[must_use]
    pub fn label(mut self, text: impl Into<String>) -> Self {
        self.label = Some(text.into());
        self
    }
    /// Sets the delete behaviour (to-one relations and polymorphic references).
    #[must_use]
    pub fn on_delete(mut self, action: OnDelete) -> Self {
        if let FieldType::Relation { on_delete, .. } | FieldType::Polymorphic { on_delete, .. } = &mut self.ty {
            *on_delete = Some(action);
        }
        self
    }
    /// Marks the field set by the platform and read-only for clients (see [`FieldDef::read_only`]).
    #[must_use]
    pub fn read_only(mut self) -> Self {
        self.read_only = true;
        self
    }
    /// Limits the length in characters.
    #[must_use]
    pub fn length(mut self, min: Option<u32>, max: Option<u32>) -> Self {
        self.validation.min_length = min;
        self.validation.max_length = max;
        self
    }
    /// Limits the numeric range.
    #[must_use]
    pub fn range(mut self, min: Option<f64>, max: Option<f64>) -> Self {
        self.validation.min = min;
        self.validation.max = max;
        self
    }
    /// Requires the whole value to match a regular expression.
    #[must_use]
    pub fn pattern(mut self, re: impl Into<String>) -> Self {
        self.validation.pattern = Some(re.into());
        self
    }
}
