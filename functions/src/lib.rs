//! Contrail's DataFusion functions (DESIGN §6.5), registered in every query
//! session so analysts call them from `/v1/sql` and the analytics endpoints
//! plan with them:
//! - [`window_funnel`](window_funnel::WindowFunnel) and
//!   [`retention`](retention::Retention): ClickHouse's `windowFunnel` and
//!   `retention`, as aggregate functions with a `GroupsAccumulator` (the
//!   fast path for `GROUP BY person`) and mergeable partial state;
//! - [`funnel_chain`](funnel_chain::funnel_chain_udaf): the per-request
//!   funnel behind `POST /v1/funnels` (orders, exclusions, time to convert);
//! - the JSON functions and operators of `datafusion-functions-json`
//!   (`json_get_str`, `->`, `->>`, …) over the JSON text columns.
//!
//! The algorithms live in [`funnel`], free of DataFusion.

pub mod funnel;
pub mod funnel_chain;
pub mod retention;
mod rows;
pub mod window_funnel;

/// The JSON functions, for plans that build property lookups directly.
pub use datafusion_functions_json as json;

use datafusion::common::Result;
use datafusion::execution::FunctionRegistry;

/// Registers every Contrail function (and the JSON functions) in `registry`.
pub fn register_all(registry: &mut dyn FunctionRegistry) -> Result<()> {
    registry.register_udaf(window_funnel::window_funnel_udaf())?;
    registry.register_udaf(retention::retention_udaf())?;
    datafusion_functions_json::register_all(registry)
}
