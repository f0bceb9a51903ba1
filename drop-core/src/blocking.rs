//! Blocking work from async code: drop's files (read and written under the
//! registry's lock, which a command may hold for a moment), process stops,
//! catalog refreshes. All of it runs on tokio's blocking threads through
//! [`blocking`], so no async thread ever waits on a file or a lock.

/// Runs `work` on a blocking thread and waits for it. A panic in `work`
/// goes on in the caller; when the runtime shuts down before `work` ran,
/// this never returns (the caller's task ends with the runtime).
pub(crate) async fn blocking<T: Send + 'static>(work: impl FnOnce() -> T + Send + 'static) -> T {
    match tokio::task::spawn_blocking(work).await {
        Ok(value) => value,
        Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
        Err(_) => std::future::pending().await,
    }
}
