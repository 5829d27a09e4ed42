//! Live updates: GraphQL subscriptions over WebSocket on `/graphql`, in the `graphql-transport-ws`
//! protocol (what Apollo Client, urql, `graphql_flutter` and ferry speak through `graphql-ws`).
//!
//! - The token comes in `connection_init` (`{"Authorization": "Bearer …"}`, any case, or
//!   `{"token": "…"}`); without a valid one the socket closes with 4403. The token's verified
//!   expiry closes the socket then (4403 `token expired`); a token is also checked again every
//!   minute (revocation).
//! - Changes come from the outbox through the tenant's feed ([`crm_engines::live`]).
//! - Each subscription's payload is a read as the subscriber ([`crm_graphql::Live`]).
//! - Bounded: a connection holds [`OUTGOING`] messages to send and may fall [`FEED`] changes
//!   behind its tenant's feed; past either it is closed (1013 `too slow: reconnect and refetch`),
//!   so a slow subscriber never holds up the feed or the others.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::ws::{CloseFrame, Message, Utf8Bytes, WebSocket};
use axum::http::{HeaderMap, HeaderValue, header};
use crm_graphql::{Api, Live, Request};
use crm_orm::{Event, Principal, Store};
use futures::stream::SplitStream;
use futures::{SinkExt, StreamExt};
use serde_json::{Value as Json, json};
use tokio::sync::{broadcast, mpsc};

use crate::AppState;

/// The subprotocol spoken.
pub(crate) const PROTOCOL: &str = "graphql-transport-ws";
/// Messages a connection may have waiting to be written.
const OUTGOING: usize = 256;
/// Changes a connection may be behind its tenant's feed.
const FEED: usize = 1024;
/// How long a client has to send `connection_init`.
const INIT_TIMEOUT: Duration = Duration::from_secs(10);
/// How often a connection's token is checked again.
const RECHECK: Duration = Duration::from_mins(1);

/// The bearer token of a `connection_init` payload.
fn token_of(payload: &Json) -> Option<String> {
    let o = payload.as_object()?;
    for (k, v) in o {
        let Some(v) = v.as_str() else { continue };
        if k.eq_ignore_ascii_case("authorization") {
            return Some(v.strip_prefix("Bearer ").or_else(|| v.strip_prefix("bearer ")).unwrap_or(v).to_owned());
        }
        if k == "token" {
            return Some(v.to_owned());
        }
    }
    None
}

fn text(v: &Json) -> Message {
    Message::Text(Utf8Bytes::from(v.to_string()))
}

fn close(code: u16, reason: &str) -> Message {
    Message::Close(Some(CloseFrame { code, reason: Utf8Bytes::from(reason.to_owned()) }))
}

/// One WebSocket connection, from the upgrade to its close.
pub(crate) async fn connection(state: AppState, socket: WebSocket) {
    let (mut sink, mut stream) = socket.split();
    let (out, mut pending) = mpsc::channel::<Message>(OUTGOING);
    let writer = tokio::spawn(async move {
        while let Some(m) = pending.recv().await {
            let closing = matches!(m, Message::Close(_));
            if sink.send(m).await.is_err() || closing {
                break;
            }
        }
        let _ = sink.close().await;
    });
    match handshake(&state, &mut stream).await {
        Ok((principal, headers, expiry)) => {
            tracing::info!(org = %principal.org_id, sub = %principal.sub, "live connection");
            let _ = out.send(text(&json!({ "type": "connection_ack" }))).await;
            let session = Session { store: Arc::clone(state.store()), api: Arc::clone(&state.0.api), principal, subs: HashMap::new(), out };
            session.run(&state, &headers, expiry, &mut stream).await;
        }
        Err(refusal) => {
            let _ = out.send(refusal).await;
            drop(out);
        }
    }
    let _ = writer.await;
}

/// `connection_init`, in time, with a token the server accepts: the principal, the token as a
/// header (checked again later) and how long until it expires; or the close to send.
async fn handshake(state: &AppState, stream: &mut SplitStream<WebSocket>) -> Result<(Principal, HeaderMap, Duration), Message> {
    let Ok(Some(Ok(Message::Text(first)))) = tokio::time::timeout(INIT_TIMEOUT, stream.next()).await else {
        return Err(close(4408, "Connection initialisation timeout"));
    };
    let msg: Json = serde_json::from_str(first.as_str()).unwrap_or(Json::Null);
    if msg.get("type").and_then(Json::as_str) != Some("connection_init") {
        return Err(close(4400, "connection_init expected first"));
    }
    let token = msg.get("payload").and_then(token_of).ok_or_else(|| close(4403, "Forbidden: no token in connection_init"))?;
    let mut headers = HeaderMap::new();
    if let Ok(v) = HeaderValue::from_str(&format!("Bearer {token}")) {
        headers.insert(header::AUTHORIZATION, v);
    }
    let (principal, exp) = state.0.auth.authenticate_until(&headers).await.map_err(|e| close(4403, &format!("Forbidden: {e}")))?;
    let now = u64::try_from(chrono::Utc::now().timestamp()).unwrap_or(0);
    let left = exp.map_or(Duration::from_hours(24 * 365), |exp| Duration::from_secs(exp.saturating_sub(now)));
    Ok((principal, headers, left))
}

