//! The query IR: plain data describing reads and writes, independent of SQL and GraphQL.
//!
//! Each input family has its parser next to its definition ([`Filter::parse`],
//! [`OrderBy::parse`], [`Data::parse`]), reading the JSON form of API.md (`{"email_contains":
//! "acme", "account": {"name": "X"}}`) against the [`Catalog`], so unknown fields, operators that
//! do not apply to a type and badly typed values are rejected here, naming the input path.

pub mod eval;
mod filter;
mod op;
mod read;
mod write;

pub use filter::*;
pub use op::*;
pub use read::*;
pub use write::*;
