//! The funnel behind `POST /v1/funnels` (DESIGN §6.3): the furthest step of
//! one person, and the chain that got there, so the endpoint can report time
//! to convert and attribute a breakdown value.
//!
//! `ordered` and `strict` run ClickHouse's single pass (see
//! [`super::clickhouse`]) with three additions ClickHouse does not have:
//! - a row stands for one step only: its steps are tried from the highest
//!   down, so it extends chains built by earlier rows and never its own.
//!   Rows at one instant are taken in the order of the lowest step they
//!   meet; under strict order a row ends the scan only when none of its
//!   steps can be taken. For rows meeting one step each this is exactly
//!   ClickHouse's answer;
//! - exclusions: a chain may not take step `to` when an exclusion event lies
//!   strictly between its step `from` and that step;
//! - the chain itself: the step times of the first chain that reached the
//!   person's furthest step.
//!
//! Keeping only the latest chain per step stays exact with exclusions: every
//! time in a step's chain only grows as rows arrive, so the latest chain has
//! the latest start (best for the window) and the latest `from` step (best
//! for any exclusion), and a chain an exclusion refuses would be refused for
//! every older chain too.

use super::{MAX_STEPS, Row};

/// How steps must follow one another.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Order {
    /// `windowFunnel(window)`: other events may come between steps.
    Ordered,
    /// `windowFunnel(window, 'strict_order')`: no other event may come
    /// between steps once the chain started; the scan stops at the first.
    Strict,
    /// Any order: the most distinct steps within one window.
    Unordered,
}

/// A chain must not contain an exclusion event strictly between its step
/// `from` and its step `to` (0-based, `from < to`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Exclusion {
    /// The step after which the exclusion applies.
    pub from: usize,
    /// The step before which the exclusion applies.
    pub to: usize,
}

/// One funnel's definition.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Spec {
    /// Number of steps, 1 ..= 32.
    pub steps: usize,
    /// The window, inclusive at both ends, in the rows' time unit.
    pub window: i64,
    /// How steps follow one another.
    pub order: Order,
    /// Exclusions; bit `k` of [`Row::excluded`] marks a row as exclusion `k`'s event.
    /// Not used by [`Order::Unordered`], which has no "between".
    pub exclusions: Vec<Exclusion>,
}

/// One person's outcome.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Chain {
    /// The furthest step reached, 0 ..= steps.
    pub level: u8,
    /// The time of each step of the first chain that reached `level`
    /// (`level` entries; empty for [`Order::Unordered`]).
    pub times: Vec<i64>,
    /// The row (index into the rows given) of the counted chain's first step.
    pub first: Option<usize>,
    /// The row of the counted chain's last step.
    pub last: Option<usize>,
}

#[derive(Clone, Copy)]
struct Link {
    times: [i64; MAX_STEPS],
    first: usize,
    last: usize,
}

impl Spec {
    /// The person's outcome over `rows` (any order; for [`Order::Strict`]
    /// including the rows that are no step, which break a strict chain).
    pub fn evaluate(&self, rows: &[Row]) -> Chain {
        let steps = self.steps.min(MAX_STEPS);
        if steps == 0 {
            return Chain::default();
        }
        match self.order {
            Order::Unordered => self.unordered(rows, steps),
            Order::Ordered | Order::Strict => self.sequential(rows, steps),
        }
    }

