//! Ingest load generator: batches of Segment messages over keep-alive HTTP/1.1
//! connections on loopback, against a running `contrail serve` (or `wrangler dev`).
//!
//! Prints events/s, acknowledgement latency percentiles (every `200` is a
//! durable acknowledgement) and, given the server's PID, its CPU time, from
//! which events/s per core of server CPU follows.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use clap::Parser;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;

/// Load generator options.
#[derive(Parser, Debug)]
#[command(about = "Ingest load generator for Contrail")]
struct Args {
    /// Server base URL.
    #[arg(long, default_value = "http://127.0.0.1:8787")]
    url: String,
    /// Write key (ck_…).
    #[arg(long)]
    key: String,
    /// Concurrent connections, each with one request in flight.
    #[arg(long, default_value_t = 32)]
    concurrency: usize,
    /// Messages per batch.
    #[arg(long, default_value_t = 100)]
    batch: usize,
    /// Seconds of measured load (after one second of warm-up).
    #[arg(long, default_value_t = 10)]
    seconds: u64,
    /// PID of the server, to report its CPU time (Linux /proc).
    #[arg(long)]
    server_pid: Option<u32>,
}

/// CPU seconds (user + system) of a process, from /proc/<pid>/stat.
fn cpu_seconds(pid: u32) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the command name, which is parenthesised and may contain spaces.
    let rest = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split(' ').collect();
    let (utime, stime): (f64, f64) = (fields.get(11)?.parse().ok()?, fields.get(12)?.parse().ok()?);
    // USER_HZ is 100 on every Linux this runs on.
    Some((utime + stime) / 100.0)
}

fn body(run: u64, worker: usize, seq: u64, batch: usize) -> Bytes {
    let mut out = String::with_capacity(batch * 260 + 32);
    out.push_str("{\"batch\":[");
    for i in 0..batch {
        if i > 0 {
            out.push(',');
        }
        out.push_str(&format!(
            "{{\"type\":\"track\",\"event\":\"Button Clicked\",\"userId\":\"user-{}\",\"messageId\":\"{run:x}-{worker}-{seq}-{i}\",\
             \"timestamp\":\"2026-11-23T12:00:00.000Z\",\"properties\":{{\"button\":\"buy\",\"price\":{}.99,\"plan\":\"pro\"}},\
             \"context\":{{\"library\":{{\"name\":\"ingest-load\",\"version\":\"1\"}},\"page\":{{\"url\":\"https://shop.test/p/{}\"}}}}}}",
            (seq as usize * batch + i) % 5_000,
            i % 50,
            i % 20
        ));
    }
    out.push_str("]}");
    Bytes::from(out)
}

fn percentile(sorted: &[u32], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let index = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[index] as f64 / 1000.0
}

#[tokio::main]
async fn main() {
    let args = Args::parse();
    let run = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos() as u64);
    let client =
        Client::builder(TokioExecutor::new()).pool_max_idle_per_host(args.concurrency).build_http::<Full<Bytes>>();
    let url = format!("{}/v1/batch", args.url.trim_end_matches('/'));
    let measuring = Arc::new(AtomicBool::new(false));
    let stop = Arc::new(AtomicBool::new(false));
    let errors = Arc::new(AtomicU64::new(0));

    let mut workers = Vec::new();
    for worker in 0..args.concurrency {
        let (client, url, key) = (client.clone(), url.clone(), args.key.clone());
        let (measuring, stop, errors) = (measuring.clone(), stop.clone(), errors.clone());
        let batch = args.batch;
        workers.push(tokio::spawn(async move {
            let mut latencies_us = Vec::new();
            let mut events = 0u64;
            let mut seq = 0u64;
            while !stop.load(Ordering::Relaxed) {
                let request = hyper::Request::post(&url)
                    .header("x-write-key", &key)
                    .header("content-type", "application/json")
                    .body(Full::new(body(run, worker, seq, batch)))
                    .expect("valid request");
                seq += 1;
                let sent = Instant::now();
                let ok = match client.request(request).await {
                    Ok(response) => {
                        let status = response.status();
                        let _ = response.into_body().collect().await;
                        status.is_success()
                    }
                    Err(_) => false,
                };
                if !ok {
                    errors.fetch_add(1, Ordering::Relaxed);
                    continue;
                }
                if measuring.load(Ordering::Relaxed) {
                    latencies_us.push(sent.elapsed().as_micros().min(u32::MAX as u128) as u32);
                    events += batch as u64;
                }
            }
            (latencies_us, events)
        }));
    }

    tokio::time::sleep(Duration::from_secs(1)).await;
    let cpu_before = args.server_pid.and_then(cpu_seconds);
    measuring.store(true, Ordering::Relaxed);
    let started = Instant::now();
    tokio::time::sleep(Duration::from_secs(args.seconds)).await;
    measuring.store(false, Ordering::Relaxed);
    let wall = started.elapsed().as_secs_f64();
    let cpu_after = args.server_pid.and_then(cpu_seconds);
    stop.store(true, Ordering::Relaxed);

    let mut latencies = Vec::new();
    let mut events = 0;
    for worker in workers {
        let (l, e) = worker.await.expect("worker");
        latencies.extend(l);
        events += e;
    }
    latencies.sort_unstable();
    let rate = events as f64 / wall;
    println!("ingest-load: {} connections, batches of {}, {:.1} s measured", args.concurrency, args.batch, wall);
    println!("  events acknowledged  {events}");
    println!("  events/s             {rate:.0}");
    println!(
        "  ack latency ms       p50 {:.2}  p90 {:.2}  p99 {:.2}  max {:.2}",
        percentile(&latencies, 0.50),
        percentile(&latencies, 0.90),
        percentile(&latencies, 0.99),
        percentile(&latencies, 1.0)
    );
    println!("  failed requests      {}", errors.load(Ordering::Relaxed));
    if let (Some(before), Some(after)) = (cpu_before, cpu_after) {
        let cores = (after - before) / wall;
        println!("  server CPU           {:.2} cores busy", cores);
        println!("  events/s per core    {:.0}", rate / cores.max(f64::MIN_POSITIVE));
    }
}
