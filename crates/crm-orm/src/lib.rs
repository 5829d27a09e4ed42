//! The engine of crm-platform: query IR, authorization scope, SQL building (sea-query, pure) and
//! execution (sqlx) on SQLite and PostgreSQL. The only crate that talks SQL.
//!
//! Pipeline: JSON/GraphQL input -> [`ir`] (parsed against the Catalog) -> [`authorize`] ->
//! [`Scoped`] -> [`sql::Builder`] (pure: SQL + bound values) -> [`Engine`] (sqlx).
#![forbid(unsafe_code)]

pub mod auth;
pub mod compiled;
pub mod dialect;
pub mod error;
mod exec;
mod field_use;
pub mod ir;
pub mod row;
pub mod schema;
pub mod search;
pub mod sql;

pub use auth::{Access, FieldCheck, FieldRules, FieldUse, Grant, Op, Policy, Principal, RolePolicy, RowRule, Scoped, access, authorize};
pub use compiled::{CompiledRead, ReadStatement, Statement};
pub use dialect::Dialect;
pub use error::{OrmError, Result};
pub use exec::{
    Attempt, CrossTenant, DbUse, Definition, Definitions, DueDelivery, Engine, EngineOptions, Event, EventKind, EventWork, MAX_TARGETS,
    MetaChange, PageResult, StageStats, StageStay, TxCtx, TxFuture, TxWork, WriteHook, WriteResult, Written, count_db_use, event_type,
};
pub use ir::{
    AggFn, Aggregate, AuditQuery, Data, Deliveries, Extra, FieldWrite, Filter, FilterOp, GroupBy, Locate, Nested, Operand, OrderBy, Output,
    Page, Quantifier, Read, RecordEvents, Selection, StageQuery, Targets, ToManyWrite, ToOneWrite, Unique, Write,
};
pub use sql::Limits;
