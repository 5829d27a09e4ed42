//! The store of crm-platform: query IR, authorization scope, SQL building (sea-query, pure) and
//! execution (sqlx) on SQLite and PostgreSQL. The only crate that talks SQL.
//!
//! Pipeline: JSON/GraphQL input -> [`ir`] (parsed against the Catalog) -> [`authorize`] ->
//! [`Scoped`] -> [`sql`] (pure: every statement as SQL + bound values) -> [`Store`] (sqlx:
//! runs them).
//!
//! The facade: everything a caller needs is re-exported here. Two modules are public beside
//! it: [`sql`], the statement layer (pure; what the snapshot tests and benchmarks build), and
//! [`row`], how a page row is written from its columns (for its benchmark).
#![forbid(unsafe_code)]

mod authorization;
mod compiled;
mod error;
mod exec;
mod failure;
mod field_use;
mod ir;
mod page;
pub mod row;
pub mod sql;

pub use authorization::{
    Access, FieldCheck, FieldRules, FieldUse, Grant, Policy, Principal, RolePolicy, RowRule, Scoped, access, authorize,
};
pub use compiled::{CompiledRead, ReadStatement, Statement};
pub use error::{Internal, OrmError, Result, decode_value};
pub use exec::{
    CrossTenant, DbUse, Definitions, EventWork, Import, MAX_TARGETS, MetaChange, SendEvents, StageStats, StageStay, Store, StoreOptions,
    TxCtx, TxFuture, TxWork, WriteHook, WriteResult, Written, count_db_use, statement_timeouts,
};
pub use ir::{
    AggFn, Aggregate, AuditQuery, Data, Deliveries, Extra, FieldWrite, Filter, FilterOp, GroupBy, Locate, Nested, Op, Operand, OrderBy,
    Output, Page, Quantifier, Read, RecordEvents, Selection, StageQuery, Targets, ToManyWrite, ToOneWrite, Unique, Write, aggregatable,
    eval, groupable, orderable,
};
pub use page::{PageResult, nested_page};
pub use sql::Limits;
pub use sql::deliveries::{Attempt, DueDelivery};
pub use sql::dialect::Dialect;
pub use sql::events::{Event, EventKind, Lag, event_type};
pub use sql::metadata::Definition;
