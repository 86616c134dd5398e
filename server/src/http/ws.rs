//! `/graphql/ws`: GraphQL subscriptions over a websocket, speaking
//! graphql-transport-ws (the older subscriptions-transport-ws is negotiated too).
//!
//! The token travels in `connection_init`'s payload — browsers cannot set headers on
//! a websocket — as `{"Authorization": "Bearer <token>"}` or `{"token": "<token>"}`
//! (an `Authorization` header on the upgrade request is used when the payload has
//! none). Close codes, per the protocol and for the cases it leaves open:
//!
//! | code | when |
//! | --- | --- |
//! | 4401 | no valid token in `connection_init`, or a subscribe before it |
//! | 4403 | the token may not read |
//! | 4408 | no `connection_init` within ten seconds |
//! | 4400 | a malformed message |
//! | 4008 | a subscription could not keep up with updates ("subscriber too slow") |
//! | 4429 | more than [`MAX_OPERATIONS_PER_CONNECTION`] operations at once on one socket, or more than [`MAX_CONNECTIONS_PER_TOKEN`] sockets of one token |
//!
//! Messages and frames are limited to [`MAX_MESSAGE_BYTES`].
//!
//! A token is checked again before every operation a client starts on the socket,
//! at once when a token is revoked in this process, and every few seconds for
//! revocations by another process: a revoked token's socket is closed with 4401, its
//! subscriptions end, and nothing it sends afterwards runs.
//!
//! This module drives async-graphql's protocol state machine itself (instead of
//! `GraphQLWebSocket::serve`) so it can choose those close codes and close a slow
//! connection even while a send to it is blocked.

use super::HttpState;
use super::graphql::bearer;
use crate::domain::auth::{Principal, Scope};
use crate::graphql::subscription::SlowSubscriber;
use async_graphql::Data;
use async_graphql::http::{ALL_WEBSOCKET_PROTOCOLS, WebSocketProtocols, WsMessage};
use axum::extract::State;
use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade};
use axum::http::{HeaderMap, header};
use axum::response::Response;
use futures::{SinkExt, StreamExt, future};
use std::collections::{HashMap, HashSet};
use std::str::FromStr;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::watch;

/// How long a client has to send `connection_init`.
const INIT_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a closing connection may take to accept its close frame.
const CLOSE_GRACE: Duration = Duration::from_secs(10);

/// Close code of a subscriber that cannot keep up.
pub const CLOSE_TOO_SLOW: u16 = 4008;
/// Close code of a missing or invalid token.
pub const CLOSE_UNAUTHORIZED: u16 = 4401;
/// Close code of a token that may not subscribe.
pub const CLOSE_FORBIDDEN: u16 = 4403;
/// Close code of a connection over its limits.
pub const CLOSE_TOO_MANY: u16 = 4429;

/// Operations (subscriptions, queries) one socket may run at once.
pub const MAX_OPERATIONS_PER_CONNECTION: usize = 32;
/// Sockets one token may hold open at once, per server process.
pub const MAX_CONNECTIONS_PER_TOKEN: usize = 32;
/// Largest websocket message (and frame) a client may send.
pub const MAX_MESSAGE_BYTES: usize = 64 * 1024;

/// Open sockets per token in this process.
#[derive(Default)]
pub struct Connections(Mutex<HashMap<String, usize>>);

/// One counted socket; uncounted when dropped.
struct ConnectionSlot {
    connections: Arc<Connections>,
    key: String,
}

impl Connections {
    fn acquire(self: &Arc<Self>, key: String) -> Option<ConnectionSlot> {
        let mut open = self.0.lock().ok()?;
        let n = open.entry(key.clone()).or_default();
        if *n >= MAX_CONNECTIONS_PER_TOKEN {
            return None;
        }
        *n += 1;
        Some(ConnectionSlot {
            connections: self.clone(),
            key,
        })
    }
}

impl Drop for ConnectionSlot {
    fn drop(&mut self) {
        if let Ok(mut open) = self.connections.0.lock()
            && let Some(n) = open.get_mut(&self.key)
        {
            *n = n.saturating_sub(1);
            if *n == 0 {
                open.remove(&self.key);
            }
        }
    }
}

/// Who a principal is, for counting its sockets.
fn connection_key(p: &Principal) -> String {
    match p {
        Principal::Token { id, .. } => id.to_string(),
        other => format!("{other:?}"),
    }
}

/// The type and id of a protocol message.
fn message_kind(message: &[u8]) -> Option<(String, Option<String>)> {
    let v: serde_json::Value = serde_json::from_slice(message).ok()?;
    let kind = v.get("type")?.as_str()?.to_owned();
    let id = v.get("id").and_then(|i| i.as_str()).map(str::to_owned);
    Some((kind, id))
}

/// The subprotocol the client offered (graphql-transport-ws when it named none we
/// know).
fn protocol_of(headers: &HeaderMap) -> WebSocketProtocols {
    headers
        .get_all(header::SEC_WEBSOCKET_PROTOCOL)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .find_map(|p| WebSocketProtocols::from_str(p.trim()).ok())
        .unwrap_or(WebSocketProtocols::GraphQLWS)
}

