//! What the tests that run `crm-server` (or a program embedding it) as a process share: a child
//! killed on drop, a free loopback address, waiting for the server to listen, GraphQL over HTTP.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value as Json, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// A child process, killed and reaped when dropped.
pub struct Killed(pub Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// `program` (`crm-server`, or a program running its command line) with its data in `dir` and
/// the environment's configuration (`CRM_CONFIG`, database URLs) left out; `args` follow.
pub fn command(program: impl AsRef<std::ffi::OsStr>, dir: &Path, args: &[&str]) -> Command {
    let mut c = Command::new(program);
    c.arg("--data-dir").arg(dir).args(args);
    for var in ["CRM_CONFIG", "CRM_DATABASE_URL", "DATABASE_URL"] {
        c.env_remove(var);
    }
    c
}

/// `program` serving on `addr` (options `args` before the command, output discarded), once it
/// listens.
pub async fn serve(program: impl AsRef<std::ffi::OsStr>, dir: &Path, addr: SocketAddr, args: &[&str]) -> Killed {
    let listen = addr.to_string();
    let mut all = vec!["--listen", listen.as_str()];
    all.extend_from_slice(args);
    all.push("serve");
    let child = command(program, dir, &all).stdout(Stdio::null()).stderr(Stdio::null()).spawn().unwrap();
    let served = Killed(child);
    wait_listening(addr).await;
    served
}

/// A loopback address nothing listens on (for a server told to listen there).
pub fn free_addr() -> SocketAddr {
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    SocketAddr::from(([127, 0, 0, 1], port))
}

/// Waits until something accepts connections on `addr` (at most 30 s).
pub async fn wait_listening(addr: SocketAddr) {
    let start = Instant::now();
    while tokio::net::TcpStream::connect(addr).await.is_err() {
        assert!(start.elapsed() < Duration::from_secs(30), "nothing listens on {addr} after 30 s");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// `POST /graphql` with `body`, as `token`: the whole HTTP response.
pub async fn post(addr: SocketAddr, token: &str, body: &str) -> String {
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    let req = format!(
        "POST /graphql HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\nContent-Type: application/json\r\nAuthorization: Bearer {token}\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    s.write_all(req.as_bytes()).await.unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).await.unwrap();
    out
}

/// A GraphQL request as `token`: the response body.
pub async fn graphql(addr: SocketAddr, token: &str, query: &str, variables: Json) -> Json {
    let out = post(addr, token, &json!({ "query": query, "variables": variables }).to_string()).await;
    let body = out.split("\r\n\r\n").nth(1).unwrap_or_default();
    serde_json::from_str(body).unwrap_or_else(|e| panic!("not JSON ({e}): {out}"))
}
