//! Contrail's event contract, and (on `wasm32`) its Cloudflare Worker.
//!
//! ```text
//! HTTP request ──▶ body (gzip, bounded) ──▶ keys (write key → project)
//!                    ──▶ validate (per message) ──▶ normalise ──▶ Event rows
//!                                      └─ rejected ──▶ RejectedMessage (quarantine)
//! Event rows ──(buffer: Durable Object or `contrail serve`'s log)──▶ encode ──▶ raw/…/<uuidv7>.arrow
//! ```
//!
//! Everything here is pure: bytes and types in, types and bytes out, no clock
//! and no I/O, so that the Worker (wasm32) and `contrail serve` (native) run the
//! same code and cannot disagree about what an event is. The guarantee this
//! crate carries: the same message, received at the same instant under the same
//! keys, normalises to the same row on every target.

pub mod body;
pub mod canonical;
pub mod cors;
pub mod encode;
pub mod error;
pub mod event;
pub mod ingest;
pub mod ip_hash;
pub mod keys;
pub mod limits;
pub mod normalise;
pub mod project;
pub mod rate;
pub mod raw_key;
pub mod schema;
pub mod settings;
pub mod shard;
pub mod useragent;
pub mod validate;

#[cfg(target_arch = "wasm32")]
pub mod cloudflare;

pub use error::{EncodeError, IngestError, RejectCode, Rejection};
pub use event::{Event, MessageType, RejectedMessage};
pub use ingest::{Endpoint, IngestAnswer, IngestRequest, Ingestor, Prepared, RejectedItem};
pub use keys::{KeyError, KeyKind, Keyring};
pub use limits::Limits;
pub use normalise::Geo;
pub use project::ProjectId;