/// An acknowledged connection: its subscriber and subscriptions.
struct Session {
    store: Arc<Store>,
    api: Arc<Api>,
    principal: Principal,
    subs: HashMap<String, Live>,
    out: mpsc::Sender<Message>,
}

/// Whether a connection goes on.
enum Flow {
    Go,
    Stop(Message),
}

impl Session {
    /// Queues `m` to be written; `false` when the connection has too much waiting.
    fn send(&self, m: Message) -> bool {
        self.out.try_send(m).is_ok()
    }

    /// Until the client leaves, the token expires or is refused, or the connection is too slow.
    async fn run(mut self, state: &AppState, headers: &HeaderMap, expiry: Duration, stream: &mut SplitStream<WebSocket>) {
        let expired = tokio::time::sleep(expiry);
        tokio::pin!(expired);
        let mut recheck = tokio::time::interval(RECHECK);
        recheck.tick().await;
        let mut feed = state.0.feeds.subscribe(state.store(), &self.principal.org_id, FEED);
        let flow = loop {
            let flow = tokio::select! {
                () = &mut expired => Flow::Stop(close(4403, "Forbidden: token expired")),
                _ = recheck.tick() => match state.0.auth.authenticate(headers).await {
                    Ok(_) => Flow::Go,
                    Err(e) => Flow::Stop(close(4403, &format!("Forbidden: {e}"))),
                },
                change = feed.recv() => match change {
                    Ok(event) => self.deliver(&event).await,
                    Err(broadcast::error::RecvError::Lagged(n)) => {
                        tracing::warn!(org = %self.principal.org_id, behind = n, "live connection too slow; closed");
                        Flow::Stop(close(1013, "too slow: reconnect and refetch"))
                    }
                    Err(broadcast::error::RecvError::Closed) => {
                        feed = state.0.feeds.subscribe(state.store(), &self.principal.org_id, FEED);
                        Flow::Go
                    }
                },
                incoming = stream.next() => match incoming {
                    Some(Ok(Message::Text(t))) => self.on_message(t.as_str()).await,
                    Some(Ok(Message::Close(_)) | Err(_)) | None => break None,
                    Some(Ok(_)) => Flow::Go,
                },
            };
            if let Flow::Stop(m) = flow {
                break Some(m);
            }
        };
        if let Some(m) = flow {
            let _ = self.out.send(m).await;
        }
    }

    /// Sends each subscription's payload for `event`.
    async fn deliver(&mut self, event: &Event) -> Flow {
        let mut sent = Vec::new();
        for (id, live) in &mut self.subs {
            if let Some(resp) = live.payload(&self.api, &self.store, event).await {
                let payload = serde_json::to_value(&resp).unwrap_or(Json::Null);
                sent.push(text(&json!({ "id": id, "type": "next", "payload": payload })));
            }
        }
        if sent.into_iter().all(|m| self.send(m)) { Flow::Go } else { Flow::Stop(close(1013, "too slow: reconnect and refetch")) }
    }

    /// A client message after the handshake.
    async fn on_message(&mut self, raw: &str) -> Flow {
        let msg: Json = serde_json::from_str(raw).unwrap_or(Json::Null);
        let id = msg.get("id").and_then(Json::as_str).map(str::to_owned);
        match (msg.get("type").and_then(Json::as_str), id) {
            (Some("ping"), _) => {
                self.send(text(&json!({ "type": "pong" })));
                Flow::Go
            }
            (Some("pong"), _) => Flow::Go,
            (Some("connection_init"), _) => Flow::Stop(close(4429, "Too many initialisation requests")),
            (Some("complete"), Some(id)) => {
                self.subs.remove(&id);
                Flow::Go
            }
            (Some("subscribe"), Some(id)) => {
                if self.subs.contains_key(&id) {
                    return Flow::Stop(close(4409, &format!("Subscriber for {id} already exists")));
                }
                let request: Request = match serde_json::from_value(msg.get("payload").cloned().unwrap_or(Json::Null)) {
                    Ok(r) => r,
                    Err(e) => return Flow::Stop(close(4400, &format!("Invalid subscribe payload: {e}"))),
                };
                match self.api.subscribe(&self.store, &self.principal, &request).await {
                    Ok(Some(live)) => {
                        self.subs.insert(id, live);
                    }
                    Ok(None) => {
                        // A query or mutation: one result, then complete.
                        let resp = self.api.execute(&self.store, &self.principal, request).await;
                        let payload = serde_json::to_value(&resp).unwrap_or(Json::Null);
                        self.send(text(&json!({ "id": id, "type": "next", "payload": payload })));
                        self.send(text(&json!({ "id": id, "type": "complete" })));
                    }
                    Err(resp) => {
                        let errors = serde_json::to_value(&resp.errors).unwrap_or(Json::Null);
                        self.send(text(&json!({ "id": id, "type": "error", "payload": errors })));
                    }
                }
                Flow::Go
            }
            _ => Flow::Stop(close(4400, "Invalid message")),
        }
    }
}
