//! Push by webhooks: each rollup's receipts POSTed to a URL of its own as their status moves
//! (`accepted` → `proven` → `included`), signed, retried with backoff until the receiver
//! answers 2xx, and delivered at least once across restarts (`specs/api.md` §5.2).
//!
//! The wire format is Standard Webhooks' (standardwebhooks.com), so that receivers verify with
//! a library they already have: headers `webhook-id`, `webhook-timestamp` (Unix seconds) and
//! `webhook-signature: v1,<base64 HMAC-SHA256(key, id.timestamp.body)>`, the key being the
//! base64 after `whsec_` in the secret.
//!
//! Delivery is per rollup, in seq order, one request at a time: a receiver that fails holds
//! back its own rollup's later events, nobody else's, and never sees `2.accepted` before
//! `1.accepted`. What was acknowledged is kept in a cursor file under the data directory,
//! written (atomically) after each 2xx: a restart resends at most the one event in flight.
//! The events themselves are not queued anywhere: like the SSE catch-up they are rebuilt from
//! the receipts, so nothing a crash interrupts is lost.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use sha2::Sha256;

use crate::batches::{rank, receipt_json};
use crate::AppState;

/// A webhooks file that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{path}: {message}")]
pub struct WebhookConfigError {
    /// Where (`webhooks[0].secret_file`).
    pub path: String,
    /// What is wrong.
    pub message: String,
}

fn err(path: impl Into<String>, message: impl Into<String>) -> WebhookConfigError {
    WebhookConfigError {
        path: path.into(),
        message: message.into(),
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileToml {
    #[serde(default)]
    poll_ms: Option<u64>,
    #[serde(default)]
    retry_initial_ms: Option<u64>,
    #[serde(default)]
    retry_max_ms: Option<u64>,
    #[serde(default)]
    timeout_ms: Option<u64>,
    #[serde(default)]
    webhooks: Vec<HookToml>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct HookToml {
    rollup: String,
    url: String,
    secret_file: PathBuf,
}

/// One rollup's receiver.
#[derive(Clone)]
pub struct Webhook {
    /// Rollup wire name.
    pub rollup: String,
    /// Where events are POSTed (`http` or `https`).
    pub url: String,
    key: Vec<u8>,
}

impl std::fmt::Debug for Webhook {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The key stays out of logs.
        f.debug_struct("Webhook")
            .field("rollup", &self.rollup)
            .field("url", &self.url)
            .finish_non_exhaustive()
    }
}

/// Every receiver, and how deliveries are paced.
#[derive(Debug, Clone)]
pub struct WebhookConfig {
    /// The receivers, at most one per rollup.
    pub hooks: Vec<Webhook>,
    /// How often the receipts are rescanned without a status change being announced (a
    /// change the announcement channel dropped, a proof stored by another process).
    pub poll: Duration,
    /// The first retry's wait; each next one doubles, up to `retry_max`.
    pub retry_initial: Duration,
    /// The longest wait between two attempts.
    pub retry_max: Duration,
    /// One attempt's time limit.
    pub timeout: Duration,
}

/// A `whsec_…` secret's key bytes.
///
/// # Errors
/// Not `whsec_` followed by standard base64 of 24 to 64 bytes.
pub fn parse_secret(text: &str) -> Result<Vec<u8>, String> {
    let b64 = text
        .trim()
        .strip_prefix("whsec_")
        .ok_or("a webhook secret starts with whsec_ (Standard Webhooks)")?;
    let key = B64
        .decode(b64)
        .map_err(|e| format!("the part after whsec_ is not base64: {e}"))?;
    if !(24..=64).contains(&key.len()) {
        return Err(format!("the key is {} bytes; expected 24 to 64", key.len()));
    }
    Ok(key)
}

impl WebhookConfig {
    /// Reads a webhooks file; secret files are relative to it.
    ///
    /// # Errors
    /// [`WebhookConfigError`] naming the position of the first problem.
    pub fn load(
        path: &Path,
        registry: &poe_ingest::registry::Registry,
    ) -> Result<Self, WebhookConfigError> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| err(path.display().to_string(), e.to_string()))?;
        Self::parse(&text, path.parent().unwrap_or(Path::new(".")), registry)
    }

    /// Parses and checks a webhooks file's text; `dir` is where secret files are looked up.
    ///
    /// # Errors
    /// [`WebhookConfigError`] naming the position of the first problem.
    pub fn parse(
        text: &str,
        dir: &Path,
        registry: &poe_ingest::registry::Registry,
    ) -> Result<Self, WebhookConfigError> {
        let file: FileToml = toml::from_str(text).map_err(|e| err("webhooks", e.to_string()))?;
        let ms = |v: Option<u64>, default: u64, name: &str| {
            let v = v.unwrap_or(default);
            if v == 0 {
                return Err(err(name, "must be at least 1 ms"));
            }
            Ok(Duration::from_millis(v))
        };
        let mut hooks: Vec<Webhook> = Vec::new();
        for (i, h) in file.webhooks.into_iter().enumerate() {
            let at = format!("webhooks[{i}]");
            if registry.get(&h.rollup).is_none() {
                return Err(err(
                    format!("{at}.rollup"),
                    format!("{:?} is not in the registry", h.rollup),
                ));
            }
            if hooks.iter().any(|o| o.rollup == h.rollup) {
                return Err(err(
                    format!("{at}.rollup"),
                    format!("a second webhook for {}", h.rollup),
                ));
            }
            if !(h.url.starts_with("http://") || h.url.starts_with("https://")) {
                return Err(err(format!("{at}.url"), "an http:// or https:// URL"));
            }
            let secret_path = dir.join(&h.secret_file);
            let secret = std::fs::read_to_string(&secret_path).map_err(|e| {
                err(
                    format!("{at}.secret_file"),
                    format!("{}: {e}", secret_path.display()),
                )
            })?;
            let key = parse_secret(&secret).map_err(|m| {
                err(
                    format!("{at}.secret_file"),
                    format!("{}: {m}", secret_path.display()),
                )
            })?;
            hooks.push(Webhook {
                rollup: h.rollup,
                url: h.url,
                key,
            });
        }
        let retry_initial = ms(file.retry_initial_ms, 1_000, "retry_initial_ms")?;
        let retry_max = ms(file.retry_max_ms, 300_000, "retry_max_ms")?;
        if retry_max < retry_initial {
            return Err(err("retry_max_ms", "below retry_initial_ms"));
        }
        Ok(Self {
            hooks,
            poll: ms(file.poll_ms, 30_000, "poll_ms")?,
            retry_initial,
            retry_max,
            timeout: ms(file.timeout_ms, 10_000, "timeout_ms")?,
        })
    }
}

