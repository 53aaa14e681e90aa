//! ClickHouse's `windowFunnel`, mode for mode, over one person's rows.
//!
//! The algorithm follows ClickHouse's documented behaviour and its answers on
//! the differential tests (`functions/tests/clickhouse.rs` runs chDB on the
//! same rows): every condition a row meets becomes one entry `(time, step)`;
//! entries are ordered by time, then step; one pass keeps, per step, the
//! start and the latest time of the most recent chain that reached it. That
//! a row meeting two conditions can advance two steps, and that
//! `strict_order` stops at the first foreign event after the chain started,
//! are ClickHouse's semantics and kept on purpose: `window_funnel` is the
//! function analysts port queries to.

use super::{MAX_STEPS, Modes, Row};

/// Partial chains `strict_once` may hold for one group. Their number can
/// grow with the product of a person's repeated steps; past this, the call
/// fails with a clear error instead of exhausting memory or time.
pub const MAX_PARTIAL_CHAINS: usize = 1_000_000;

/// `strict_once` needed more than [`MAX_PARTIAL_CHAINS`] partial chains.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TooManyChains;

/// The furthest step (0 ..= `steps`) reached within `window` (in the rows'
/// time unit). `rows` are one person's rows in any order; with
/// `strict_order` they include the rows that meet no condition (mask 0), the
/// events that break a strict chain.
pub fn window_funnel(rows: &[Row], steps: usize, window: i64, modes: Modes) -> Result<u8, TooManyChains> {
    debug_assert!((1..=MAX_STEPS).contains(&steps));
    if !rows.iter().any(|r| r.steps != 0) {
        return Ok(0);
    }
    if !modes.strict_order && steps == 1 {
        return Ok(1);
    }
    if modes.strict_once { strict_once(rows, steps, window, modes) } else { Ok(greedy(rows, steps, window, modes)) }
}

/// One entry per (row, condition met); under `strict_order` a row meeting
/// none is entry 0, which sorts before the steps at its instant.
fn entries(rows: &[Row], steps: usize, strict_order: bool) -> Vec<(i64, u8, u32)> {
    let mut out = Vec::with_capacity(rows.len());
    for (id, row) in rows.iter().enumerate() {
        let id = u32::try_from(id).unwrap_or(u32::MAX);
        if row.steps == 0 {
            if strict_order {
                out.push((row.at, 0, id));
            }
            continue;
        }
        for step in 0..steps {
            if row.steps & (1 << step) != 0 {
                out.push((row.at, step as u8 + 1, id));
            }
        }
    }
    out
}

fn highest(reached: impl DoubleEndedIterator<Item = bool> + ExactSizeIterator) -> u8 {
    let n = reached.len();
    reached.rev().position(|r| r).map_or(0, |from_end| (n - from_end) as u8)
}

/// The default, `strict_order`, `strict_deduplication` and `strict_increase` modes.
fn greedy(rows: &[Row], steps: usize, window: i64, modes: Modes) -> u8 {
    let mut entries = entries(rows, steps, modes.strict_order);
    entries.sort_unstable_by_key(|&(at, step, _)| (at, step));
    // (chain start, time this step was reached) of the latest chain per step.
    let mut reached: [Option<(i64, i64)>; MAX_STEPS] = [None; MAX_STEPS];
    let reached_level =
        |reached: &[Option<(i64, i64)>; MAX_STEPS]| highest(reached[..steps].iter().map(Option::is_some));
    let mut started = false;
    for (at, step, _) in entries {
        if step == 0 {
            // Only present under strict_order: a foreign event ends the scan once a chain started.
            if started {
                break;
            }
            continue;
        }
        let index = usize::from(step - 1);
        if index == 0 {
            reached[0] = Some((at, at));
            started = true;
        } else if modes.strict_deduplication && reached[index].is_some() {
            return reached_level(&reached);
        } else if modes.strict_order && started && reached[index - 1].is_none() {
            // A later step before its predecessor: the first step not reached.
            return reached[..steps].iter().position(Option::is_none).map_or(steps as u8, |p| p as u8);
        } else if let Some((start, last)) = reached[index - 1] {
            let in_window = at <= start.saturating_add(window);
            let increasing = !modes.strict_increase || last < at;
            if in_window && increasing {
                reached[index] = Some((start, at));
                if index + 1 == steps {
                    return steps as u8;
                }
            }
        }
    }
    reached_level(&reached)
}

/// A partial chain under `strict_once`: which row stands for each step, so
/// that no row is used twice in one chain.
#[derive(Clone, Copy)]
struct Partial {
    start: i64,
    last: i64,
    rows: [u32; MAX_STEPS],
}

/// `strict_once`: a row counts at most once per chain. Every chain that may
/// still win is kept per step, since which row serves which step is only
/// known once later rows arrive.
fn strict_once(rows: &[Row], steps: usize, window: i64, modes: Modes) -> Result<u8, TooManyChains> {
    // Row ids break ties between equal entries: number the rows in a canonical
    // order, so the answer does not depend on how partitions were merged.
    let mut rows = rows.to_vec();
    rows.sort_unstable_by_key(|r| (r.at, r.steps));
    let mut entries = entries(&rows, steps, modes.strict_order);
    entries.sort_unstable();
    let mut chains: Vec<Vec<Partial>> = vec![Vec::new(); steps];
    let level = |chains: &Vec<Vec<Partial>>| highest(chains.iter().map(|c| !c.is_empty()));
    let mut started = false;
    let mut held = 0usize;
    for (at, step, row) in entries {
        if step == 0 {
            if started {
                break;
            }
            continue;
        }
        let index = usize::from(step - 1);
        if index == 0 {
            let mut rows = [u32::MAX; MAX_STEPS];
            rows[0] = row;
            chains[0].push(Partial { start: at, last: at, rows });
            held += 1;
            started = true;
        } else if modes.strict_deduplication && !chains[index].is_empty() {
            return Ok(level(&chains));
        } else if modes.strict_order && started && chains[index - 1].is_empty() {
            return Ok(chains.iter().position(Vec::is_empty).map_or(steps as u8, |p| p as u8));
        } else if !chains[index - 1].is_empty() {
            let (before, after) = chains.split_at_mut(index);
            let previous = &mut before[index - 1];
            let mut next = Vec::new();
            let mut i = 0;
            while i < previous.len() {
                let chain = previous[i];
                let in_window = at <= chain.start.saturating_add(window);
                if !in_window && previous.len() > 1 {
                    // Too old to extend; the last one is kept so the step stays reached.
                    previous.remove(i);
                    continue;
                }
                let fresh = !chain.rows[..index].contains(&row);
                let increasing = !modes.strict_increase || chain.last < at;
                if in_window && fresh && increasing {
                    let mut rows = chain.rows;
                    rows[index] = row;
                    next.push(Partial { start: chain.start, last: at, rows });
                    if index + 1 == steps {
                        return Ok(steps as u8);
                    }
                }
                i += 1;
            }
            held += next.len();
            after[0].extend(next);
            if held > MAX_PARTIAL_CHAINS {
                return Err(TooManyChains);
            }
        }
    }
    Ok(level(&chains))
}
