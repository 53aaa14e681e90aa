//! The warehouse's one error type.

/// `Result` with [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What can go wrong while compacting.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The object store failed (network, permissions, a missing bucket).
    #[error("object store: {0}")]
    Store(#[from] object_store::Error),
    /// Delta Lake refused or failed an operation.
    #[error("delta: {0}")]
    Delta(#[from] deltalake::DeltaTableError),
    /// Arrow compute failed (schema mismatch between raw files).
    #[error("arrow: {0}")]
    Arrow(#[from] arrow::error::ArrowError),
    /// Writing or reading Parquet failed.
    #[error("parquet: {0}")]
    Parquet(#[from] parquet::errors::ParquetError),
    /// A raw batch does not decode with the contract's schema.
    #[error("raw batch {key}: {source}")]
    Raw {
        /// The raw object's key.
        key: String,
        /// Why it was refused.
        source: contrail_edge::EncodeError,
    },
    /// A store URL or option is invalid.
    #[error("store location: {0}")]
    Location(String),
    /// Another compactor committed first, more times than the retry budget.
    #[error("gave up after {0} commit conflicts for project {1}")]
    Contended(usize, String),
    /// The runtime shut down while a run was encoding; nothing was committed.
    #[error("compaction cancelled: the runtime is shutting down")]
    Cancelled,
    /// A failpoint fired (tests only: simulates a crash at that step).
    #[error("injected failure at {0}")]
    Injected(&'static str),
}