/// `v1,<base64 HMAC-SHA256(key, "{id}.{timestamp}.{body}")>`: Standard Webhooks' signature.
pub fn sign(key: &[u8], id: &str, timestamp: u64, body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("HMAC takes any key length");
    mac.update(id.as_bytes());
    mac.update(b".");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    format!("v1,{}", B64.encode(mac.finalize().into_bytes()))
}

/// What a receiver has acknowledged: every seq up to `floor` at `included` (nothing more can
/// happen to those), and the highest status of each seq above it.
#[derive(Debug, Default, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Cursor {
    url: String,
    floor: u64,
    acked: BTreeMap<u64, u8>,
}

impl Cursor {
    fn acked(&self, seq: u64) -> u8 {
        if seq <= self.floor {
            3
        } else {
            self.acked.get(&seq).copied().unwrap_or(0)
        }
    }

    fn ack(&mut self, seq: u64, rank: u8) {
        if seq > self.floor {
            let r = self.acked.entry(seq).or_default();
            *r = (*r).max(rank);
        }
        while self.acked.get(&(self.floor + 1)) == Some(&3) {
            self.acked.remove(&(self.floor + 1));
            self.floor += 1;
        }
    }
}

/// Where a rollup's cursor lives.
fn cursor_path(dir: &Path, rollup: &str) -> PathBuf {
    dir.join(format!("{rollup}.json"))
}

fn load_cursor(path: &Path) -> Result<Option<Cursor>, String> {
    match std::fs::read(path) {
        Ok(bytes) => serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|e| format!("{}: {e}", path.display())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(format!("{}: {e}", path.display())),
    }
}

