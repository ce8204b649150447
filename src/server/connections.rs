//! What a connection may hold: a cap on open connections, an idle limit per connection,
//! and a bound on how long shutdown waits for them.
//!
//! Why: without them, connections that send a request head slowly (or half of one and
//! then nothing) stayed open indefinitely, 300 of them under an fd limit of 256 made
//! `/health` time out, and one half-sent request kept SIGTERM from ever completing.
//!
//! * **Cap.** [`Limited`] accepts a connection only while fewer than
//!   [`Connections::max`] are open; further clients wait in the kernel's backlog.
//! * **Idle limit.** Each connection must finish its next request — head, body and our
//!   answer — within [`Connections::idle_timeout`] of being accepted or of our previous
//!   answer; a read still pending past it fails with `TimedOut` and hyper closes the
//!   connection. It also ends keep-alive connections left idle. It is longer than the
//!   per-request time limit, so a request being answered is never cut.
//! * **Shutdown bound.** [`super::run`] lets requests in flight finish for at most
//!   [`Connections::shutdown_grace`] after the signal, then returns anyway.

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::time::{Instant, Sleep};

/// Connection settings (see the module docs).
#[derive(Debug, Clone, Copy)]
pub struct Connections {
    /// Most connections open at once. Default 512.
    pub max: usize,
    /// Time a connection has to complete its next request. Default 30 s.
    pub idle_timeout: Duration,
    /// Longest wait for requests in flight after a shutdown signal. Default 15 s.
    pub shutdown_grace: Duration,
}

impl Default for Connections {
    fn default() -> Self {
        Connections {
            max: 512,
            idle_timeout: Duration::from_secs(30),
            shutdown_grace: Duration::from_secs(15),
        }
    }
}

/// A TCP listener that applies [`Connections`]' cap and idle limit.
pub struct Limited {
    inner: TcpListener,
    slots: Arc<Semaphore>,
    idle: Duration,
}

impl Limited {
    pub fn new(inner: TcpListener, c: &Connections) -> Limited {
        Limited {
            inner,
            slots: Arc::new(Semaphore::new(c.max.max(1))),
            idle: c.idle_timeout,
        }
    }
}

impl axum::serve::Listener for Limited {
    type Io = Guarded;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Guarded, SocketAddr) {
        let slot = self
            .slots
            .clone()
            .acquire_owned()
            .await
            .expect("the connection semaphore is never closed. This is a bug.");
        loop {
            match self.inner.accept().await {
                Ok((stream, addr)) => {
                    let _ = stream.set_nodelay(true);
                    return (Guarded::new(stream, slot, self.idle), addr);
                }
                // As axum's own listener: errors of one connection are skipped; others
                // (out of file descriptors) are waited out rather than spun on.
                Err(e) if is_connection_error(&e) => continue,
                Err(e) => {
                    tracing::warn!("accept failed: {e}; retrying in 1 s");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
            }
        }
    }

    fn local_addr(&self) -> io::Result<SocketAddr> {
        self.inner.local_addr()
    }
}

fn is_connection_error(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::ConnectionRefused
            | io::ErrorKind::ConnectionAborted
            | io::ErrorKind::ConnectionReset
    )
}

/// An accepted connection holding its slot, with its idle deadline.
pub struct Guarded {
    stream: TcpStream,
    deadline: Pin<Box<Sleep>>,
    idle: Duration,
    _slot: OwnedSemaphorePermit,
}

impl Guarded {
    fn new(stream: TcpStream, slot: OwnedSemaphorePermit, idle: Duration) -> Guarded {
        Guarded {
            stream,
            deadline: Box::pin(tokio::time::sleep(idle)),
            idle,
            _slot: slot,
        }
    }
}

impl Guarded {
    /// After a write: if an answer is going out, the connection's next request gets a
    /// full period.
    fn answered(&mut self, written: &Poll<io::Result<usize>>) {
        if matches!(written, Poll::Ready(Ok(n)) if *n > 0) {
            let next = Instant::now() + self.idle;
            self.deadline.as_mut().reset(next);
        }
    }
}

impl AsyncRead for Guarded {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = &mut *self;
        match Pin::new(&mut this.stream).poll_read(cx, buf) {
            Poll::Pending => match this.deadline.as_mut().poll(cx) {
                Poll::Ready(()) => Poll::Ready(Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    "connection idle past its limit",
                ))),
                Poll::Pending => Poll::Pending,
            },
            ready => ready,
        }
    }
}

impl AsyncWrite for Guarded {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let written = Pin::new(&mut self.stream).poll_write(cx, buf);
        self.answered(&written);
        written
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let written = Pin::new(&mut self.stream).poll_write_vectored(cx, bufs);
        self.answered(&written);
        written
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }
}
