//! Open-loop load on `POST /api/tools/save_lead` of a running control plane: a fixed request
//! rate for a fixed time, each request a new web session (a new lead row), latency measured
//! from each request's *scheduled* start so a slow server cannot hide its queueing
//! (no coordinated omission).
//!
//! ```text
//! # a control plane on Postgres (see benches/README.md for the full recipe)
//! cargo run --release -p callway-control --example save_lead_load -- \
//!     --url http://127.0.0.1:8080 --rate 500 --seconds 20
//! ```
//! The generator mints session capabilities itself, so it needs the server's
//! `STREAM_TOKEN_SECRET` in its environment. Loopback only: it refuses any other host.

use std::sync::Arc;
use std::time::{Duration, Instant};

use callway_control::capability::CapabilityKey;
use hdrhistogram::Histogram;
use tokio::sync::Mutex;

struct Args {
    url: String,
    rate: u64,
    seconds: u64,
}

fn args() -> Result<Args, String> {
    let mut a = Args { url: "http://127.0.0.1:8080".into(), rate: 500, seconds: 20 };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let value = it.next().ok_or_else(|| format!("{flag} needs a value"))?;
        match flag.as_str() {
            "--url" => a.url = value,
            "--rate" => a.rate = value.parse().map_err(|_| "--rate: requests per second")?,
            "--seconds" => a.seconds = value.parse().map_err(|_| "--seconds: a whole number")?,
            other => return Err(format!("unknown flag {other} (--url, --rate, --seconds)")),
        }
    }
    let host = a.url.trim_start_matches("http://").split([':', '/']).next().unwrap_or("");
    if !(host == "localhost" || host.starts_with("127.")) {
        return Err(format!("refusing to load {host}: loopback only"));
    }
    if a.rate == 0 || a.seconds == 0 || a.seconds > 600 {
        return Err("--rate ≥ 1 and 1 ≤ --seconds ≤ 600".into());
    }
    Ok(a)
}

#[tokio::main]
async fn main() {
    let a = match args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("save_lead_load: {e}");
            std::process::exit(2);
        }
    };
    let secret = std::env::var("STREAM_TOKEN_SECRET").unwrap_or_else(|_| {
        eprintln!(
            "save_lead_load: set STREAM_TOKEN_SECRET to the server's value (capabilities are minted with it)"
        );
        std::process::exit(2);
    });
    let key = Arc::new(CapabilityKey::derive(secret.as_bytes()));
    let http = reqwest::Client::builder().pool_max_idle_per_host(256).build().expect("HTTP client");
    let url = format!("{}/api/tools/save_lead", a.url.trim_end_matches('/'));
    let hist = Arc::new(Mutex::new(Histogram::<u64>::new_with_bounds(1, 60_000_000, 3).expect("histogram")));
    let errors = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let total = a.rate * a.seconds;
    let interval = Duration::from_nanos(1_000_000_000 / a.rate);
    let start = Instant::now() + Duration::from_millis(100);
    let mut tasks = Vec::with_capacity(total as usize);
    for i in 0..total {
        let scheduled = start + interval * i as u32;
        tokio::time::sleep_until(scheduled.into()).await;
        let (http, url, key, hist, errors) =
            (http.clone(), url.clone(), key.clone(), hist.clone(), errors.clone());
        tasks.push(tokio::spawn(async move {
            let exp = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() + 600;
            let cap = key.mint(uuid::Uuid::new_v4(), exp);
            // Distinct valid French mobile numbers: 06 10 00 00 00 + i.
            let phone = format!("06{:08}", 10_000_000 + (i % 89_999_999));
            let body = serde_json::json!({"first_name": "Charge", "last_name": "Test", "phone": phone, "consent": true});
            let res = http.post(&url).bearer_auth(cap).json(&body).send().await;
            let ok = matches!(&res, Ok(r) if r.status().is_success());
            if let Ok(r) = res {
                let _ = r.bytes().await;
            }
            let us = scheduled.elapsed().as_micros() as u64;
            if !ok {
                errors.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            }
            hist.lock().await.saturating_record(us.max(1));
        }));
    }
    for t in tasks {
        let _ = t.await;
    }
    let h = hist.lock().await;
    let ms = |q: f64| h.value_at_quantile(q) as f64 / 1000.0;
    println!(
        "save_lead at {} req/s for {} s: {} requests, {} errors; latency from scheduled start: p50 {:.2} ms, p90 {:.2} ms, p99 {:.2} ms, p99.9 {:.2} ms, max {:.2} ms",
        a.rate,
        a.seconds,
        h.len(),
        errors.load(std::sync::atomic::Ordering::Relaxed),
        ms(0.50),
        ms(0.90),
        ms(0.99),
        ms(0.999),
        h.max() as f64 / 1000.0
    );
}