    fn sequential(&self, rows: &[Row], steps: usize) -> Chain {
        let strict = self.order == Order::Strict;
        let mut order: Vec<usize> = (0..rows.len()).filter(|&i| strict || rows[i].steps != 0).collect();
        // Same instant: steps in step order, rows that are no step first (as ClickHouse sorts them).
        order.sort_unstable_by_key(|&i| (rows[i].at, first_step(rows[i].steps), i));
        let exclusion_times = self.exclusion_times(rows);

        let mut levels: [Option<Link>; MAX_STEPS] = [None; MAX_STEPS];
        let mut best: Option<(usize, Link)> = None;
        let mut started = false;
        'rows: for &i in &order {
            let row = rows[i];
            if row.steps == 0 {
                if started {
                    break;
                }
                continue;
            }
            // Strict order: a row that no step can take ends the scan once a chain started.
            let fits = (0..steps).any(|s| row.steps & (1 << s) != 0 && (s == 0 || levels[s - 1].is_some()));
            if strict && started && !fits {
                break;
            }
            // Highest step first: each step extends the chains of earlier rows,
            // never one this row just started or extended.
            for step in (0..steps).rev().filter(|s| row.steps & (1 << s) != 0) {
                if step == 0 {
                    let mut times = [0; MAX_STEPS];
                    times[0] = row.at;
                    let link = Link { times, first: i, last: i };
                    levels[0] = Some(link);
                    started = true;
                    if best.is_none() {
                        best = Some((1, link));
                    }
                } else if let Some(previous) = levels[step - 1] {
                    let in_window = row.at <= previous.times[0].saturating_add(self.window);
                    if in_window && !self.excluded(&exclusion_times, &previous, step, row.at) {
                        let mut link = previous;
                        link.times[step] = row.at;
                        link.last = i;
                        levels[step] = Some(link);
                        if best.is_none_or(|(level, _)| level < step + 1) {
                            best = Some((step + 1, link));
                        }
                        if step + 1 == steps {
                            break 'rows;
                        }
                    }
                }
            }
        }
        match best {
            None => Chain::default(),
            Some((level, link)) => Chain {
                level: level as u8,
                times: link.times[..level].to_vec(),
                first: Some(link.first),
                last: Some(link.last),
            },
        }
    }

    /// Per exclusion, the sorted times of its events.
    fn exclusion_times(&self, rows: &[Row]) -> Vec<Vec<i64>> {
        self.exclusions
            .iter()
            .enumerate()
            .map(|(k, _)| {
                let mut times: Vec<i64> = rows.iter().filter(|r| r.excluded & (1 << k) != 0).map(|r| r.at).collect();
                times.sort_unstable();
                times
            })
            .collect()
    }

    /// Whether extending `chain` to `step` at `at` would enclose an exclusion event.
    fn excluded(&self, exclusion_times: &[Vec<i64>], chain: &Link, step: usize, at: i64) -> bool {
        self.exclusions.iter().zip(exclusion_times).any(|(exclusion, times)| {
            if exclusion.to != step || exclusion.from >= step {
                return false;
            }
            let after = chain.times[exclusion.from];
            let next = times.partition_point(|&t| t <= after);
            times.get(next).is_some_and(|&t| t < at)
        })
    }

    /// The most distinct steps matched by the events of one window
    /// `[t, t + window]`, `t` the time of a step event; a row stands for one step.
    fn unordered(&self, rows: &[Row], steps: usize) -> Chain {
        let all = if steps == 32 { u32::MAX } else { (1u32 << steps) - 1 };
        let mut order: Vec<usize> = (0..rows.len()).filter(|&i| rows[i].steps & all != 0).collect();
        order.sort_unstable_by_key(|&i| (rows[i].at, i));
        let mut best = Chain::default();
        let mut end = 0;
        let mut start = 0;
        while start < order.len() {
            let t = rows[order[start]].at;
            let until = t.saturating_add(self.window);
            end = end.max(start);
            while end < order.len() && rows[order[end]].at <= until {
                end += 1;
            }
            let window = &order[start..end];
            let reachable = window.iter().fold(0u32, |m, &i| m | (rows[i].steps & all)).count_ones() as usize;
            if reachable > usize::from(best.level) {
                let (level, used) = matching(window.iter().map(|&i| rows[i].steps & all), steps);
                if level > usize::from(best.level) {
                    // Attribution: the earliest event standing for step 0 (else the
                    // window's first), and the latest event standing for any step.
                    let first = used[0].and_then(|m| window.iter().find(|&&i| rows[i].steps & all == m));
                    let last = window.iter().rev().find(|&&i| used.iter().flatten().any(|&m| rows[i].steps & all == m));
                    best = Chain {
                        level: level as u8,
                        times: Vec::new(),
                        first: first.or(window.first()).copied(),
                        last: last.or(window.last()).copied(),
                    };
                    if level == steps {
                        break;
                    }
                }
            }
            // Windows starting at the same instant are the same window.
            while start < order.len() && rows[order[start]].at == t {
                start += 1;
            }
        }
        best
    }
}

/// The lowest step a row meets, 1-based (0: none), for ordering same-instant rows.
fn first_step(steps: u32) -> u32 {
    if steps == 0 { 0 } else { steps.trailing_zeros() + 1 }
}

/// The largest number of steps that distinct rows can each stand for: a
/// maximum bipartite matching of steps to rows (augmenting paths). Rows with
/// the same mask are interchangeable, and a mask never needs more copies
/// than it has steps, which bounds the work by the steps, not the rows.
/// Also returns, per step, the mask of the rows standing for it.
fn matching(masks: impl Iterator<Item = u32>, steps: usize) -> (usize, Vec<Option<u32>>) {
    let mut slots: Vec<u32> = Vec::new();
    let mut counts: Vec<(u32, u32)> = Vec::new();
    for mask in masks {
        match counts.iter_mut().find(|(m, _)| *m == mask) {
            Some((m, n)) => {
                if *n < m.count_ones() {
                    *n += 1;
                    slots.push(mask);
                }
            }
            None => {
                counts.push((mask, 1));
                slots.push(mask);
            }
        }
    }
    let mut owner: Vec<Option<usize>> = vec![None; slots.len()];
    let mut matched = 0;
    for step in 0..steps {
        let mut seen = vec![false; slots.len()];
        if augment(step, &slots, &mut owner, &mut seen) {
            matched += 1;
        }
    }
    let mut used = vec![None; steps];
    for (slot, step) in owner.iter().enumerate() {
        if let Some(step) = step {
            used[*step] = Some(slots[slot]);
        }
    }
    (matched, used)
}

fn augment(step: usize, slots: &[u32], owner: &mut [Option<usize>], seen: &mut [bool]) -> bool {
    for slot in 0..slots.len() {
        if slots[slot] & (1 << step) == 0 || seen[slot] {
            continue;
        }
        seen[slot] = true;
        let free = match owner[slot] {
            None => true,
            Some(other) => augment(other, slots, owner, seen),
        };
        if free {
            owner[slot] = Some(step);
            return true;
        }
    }
    false
}
