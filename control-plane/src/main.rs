//! `callway-control`: the control plane binary.
//!
//! ```text
//! callway-control                 serve (default)
//! callway-control migrate         apply the schema to DATABASE_URL and exit
//! callway-control purge           delete transcripts past TRANSCRIPT_RETENTION_DAYS and exit
//! callway-control erase <phone>   erase everything held about a phone number and exit
//! callway-control opt-out <phone> cancel the call retries waiting for a number and exit
//! callway-control leads | lead <id> | call <id> | calls --cost   the record of leads and calls, their cost (--json, --reveal)
//! ```

use std::process::ExitCode;

use callway_control::config::Config;

const USAGE: &str = "\
callway-control: the Callway control plane (web session, leads, outbound calls, callbacks,
internal API for the gateway).

usage:
  callway-control [serve]          serve HTTP on CONTROL_LISTEN_ADDR (default 0.0.0.0:8080)
  callway-control migrate          apply the schema to the configured database and exit
  callway-control purge            delete transcripts older than TRANSCRIPT_RETENTION_DAYS and exit
  callway-control erase <phone>    erase everything held about a phone number and exit
  callway-control opt-out <phone>  cancel the call retries waiting for a number (the prospect
                                   asked not to be called again) and exit
{records}
Configuration comes from the environment (README.md, \"Configuration\"); every missing or bad
value is reported at start, one line each.
";

#[tokio::main]
async fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if matches!(args.first().map(String::as_str), Some("-h" | "--help" | "help")) {
        print!("{}", USAGE.replace("{records}", callway_control::cli::records::USAGE));
        return ExitCode::SUCCESS;
    }
    // The rules every Callway binary shares: stderr, colours only on a terminal without
    // NO_COLOR, LOG_FORMAT=json, numbers and tokens masked in every line.
    match callway_logs::Format::from_env() {
        Ok(format) => callway_logs::init("info,sqlx=warn", format),
        Err(e) => {
            eprintln!("callway-control: {e}");
            return ExitCode::from(2);
        }
    }
    let config = match Config::from_env() {
        Ok(c) => c,
        Err(e) => {
            eprintln!("callway-control: {e}");
            return ExitCode::from(2);
        }
    };
    match args.first().map(String::as_str) {
        None | Some("serve") => serve(config).await,
        Some("migrate") => {
            let store = match callway_control::open_store(&config.storage).await {
                Ok(s) => s,
                Err(e) => return fail(&e.to_string()),
            };
            match store.migrate().await {
                Ok(()) => {
                    println!("schema up to date ({})", store.kind());
                    ExitCode::SUCCESS
                }
                Err(e) => fail(&e.to_string()),
            }
        }
        Some("purge") => match callway_control::build_app(config).await {
            Ok(app) => match callway_control::purge_transcripts(&app).await {
                Ok(n) => {
                    println!("purged {n} transcript line(s)");
                    ExitCode::SUCCESS
                }
                Err(e) => fail(&e.to_string()),
            },
            Err(e) => fail(&e),
        },
        Some("erase") => {
            let phone = match phone_arg(&args, "erase", &config) {
                Ok(p) => p,
                Err(code) => return code,
            };
            match callway_control::build_app(config).await {
                Ok(app) => match app.storage.erase_phone(&phone.e164).await {
                    Ok(r) => {
                        println!(
                            "erased {}: {} lead(s), {} call(s), {} status event(s), {} call event(s), {} retr(y/ies)",
                            callway_control::phone::mask(&phone.e164),
                            r.leads,
                            r.calls,
                            r.call_status_events,
                            r.call_events,
                            r.retries
                        );
                        ExitCode::SUCCESS
                    }
                    Err(e) => fail(&e.to_string()),
                },
                Err(e) => fail(&e),
            }
        }
        Some("opt-out") => {
            let phone = match phone_arg(&args, "opt-out", &config) {
                Ok(p) => p,
                Err(code) => return code,
            };
            match callway_control::build_app(config).await {
                Ok(app) => match callway_control::retry::cancel_for_phone(
                    &app,
                    &phone.e164,
                    "the prospect asked not to be called again",
                )
                .await
                {
                    Ok(n) => {
                        println!(
                            "{}: {n} scheduled retr(y/ies) cancelled",
                            callway_control::phone::mask(&phone.e164)
                        );
                        ExitCode::SUCCESS
                    }
                    Err(e) => fail(&e.to_string()),
                },
                Err(e) => fail(&e),
            }
        }
        Some("leads" | "lead" | "call" | "calls") => match callway_control::cli::records::parse(&args) {
            Ok(req) => callway_control::cli::records::run(&req, &config).await,
            Err(e) => fail(&e),
        },
        Some(other) => fail(&format!(
            "unknown command {other:?} (serve, migrate, purge, erase <phone>, opt-out <phone>, leads, lead <id>, call <id>, calls --cost)"
        )),
    }
}

/// The `<phone>` argument of `command`, parsed with the default region.
fn phone_arg(
    args: &[String],
    command: &str,
    config: &Config,
) -> Result<callway_control::phone::Phone, ExitCode> {
    let Some(raw) = args.get(1) else {
        return Err(fail(&format!("usage: callway-control {command} <phone number>")));
    };
    callway_control::phone::parse_phone(raw, config.default_phone_region)
        .map_err(|e| fail(&format!("{}: not a valid phone number", e.code())))
}

fn fail(msg: &str) -> ExitCode {
    eprintln!("callway-control: {msg}");
    ExitCode::FAILURE
}

async fn serve(config: Config) -> ExitCode {
    let addr = config.listen_addr;
    if let Some(notice) = contract::realtime::shutdown_notice(&config.openai_realtime_model) {
        tracing::warn!("{notice}");
    }
    let app = match callway_control::build_app(config).await {
        Ok(a) => a,
        Err(e) => return fail(&e),
    };
    callway_control::spawn_background(&app);
    let listener = match tokio::net::TcpListener::bind(addr).await {
        Ok(l) => l,
        Err(e) => return fail(&format!("cannot listen on {addr}: {e}")),
    };
    tracing::info!(%addr, storage = app.storage.store.kind(), "control plane listening");
    let engine = &app.config.voice_engine;
    tracing::info!(engine = %engine.api, model = %engine.model, "OpenAI voice engine for the web visit (OPENAI_VOICE_API)");
    match (&app.config.twilio_region, &app.config.twilio_api_host_header) {
        (Some(r), None) => {
            tracing::info!(api = %app.config.twilio_api_base, region = %r.region, edge = %r.edge, "Twilio API (regional)")
        }
        (Some(r), Some(host)) => {
            tracing::info!(api = %app.config.twilio_api_base, %host, region = %r.region, "Twilio API (regional host through TWILIO_API_BASE)")
        }
        (None, _) => tracing::info!(api = %app.config.twilio_api_base, "Twilio API (US1)"),
    }
    let shutdown = async {
        let ctrl_c = tokio::signal::ctrl_c();
        #[cfg(unix)]
        {
            let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
                .unwrap_or_else(|e| panic!("SIGTERM handler: {e}"));
            tokio::select! { _ = ctrl_c => {}, _ = term.recv() => {} }
        }
        #[cfg(not(unix))]
        let _ = ctrl_c.await;
    };
    match callway_control::serve(app, listener, shutdown).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => fail(&e.to_string()),
    }
}