/// Written beside, synced, renamed over: a crash leaves the old cursor or the new one.
fn save_cursor(path: &Path, cursor: &Cursor) -> std::io::Result<()> {
    use std::io::Write as _;
    let tmp = path.with_extension("json.tmp");
    let mut f = std::fs::File::create(&tmp)?;
    f.write_all(&serde_json::to_vec(cursor).expect("a cursor serialises"))?;
    f.sync_all()?;
    std::fs::rename(&tmp, path)?;
    if let Some(dir) = path.parent() {
        std::fs::File::open(dir)?.sync_all()?;
    }
    Ok(())
}

/// The running deliverers; dropping this leaves them running until the runtime ends.
#[derive(Debug)]
pub struct Deliverers {
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Deliverers {
    /// Stops every deliverer (an attempt in flight is abandoned and resent after a restart).
    pub fn stop(self) {
        for t in self.tasks {
            t.abort();
        }
    }
}

/// Starts one deliverer per webhook, its cursors under `dir` (created if missing). A rollup
/// without a cursor (a webhook new to it) starts at its batches not yet `included`: what is
/// settled is not replayed to a new receiver.
///
/// # Errors
/// `dir` cannot be made, or a cursor in it cannot be read.
pub fn start(state: &AppState, config: WebhookConfig, dir: &Path) -> Result<Deliverers, String> {
    std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let mut tasks = Vec::new();
    for hook in config.hooks.clone() {
        let path = cursor_path(dir, &hook.rollup);
        let cursor = load_cursor(&path)?;
        let d = Deliverer {
            state: state.clone(),
            config: config.clone(),
            hook,
            path,
            cursor,
        };
        tasks.push(tokio::spawn(d.run()));
    }
    Ok(Deliverers { tasks })
}

struct Deliverer {
    state: AppState,
    config: WebhookConfig,
    hook: Webhook,
    path: PathBuf,
    /// `None` until the first scan of a webhook new to this rollup.
    cursor: Option<Cursor>,
}

impl Deliverer {
    async fn run(mut self) {
        let mut rx = self.state.events.subscribe();
        loop {
            self.deliver_pending().await;
            // Woken by a change of this rollup's, or by the poll.
            let wait = async {
                loop {
                    match rx.recv().await {
                        Ok(ev) if ev.rollup != self.hook.rollup => continue,
                        // A lagged or closed channel: rescan, as for a change.
                        _ => return,
                    }
                }
            };
            let _ = tokio::time::timeout(self.config.poll, wait).await;
        }
    }

    /// Every event not yet acknowledged, in seq order, each retried until it is.
    async fn deliver_pending(&mut self) {
        let from = self.cursor.as_ref().map_or(1, |c| c.floor + 1);
        let rollup = self.hook.rollup.clone();
        let receipts = match crate::batches::read_intake(&self.state, move |i| {
            i.receipts_from(&rollup, from, usize::MAX)
                .map(Option::unwrap_or_default)
        })
        .await
        {
            Ok(r) => r,
            Err(_) => {
                tracing::warn!(rollup = %self.hook.rollup, "webhook: the receipts could not be read; retrying at the next poll");
                return;
            }
        };
        let receipts: Vec<Value> = receipts
            .iter()
            .map(|r| receipt_json(&self.state, r))
            .collect();
        let cursor = match self.cursor.take() {
            Some(c) if c.url == self.hook.url => c,
            previous => {
                // New to this rollup (or a new URL): settled batches are not replayed.
                let mut c = Cursor {
                    url: self.hook.url.clone(),
                    ..Cursor::default()
                };
                if let Some(p) = previous {
                    c.floor = p.floor;
                    c.acked = p.acked;
                } else {
                    for r in &receipts {
                        if r["status"] == "included" {
                            c.ack(r["seq"].as_u64().unwrap_or(0), 3);
                        }
                    }
                }
                c
            }
        };
        self.cursor = Some(cursor);
        let pending: Vec<&Value> = receipts
            .iter()
            .filter(|r| {
                let seq = r["seq"].as_u64().unwrap_or(0);
                let cursor = self.cursor.as_ref().expect("set above");
                rank(r["status"].as_str().unwrap_or("")) > cursor.acked(seq)
            })
            .collect();
        self.state
            .metrics
            .webhook_backlog(&self.hook.rollup, pending.len());
        for (i, r) in pending.iter().enumerate() {
            let left = pending.len() - i - 1;
            let seq = r["seq"].as_u64().unwrap_or(0);
            let status = r["status"].as_str().unwrap_or("").to_owned();
            self.deliver(r, seq, &status).await;
            let cursor = self.cursor.as_mut().expect("set above");
            cursor.ack(seq, rank(&status));
            if let Err(e) = save_cursor(&self.path, cursor) {
                // Delivered but not recorded: it will be sent again after a restart.
                tracing::error!(rollup = %self.hook.rollup, error = %e, "webhook: the cursor could not be saved");
            }
            self.state.metrics.webhook_backlog(&self.hook.rollup, left);
        }
    }

