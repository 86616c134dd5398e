//! A small SMTP receiver on loopback, enough for lettre: greeting, EHLO/HELO, MAIL,
//! RCPT, DATA (dot-terminated, dot-unstuffed), RSET, NOOP, QUIT. No TLS, no AUTH.
//! It can refuse the first messages with a transient `451` at the end of DATA, so a
//! test sees the sender retry.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};

/// One message accepted (or refused) by the server.
#[derive(Debug, Clone, Default)]
pub struct Mail {
    /// The EHLO/HELO name the client gave.
    pub hello: String,
    /// `MAIL FROM` address.
    pub from: String,
    /// `RCPT TO` addresses.
    pub to: Vec<String>,
    /// The message (headers and body), dot-unstuffed, CRLF line ends.
    pub data: String,
    /// Whether it was accepted (`250`) rather than refused (`451`).
    pub accepted: bool,
}

/// The receiver: its address and what it got.
#[derive(Clone)]
pub struct SmtpServer {
    /// Where it listens (127.0.0.1, a port the OS chose).
    pub addr: SocketAddr,
    mails: Arc<Mutex<Vec<Mail>>>,
}

impl SmtpServer {
    /// Starts a receiver that refuses the first `refuse_first` messages with `451`.
    pub async fn start(refuse_first: usize) -> SmtpServer {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("an SMTP port");
        let addr = listener.local_addr().expect("a bound address");
        let mails = Arc::new(Mutex::new(vec![]));
        let shared = mails.clone();
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                tokio::spawn(session(stream, shared.clone(), refuse_first));
            }
        });
        SmtpServer { addr, mails }
    }

    /// Every message so far, in arrival order.
    pub fn mails(&self) -> Vec<Mail> {
        self.mails.lock().expect("not poisoned").clone()
    }

    /// The messages accepted so far.
    pub fn accepted(&self) -> Vec<Mail> {
        self.mails().into_iter().filter(|m| m.accepted).collect()
    }
}

fn address(arg: &str) -> String {
    arg.split_once(':')
        .map(|(_, rest)| rest)
        .unwrap_or(arg)
        .trim()
        .trim_start_matches('<')
        .split('>')
        .next()
        .unwrap_or_default()
        .to_owned()
}

async fn session(stream: TcpStream, mails: Arc<Mutex<Vec<Mail>>>, refuse_first: usize) {
    let (read, mut write) = stream.into_split();
    let mut lines = BufReader::new(read);
    let mut current = Mail::default();
    let mut hello = String::new();
    if write.write_all(b"220 test-smtp ready\r\n").await.is_err() {
        return;
    }
    loop {
        let mut line = String::new();
        match lines.read_line(&mut line).await {
            Ok(0) | Err(_) => return,
            Ok(_) => {}
        }
        let line = line.trim_end_matches(['\r', '\n']);
        let (verb, arg) = line.split_once(' ').unwrap_or((line, ""));
        let reply: &[u8] = match verb.to_ascii_uppercase().as_str() {
            "EHLO" => {
                hello = arg.trim().to_owned();
                b"250-test-smtp\r\n250-8BITMIME\r\n250 SMTPUTF8\r\n"
            }
            "HELO" => {
                hello = arg.trim().to_owned();
                b"250 test-smtp\r\n"
            }
            "MAIL" => {
                current = Mail {
                    hello: hello.clone(),
                    from: address(arg),
                    ..Mail::default()
                };
                b"250 OK\r\n"
            }
            "RCPT" => {
                current.to.push(address(arg));
                b"250 OK\r\n"
            }
            "DATA" => {
                if write
                    .write_all(b"354 end with <CRLF>.<CRLF>\r\n")
                    .await
                    .is_err()
                {
                    return;
                }
                let mut data = String::new();
                loop {
                    let mut l = String::new();
                    match lines.read_line(&mut l).await {
                        Ok(0) | Err(_) => return,
                        Ok(_) => {}
                    }
                    if l == ".\r\n" || l == ".\n" {
                        break;
                    }
                    data.push_str(l.strip_prefix('.').unwrap_or(&l));
                }
                current.data = data;
                let mut all = mails.lock().expect("not poisoned");
                current.accepted = all.len() >= refuse_first;
                all.push(std::mem::take(&mut current));
                if all.last().is_some_and(|m| m.accepted) {
                    b"250 queued\r\n"
                } else {
                    b"451 try again later\r\n"
                }
            }
            "RSET" => {
                current = Mail::default();
                b"250 OK\r\n"
            }
            "NOOP" => b"250 OK\r\n",
            "QUIT" => {
                let _ = write.write_all(b"221 bye\r\n").await;
                return;
            }
            _ => b"502 not implemented\r\n",
        };
        if write.write_all(reply).await.is_err() {
            return;
        }
    }
}