/// Upgrades the request and serves subscriptions on the socket.
pub async fn graphql_ws(
    State(state): State<HttpState>,
    headers: HeaderMap,
    upgrade: WebSocketUpgrade,
) -> Response {
    let header_token = bearer(&headers).map(str::to_owned);
    let protocol = protocol_of(&headers);
    upgrade
        .protocols(ALL_WEBSOCKET_PROTOCOLS)
        .max_message_size(MAX_MESSAGE_BYTES)
        .max_frame_size(MAX_MESSAGE_BYTES)
        .on_upgrade(move |socket| serve(socket, state, protocol, header_token))
}

/// The token in a `connection_init` payload.
fn payload_token(payload: &serde_json::Value) -> Option<String> {
    let obj = payload.as_object()?;
    for (key, value) in obj {
        let Some(text) = value.as_str() else { continue };
        if key.eq_ignore_ascii_case("authorization") {
            let text = text.trim();
            return Some(match text.split_once(' ') {
                Some((scheme, token)) if scheme.eq_ignore_ascii_case("bearer") => {
                    token.trim().to_owned()
                }
                _ => text.to_owned(),
            });
        }
        if key.eq_ignore_ascii_case("token") {
            return Some(text.trim().to_owned());
        }
    }
    None
}

type CloseSlot = Arc<Mutex<Option<(u16, String)>>>;

/// The token a connection was accepted with, and the principal it resolved to.
type Accepted = Arc<Mutex<Option<(Option<String>, Principal)>>>;

/// Whether the connection's token still resolves to the principal it was accepted
/// with (`true` before `connection_init`: nothing has been granted yet).
async fn still_valid(app: &crate::state::AppState, accepted: &Accepted) -> bool {
    let Some((token, principal)) = accepted.lock().ok().and_then(|a| a.clone()) else {
        return true;
    };
    match app.auth.authenticate_fresh(&app.db, token.as_deref()).await {
        Ok(now) => now == principal,
        Err(e) => {
            // The database is unreachable: keep the connection; the next check decides.
            tracing::warn!(error = ?e, "re-checking a subscription connection's token");
            true
        }
    }
}

const REVOKED: &str = "Unauthorized: the token was revoked";

/// A close frame; the reason is cut to the 123 bytes a close frame can carry (a longer
/// one is a protocol error, and the client would see no reason at all).
fn close_message(code: u16, reason: &str) -> Message {
    let mut end = reason.len().min(123);
    while !reason.is_char_boundary(end) {
        end -= 1;
    }
    Message::Close(Some(CloseFrame {
        code,
        reason: reason[..end].into(),
    }))
}

