//! A running cloudflared: a child in its own process group, ended as a
//! group (SIGTERM, a grace period, SIGKILL) and always reaped.

use std::path::PathBuf;
use std::process::ExitStatus;
use std::time::Duration;

use rustix::process::{Pid, Signal};
use tokio::process::Child;

use crate::logfile::{self, TAIL_LINES};
use crate::metrics::Metrics;
use crate::{TunnelExit, TunnelProcess};

/// One cloudflared process, the leader of its own process group.
pub(crate) struct CloudflaredProcess {
    child: Child,
    /// Also the process group id: it was spawned with `process_group(0)`.
    pid: u32,
    log: PathBuf,
    /// Its metrics server, once its log has said where.
    metrics: Option<Metrics>,
    /// Whether the metrics server ever answered. Without one there is no
    /// way to ask for health, and a live process is the best sign there is.
    metrics_seen: bool,
    grace: Duration,
    exit: Option<TunnelExit>,
    closed: bool,
}

impl CloudflaredProcess {
    pub(crate) fn new(child: Child, pid: u32, log: PathBuf, grace: Duration) -> Self {
        CloudflaredProcess {
            child,
            pid,
            log,
            metrics: None,
            metrics_seen: false,
            grace,
            exit: None,
            closed: false,
        }
    }

    pub(crate) fn pid(&self) -> u32 {
        self.pid
    }

    pub(crate) fn metrics(&self) -> Option<Metrics> {
        self.metrics
    }

    /// Where its metrics server is, as its log said.
    pub(crate) fn set_metrics(&mut self, metrics: Metrics) {
        self.metrics = Some(metrics);
    }

    /// Its log file.
    pub(crate) fn log_path(&self) -> &std::path::Path {
        &self.log
    }

    /// Records that the metrics server answered, so health can be asked.
    pub(crate) fn saw_metrics(&mut self) {
        self.metrics_seen = true;
    }

    /// How the process ended, if it has; does not wait.
    pub(crate) async fn try_exit(&mut self) -> Option<TunnelExit> {
        if self.exit.is_none() {
            let status = self.child.try_wait().ok()??;
            self.record_exit(status).await;
        }
        self.exit.clone()
    }

    /// The last lines of its log.
    pub(crate) async fn log_tail(&self) -> String {
        logfile::tail(&self.log, TAIL_LINES).await
    }

    async fn record_exit(&mut self, status: ExitStatus) {
        // The leader is gone; whatever it started in its group goes too,
        // now, while the group id cannot have been reused yet.
        signal_group(self.pid, Signal::KILL);
        self.exit = Some(TunnelExit {
            code: status.code(),
            log_tail: self.log_tail().await,
        });
    }

    /// SIGTERM to the group, up to the grace period, then SIGKILL.
    async fn terminate(&mut self) {
        signal_group(self.pid, Signal::TERM);
        let status = match tokio::time::timeout(self.grace, self.child.wait()).await {
            Ok(status) => status,
            Err(_) => {
                signal_group(self.pid, Signal::KILL);
                self.child.wait().await
            }
        };
        if let Ok(status) = status {
            self.record_exit(status).await;
        }
    }
}

#[async_trait::async_trait]
impl TunnelProcess for CloudflaredProcess {
    async fn wait(&mut self) -> TunnelExit {
        if self.exit.is_none() {
            // tokio's `Child::wait` is cancel-safe and keeps the status.
            match self.child.wait().await {
                Ok(status) => self.record_exit(status).await,
                Err(_) => {
                    self.exit = Some(TunnelExit {
                        code: None,
                        log_tail: self.log_tail().await,
                    })
                }
            }
        }
        self.exit.clone().expect("exit recorded above")
    }

    async fn healthy(&self) -> bool {
        match self.metrics.filter(|_| self.metrics_seen) {
            Some(metrics) => metrics.ready().await == Some(true),
            None => true,
        }
    }

    async fn close(&mut self) {
        if std::mem::replace(&mut self.closed, true) {
            return;
        }
        if self.try_exit().await.is_none() {
            self.terminate().await;
        }
    }
}

impl Drop for CloudflaredProcess {
    fn drop(&mut self) {
        // The backstop for a handle dropped without `close`: `kill_on_drop`
        // ends only the leader, so end the group too.
        if !self.closed && matches!(self.child.try_wait(), Ok(None)) {
            signal_group(self.pid, Signal::KILL);
        }
    }
}

/// Sends `signal` to every process in the group `pgid`. Returns whether
/// any received it.
fn signal_group(pgid: u32, signal: Signal) -> bool {
    // 0 would mean our own group, and 1 init's; the child leads a group of
    // its own, made with `process_group(0)`.
    i32::try_from(pgid)
        .ok()
        .filter(|&pgid| pgid > 1)
        .and_then(Pid::from_raw)
        .is_some_and(|pgid| rustix::process::kill_process_group(pgid, signal).is_ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn never_signals_our_own_group_or_everyone() {
        assert!(!signal_group(0, Signal::TERM));
        assert!(!signal_group(1, Signal::TERM));
        assert!(!signal_group(u32::MAX, Signal::TERM));
    }
}
