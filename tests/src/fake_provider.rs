//! A fake provider API on 127.0.0.1 (port 0) for plugin tests: a raw HTTP/1.1 server
//! whose replies a test scripts per request, so it can also send what a real server
//! would not (a truncated body, a redirect to another host, a huge response, a stall).
//! Every request is recorded for assertions.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

/// A request the fake provider received.
#[derive(Debug, Clone)]
pub struct Seen {
    /// `GET`.
    pub method: String,
    /// Path without the query.
    pub path: String,
    /// Query parameters in order, percent-decoded.
    pub query: Vec<(String, String)>,
    /// Headers, names lower-cased.
    pub headers: HashMap<String, String>,
    /// When it arrived (to assert waits between retries).
    pub at: std::time::Instant,
}

impl Seen {
    /// The first value of a query parameter.
    pub fn param(&self, name: &str) -> Option<&str> {
        self.query
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// Every value of a query parameter.
    pub fn params(&self, name: &str) -> Vec<&str> {
        self.query
            .iter()
            .filter(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
            .collect()
    }
}

/// What to send back.
#[derive(Debug, Clone)]
pub struct Reply {
    /// Status code.
    pub status: u16,
    /// Extra headers.
    pub headers: Vec<(String, String)>,
    /// Body.
    pub body: Vec<u8>,
    /// Announce this `Content-Length` but close after `body` (a truncated body).
    pub announce_length: Option<usize>,
    /// Wait this long before answering.
    pub delay: Option<Duration>,
    /// Stream the body with `Transfer-Encoding: chunked` (64 KiB chunks) and no
    /// `Content-Length`, so its size is known only by reading it.
    pub chunked: bool,
}

impl Reply {
    /// A 200 with a JSON body.
    pub fn json(body: serde_json::Value) -> Reply {
        Reply::status(200, body.to_string())
    }

    /// Any status with a body.
    pub fn status(status: u16, body: impl Into<String>) -> Reply {
        Reply {
            status,
            headers: vec![("content-type".into(), "application/json".into())],
            body: body.into().into_bytes(),
            announce_length: None,
            delay: None,
            chunked: false,
        }
    }

    /// Adds a header.
    pub fn header(mut self, name: &str, value: &str) -> Reply {
        self.headers.push((name.into(), value.into()));
        self
    }
}

type Handler = dyn Fn(&Seen) -> Reply + Send + Sync;

/// A running fake provider.
#[derive(Clone)]
pub struct FakeProvider {
    /// Where it listens.
    pub address: SocketAddr,
    seen: Arc<Mutex<Vec<Seen>>>,
    handler: Arc<Mutex<Arc<Handler>>>,
}

fn decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' if i + 2 < bytes.len() => {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3])
                    .ok()
                    .and_then(|h| u8::from_str_radix(h, 16).ok());
                match hex {
                    Some(b) => {
                        out.push(b);
                        i += 3;
                    }
                    None => {
                        out.push(b'%');
                        i += 1;
                    }
                }
            }
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn parse(head: &str) -> Option<Seen> {
    let mut lines = head.split("\r\n");
    let mut first = lines.next()?.split(' ');
    let method = first.next()?.to_owned();
    let target = first.next()?;
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    let query = query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (decode(k), decode(v))
        })
        .collect();
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    Some(Seen {
        method,
        path: path.to_owned(),
        query,
        headers,
        at: std::time::Instant::now(),
    })
}

impl FakeProvider {
    /// Starts a provider that answers every request with `handler`.
    pub async fn start(handler: impl Fn(&Seen) -> Reply + Send + Sync + 'static) -> FakeProvider {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("binding the fake provider");
        let address = listener.local_addr().expect("an address");
        let provider = FakeProvider {
            address,
            seen: Arc::new(Mutex::new(Vec::new())),
            handler: Arc::new(Mutex::new(Arc::new(handler))),
        };
        let p = provider.clone();
        tokio::spawn(async move {
            while let Ok((mut socket, _)) = listener.accept().await {
                let p = p.clone();
                tokio::spawn(async move {
                    let mut buf = Vec::new();
                    let mut chunk = [0u8; 4096];
                    let head = loop {
                        match socket.read(&mut chunk).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => buf.extend_from_slice(&chunk[..n]),
                        }
                        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                            break String::from_utf8_lossy(&buf[..end]).into_owned();
                        }
                        if buf.len() > 1 << 20 {
                            return;
                        }
                    };
                    let Some(seen) = parse(&head) else { return };
                    p.seen.lock().expect("lock").push(seen.clone());
                    let handler = p.handler.lock().expect("lock").clone();
                    let reply = handler(&seen);
                    if let Some(d) = reply.delay {
                        tokio::time::sleep(d).await;
                    }
                    let mut out =
                        format!("HTTP/1.1 {} Fake\r\nconnection: close\r\n", reply.status);
                    for (k, v) in &reply.headers {
                        out.push_str(&format!("{k}: {v}\r\n"));
                    }
                    if reply.chunked {
                        out.push_str("transfer-encoding: chunked\r\n\r\n");
                        if socket.write_all(out.as_bytes()).await.is_err() {
                            return;
                        }
                        for chunk in reply.body.chunks(64 << 10) {
                            let head = format!("{:x}\r\n", chunk.len());
                            if socket.write_all(head.as_bytes()).await.is_err()
                                || socket.write_all(chunk).await.is_err()
                                || socket.write_all(b"\r\n").await.is_err()
                            {
                                return;
                            }
                        }
                        let _ = socket.write_all(b"0\r\n\r\n").await;
                        let _ = socket.shutdown().await;
                        return;
                    }
                    out.push_str(&format!(
                        "content-length: {}\r\n\r\n",
                        reply.announce_length.unwrap_or(reply.body.len())
                    ));
                    if socket.write_all(out.as_bytes()).await.is_err() {
                        return;
                    }
                    let _ = socket.write_all(&reply.body).await;
                    let _ = socket.shutdown().await;
                });
            }
        });
        provider
    }

    /// Replaces the handler.
    pub fn respond(&self, handler: impl Fn(&Seen) -> Reply + Send + Sync + 'static) {
        *self.handler.lock().expect("lock") = Arc::new(handler);
    }

    /// `http://127.0.0.1:port`.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.address)
    }

    /// `127.0.0.1:port`, for `AISPEND_PLUGIN_ALLOW_HOSTS`.
    pub fn host_port(&self) -> String {
        self.address.to_string()
    }

    /// Requests received so far.
    pub fn seen(&self) -> Vec<Seen> {
        self.seen.lock().expect("lock").clone()
    }
}
