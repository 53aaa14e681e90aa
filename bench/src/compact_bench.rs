//! Compaction throughput: generates raw batches like the edge writes them (on
//! a local directory), compacts them with the real compactor, and reports
//! events/s, events/s per core of CPU, bytes in and out, and files per partition.

use std::collections::BTreeMap;
use std::time::Instant;

use clap::Parser;
use contrail_edge::{Event, MessageType};
use contrail_warehouse::{Compactor, CompactorConfig, Location};

/// Options.
#[derive(Parser, Debug)]
#[command(about = "Compaction benchmark for Contrail")]
struct Args {
    /// Events to generate.
    #[arg(long, default_value_t = 5_000_000)]
    events: usize,
    /// Events per raw batch (one edge flush).
    #[arg(long, default_value_t = 10_000)]
    batch: usize,
    /// Fraction of events re-sent in a later batch (duplicates to remove).
    #[arg(long, default_value_t = 0.01)]
    duplicates: f64,
    /// Rows per Parquet row group (the table's default when unset).
    #[arg(long)]
    row_group_rows: Option<usize>,
    /// Rows per Parquet file (the table's default when unset).
    #[arg(long)]
    rows_per_file: Option<usize>,
    /// ZSTD level of the Parquet files (the table's default when unset).
    #[arg(long)]
    zstd_level: Option<i32>,
    /// Directory to work in (default: a temporary directory).
    #[arg(long)]
    dir: Option<std::path::PathBuf>,
    /// Days the events spread over, ending 2026-11-26 (the analytics
    /// benchmark uses 90, for daily users and weekly retention).
    #[arg(long, default_value_t = 3)]
    days: i64,
    /// End the events at the current hour instead of 2026-11-26, so that
    /// "the last 24 hours" of the dashboard's overview holds data.
    #[arg(long)]
    end_now: bool,
}

const EVENTS: [&str; 8] =
    ["Page Viewed", "Clicked", "Signed Up", "Added to Cart", "Checkout", "Searched", "Shared", "Logged In"];
const DAY_MS: i64 = 86_400_000;
const END: i64 = 1_795_651_200_000; // 2026-11-26T00:00:00Z

fn event(i: usize, rng: &mut u64, spread: Spread) -> Event {
    *rng ^= *rng << 13;
    *rng ^= *rng >> 7;
    *rng ^= *rng << 17;
    let r = *rng;
    let user = format!("user-{}", r % 200_000);
    let kind = if r.is_multiple_of(5) { MessageType::Page } else { MessageType::Track };
    Event {
        event_id: format!("{:016x}-{i}", r),
        project_id: "bench".into(),
        kind,
        event: if kind == MessageType::Page { "$page".into() } else { EVENTS[(r >> 8) as usize % EVENTS.len()].into() },
        user_id: Some(user.clone()),
        anonymous_id: None,
        distinct_id: user,
        session_id: Some(format!("s{}", r % 1_000_000)),
        group_id: None,
        previous_id: None,
        // `days` days of traffic, ending at `end` (by default three days from 2026-11-23).
        timestamp: spread.at(i),
        received_at: spread.at(i) + 150,
        properties: format!(
            r#"{{"plan":"{}","price":{},"items":{}}}"#,
            ["free", "pro", "team"][(r >> 16) as usize % 3],
            r % 500,
            r % 7
        ),
        traits: None,
        context: r#"{"library":{"name":"analytics.js","version":"5.2.0"},"locale":"en-US"}"#.into(),
        url: Some(format!("https://shop.test/p/{}", r % 1000)),
        referrer: None,
        user_agent: None,
        browser: Some(["Chrome", "Safari", "Firefox"][(r >> 20) as usize % 3].into()),
        os: Some(["Windows", "macOS", "iOS", "Android"][(r >> 24) as usize % 4].into()),
        device: Some(["desktop", "mobile"][(r >> 28) as usize % 2].into()),
        country: Some(["FR", "US", "DE", "JP"][(r >> 32) as usize % 4].into()),
        region: None,
        city: None,
        colo: Some("CDG".into()),
        ip_hash: Some(format!("{:016x}", r.rotate_left(7))),
    }
}

fn now_ms() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis() as i64)
}

fn cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let rest = stat.rfind(')').map_or("", |i| &stat[i + 2..]);
    let fields: Vec<&str> = rest.split(' ').collect();
    let ticks = |i: usize| fields.get(i).and_then(|f| f.parse::<f64>().ok()).unwrap_or(0.0);
    (ticks(11) + ticks(12)) / 100.0
}

