//! TLS with rustls and the `ring` provider: the server side from the PEM files of
//! `GATEWAY_TLS_CERT` / `GATEWAY_TLS_KEY`, the client side (to OpenAI) trusting the web PKI
//! roots plus the CAs of `OPENAI_CA_FILE`. Both are built once at start and shared by every
//! worker.
//!
//! # Reloading the certificate
//! The server config never changes; its certificate comes from a [`ReloadableCert`] resolver
//! that holds the current [`CertifiedKey`]. [`ReloadableCert::reload`] (on `SIGHUP`, see
//! [`crate::io::Gateway::reload_tls`]) reads both files again and swaps the key in only when
//! they make a usable pair: handshakes from then on present the new chain, connections
//! already established keep the session they negotiated (a rustls session never looks at
//! the resolver again), so no call is dropped. Both I/O shells handshake on the worker's tokio
//! thread (`conn.rs`) before an io_uring engine takes the socket over, so one resolver serves
//! both. A file that cannot be used leaves the old certificate in place.

use std::path::Path;
use std::sync::{Arc, RwLock};

use rustls_pki_types::pem::PemObject as _;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::rustls::server::{ClientHello, ResolvesServerCert};
use tokio_rustls::rustls::sign::CertifiedKey;
use tokio_rustls::rustls::{self, ClientConfig, RootCertStore, ServerConfig};

use crate::config::TlsFiles;

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// Every certificate of the PEM file at `path` (at least one), or a message naming
/// `variable` (the setting the path came from), the file and the problem.
pub(crate) fn read_certs(path: &Path, variable: &str) -> Result<Vec<CertificateDer<'static>>, String> {
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(path)
        .and_then(|it| it.collect::<Result<_, _>>())
        .map_err(|e| format!("{variable} {}: cannot read PEM certificates: {e}", path.display()))?;
    if certs.is_empty() {
        return Err(format!("{variable} {}: no CERTIFICATE block found", path.display()));
    }
    Ok(certs)
}

/// The certificate chain and key of `files`, checked to be a pair the ring provider can sign
/// with, or a message naming the setting, the file and what to do.
fn load_certified_key(files: &TlsFiles) -> Result<CertifiedKey, String> {
    let certs = read_certs(&files.cert, "GATEWAY_TLS_CERT")?;
    let key = PrivateKeyDer::from_pem_file(&files.key).map_err(|e| {
        format!("GATEWAY_TLS_KEY {}: cannot read a PEM private key: {e}", files.key.display())
    })?;
    CertifiedKey::from_der(certs, key, &provider()).map_err(|e| {
        format!(
            "GATEWAY_TLS_CERT {} and GATEWAY_TLS_KEY {} do not make a usable pair ({e}): install the key that belongs to the certificate",
            files.cert.display(),
            files.key.display()
        )
    })
}

/// What a (re)load put in place: enough for the operator to tell certificates apart.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertSummary {
    /// SHA-256 of the leaf certificate (DER), lowercase hex: what `openssl x509 -noout
    /// -fingerprint -sha256` prints, without the colons.
    pub sha256: String,
    /// Certificates in the chain, leaf included.
    pub chain_len: usize,
}

impl CertSummary {
    fn of(key: &CertifiedKey) -> CertSummary {
        let leaf = key.end_entity_cert().map(|c| c.as_ref()).unwrap_or_default();
        let digest = ring::digest::digest(&ring::digest::SHA256, leaf);
        let sha256 = digest.as_ref().iter().map(|b| format!("{b:02x}")).collect();
        CertSummary { sha256, chain_len: key.cert.len() }
    }
}

/// The server certificate, swappable while the gateway runs.
#[derive(Debug)]
pub(crate) struct ReloadableCert {
    files: TlsFiles,
    current: RwLock<Arc<CertifiedKey>>,
}

