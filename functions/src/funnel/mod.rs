//! Funnel algorithms over one person's rows, free of DataFusion so they can
//! be read, tested and property-checked on their own. The aggregate
//! functions in [`crate::window_funnel`] and [`crate::funnel_chain`] collect
//! the rows per group and call these.

pub mod chain;
pub mod clickhouse;

/// Conditions per funnel: ClickHouse's limit, and the bits of a `u32` mask.
pub const MAX_STEPS: usize = 32;

/// One event of one person, as the funnel sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Row {
    /// Its time, in the unit the window is given in (microseconds in SQL).
    pub at: i64,
    /// Bit `i` set: the event meets step `i`'s condition.
    pub steps: u32,
    /// Bit `k` set: the event is exclusion `k`'s event ([`chain::Spec`] only).
    pub excluded: u32,
    /// An interned value carried along (the breakdown of `/v1/funnels`; 0 = none).
    pub value: u32,
}

/// `windowFunnel`'s modes, as named in ClickHouse.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Modes {
    /// No other event may come between steps once the chain started.
    pub strict_order: bool,
    /// A step met again before the next stops the scan.
    pub strict_deduplication: bool,
    /// Steps must have strictly increasing times.
    pub strict_increase: bool,
    /// A row counts once per chain, even when it meets several steps.
    pub strict_once: bool,
}

impl Modes {
    /// Parses `'strict_order,strict_increase'` (comma-separated, spaces allowed).
    pub fn parse(text: &str) -> Result<Self, String> {
        let mut modes = Self::default();
        for name in text.split(',').map(str::trim).filter(|n| !n.is_empty()) {
            match name {
                "strict_order" => modes.strict_order = true,
                "strict_deduplication" => modes.strict_deduplication = true,
                "strict_increase" => modes.strict_increase = true,
                "strict_once" => modes.strict_once = true,
                other => {
                    return Err(format!(
                        "unknown window_funnel mode '{other}': expected strict_order, strict_deduplication, strict_increase or strict_once"
                    ));
                }
            }
        }
        Ok(modes)
    }
}
