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

    let input = stream
        .take_while(|r| future::ready(r.is_ok()))
        .filter_map(|r| {
            future::ready(match r {
                Ok(Message::Text(t)) => Some(t.as_bytes().to_vec()),
                Ok(Message::Binary(b)) => Some(b.to_vec()),
                _ => None,
            })
        });
    let app = state.app.clone();
    let slot = init_close.clone();
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

    loop {
        let next = tokio::select! {
            message = protocol_stream.next() => message,
            _ = killed.changed() => None,
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