impl ReloadableCert {
    /// Loads `files` for the first time.
    pub(crate) fn load(files: &TlsFiles) -> Result<ReloadableCert, String> {
        let key = load_certified_key(files)?;
        Ok(ReloadableCert { files: files.clone(), current: RwLock::new(Arc::new(key)) })
    }

    /// The certificate handshakes present now.
    pub(crate) fn summary(&self) -> CertSummary {
        CertSummary::of(&self.current.read().unwrap_or_else(std::sync::PoisonError::into_inner))
    }

    /// Reads the files again; on success new handshakes present the new certificate, on
    /// failure the old one stays and the message says which file is wrong.
    pub(crate) fn reload(&self) -> Result<CertSummary, String> {
        let key = load_certified_key(&self.files)?;
        let summary = CertSummary::of(&key);
        *self.current.write().unwrap_or_else(std::sync::PoisonError::into_inner) = Arc::new(key);
        Ok(summary)
    }
}

impl ResolvesServerCert for ReloadableCert {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.current.read().unwrap_or_else(std::sync::PoisonError::into_inner).clone())
    }
}

/// The acceptor for Twilio's connections, presenting `cert`'s current certificate.
pub(crate) fn acceptor(cert: Arc<ReloadableCert>) -> Result<tokio_rustls::TlsAcceptor, String> {
    let config = ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_no_client_auth()
        .with_cert_resolver(cert);
    Ok(tokio_rustls::TlsAcceptor::from(Arc::new(config)))
}

/// The connector for OpenAI (`wss://`): the web PKI roots, plus every certificate of
/// `extra_cas` (`OPENAI_CA_FILE`), or a message naming the file and the problem.
pub(crate) fn connector(extra_cas: Option<&Path>) -> Result<tokio_rustls::TlsConnector, String> {
    let mut roots = RootCertStore { roots: webpki_roots::TLS_SERVER_ROOTS.to_vec() };
    if let Some(path) = extra_cas {
        for cert in read_certs(path, "OPENAI_CA_FILE")? {
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

    fn write_pair(dir: &Path, name: &str) -> (std::path::PathBuf, std::path::PathBuf, String, String) {
        let key = rcgen::KeyPair::generate().unwrap();
        let cert =
            rcgen::CertificateParams::new(vec![format!("{name}.test")]).unwrap().self_signed(&key).unwrap();
        let (c, k) = (dir.join(format!("{name}.crt")), dir.join(format!("{name}.key")));
        std::fs::write(&c, cert.pem()).unwrap();
        std::fs::write(&k, key.serialize_pem()).unwrap();
        (c, k, cert.pem(), key.serialize_pem())
    }

    #[test]
    fn a_reload_swaps_a_good_pair_in_and_keeps_the_old_one_on_a_bad_file() {
        let dir = tempfile::tempdir().unwrap();
        let (cert, key, _, _) = write_pair(dir.path(), "a");
        let files = TlsFiles { cert: cert.clone(), key: key.clone() };
        let store = ReloadableCert::load(&files).unwrap();
        let a = store.summary();
        assert_eq!(a.chain_len, 1);
        assert_eq!(a.sha256.len(), 64);

        // A truncated certificate: refused, naming the setting; A still served.
        std::fs::write(&cert, "-----BEGIN CERTIFICATE-----\nAAAA\n").unwrap();
        let e = store.reload().unwrap_err();
        assert!(e.starts_with("GATEWAY_TLS_CERT ") && e.contains("a.crt"), "{e}");
        assert_eq!(store.summary(), a);

        // B's certificate with A's key (renewal half written): refused as a mismatched pair.
        let (_, _, b_cert, b_key) = write_pair(dir.path(), "b");
        std::fs::write(&cert, &b_cert).unwrap();
        let e = store.reload().unwrap_err();
        assert!(e.contains("do not make a usable pair"), "{e}");
        assert_eq!(store.summary(), a);

        // Both files of B: swapped in.
        std::fs::write(&key, &b_key).unwrap();
        let b = store.reload().unwrap();
        assert_ne!(b, a);
        assert_eq!(store.summary(), b);
    }
}
