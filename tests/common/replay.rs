//! A loopback HTTP/1.1 server that answers each request with a scripted reply and records
//! what was asked and when: recorded responses of a remote service replayed, misbehaviour
//! included (an error status with `Retry-After`, a body cut short, an answer too late).
//!
//! Written on std's `TcpListener` rather than axum or hyper because those, rightly, never
//! send a body shorter than its `Content-Length`; a replay has to. One thread per
//! connection, so a reply that waits does not hold up the next request.

use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// One scripted answer.
#[derive(Debug, Clone)]
pub struct Reply {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    /// Wait this long before answering.
    pub delay: Duration,
    /// Send only this many body bytes (the `Content-Length` still announces all), then
    /// close the connection.
    pub cut: Option<usize>,
}

impl Reply {
    pub fn new(status: u16, content_type: &str, body: impl Into<Vec<u8>>) -> Reply {
        Reply {
            status,
            headers: vec![("Content-Type".into(), content_type.into())],
            body: body.into(),
            delay: Duration::ZERO,
            cut: None,
        }
    }

    pub fn header(mut self, name: &str, value: &str) -> Reply {
        self.headers.push((name.into(), value.into()));
        self
    }

    pub fn after(mut self, delay: Duration) -> Reply {
        self.delay = delay;
        self
    }

    pub fn cut_at(mut self, bytes: usize) -> Reply {
        self.cut = Some(bytes);
        self
    }
}

/// A request as the server saw it.
#[derive(Debug, Clone)]
pub struct Hit {
    pub at: Instant,
    /// Path and query, as sent.
    pub target: String,
}

type Script = dyn Fn(usize, &str) -> Reply + Send + Sync;

/// A running replay server; it lives until the test process ends.
pub struct Replay {
    addr: SocketAddr,
    hits: Arc<Mutex<Vec<Hit>>>,
}

impl Replay {
    /// Serves on 127.0.0.1 at a free port; `script(n, target)` answers the `n`th request
    /// (from 0).
    pub fn start(script: impl Fn(usize, &str) -> Reply + Send + Sync + 'static) -> Replay {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let hits = Arc::new(Mutex::new(Vec::new()));
        let script: Arc<Script> = Arc::new(script);
        let log = hits.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let (log, script) = (log.clone(), script.clone());
                std::thread::spawn(move || serve(stream, &log, &*script));
            }
        });
        Replay { addr, hits }
    }

    /// The URL of `path` on this server.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    pub fn hits(&self) -> Vec<Hit> {
        self.hits.lock().unwrap().clone()
    }

    pub fn targets(&self) -> Vec<String> {
        self.hits().into_iter().map(|h| h.target).collect()
    }
}

fn serve(stream: TcpStream, log: &Mutex<Vec<Hit>>, script: &Script) {
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut request_line = String::new();
    if reader.read_line(&mut request_line).unwrap_or(0) == 0 {
        return;
    }
    // The rest of the head; these requests are GETs without a body.
    let mut line = String::new();
    while reader.read_line(&mut line).unwrap_or(0) > 0 && line != "\r\n" {
        line.clear();
    }
    let target = request_line
        .split_whitespace()
        .nth(1)
        .unwrap_or_default()
        .to_string();
    let n = {
        let mut hits = log.lock().unwrap();
        hits.push(Hit {
            at: Instant::now(),
            target: target.clone(),
        });
        hits.len() - 1
    };
    let reply = script(n, &target);
    std::thread::sleep(reply.delay);
    let mut head = format!(
        "HTTP/1.1 {} Replay\r\nContent-Length: {}\r\nConnection: close\r\n",
        reply.status,
        reply.body.len()
    );
    for (name, value) in &reply.headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str("\r\n");
    let body = &reply.body[..reply.cut.unwrap_or(reply.body.len()).min(reply.body.len())];
    let mut stream = stream;
    // The client may have given up already (a timeout test): nothing to do about it.
    let _ = stream
        .write_all(head.as_bytes())
        .and_then(|_| stream.write_all(body))
        .and_then(|_| stream.flush());
    let _ = stream.shutdown(std::net::Shutdown::Both);
}
