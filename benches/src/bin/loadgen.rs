//! `callway-loadgen`: N simulated Twilio calls through the real gateway (spawned, pinned) with
//! the stub control plane and the echoing OpenAI stand-in in this process; prints a line per
//! run, then the summary table; writes the JSON and the SVG plot when asked. Exit status 1 on
//! any error (the message says what), 2 on a bad command line.
//!
//! ```text
//! callway-loadgen --gateway-bin target/release/callway-gateway --calls 100,300 --duration 30s \
//!     --runs 3 --mode echo-floor,relay --json out.json --plot out.svg
//! ```
//!
//! With `--soak` it runs one long level with faults instead (`scripts/soak` has the defaults)
//! and prints the soak's verdicts; exit status 1 when one is not met.

use std::process::ExitCode;

use callway_benches::loadgen::report::{Document, Machine, summarise, table};
use callway_benches::loadgen::soak::report::SoakReport;
use callway_benches::loadgen::{Harness, Options, plot, process};

/// Allowed spread of the gateway's RSS around its mean after warm-up (issue 11, item 10).
const RSS_TOLERANCE_PCT: f64 = 2.0;
use clap::Parser as _;

fn main() -> ExitCode {
    let opts = Options::parse();
    if let Err(e) = opts.validate() {
        eprintln!("callway-loadgen: {e}");
        return ExitCode::from(2);
    }
    match run(&opts) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("callway-loadgen: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run(opts: &Options) -> Result<(), String> {
    if !opts.no_pin {
        let online = process::cores_online();
        if let Some(bad) = opts.harness_core.iter().chain([&opts.gateway_core]).find(|&&c| c >= online) {
            return Err(format!(
                "core {bad} does not exist here ({online} cores): set --harness-core / --gateway-core"
            ));
        }
        // The monitor thread and the loops inherit this.
        process::pin_current_thread(&opts.harness_core[..opts.cores])
            .map_err(|e| format!("cannot pin the harness: {e}"))?;
    }
    if let Some(n) = opts.nice {
        process::renice(n).map_err(|e| format!("cannot set nice {n}: {e}"))?;
    }
    if let Some(p) = opts.rt {
        process::make_fifo(p).map_err(|e| format!("cannot make the harness SCHED_FIFO {p}: {e}"))?;
    }
    let mut harness = Harness::new(opts)?;
    eprintln!(
        "callway-loadgen: OpenAI stand-in on {}, stub control plane on {}, syscalls counted with {}",
        harness.openai_addr,
        harness.control_addr,
        harness.syscall_tool().map_or("nothing".to_owned(), |t| format!("{t:?}").to_lowercase())
    );
    if let Some(addr) = opts.gateway_addr {
        eprintln!(
            "callway-loadgen: using the gateway at {addr}; it must run with OPENAI_BASE_URL=http://{} CONTROL_PLANE_URL=http://{} TWILIO_STREAM_DOMAIN={} and the same TWILIO_AUTH_TOKEN and STREAM_TOKEN_SECRET",
            harness.openai_addr,
            harness.control_addr,
            harness.secrets().stream_domain
        );
    }
    let runs = harness.run_all()?;
    if opts.soak.soak {
        return soak_report(opts, &runs);
    }
    let levels = summarise(&runs);
    println!("{}", table(&levels));
    let command = std::env::args().collect::<Vec<_>>().join(" ");
    if let Some(path) = &opts.json {
        let doc = Document {
            command: command.clone(),
            finished_unix: std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_secs()),
            machine: Machine::detect(),
            levels: &levels,
            runs: &runs,
        };
        let text = serde_json::to_string_pretty(&doc).map_err(|e| e.to_string())?;
        std::fs::write(path, text).map_err(|e| format!("cannot write {}: {e}", path.display()))?;
        eprintln!("callway-loadgen: results in {}", path.display());
    }
    if let Some(path) = &opts.plot {
        plot::draw(path, &runs, "callway-loadgen")?;
        eprintln!("callway-loadgen: plot in {}", path.display());
    }
    Ok(())
}

/// Judges and reports a soak (its one run).
fn soak_report(opts: &Options, runs: &[callway_benches::loadgen::report::RunResult]) -> Result<(), String> {
    let run = runs.first().ok_or("the soak produced no run")?;
    let command = std::env::args().collect::<Vec<_>>().join(" ");
    let warmup = opts.soak.warmup.as_secs_f64() + opts.ramp.as_secs_f64();
    let report = SoakReport::judge(run, command, warmup, RSS_TOLERANCE_PCT);
    println!("{}", report.table());
    if let Some(path) = &opts.json {
        let text = serde_json::to_string_pretty(&report).map_err(|e| e.to_string())?;
        std::fs::write(path, text).map_err(|e| format!("cannot write {}: {e}", path.display()))?;
        eprintln!("callway-loadgen: soak results in {}", path.display());
    }
    if report.passed() { Ok(()) } else { Err("the soak did not meet every requirement (table above)".into()) }
}
