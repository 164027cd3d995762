//! TLS with rustls and the `ring` provider: the server side from the PEM files of
//! `GATEWAY_TLS_CERT` / `GATEWAY_TLS_KEY`, the client side (to OpenAI) trusting the web PKI
//! roots plus the CAs of `OPENAI_CA_FILE`. Both are built once at start and shared by every
//! worker.

use std::path::Path;

use std::sync::Arc;

use rustls_pki_types::pem::PemObject as _;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::rustls::{self, ClientConfig, RootCertStore, ServerConfig};

use crate::config::TlsFiles;

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// The acceptor for Twilio's connections, or a message naming the file and the problem.
pub(crate) fn acceptor(files: &TlsFiles) -> Result<tokio_rustls::TlsAcceptor, String> {
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(&files.cert)
        .and_then(|it| it.collect::<Result<_, _>>())
        .map_err(|e| {
            format!("GATEWAY_TLS_CERT {}: cannot read a PEM certificate chain: {e}", files.cert.display())
        })?;
    if certs.is_empty() {
        return Err(format!("GATEWAY_TLS_CERT {}: no CERTIFICATE block found", files.cert.display()));
    }
    let key = PrivateKeyDer::from_pem_file(&files.key).map_err(|e| {
        format!("GATEWAY_TLS_KEY {}: cannot read a PEM private key: {e}", files.key.display())
    })?;
    let config = ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|e| format!("GATEWAY_TLS_CERT/GATEWAY_TLS_KEY do not make a usable pair: {e}"))?;
    Ok(tokio_rustls::TlsAcceptor::from(Arc::new(config)))
}

/// The connector for OpenAI (`wss://`): the web PKI roots, plus every certificate of
/// `extra_cas` (`OPENAI_CA_FILE`), or a message naming the file and the problem.
pub(crate) fn connector(extra_cas: Option<&Path>) -> Result<tokio_rustls::TlsConnector, String> {
    let mut roots = RootCertStore { roots: webpki_roots::TLS_SERVER_ROOTS.to_vec() };
    if let Some(path) = extra_cas {
        let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(path)
            .and_then(|it| it.collect::<Result<_, _>>())
            .map_err(|e| format!("OPENAI_CA_FILE {}: cannot read PEM certificates: {e}", path.display()))?;
        if certs.is_empty() {
            return Err(format!("OPENAI_CA_FILE {}: no CERTIFICATE block found", path.display()));
        }
        for cert in certs {
            roots.add(cert).map_err(|e| {
                format!("OPENAI_CA_FILE {}: a certificate is not a usable CA: {e}", path.display())
            })?;
        }
    }
    let config = ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(tokio_rustls::TlsConnector::from(Arc::new(config)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_unusable_openai_ca_file_is_refused_with_its_name() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("missing.pem");
        let e = connector(Some(&missing)).err().expect("a missing file is refused");
        assert!(e.starts_with("OPENAI_CA_FILE ") && e.contains("missing.pem"), "{e}");
        let empty = dir.path().join("empty.pem");
        std::fs::write(&empty, "not a certificate\n").unwrap();
        let e = connector(Some(&empty)).err().expect("a file without certificates is refused");
        assert!(e.contains("no CERTIFICATE block"), "{e}");
        assert!(connector(None).is_ok(), "the web PKI roots alone");
    }
}
