//! `SIGHUP`: the TLS certificate and key read again ([`reload`]), on a thread of its own so
//! the signal is handled whatever the workers are doing. Registered before
//! [`super::Gateway::start`] returns, so a `SIGHUP` never kills the gateway (a plain-TCP
//! gateway logs that there is nothing to reload). `systemctl reload`, `docker kill -s HUP`
//! and certbot's deploy hook all end here (`deploy/RUNBOOK.md`, section 4).

use std::io;
use std::sync::Arc;
use std::thread::JoinHandle;

use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::watch;

use super::tls::{CertSummary, ReloadableCert};
use crate::metrics::Metrics;

/// Why a reload changed nothing.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ReloadError {
    /// The gateway runs plain TCP (`GATEWAY_TLS_CERT` unset): there is nothing to reload.
    #[error(
        "GATEWAY_TLS_CERT/GATEWAY_TLS_KEY are unset: this gateway serves plain TCP, there is no certificate to reload"
    )]
    NoTls,
    /// A file could not be used; the previous certificate is still served.
    #[error("{0}; the previous certificate is still served")]
    Files(String),
}

/// Reads the certificate files again and swaps them in when usable; logged and counted
/// (`callway_gateway_tls_reloads_total{result}`) either way.
pub(crate) fn reload(cert: Option<&ReloadableCert>, metrics: &Metrics) -> Result<CertSummary, ReloadError> {
    let Some(cert) = cert else {
        tracing::info!("SIGHUP: {}", ReloadError::NoTls);
        return Err(ReloadError::NoTls);
    };
    match cert.reload() {
        Ok(summary) => {
            metrics.tls_certificate_loaded(&summary.sha256);
            Metrics::inc(&metrics.tls_reloads);
            tracing::info!(
                sha256 = %summary.sha256,
                chain = summary.chain_len,
                "TLS certificate reloaded: new handshakes present it, calls already connected keep theirs"
            );
            Ok(summary)
        }
        Err(e) => {
            Metrics::inc(&metrics.tls_reload_failures);
            tracing::error!(
                error = %e,
                kept_sha256 = %cert.summary().sha256,
                "TLS certificate NOT reloaded, the previous one is still served: fix the file named and send SIGHUP again"
            );
            Err(ReloadError::Files(e))
        }
    }
}

/// Starts the thread that reloads on every `SIGHUP` until the gateway drains.
pub(crate) fn on_sighup(
    cert: Option<Arc<ReloadableCert>>,
    metrics: Arc<Metrics>,
    mut draining: watch::Receiver<bool>,
) -> io::Result<JoinHandle<()>> {
    let rt = tokio::runtime::Builder::new_current_thread().enable_io().build()?;
    // Registered here, before `start` returns: from now on SIGHUP is ours.
    // (`enter`, not `block_on`: `start` may be called from async code, as tests do.)
    let mut hup = {
        let _context = rt.enter();
        signal(SignalKind::hangup())?
    };
    std::thread::Builder::new().name("gw-signals".into()).spawn(move || {
        rt.block_on(async {
            loop {
                tokio::select! {
                    got = hup.recv() => {
                        if got.is_none() {
                            break;
                        }
                        let _ = reload(cert.as_deref(), &metrics);
                    }
                    _ = draining.wait_for(|d| *d) => break,
                }
            }
        });
    })
}