/// How event times spread: `days` days ending at `end`, `per_span` events
/// evenly over the span (then again from its start).
#[derive(Debug, Clone, Copy)]
struct Spread {
    days: i64,
    end: i64,
    per_span: usize,
}

impl Spread {
    /// The time of event `i`.
    fn at(self, i: usize) -> i64 {
        let span = self.days.max(1) * DAY_MS;
        self.end - span + (i as i64 * span / self.per_span as i64) % span
    }
}

#[tokio::main]
async fn main() {
    let args = Args::parse();
    let temp = tempfile::tempdir().expect("temp dir");
    let dir = args.dir.clone().unwrap_or_else(|| temp.path().to_path_buf());
    let location = Location::local(&dir).expect("location");

    // The other benchmarks' data: 5 M events per span, ending on a fixed day.
    // The dashboard's: every event within the span, ending this hour.
    let spread = if args.end_now {
        Spread { days: args.days, end: now_ms() - now_ms() % 3_600_000, per_span: args.events.max(1) }
    } else {
        Spread { days: args.days, end: END, per_span: 5_000_000 }
    };
    let generated = Instant::now();
    let mut rng = 0x9E37_79B9_7F4A_7C15u64;
    let mut raw_bytes = 0u64;
    let mut seq = 0u64;
    let mut resend: Vec<Event> = Vec::new();
    let mut start = 0;
    while start < args.events {
        let end = (start + args.batch).min(args.events);
        let mut batch: Vec<Event> = (start..end).map(|i| event(i, &mut rng, spread)).collect();
        // Some events of this batch come again in the next one (a retried flush).
        let again = ((end - start) as f64 * args.duplicates) as usize;
        batch.append(&mut resend);
        resend = batch[..again].to_vec();
        seq += 1;
        // Flush times just before now, as an edge would have written them:
        // compactors and queries look for consuming commits from the oldest
        // waiting batch's flush time on.
        let flushed_at = now_ms() - 600_000 + seq as i64;
        let key = contrail_edge::raw_key::batch_key("raw", "bench", "bench", flushed_at, "bench", seq);
        let bytes = contrail_edge::encode::encode_events(&batch).expect("encode");
        raw_bytes += bytes.len() as u64;
        object_store::ObjectStoreExt::put(location.store.as_ref(), &object_store::path::Path::from(key), bytes.into())
            .await
            .expect("put");
        start = end;
    }
    eprintln!(
        "generated {} events in {seq} raw batches ({:.1} MB) in {:.1} s",
        args.events,
        raw_bytes as f64 / 1e6,
        generated.elapsed().as_secs_f64()
    );

    let mut layout = contrail_warehouse::write::FileLayout::default();
    layout.row_group_rows = args.row_group_rows.unwrap_or(layout.row_group_rows);
    layout.rows_per_file = args.rows_per_file.unwrap_or(layout.rows_per_file);
    layout.zstd_level = args.zstd_level.unwrap_or(layout.zstd_level);
    let compactor =
        Compactor::new(location.clone(), CompactorConfig { max_run_bytes: 1 << 30, layout, ..Default::default() });
    let cpu_before = cpu_seconds();
    let started = Instant::now();
    let report = compactor.run_until_caught_up().await.expect("compaction");
    let wall = started.elapsed().as_secs_f64();
    let cpu = cpu_seconds() - cpu_before;

    let mut per_partition: BTreeMap<String, usize> = BTreeMap::new();
    for entry in walk(&dir.join("tables/bench")) {
        if entry.extension().is_some_and(|e| e == "parquet") {
            let partition = entry
                .parent()
                .and_then(|p| p.file_name())
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            *per_partition.entry(partition).or_default() += 1;
        }
    }
    println!(
        "compact-bench: {} events in {} raw batches ({:.1} MB)",
        report.events_in,
        report.raw_files,
        report.raw_bytes as f64 / 1e6
    );
    println!("  written              {} events, {} duplicates removed", report.events_out, report.duplicates);
    println!("  wall                 {wall:.1} s   ({:.0} events/s)", report.events_in as f64 / wall);
    println!("  CPU                  {cpu:.1} s   ({:.0} events/s per core)", report.events_in as f64 / cpu.max(1e-9));
    println!(
        "  Parquet out          {:.1} MB in {} files ({:.2}x smaller than raw Arrow)",
        report.parquet_bytes as f64 / 1e6,
        report.files_written,
        report.raw_bytes as f64 / report.parquet_bytes.max(1) as f64
    );
    println!("  files per partition  {per_partition:?}");
    println!("  commits              {}", report.commits);
}

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    if let Ok(entries) = std::fs::read_dir(dir) {
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() {
                out.extend(walk(&path));
            } else {
                out.push(path);
            }
        }
    }
    out
}
