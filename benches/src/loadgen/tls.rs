//! TLS on the legs (`--tls twilio|openai|both`): a throw-away CA and a certificate for
//! 127.0.0.1 made at start (rcgen), written to a private temporary directory for the processes
//! under test (`GATEWAY_TLS_CERT`/`GATEWAY_TLS_KEY` for Twilio's leg, `OPENAI_CA_FILE` for
//! OpenAI's, the same pair for the TLS echo floor), and the harness's own rustls configs: the
//! callers trust the CA, the OpenAI stand-in serves the certificate.
//!
//! Only the harness and the process it spawned ever see these keys; the directory is removed
//! when the [`LegTls`] is dropped.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use clap::ValueEnum;
use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::{ClientConfig, RootCertStore, ServerConfig};

/// Which legs carry TLS.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, ValueEnum, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum TlsLegs {
    /// `ws://` on both legs (a TLS-terminating proxy in front, say).
    #[default]
    None,
    /// `wss://` from the callers to the gateway (the gateway terminates TLS).
    Twilio,
    /// `wss://` from the gateway to the OpenAI stand-in.
    Openai,
    /// Both, as in production with the gateway terminating TLS.
    Both,
}

impl TlsLegs {
    /// Whether Twilio's leg (callers → gateway, or the echo floor) is TLS.
    pub fn twilio(self) -> bool {
        matches!(self, Self::Twilio | Self::Both)
    }

    /// Whether OpenAI's leg (gateway → stand-in) is TLS.
    pub fn openai(self) -> bool {
        matches!(self, Self::Openai | Self::Both)
    }

    /// As written on the command line.
    pub fn name(self) -> &'static str {
        match self {
            Self::None => "none",
            Self::Twilio => "twilio",
            Self::Openai => "openai",
            Self::Both => "both",
        }
    }
}

/// The files and configs of one harness's TLS.
#[derive(Debug)]
pub struct LegTls {
    /// Which legs.
    pub legs: TlsLegs,
    dir: PathBuf,
    /// The callers' config (trusts the CA), when Twilio's leg is TLS.
    pub client: Option<Arc<ClientConfig>>,
    /// The OpenAI stand-in's config, when OpenAI's leg is TLS.
    pub server: Option<Arc<ServerConfig>>,
}

impl LegTls {
    /// Makes the CA, the certificate and the configs `legs` needs (nothing for `None`).
    pub fn new(legs: TlsLegs) -> Result<Self, String> {
        let dir = std::env::temp_dir().join(format!("callway-loadgen-tls-{}", std::process::id()));
        let mut me = Self { legs, dir, client: None, server: None };
        if legs == TlsLegs::None {
            return Ok(me);
        }
        let pki = Pki::new()?;
        write_private_dir(&me.dir, &pki)?;
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        if legs.twilio() {
            let mut roots = RootCertStore::empty();
            roots.add(pki.ca_der.clone()).map_err(|e| format!("test CA refused: {e}"))?;
            let config = ClientConfig::builder_with_provider(provider.clone())
                .with_safe_default_protocol_versions()
                .map_err(|e| e.to_string())?
                .with_root_certificates(roots)
                .with_no_client_auth();
            me.client = Some(Arc::new(config));
        }
        if legs.openai() {
            let key = PrivateKeyDer::from_pem_slice(pki.key_pem.as_bytes()).map_err(|e| e.to_string())?;
            let config = ServerConfig::builder_with_provider(provider)
                .with_safe_default_protocol_versions()
                .map_err(|e| e.to_string())?
                .with_no_client_auth()
                .with_single_cert(vec![pki.cert_der.clone()], key)
                .map_err(|e| format!("test certificate refused: {e}"))?;
            me.server = Some(Arc::new(config));
        }
        Ok(me)
    }

    /// The certificate chain file (PEM) a TLS server under test serves.
    pub fn cert_file(&self) -> PathBuf {
        self.dir.join("cert.pem")
    }

    /// Its key (PEM).
    pub fn key_file(&self) -> PathBuf {
        self.dir.join("key.pem")
    }

