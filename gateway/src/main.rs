//! `callway-gateway`: the edge gateway binary. Reads the configuration from the environment
//! (every problem reported at once, exit status 2), starts the thread-per-core shell
//! ([`callway_gateway::io::Gateway`]), and on SIGTERM or Ctrl-C drains: stops accepting, lets
//! calls finish for `GATEWAY_DRAIN_SECS`, then shuts the rest down.
//!
//! Logs go to stderr through `tracing` with the rules every Callway binary shares
//! (`callway_logs`: `RUST_LOG` filters, default `info`; `LOG_FORMAT=json` gives one JSON object
//! per line; colours only on a terminal without `NO_COLOR`; numbers and tokens masked).

use std::process::ExitCode;

use callway_gateway::config::Config;
use callway_gateway::io::Gateway;

fn main() -> ExitCode {
    let config = match Config::from_env() {
        Ok(c) => c,
        Err(e) => {
            eprintln!("callway-gateway: {e}");
            return ExitCode::from(2);
        }
    };
    let format = if config.log_json { callway_logs::Format::Json } else { callway_logs::Format::Text };
    callway_logs::init("info", format);
    for notice in config.notices() {
        tracing::warn!("{notice}");
    }
    let gateway = match Gateway::start(config) {
        Ok(g) => g,
        Err(e) => {
            tracing::error!(error = %e, "cannot start");
            eprintln!("callway-gateway: {e}");
            return ExitCode::from(1);
        }
    };
    tracing::info!(listen = %gateway.local_addr(), ops = %gateway.ops_addr(), "serving");
    let rt = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("callway-gateway: cannot build the signal runtime: {e}");
            return ExitCode::from(1);
        }
    };
    rt.block_on(async {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
        tokio::select! {
            _ = tokio::signal::ctrl_c() => tracing::info!("Ctrl-C: draining"),
            Some(()) = async { match term.as_mut() { Some(t) => t.recv().await, None => std::future::pending().await } } => {
                tracing::info!("SIGTERM: draining");
            }
        }
    });
    gateway.drain();
    gateway.join();
    tracing::info!("stopped");
    ExitCode::SUCCESS
}