    /// One event, until the receiver answers 2xx.
    async fn deliver(&self, receipt: &Value, seq: u64, status: &str) {
        let id = format!("{}.{seq}.{status}", self.hook.rollup);
        let body = serde_json::to_vec(&json!({
            "type": "batch.status",
            "id": id,
            "data": receipt,
        }))
        .expect("JSON serialises");
        let mut wait = self.config.retry_initial;
        loop {
            let outcome = self.attempt(&id, &body).await;
            match outcome {
                Ok(()) => {
                    self.state
                        .metrics
                        .webhook_attempt(&self.hook.rollup, "delivered");
                    return;
                }
                Err(why) => {
                    self.state
                        .metrics
                        .webhook_attempt(&self.hook.rollup, "failed");
                    tracing::warn!(rollup = %self.hook.rollup, event = %id, retry_in_ms = wait.as_millis() as u64, "webhook: {why}");
                }
            }
            tokio::time::sleep(jitter(wait)).await;
            wait = (wait * 2).min(self.config.retry_max);
        }
    }

    async fn attempt(&self, id: &str, body: &[u8]) -> Result<(), String> {
        let timestamp = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let signature = sign(&self.hook.key, id, timestamp, body);
        let (url, id, body, timeout) = (
            self.hook.url.clone(),
            id.to_owned(),
            body.to_vec(),
            self.config.timeout,
        );
        tokio::task::spawn_blocking(move || {
            let agent = ureq::Agent::config_builder()
                .http_status_as_error(false)
                .timeout_global(Some(timeout))
                .build()
                .new_agent();
            let resp = agent
                .post(&url)
                .header("content-type", "application/json")
                .header("webhook-id", &id)
                .header("webhook-timestamp", &timestamp.to_string())
                .header("webhook-signature", &signature)
                .send(&body[..])
                .map_err(|e| format!("POST {url}: {e}"))?;
            let status = resp.status().as_u16();
            if (200..300).contains(&status) {
                Ok(())
            } else {
                Err(format!("POST {url}: HTTP {status}"))
            }
        })
        .await
        .map_err(|e| e.to_string())?
    }
}

/// `wait` ± up to a quarter, so that receivers coming back are not hit by every rollup at once.
fn jitter(wait: Duration) -> Duration {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    let quarter = wait / 4;
    let offset = quarter.mul_f64(f64::from(nanos % 1000) / 500.0);
    wait - quarter + offset
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Standard Webhooks' own test vector (its reference libraries' `test_sign_function`).
    #[test]
    fn signs_like_standard_webhooks() {
        let key = parse_secret("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap();
        assert_eq!(
            sign(
                &key,
                "msg_p5jXN8AQM9LWM0D4loKWxJek",
                1_614_265_330,
                br#"{"test": 2432232314}"#
            ),
            "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
        );
    }

    #[test]
    fn secrets_without_prefix_or_too_short_are_refused() {
        assert!(parse_secret("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").is_err());
        assert!(parse_secret("whsec_AAAA").unwrap_err().contains("3 bytes"));
        assert!(parse_secret("whsec_%%%").is_err());
    }

    #[test]
    fn the_cursor_floor_moves_over_included_runs_only() {
        let mut c = Cursor::default();
        c.ack(2, 3);
        assert_eq!((c.floor, c.acked(2), c.acked(1)), (0, 3, 0));
        c.ack(1, 1);
        c.ack(1, 3);
        c.ack(3, 2);
        assert_eq!(c.floor, 2);
        assert_eq!(c.acked(3), 2);
        c.ack(3, 1);
        assert_eq!(c.acked(3), 2, "an older status does not lower an ack");
    }

    #[test]
    fn jitter_stays_within_a_quarter() {
        let w = Duration::from_millis(1000);
        let j = jitter(w);
        assert!(j >= Duration::from_millis(750) && j <= Duration::from_millis(1250));
    }
}
