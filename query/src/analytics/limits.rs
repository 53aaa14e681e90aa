//! The bounds of analytics requests, each with its reason, in one place.
//! A request outside them is a 400 naming the field, before any I/O.

/// Series per trends request, steps and exclusions per funnel: ClickHouse's
/// `windowFunnel` limit, and the bits of the `u32` step masks.
pub const MAX_SERIES: usize = contrail_functions::funnel::MAX_STEPS;

/// Buckets per trends answer (and days behind `dau`/`wau`/`mau`): a minute
/// interval over two weeks fits, a minute interval over a year does not.
pub const MAX_BUCKETS: usize = 20_000;

/// Periods in a retention range: daily cohorts over more than 13 years are
/// a mistake, not a question, and each one is an answer row.
pub const MAX_PERIODS: usize = 5_000;

/// Return periods per retention cohort (DESIGN §6.4).
pub const MAX_RETURN_PERIODS: i64 = 100;

/// Breakdown values named in an answer before `$other`.
pub const MAX_BREAKDOWN_LIMIT: usize = 1_000;

/// The longest funnel window: a year and a day (DESIGN §6.1).
pub const MAX_WINDOW_SECS: i64 = 366 * 86_400;

/// The default funnel window: 14 days.
pub const DEFAULT_WINDOW_SECS: i64 = 14 * 86_400;
