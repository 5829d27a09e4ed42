//! A server with a model of its own, declared in Rust, next to the standard catalog: the whole
//! `crm-server` command line (`serve`, `migrate`, `dev-token`, `seed-demo`, `sdl`, …) with
//! `Project` added, tagging and routing included. Its table is created by `migrate`; GraphQL
//! serves `projects`, `project`, `createProject`, … to every tenant.
//!
//! `cargo run -p crm-server --example custom_model` (the same options as `crm-server`; models
//! from JSON files can be added with `--models DIR`).

use std::process::ExitCode;

use crm_model::{FieldDef as F, ModelDef, OnDelete};
use serde_json::json;

fn project() -> ModelDef {
    ModelDef::new("Project")
        .plural("projects")
        .describe("A piece of work for an account.")
        .owner("manager")
        .field(F::text("name").required().searchable().length(Some(1), Some(200)))
        .field(F::select("status", &["PLANNED", "ACTIVE", "DONE"]).required().tracked().default_value(json!("PLANNED")))
        .field(F::date("dueOn"))
        .field(F::relation("account", "Account").on_delete(OnDelete::Cascade))
        .field(F::relation("manager", "Member").indexed())
}

#[tokio::main]
async fn main() -> ExitCode {
    crm_server::Server::new().model(project()).run().await
}
