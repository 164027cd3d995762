//! Callway control plane: the small service the web page and the gateway talk to, and the only
//! writer of data.
//!
//! - [`routes`]: the page, `/api/session`, the web tools, Twilio callbacks, the gateway's
//!   internal API, health, metrics, admin;
//! - [`store`]: Postgres / Supabase REST / SQLite behind one interface, with a durable outbox;
//! - sans-IO pieces, unit-tested without a server: [`phone`] (parsing and call guards),
//!   [`twilio`]'s TwiML builder, [`capability`] (session capabilities), [`ratelimit`];
//! - clients: [`openai`] (`client_secrets`), [`twilio`] (REST);
//! - [`config`]: the environment, validated at start;
//! - call retries: [`retry`] (scheduling, the worker), [`calling_hours`] (when a retry may ring,
//!   sans-IO), [`placing`] (one outbound call, shared with `trigger_call`), [`clock`];
//! - what operators read: [`record`] (leads and calls from any store: timeline, dialogue,
//!   durations, usage), shown by [`cli`] (`leads`, `lead <id>`, `call <id>`, `calls --cost`)
//!   and by [`admin`] (the read-only operator page, `/admin`); [`summary`] (the end-of-call
//!   summary, through `SUMMARY_MODEL`); [`cost`] (each call's cost from `PRICES_FILE` and the
//!   stored usage, and its counters);
//! - calls as a sales team runs them: [`amd`] (answering machines, voicemail), [`transfer`]
//!   (warm transfer to a person: `<Dial>`, the hand-over webhook, the outcome).

pub mod admin;
pub mod amd;
pub mod calling_hours;
pub mod capability;
pub mod cli;
pub mod clock;
pub mod config;
pub mod cost;
pub mod metrics;
pub mod openai;
pub mod phone;
pub mod placing;
pub mod ratelimit;
pub mod record;
pub mod retry;
pub mod routes;
pub mod store;
pub mod summary;
pub mod transfer;
pub mod twilio;

use std::sync::Arc;
use std::time::Duration;

use config::{Config, StorageConfig};
use metrics::Metrics;
use routes::{App, SharedApp};
use store::{Storage, Store, StoreError};

/// Opens the configured backend (without migrating).
pub async fn open_store(storage: &StorageConfig) -> Result<Store, StoreError> {
    Ok(match storage {
        StorageConfig::Postgres { url } => Store::Sql(store::postgres::connect(url, 16)?),
        StorageConfig::Sqlite { url } => Store::Sql(store::sqlite::connect(url).await?),
        StorageConfig::SupabaseRest { url, service_role_key } => {
            let http = reqwest::Client::builder()
                .user_agent(store::supabase::USER_AGENT)
                .timeout(Duration::from_secs(10))
                .build()
                .map_err(|e| StoreError::Other(e.to_string()))?;
            Store::Supabase(store::supabase::SupabaseStore::new(http, url, service_role_key))
        }
    })
}

/// Opens storage and outbox, migrates, and builds the application state.
pub async fn build_app(config: Config) -> Result<SharedApp, String> {
    build_app_with_clock(config, Arc::new(clock::SystemClock)).await
}

/// [`build_app`] with a given clock for scheduled work (tests move a [`clock::ManualClock`]).
pub async fn build_app_with_clock(config: Config, clock: Arc<dyn clock::Clock>) -> Result<SharedApp, String> {
    let metrics = Arc::new(Metrics::default());
    let store = open_store(&config.storage).await.map_err(|e| e.to_string())?;
    match store.migrate().await {
        Ok(()) => {}
        // A database that is down at start does not stop the service: writes go to the outbox.
        Err(StoreError::Unavailable(why)) => {
            tracing::warn!(%why, "database unavailable at start; migrations postponed")
        }
        Err(e) => return Err(e.to_string()),
    }
    let storage =
        Storage::open(store, &config.outbox_dir, metrics.clone()).await.map_err(|e| e.to_string())?;
    storage.on_appended(cost::counter(&config, metrics.clone()));
    let mut app = App::new(config, Arc::new(storage), metrics)?;
    app.clock = clock;
    Ok(Arc::new(app))
}

/// Deletes transcripts older than `TRANSCRIPT_RETENTION_DAYS`.
pub async fn purge_transcripts(app: &App) -> Result<u64, StoreError> {
    let before = time::OffsetDateTime::now_utc()
        - time::Duration::days(i64::from(app.config.transcript_retention_days));
    let n = app.storage.store.purge_transcripts(before).await?;
    app.metrics.transcripts_purged.fetch_add(n, std::sync::atomic::Ordering::Relaxed);
    if n > 0 {
        tracing::info!(
            purged = n,
            days = app.config.transcript_retention_days,
            "transcripts past retention purged"
        );
    }
    Ok(n)
}

/// Starts the background work: outbox replay (every second), the retry worker (every
/// `CALL_RETRY_WORKER_SECS`), the end-of-call summary sweep (with `SUMMARY_MODEL`, every five
/// minutes) and the retention purge (hourly).
pub fn spawn_background(app: &SharedApp) {
    tokio::spawn(app.storage.clone().run_replayer(Duration::from_secs(1)));
    tokio::spawn(retry::run_worker(app.clone()));
    if app.config.summary_model.is_some() {
        tokio::spawn(summary::run_sweeper(app.clone()));
    }
    let a = app.clone();
    tokio::spawn(async move {
        loop {
            if let Err(e) = purge_transcripts(&a).await {
                tracing::warn!(error = %e, "retention purge failed; will retry");
            }
            tokio::time::sleep(Duration::from_secs(3600)).await;
        }
    });
}

/// Serves `app` on `listener` until `shutdown` resolves.
pub async fn serve(
    app: SharedApp,
    listener: tokio::net::TcpListener,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let router = routes::router(app).layer(tower_http::trace::TraceLayer::new_for_http());
    axum::serve(listener, router.into_make_service_with_connect_info::<std::net::SocketAddr>())
        .with_graceful_shutdown(shutdown)
        .await
}
