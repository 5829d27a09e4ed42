//! `crm-server`: `serve` (the default), `migrate`, `tenant`, `dev-token`, `seed-demo`, `check-config`,
//! `sdl`. The command line lives in the library ([`crm_server::Server`]), so a program that adds its
//! own models in Rust runs the same one.
#![forbid(unsafe_code)]

use std::process::ExitCode;

/// mimalloc instead of the system allocator: a request allocates and frees many small objects
/// (parsed JSON, SQL text, rows) across threads, where glibc's malloc took about a fifth of the
/// server's CPU under load (`scripts/load-bench`).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> ExitCode {
    crm_server::Server::new().run().await
}
