//! The HTTP client both harvesters share: polite pacing, `Retry-After`, retries with
//! backoff, a size limit, and counts for the [`super::Report`].
//!
//! A response counts as received only once its body has been read whole and the caller's
//! parser accepted it, so a truncated body or a malformed page is retried like a dropped
//! connection: servers under load produce all three.

use super::Error;
use std::time::{Duration, Instant};

/// Longest `Retry-After` honoured; a larger value is cut to this (arXiv asks for seconds).
const MAX_RETRY_AFTER: Duration = Duration::from_secs(300);
/// Longest wait between retries when the server names none.
const MAX_BACKOFF: Duration = Duration::from_secs(60);

/// Why one attempt at a request failed.
#[derive(Debug, thiserror::Error)]
pub enum Failure {
    #[error("HTTP status {0}")]
    Status(u16),
    #[error("request failed: {0}")]
    Transport(ureq::Error),
    #[error("reading the response failed (truncated?): {0}")]
    Body(ureq::Error),
    #[error("response larger than {0} bytes")]
    TooLarge(u64),
    #[error("malformed response: {0}")]
    Malformed(String),
}

/// An HTTP client for one harvest, with its settings and counts.
pub struct Http {
    /// Where the service lives, without a trailing slash (tests point it at a replay server).
    pub base_url: String,
    /// Least time between the starts of two requests, out of courtesy to the server.
    pub delay: Duration,
    /// How many times a failed request is repeated before giving up.
    pub retries: u32,
    /// Longest time one request may take, body included.
    pub timeout: Duration,
    /// First wait before a retry when the server names none; doubled on each retry.
    pub backoff: Duration,
    /// Largest response body accepted, in bytes.
    pub max_bytes: u64,
    agent: ureq::Agent,
    last_start: Option<Instant>,
    pub(super) requests: usize,
    pub(super) retried: usize,
}

impl Http {
    /// A client with the given settings, a backoff of 2 s and a 64 MiB response limit
    /// (an arXiv page of 1,000 records is about 2 MB).
    pub fn new(base_url: &str, delay: Duration, retries: u32, timeout: Duration) -> Http {
        let agent = ureq::Agent::config_builder()
            .timeout_global(Some(timeout))
            .http_status_as_error(false)
            .user_agent(concat!("paperscope/", env!("CARGO_PKG_VERSION")))
            .build()
            .into();
        Http {
            base_url: base_url.trim_end_matches('/').to_string(),
            delay,
            retries,
            timeout,
            backoff: Duration::from_secs(2),
            max_bytes: 64 << 20,
            agent,
            last_start: None,
            requests: 0,
            retried: 0,
        }
    }

    /// GETs `url` and parses its body with `parse`, retrying failures that may pass.
    ///
    /// # Errors
    /// [`Error::GaveUp`] when the retries ran out, [`Error::Fatal`] for a failure that a
    /// retry cannot fix.
    pub(super) fn get<T>(
        &mut self,
        url: &str,
        parse: impl Fn(&[u8]) -> Result<T, String>,
    ) -> Result<T, Error> {
        let mut attempt = 0;
        loop {
            self.pace();
            self.requests += 1;
            let (failure, retry_after) = match self.try_get(url) {
                Ok(body) => match parse(&body) {
                    Ok(t) => return Ok(t),
                    Err(why) => (Failure::Malformed(why), None),
                },
                Err(Attempt::Fatal(failure)) => {
                    return Err(Error::Fatal {
                        url: url.to_string(),
                        failure,
                    })
                }
                Err(Attempt::Transient(failure, retry_after)) => (failure, retry_after),
            };
            if attempt >= self.retries {
                return Err(Error::GaveUp {
                    url: url.to_string(),
                    attempts: attempt + 1,
                    last: failure,
                });
            }
            let wait = retry_after.unwrap_or_else(|| {
                self.backoff
                    .saturating_mul(1 << attempt.min(16))
                    .min(MAX_BACKOFF)
            });
            tracing::warn!("{url}: {failure}; retrying in {wait:?}");
            std::thread::sleep(wait);
            attempt += 1;
            self.retried += 1;
        }
    }

    /// Sleeps until `delay` has passed since the previous request started.
    fn pace(&mut self) {
        if let Some(last) = self.last_start {
            if let Some(rest) = self.delay.checked_sub(last.elapsed()) {
                std::thread::sleep(rest);
            }
        }
        self.last_start = Some(Instant::now());
    }

    fn try_get(&self, url: &str) -> Result<Vec<u8>, Attempt> {
        let mut resp = self.agent.get(url).call().map_err(|e| match e {
            ureq::Error::BadUri(_) | ureq::Error::Http(_) => Attempt::Fatal(Failure::Transport(e)),
            _ => Attempt::Transient(Failure::Transport(e), None),
        })?;
        let status = resp.status().as_u16();
        if status == 429 || status >= 500 {
            let retry_after = resp
                .headers()
                .get("retry-after")
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.trim().parse::<u64>().ok())
                .map(|s| Duration::from_secs(s).min(MAX_RETRY_AFTER));
            return Err(Attempt::Transient(Failure::Status(status), retry_after));
        }
        if !(200..300).contains(&status) {
            return Err(Attempt::Fatal(Failure::Status(status)));
        }
        resp.body_mut()
            .with_config()
            .limit(self.max_bytes)
            .read_to_vec()
            .map_err(|e| match e {
                ureq::Error::BodyExceedsLimit(n) => Attempt::Fatal(Failure::TooLarge(n)),
                e => Attempt::Transient(Failure::Body(e), None),
            })
    }
}

/// How one attempt failed: for good, or in a way worth retrying (after the server's
/// `Retry-After`, when it gave one).
enum Attempt {
    Fatal(Failure),
    Transient(Failure, Option<Duration>),
}
