//! Long-running calls (OPS-01): every invoked function runs as a call with a token, a status version that
//! rises with each change, progress, log lines, and cancellation. Short calls finish before the invoke
//! answers and never show their token.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;
use tokio::sync::watch;

use crate::envelope::{ApiError, CallStatus, Envelope};

/// A finished call stays retrievable this long.
const KEEP_FINISHED: Duration = Duration::from_secs(600);
/// Upper bound of `millisecondsTimeout`.
pub const MAX_POLL_MS: u64 = 60_000;

/// The status of one call at one version.
#[derive(Debug, Clone)]
struct Status {
    version: u64,
    code: CallStatus,
    percent: Option<u8>,
    text: Option<String>,
    result: Value,
    error: Option<ApiError>,
    /// Log lines with the version at which each was added.
    log: Vec<(u64, String)>,
}

/// Handle a running function uses to report progress.
#[derive(Debug, Clone)]
pub struct Progress {
    tx: Arc<watch::Sender<Status>>,
}

impl Progress {
    /// Sets the percentage done and an optional short status text.
    pub fn percent(&self, percent: u8, text: Option<String>) {
        self.tx.send_modify(|s| {
            s.version += 1;
            s.percent = Some(percent.min(100));
            s.text = text;
        });
    }

    /// Adds a log line.
    pub fn log(&self, line: impl Into<String>) {
        let line = line.into();
        self.tx.send_modify(|s| {
            s.version += 1;
            let v = s.version;
            s.log.push((v, line));
        });
    }
}

struct Entry {
    owner: String,
    rx: watch::Receiver<Status>,
    tx: Arc<watch::Sender<Status>>,
    task: tokio::task::AbortHandle,
    finished_at: Option<Instant>,
}

/// The calls of this node, by token. A token is 32 lower-case hex characters: the first 10 are the id of
/// the node running the call, so that any node can forward `get-status` and `cancel-async` to it.
pub struct Calls {
    node: u64,
    entries: Mutex<HashMap<String, Entry>>,
}

/// The node that runs the call named by `token`, when the token is well-formed.
pub fn token_node(token: &str) -> Option<u64> {
    if token.len() != 32 || !token.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)) {
        return None;
    }
    u64::from_str_radix(&token[..10], 16).ok()
}

impl std::fmt::Debug for Calls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Calls")
    }
}

/// Why `get-status` or `cancel-async` could not answer.
#[derive(Debug, thiserror::Error)]
pub enum CallError {
    #[error("unknown or expired token '{0}'")]
    UnknownToken(String),
}

fn envelope(token: &str, s: &Status, since: u64) -> Envelope {
    let lines: Vec<&str> = s.log.iter().filter(|(v, _)| *v > since).map(|(_, l)| l.as_str()).collect();
    let finished = s.code != CallStatus::Running;
    Envelope {
        error: s.error.clone(),
        token: if finished { None } else { Some(token.to_string()) },
        status_version: s.version,
        status_code: s.code,
        percent_progress: if finished { None } else { s.percent },
        status_text: s.text.clone(),
        result: if finished { s.result.clone() } else { Value::Null },
        log_output: if lines.is_empty() {
            None
        } else {
            Some(lines.iter().map(|l| format!("{l}\r\n")).collect())
        },
    }
}

