//! A small builder over apollo-compiler's type definitions, so the generator reads like the
//! SDL it produces. Names are not checked here: every name is derived from the catalog's API
//! names, checked once per model ([`super::check_names`]), or written in this crate.

use apollo_compiler::Name;
use apollo_compiler::Node;
use apollo_compiler::ast::{DirectiveList, FieldDefinition, InputValueDefinition, Type};
use apollo_compiler::collections::{IndexMap, IndexSet};
use apollo_compiler::schema::{self, Component, ComponentName, EnumType, EnumValueDefinition, ExtendedType, InputObjectType, ObjectType};

pub(super) fn name(s: &str) -> Name {
    Name::new_unchecked(s)
}

fn text(s: &str) -> Node<str> {
    Node::new_str(s)
}

/// `T`
pub(super) fn named(n: &str) -> Type {
    Type::Named(name(n))
}

/// `T!`
pub(super) fn nn(n: &str) -> Type {
    Type::NonNullNamed(name(n))
}

/// `[T]`
pub(super) fn list(n: &str) -> Type {
    Type::List(Box::new(named(n)))
}

/// `[T!]`
pub(super) fn nn_list(n: &str) -> Type {
    Type::List(Box::new(nn(n)))
}

/// `[T!]!`
pub(super) fn nn_list_nn(n: &str) -> Type {
    Type::NonNullList(Box::new(nn(n)))
}

/// An object (or interface) field.
pub(super) struct Fld(FieldDefinition);

impl Fld {
    pub(super) fn new(n: &str, ty: Type) -> Fld {
        Fld(FieldDefinition { description: None, name: name(n), arguments: Vec::new(), ty, directives: DirectiveList::default() })
    }
    pub(super) fn describe(mut self, d: &str) -> Fld {
        self.0.description = Some(text(d));
        self
    }
    pub(super) fn describe_opt(self, d: Option<&String>) -> Fld {
        match d {
            Some(d) => self.describe(d),
            None => self,
        }
    }
    pub(super) fn arg(mut self, a: Arg) -> Fld {
        self.0.arguments.push(Node::new(a.0));
        self
    }
    pub(super) fn into_definition(self) -> FieldDefinition {
        self.0
    }
}

/// An argument or an input object's field.
pub(super) struct Arg(InputValueDefinition);

impl Arg {
    pub(super) fn new(n: &str, ty: Type) -> Arg {
        Arg(InputValueDefinition {
            description: None,
            name: name(n),
            ty: Node::new(ty),
            default_value: None,
            directives: DirectiveList::default(),
        })
    }
    pub(super) fn describe(mut self, d: &str) -> Arg {
        self.0.description = Some(text(d));
        self
    }
    pub(super) fn describe_opt(self, d: Option<&String>) -> Arg {
        match d {
            Some(d) => self.describe(d),
            None => self,
        }
    }
}

/// An object type.
pub(super) struct Obj(ObjectType);

impl Obj {
    pub(super) fn new(n: &str) -> Obj {
        Obj(ObjectType {
            description: None,
            name: name(n),
            implements_interfaces: IndexSet::default(),
            directives: schema::DirectiveList::default(),
            fields: IndexMap::default(),
        })
    }
    pub(super) fn describe(mut self, d: &str) -> Obj {
        self.0.description = Some(text(d));
        self
    }
    pub(super) fn describe_opt(self, d: Option<&String>) -> Obj {
        match d {
            Some(d) => self.describe(d),
            None => self,
        }
    }
    pub(super) fn implement(mut self, i: &str) -> Obj {
        self.0.implements_interfaces.insert(ComponentName::from(name(i)));
        self
    }
    pub(super) fn field(mut self, f: Fld) -> Obj {
        self.0.fields.insert(f.0.name.clone(), Component::new(f.0));
        self
    }
    pub(super) fn has_fields(&self) -> bool {
        !self.0.fields.is_empty()
    }
    pub(super) fn done(self) -> ExtendedType {
        ExtendedType::Object(Node::new(self.0))
    }
}

/// An input object type.
pub(super) struct Input(InputObjectType);

impl Input {
    pub(super) fn new(n: &str) -> Input {
        Input(InputObjectType {
            description: None,
            name: name(n),
            directives: schema::DirectiveList::default(),
            fields: IndexMap::default(),
        })
    }
    pub(super) fn describe(mut self, d: &str) -> Input {
        self.0.description = Some(text(d));
        self
    }
    pub(super) fn field(mut self, a: Arg) -> Input {
        self.0.fields.insert(a.0.name.clone(), Component::new(a.0));
        self
    }
    pub(super) fn done(self) -> ExtendedType {
        ExtendedType::InputObject(Node::new(self.0))
    }
}

/// An enum type.
pub(super) struct Enm(EnumType);

impl Enm {
    pub(super) fn new(n: &str) -> Enm {
        Enm(EnumType { description: None, name: name(n), directives: schema::DirectiveList::default(), values: IndexMap::default() })
    }
    pub(super) fn describe(mut self, d: &str) -> Enm {
        self.0.description = Some(text(d));
        self
    }
    pub(super) fn describe_opt(self, d: Option<&String>) -> Enm {
        match d {
            Some(d) => self.describe(d),
            None => self,
        }
    }
    pub(super) fn value(mut self, v: &str) -> Enm {
        let value = name(v);
        self.0
            .values
            .insert(value.clone(), Component::new(EnumValueDefinition { description: None, value, directives: DirectiveList::default() }));
        self
    }
    pub(super) fn done(self) -> ExtendedType {
        ExtendedType::Enum(Node::new(self.0))
    }
}