async fn serve(
    socket: WebSocket,
    state: HttpState,
    protocol: WebSocketProtocols,
    header_token: Option<String>,
) {
    let (mut sink, stream) = socket.split();
    // Set by a subscription that overflowed; ends the connection.
    let (kill, mut killed) = watch::channel::<Option<(u16, String)>>(None);
    let kill = Arc::new(kill);
    // The close code a failed `connection_init` should use (async-graphql would say
    // 1002 for every failure).
    let init_close: CloseSlot = Arc::new(Mutex::new(None));
    let accepted: Accepted = Arc::new(Mutex::new(None));

    // Operations running on this socket, by id: a client `subscribe` adds one, its
    // `complete` or the server's `complete`/`error` ends it.
    let running: Arc<Mutex<HashSet<String>>> = Arc::default();
    let (check_app, check_accepted, check_kill, check_running) = (
        state.app.clone(),
        accepted.clone(),
        kill.clone(),
        running.clone(),
    );
    let input = stream
        .take_while(|r| future::ready(r.is_ok()))
        .filter_map(|r| {
            future::ready(match r {
                Ok(Message::Text(t)) => Some(t.as_bytes().to_vec()),
                Ok(Message::Binary(b)) => Some(b.to_vec()),
                _ => None,
            })
        })
        // Every operation is authorised again before it runs.
        .filter_map(move |bytes| {
            let (app, accepted, kill, running) = (
                check_app.clone(),
                check_accepted.clone(),
                check_kill.clone(),
                check_running.clone(),
            );
            async move {
                let (kind, id) = message_kind(&bytes).unwrap_or_default();
                match kind.as_str() {
                    "subscribe" | "start" => {
                        if !still_valid(&app, &accepted).await {
                            kill.send_replace(Some((CLOSE_UNAUTHORIZED, REVOKED.to_owned())));
                            return None;
                        }
                        let too_many = running.lock().is_ok_and(|mut r| {
                            id.clone().is_some_and(|id| r.insert(id))
                                && r.len() > MAX_OPERATIONS_PER_CONNECTION
                        });
                        if too_many {
                            kill.send_replace(Some((
                                CLOSE_TOO_MANY,
                                format!("Too many operations on one connection (at most {MAX_OPERATIONS_PER_CONNECTION})"),
                            )));
                            return None;
                        }
                    }
                    "complete" | "stop" => {
                        if let (Some(id), Ok(mut r)) = (id, running.lock()) {
                            r.remove(&id);
                        }
                    }
                    _ => {}
                }
                Some(bytes)
            }
        });
    let app = state.app.clone();
    let slot = init_close.clone();
    let accept = accepted.clone();
    let connections = state.connections.clone();
    // Holds this socket's place in the per-token count until the socket ends.
    let held_slot: Arc<Mutex<Option<ConnectionSlot>>> = Arc::default();
    let counted = held_slot.clone();
    let on_slow = kill.clone();
    let protocol_stream = async_graphql::http::WebSocket::new(state.schema.clone(), input, protocol)
        .on_connection_init(move |payload| async move {
            let token = payload_token(&payload).or(header_token);
            let refuse = |code: u16, message: &str| {
                if let Ok(mut s) = slot.lock() {
                    *s = Some((code, message.to_owned()));
                }
                Err(async_graphql::Error::new(message))
            };
            let principal = match app.auth.authenticate(&app.db, token.as_deref()).await {
                Ok(p) => p,
                Err(e) => {
                    tracing::error!(error = ?e, "authenticating a subscription connection");
                    return refuse(1011, "internal error while checking the token");
                }
            };
            match principal {
                Principal::Anonymous => refuse(
                    CLOSE_UNAUTHORIZED,
                    "Unauthorized: send a valid token in the connection_init payload",
                ),
                p if p.require(Scope::Read).is_err() => {
                    refuse(CLOSE_FORBIDDEN, "Forbidden: this token lacks the READ scope")
                }
                p => {
                    let Some(held) = connections.acquire(connection_key(&p)) else {
                        return refuse(
                            CLOSE_TOO_MANY,
                            &format!("Too many connections for this token (at most {MAX_CONNECTIONS_PER_TOKEN})"),
                        );
                    };
                    if let Ok(mut c) = counted.lock() {
                        *c = Some(held);
                    }
                    if let Ok(mut a) = accept.lock() {
                        *a = Some((token.clone(), p.clone()));
                    }
                    let mut data = Data::default();
                    data.insert(p);
                    data.insert(SlowSubscriber(Arc::new(move || {
                        on_slow.send_replace(Some((
                            CLOSE_TOO_SLOW,
                            "subscriber too slow: updates were arriving faster than this connection read them".to_owned(),
                        )));
                    })));
                    Ok(data)
                }
            }
        });
    futures::pin_mut!(protocol_stream);

    let init_deadline = tokio::time::sleep(INIT_TIMEOUT);
    futures::pin_mut!(init_deadline);
    let mut acknowledged = false;
    let mut revocations = state.app.auth.revocations();
    let mut recheck = tokio::time::interval(crate::domain::auth::Authenticator::recheck_interval());
    recheck.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);

    loop {
        let next = tokio::select! {
            message = protocol_stream.next() => message,
            _ = killed.changed() => None,
            // A revocation here, or (by the periodic check) in another process.
            _ = async {
                tokio::select! {
                    changed = revocations.changed() => if changed.is_err() { future::pending::<()>().await },
                    _ = recheck.tick() => {}
                }
            }, if acknowledged => {
                if !still_valid(&state.app, &accepted).await {
                    kill.send_replace(Some((CLOSE_UNAUTHORIZED, REVOKED.to_owned())));
                }
                continue;
            }
            _ = &mut init_deadline, if !acknowledged => {
                let _ = tokio::time::timeout(
                    CLOSE_GRACE,
                    sink.send(close_message(4408, "Connection initialisation timeout")),
                )
                .await;
                return;
            }
        };
        let Some(message) = next else {
            break;
        };
        let outgoing = match message {
            WsMessage::Text(text) => {
                if !acknowledged && text.contains("\"connection_ack\"") {
                    acknowledged = true;
                }
                if let Some((kind, Some(id))) = message_kind(text.as_bytes())
                    && (kind == "complete" || kind == "error")
                    && let Ok(mut r) = running.lock()
                {
                    r.remove(&id);
                }
                Message::Text(text.into())
            }
            WsMessage::Close(code, reason) => {
                let (code, reason) = match init_close.lock().ok().and_then(|mut s| s.take()) {
                    Some(refused) => refused,
                    None if code == 1011 && !acknowledged => (
                        CLOSE_UNAUTHORIZED,
                        "Unauthorized: connection_init first".into(),
                    ),
                    None if code == 1002 => (4400, reason),
                    None => (code, reason),
                };
                let _ = tokio::time::timeout(CLOSE_GRACE, sink.send(close_message(code, &reason)))
                    .await;
                return;
            }
        };
        // A send blocks while the client does not read; a slow-subscriber kill must
        // still get through.
        tokio::select! {
            sent = sink.send(outgoing) => if sent.is_err() { return },
            _ = killed.changed() => break,
        }
    }
    let reason = killed.borrow().clone();
    if let Some((code, reason)) = reason {
        tracing::info!(code, %reason, "closing a subscription connection");
        let _ = tokio::time::timeout(CLOSE_GRACE, sink.send(close_message(code, &reason))).await;
    }
}