    /// The CA (PEM) a TLS client under test trusts.
    pub fn ca_file(&self) -> PathBuf {
        self.dir.join("ca.pem")
    }

    /// What a spawned gateway needs for these legs, given the stand-in's address.
    pub fn gateway_env(&self, openai: std::net::SocketAddr) -> Vec<(String, String)> {
        let path = |p: PathBuf| p.display().to_string();
        let mut env = Vec::new();
        if self.legs.twilio() {
            env.push(("GATEWAY_TLS_CERT".to_owned(), path(self.cert_file())));
            env.push(("GATEWAY_TLS_KEY".to_owned(), path(self.key_file())));
        }
        if self.legs.openai() {
            env.push(("OPENAI_BASE_URL".to_owned(), format!("https://{openai}")));
            env.push(("OPENAI_CA_FILE".to_owned(), path(self.ca_file())));
        }
        env
    }
}

impl Drop for LegTls {
    fn drop(&mut self) {
        if self.legs != TlsLegs::None {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

struct Pki {
    ca_pem: String,
    ca_der: CertificateDer<'static>,
    cert_pem: String,
    cert_der: CertificateDer<'static>,
    key_pem: String,
}

impl Pki {
    fn new() -> Result<Self, String> {
        use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair};
        let err = |e: rcgen::Error| format!("cannot make the test certificates: {e}");
        let ca_key = KeyPair::generate().map_err(err)?;
        let mut ca_params = CertificateParams::new(Vec::<String>::new()).map_err(err)?;
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca_params.distinguished_name.push(DnType::CommonName, "callway-loadgen test CA");
        let ca = ca_params.self_signed(&ca_key).map_err(err)?;
        let key = KeyPair::generate().map_err(err)?;
        let cert = CertificateParams::new(vec!["127.0.0.1".to_owned()])
            .map_err(err)?
            .signed_by(&key, &Issuer::new(ca_params, ca_key))
            .map_err(err)?;
        Ok(Self {
            ca_pem: ca.pem(),
            ca_der: ca.der().clone(),
            cert_pem: cert.pem(),
            cert_der: cert.der().clone(),
            key_pem: key.serialize_pem(),
        })
    }
}

/// Writes the PEM files into `dir`, readable by this user only.
fn write_private_dir(dir: &Path, pki: &Pki) -> Result<(), String> {
    use std::os::unix::fs::{DirBuilderExt as _, OpenOptionsExt as _};
    let err = |e: std::io::Error| format!("cannot write the test certificates to {}: {e}", dir.display());
    let _ = std::fs::remove_dir_all(dir);
    std::fs::DirBuilder::new().mode(0o700).create(dir).map_err(err)?;
    for (name, text) in [("ca.pem", &pki.ca_pem), ("cert.pem", &pki.cert_pem), ("key.pem", &pki.key_pem)] {
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(dir.join(name))
            .map_err(err)?;
        std::io::Write::write_all(&mut f, text.as_bytes()).map_err(err)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_legs_make_both_configs_and_files_that_go_away() {
        let tls = LegTls::new(TlsLegs::Both).unwrap();
        assert!(tls.client.is_some() && tls.server.is_some());
        let ca = std::fs::read_to_string(tls.ca_file()).unwrap();
        assert!(ca.starts_with("-----BEGIN CERTIFICATE-----"));
        let env = tls.gateway_env("127.0.0.1:4443".parse().unwrap());
        let names: Vec<&str> = env.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(names, ["GATEWAY_TLS_CERT", "GATEWAY_TLS_KEY", "OPENAI_BASE_URL", "OPENAI_CA_FILE"]);
        assert_eq!(env[2].1, "https://127.0.0.1:4443");
        let dir = tls.ca_file().parent().unwrap().to_owned();
        drop(tls);
        assert!(!dir.exists());
        let none = LegTls::new(TlsLegs::None).unwrap();
        assert!(
            none.client.is_none()
                && none.server.is_none()
                && none.gateway_env("127.0.0.1:1".parse().unwrap()).is_empty()
        );
    }
}
