//! CPU-bound work (sorting, Parquet encoding) kept off the async runtime.

use futures::StreamExt as _;

use crate::error::{Error, Result};

/// Runs CPU-bound `work` on each item on Tokio's blocking pool, as many at a
/// time as there are cores, and returns the results in order. Encoding a
/// day of events takes seconds; on the async runtime it would stall every
/// request `serve` handles on the same thread.
pub(crate) async fn on_cores<T, R>(
    items: Vec<T>,
    work: impl Fn(T) -> Result<R> + Send + Sync + 'static,
) -> Result<Vec<R>>
where
    T: Send + 'static,
    R: Send + 'static,
{
    let cores = std::thread::available_parallelism().map_or(1, usize::from);
    let work = std::sync::Arc::new(work);
    let tasks = items.into_iter().map(|item| {
        let work = work.clone();
        tokio::task::spawn_blocking(move || work(item))
    });
    let mut results = futures::stream::iter(tasks).buffered(cores);
    let mut out = Vec::new();
    while let Some(result) = results.next().await {
        out.push(joined(result)?);
    }
    Ok(out)
}

/// Runs one piece of CPU-bound `work` on Tokio's blocking pool.
pub(crate) async fn off_runtime<R: Send + 'static>(work: impl FnOnce() -> Result<R> + Send + 'static) -> Result<R> {
    joined(tokio::task::spawn_blocking(work).await)
}

/// A blocking task's result; its panic is the caller's panic.
fn joined<R>(result: std::result::Result<Result<R>, tokio::task::JoinError>) -> Result<R> {
    match result {
        Ok(result) => result,
        Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
        Err(_) => Err(Error::Cancelled),
    }
}
