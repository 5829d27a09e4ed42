//! Live updates: GraphQL subscriptions over WebSocket on `/graphql`, in the `graphql-transport-ws`
//! protocol (what Apollo Client, urql, `graphql_flutter` and ferry speak through `graphql-ws`).
//!
//! - The token comes in `connection_init` (`{"Authorization": "Bearer …"}`, any case, or
//!   `{"token": "…"}`); without a valid one the socket closes with 4403. A JWT's expiry closes the
//!   socket then (4403 `token expired`); a token is also checked again every minute (revocation).
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
use base64::Engine as _;
use crm_graphql::{Live, Request};
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

/// The seconds until a JWT's `exp` (none for an opaque token or a JWT without one).
fn expires_in(token: &str) -> Option<Duration> {
    let payload = token.split('.').nth(1)?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(payload.trim_end_matches('=')).ok()?;
    let exp = serde_json::from_slice::<Json>(&bytes).ok()?.get("exp")?.as_i64()?;
    let now = chrono::Utc::now().timestamp();
    Some(Duration::from_secs(u64::try_from(exp.saturating_sub(now)).unwrap_or(0)))
}

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
    // `connection_init`, in time.
    let init = tokio::time::timeout(INIT_TIMEOUT, stream.next()).await;
    let Ok(Some(Ok(Message::Text(first)))) = init else {
        let _ = out.send(close(4408, "Connection initialisation timeout")).await;
        drop(out);
        let _ = writer.await;
        return;
    };
    let msg: Json = serde_json::from_str(first.as_str()).unwrap_or(Json::Null);
    if msg.get("type").and_then(Json::as_str) != Some("connection_init") {
        let _ = out.send(close(4400, "connection_init expected first")).await;
        drop(out);
        let _ = writer.await;
        return;
    }
    let Some(token) = msg.get("payload").and_then(token_of) else {
        let _ = out.send(close(4403, "Forbidden: no token in connection_init")).await;
        drop(out);
        let _ = writer.await;
        return;
    };
    let mut headers = HeaderMap::new();
    if let Ok(v) = HeaderValue::from_str(&format!("Bearer {token}")) {
        headers.insert(header::AUTHORIZATION, v);
    }
    let principal = match state.0.auth.authenticate(&headers).await {
        Ok(p) => p,
        Err(e) => {
            let _ = out.send(close(4403, &format!("Forbidden: {e}"))).await;
            drop(out);
            let _ = writer.await;
            return;
        }
    };
    tracing::info!(org = %principal.org_id, sub = %principal.sub, "live connection");
    let _ = out.send(text(&json!({ "type": "connection_ack" }))).await;
    let expiry = expires_in(&token).unwrap_or(Duration::from_hours(24 * 365));
    let expired = tokio::time::sleep(expiry);
    tokio::pin!(expired);
    let mut recheck = tokio::time::interval(RECHECK);
    recheck.tick().await;
    let mut feed = state.0.feeds.subscribe(state.store(), &principal.org_id, FEED);
    let mut subs: HashMap<String, Live> = HashMap::new();
    let store = Arc::clone(state.store());
    let api = Arc::clone(&state.0.api);
    let send = |m: Message| match out.try_send(m) {
        Ok(()) => true,
        Err(_) => false,
    };
    loop {
        tokio::select! {
            () = &mut expired => {
                let _ = out.send(close(4403, "Forbidden: token expired")).await;
                break;
            }
            _ = recheck.tick() => {
                if let Err(e) = state.0.auth.authenticate(&headers).await {
                    let _ = out.send(close(4403, &format!("Forbidden: {e}"))).await;
                    break;
                }
            }
            change = feed.recv() => {
                let event = match change {
                    Ok(e) => e,
                    Err(broadcast::error::RecvError::Lagged(n)) => {
                        tracing::warn!(org = %principal.org_id, behind = n, "live connection too slow; closed");
                        let _ = out.send(close(1013, "too slow: reconnect and refetch")).await;
                        break;
                    }
                    Err(broadcast::error::RecvError::Closed) => {
                        feed = state.0.feeds.subscribe(state.store(), &principal.org_id, FEED);
                        continue;
                    }
                };
                let mut slow = false;
                for (id, live) in &mut subs {
                    if let Some(resp) = live.payload(&api, &store, &event).await {
                        let payload = serde_json::to_value(&resp).unwrap_or(Json::Null);
                        if !send(text(&json!({ "id": id, "type": "next", "payload": payload }))) {
                            slow = true;
                            break;
                        }
                    }
                }
                if slow {
                    let _ = out.send(close(1013, "too slow: reconnect and refetch")).await;
                    break;
                }
            }
            incoming = stream.next() => {
                let Some(Ok(m)) = incoming else { break };
                let text_msg = match m {
                    Message::Text(t) => t,
                    Message::Close(_) => break,
                    _ => continue,
                };
                let msg: Json = serde_json::from_str(text_msg.as_str()).unwrap_or(Json::Null);
                let id = msg.get("id").and_then(Json::as_str).map(str::to_owned);
                match (msg.get("type").and_then(Json::as_str), id) {
                    (Some("ping"), _) => { send(text(&json!({ "type": "pong" }))); }
                    (Some("pong"), _) => {}
                    (Some("connection_init"), _) => {
                        let _ = out.send(close(4429, "Too many initialisation requests")).await;
                        break;
                    }
                    (Some("complete"), Some(id)) => { subs.remove(&id); }
                    (Some("subscribe"), Some(id)) => {
                        if subs.contains_key(&id) {
                            let _ = out.send(close(4409, &format!("Subscriber for {id} already exists"))).await;
                            break;
                        }
                        let request: Request = match serde_json::from_value(msg.get("payload").cloned().unwrap_or(Json::Null)) {
                            Ok(r) => r,
                            Err(e) => {
                                let _ = out.send(close(4400, &format!("Invalid subscribe payload: {e}"))).await;
                                break;
                            }
                        };
                        match api.subscribe(&store, &principal, &request).await {
                            Ok(Some(live)) => { subs.insert(id, live); }
                            Ok(None) => {
                                // A query or mutation: one result, then complete.
                                let resp = api.execute(&store, &principal, request).await;
                                let payload = serde_json::to_value(&resp).unwrap_or(Json::Null);
                                send(text(&json!({ "id": id, "type": "next", "payload": payload })));
                                send(text(&json!({ "id": id, "type": "complete" })));
                            }
                            Err(resp) => {
                                let errors = serde_json::to_value(&resp.errors).unwrap_or(Json::Null);
                                send(text(&json!({ "id": id, "type": "error", "payload": errors })));
                            }
                        }
                    }
                    _ => {
                        let _ = out.send(close(4400, "Invalid message")).await;
                        break;
                    }
                }
            }
        }
    }
    drop(out);
    let _ = writer.await;
}
