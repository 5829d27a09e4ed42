//! The statement layer: every statement the store sends is built here, by pure code, from plain
//! data (the scoped IR, ids, values, the instant of the write). Nothing here touches a database,
//! so every statement can be snapshot-tested on both dialects without one (see
//! `tests/sql_snapshots.rs` and `tests/write_snapshots.rs`); the executor ([`crate::Store`])
//! only runs what this layer built.
//!
//! By concept: [`read`] (the builder of reads: the scope's predicates, pages, aggregates,
//! groups; `filter`, `select` and `page` hold its where, its row JSON and its paging), [`write`] (inserts,
//! updates, the trash, deletes), [`audit`], [`events`] (the outbox and the consumers'
//! positions), [`deliveries`] (the webhook queue), [`tenants`] (the tenant registry and the
//! settings row-level security reads), [`metadata`] (tenant-defined fields and objects),
//! [`stages`] (stage statistics), [`locks`], [`ddl`] (tables, indexes, triggers, policies),
//! [`search`] and [`dialect`] (all that differs between SQLite and PostgreSQL).

use sea_query_sqlx::SqlxValues;

pub mod audit;
mod builder;
pub mod ddl;
pub mod deliveries;
pub mod dialect;
pub mod events;
mod filter;
pub mod locks;
pub mod metadata;
mod page;
mod read;
pub mod search;
mod select;
pub mod stages;
pub mod tenants;
pub mod transfer;
pub mod write;

pub use builder::{Builder, Limits};
pub(crate) use page::cursor_parts;
pub use page::{PagePlan, encode_cursor, order_spec};
pub use read::in_session;

/// A statement ready to run: its SQL text and the values bound to its placeholders.
pub type Built = (String, SqlxValues);