impl Calls {
    /// The calls of node `node`.
    pub fn new(node: u64) -> Calls {
        Calls { node, entries: Mutex::new(HashMap::new()) }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Entry>> {
        self.entries.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Starts `work` as a call owned by `owner`; answers when it finishes or after `wait`, whichever is
    /// first (then with the token to poll).
    pub async fn start<F, Fut>(&self, owner: &str, wait: Duration, work: F) -> Envelope
    where
        F: FnOnce(Progress) -> Fut,
        Fut: std::future::Future<Output = Result<Value, ApiError>> + Send + 'static,
    {
        let token = format!("{:010x}{:022x}", self.node & 0xff_ffff_ffff, rand::random::<u128>() >> 40);
        let initial = Status {
            version: 1,
            code: CallStatus::Running,
            percent: Some(0),
            text: None,
            result: Value::Null,
            error: None,
            log: Vec::new(),
        };
        let (tx, rx) = watch::channel(initial);
        let tx = Arc::new(tx);
        let progress = Progress { tx: tx.clone() };
        let fut = work(progress);
        let finish_tx = tx.clone();
        let task = tokio::spawn(async move {
            let outcome = fut.await;
            finish_tx.send_modify(|s| {
                if s.code != CallStatus::Running {
                    return;
                }
                s.version += 1;
                match outcome {
                    Ok(result) => {
                        s.code = CallStatus::Succeeded;
                        s.result = result;
                    }
                    Err(e) => {
                        s.code = CallStatus::Failed;
                        s.error = Some(e);
                    }
                }
            });
        });
        {
            let mut entries = self.lock();
            entries.retain(|_, e| e.finished_at.is_none_or(|t| t.elapsed() < KEEP_FINISHED));
            entries.insert(
                token.clone(),
                Entry {
                    owner: owner.to_string(),
                    rx: rx.clone(),
                    tx,
                    task: task.abort_handle(),
                    finished_at: None,
                },
            );
        }
        let mut rx2 = rx.clone();
        let _ = tokio::time::timeout(wait, rx2.wait_for(|s| s.code != CallStatus::Running)).await;
        let status = rx.borrow().clone();
        if status.code != CallStatus::Running {
            self.mark_finished(&token);
        }
        envelope(&token, &status, 0)
    }

    fn mark_finished(&self, token: &str) {
        if let Some(e) = self.lock().get_mut(token) {
            e.finished_at.get_or_insert_with(Instant::now);
        }
    }

    /// `get-status`: answers at once if the call has a newer status than `known`, otherwise waits up to
    /// `timeout` for one and then repeats the current status.
    pub async fn status(
        &self,
        owner: &str,
        token: &str,
        known: u64,
        timeout: Duration,
    ) -> Result<Envelope, CallError> {
        let mut rx = {
            let entries = self.lock();
            match entries.get(token) {
                Some(e) if e.owner == owner => e.rx.clone(),
                _ => return Err(CallError::UnknownToken(token.to_string())),
            }
        };
        let timeout = timeout.min(Duration::from_millis(MAX_POLL_MS));
        let _ = tokio::time::timeout(timeout, rx.wait_for(|s| s.version > known)).await;
        let status = rx.borrow().clone();
        if status.code != CallStatus::Running {
            self.mark_finished(token);
        }
        Ok(envelope(token, &status, known))
    }

    /// `cancel-async`: stops the call; it ends with status `cancelled`.
    pub fn cancel(&self, owner: &str, token: &str) -> Result<Envelope, CallError> {
        let entries = self.lock();
        let Some(e) = entries.get(token).filter(|e| e.owner == owner) else {
            return Err(CallError::UnknownToken(token.to_string()));
        };
        e.task.abort();
        e.tx.send_modify(|s| {
            if s.code == CallStatus::Running {
                s.version += 1;
                s.code = CallStatus::Cancelled;
                s.text = Some("cancelled".into());
            }
        });
        let status = e.rx.borrow().clone();
        drop(entries);
        self.mark_finished(token);
        Ok(envelope(token, &status, u64::MAX))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn tokens_name_the_node_running_the_call() {
        let calls = Calls::new(123_456_789_012);
        let env = calls
            .start("admin", Duration::from_millis(10), |_| async {
                tokio::time::sleep(Duration::from_secs(5)).await;
                Ok(Value::Null)
            })
            .await;
        let token = env.token.expect("running call has a token");
        assert_eq!(token.len(), 32);
        assert_eq!(token_node(&token), Some(123_456_789_012));
        assert_eq!(token_node("not-a-token"), None);
    }

    #[tokio::test]
    async fn quick_call_answers_finished_without_token() {
        let calls = Calls::new(1);
        let env = calls.start("admin", Duration::from_secs(1), |_| async { Ok(Value::from(7)) }).await;
        assert_eq!(env.status_code, CallStatus::Succeeded);
        assert_eq!(env.token, None);
        assert_eq!(env.result, Value::from(7));
    }

    #[tokio::test]
    async fn slow_call_is_polled_with_rising_versions_and_can_be_cancelled() {
        let calls = Calls::new(1);
        let env = calls
            .start("admin", Duration::from_millis(50), |p| async move {
                p.log("step one");
                tokio::time::sleep(Duration::from_secs(30)).await;
                Ok(Value::Null)
            })
            .await;
        assert_eq!(env.status_code, CallStatus::Running);
        let token = env.token.clone().expect("token");
        assert!(
            calls.status("someone-else", &token, 0, Duration::ZERO).await.is_err(),
            "tokens are per admin"
        );
        let polled = calls.status("admin", &token, 0, Duration::from_millis(10)).await.expect("status");
        assert_eq!(polled.log_output.as_deref(), Some("step one\r\n"));
        let started = Instant::now();
        let same = calls
            .status("admin", &token, polled.status_version, Duration::from_millis(300))
            .await
            .expect("s");
        assert!(started.elapsed() >= Duration::from_millis(280), "long-poll waits when nothing changed");
        assert_eq!(same.status_version, polled.status_version);
        let cancelled = calls.cancel("admin", &token).expect("cancel");
        assert_eq!(cancelled.status_code, CallStatus::Cancelled);
        assert!(cancelled.status_version > polled.status_version);
        assert_eq!(cancelled.token, None);
    }
}
