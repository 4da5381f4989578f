//! The certificate of the web, IMAP and API listeners: configured PEM files, or a self-signed one
//! generated on first start and reused; clients pin it by its SHA-256 fingerprint.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, Result, bail};
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use sha2::{Digest, Sha256};

/// A loaded certificate chain with its key, and the fingerprint of the leaf.
pub struct ServiceCert {
    pub chain: Vec<CertificateDer<'static>>,
    pub key: PrivateKeyDer<'static>,
    pub fingerprint: String,
    pub cert_path: PathBuf,
}

/// Where the generated certificate lives in a data directory.
pub fn generated_paths(data_dir: &Path) -> (PathBuf, PathBuf) {
    let dir = data_dir.join("tls");
    (dir.join("cert.pem"), dir.join("key.pem"))
}

/// SHA-256 of a DER certificate as lower-case hex (the form `--fingerprint` takes).
pub fn fingerprint(der: &[u8]) -> String {
    hex::encode(Sha256::digest(der))
}

/// Normalises a fingerprint as users paste it (colons, blanks, upper case).
pub fn normalise_fingerprint(text: &str) -> String {
    text.chars().filter(|c| c.is_ascii_hexdigit()).collect::<String>().to_ascii_lowercase()
}

/// Loads the configured certificate, or the generated one (creating it on first start).
pub fn load_or_generate(cert_file: &str, key_file: &str, data_dir: &Path) -> Result<ServiceCert> {
    let (cert_path, key_path) = if cert_file.is_empty() && key_file.is_empty() {
        let (c, k) = generated_paths(data_dir);
        if !c.exists() || !k.exists() {
            generate(&c, &k)?;
        }
        (c, k)
    } else if cert_file.is_empty() || key_file.is_empty() {
        bail!("tls.cert_file (ARCA_TLS_CERT_FILE) and tls.key_file (ARCA_TLS_KEY_FILE) must be set together");
    } else {
        (PathBuf::from(cert_file), PathBuf::from(key_file))
    };
    let cert_pem = std::fs::read(&cert_path)
        .with_context(|| format!("cannot read certificate {}", cert_path.display()))?;
    let chain: Vec<CertificateDer<'static>> = rustls_pemfile::certs(&mut cert_pem.as_slice())
        .collect::<Result<_, _>>()
        .with_context(|| format!("certificate file {} is not valid PEM", cert_path.display()))?;
    let Some(leaf) = chain.first() else {
        bail!("certificate file {} holds no certificate", cert_path.display())
    };
    let fingerprint = fingerprint(leaf);
    let key_pem =
        std::fs::read(&key_path).with_context(|| format!("cannot read key {}", key_path.display()))?;
    let key = rustls_pemfile::private_key(&mut key_pem.as_slice())
        .with_context(|| format!("key file {} is not valid PEM", key_path.display()))?
        .with_context(|| format!("key file {} holds no private key", key_path.display()))?;
    Ok(ServiceCert { chain, key, fingerprint, cert_path })
}

fn generate(cert_path: &Path, key_path: &Path) -> Result<()> {
    let dir = cert_path.parent().context("certificate path has no directory")?;
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap_or_default().trim().to_string();
    let mut names = vec!["localhost".to_string(), "127.0.0.1".to_string(), "::1".to_string()];
    if !host.is_empty() {
        names.push(host);
    }
    let key = rcgen::KeyPair::generate().context("cannot generate a key")?;
    let mut params = rcgen::CertificateParams::new(names).context("certificate names")?;
    params.distinguished_name.push(rcgen::DnType::CommonName, "Arca self-signed");
    let cert = params.self_signed(&key).context("cannot self-sign the certificate")?;
    write_private(key_path, key.serialize_pem().as_bytes())?;
    std::fs::write(cert_path, cert.pem()).with_context(|| format!("cannot write {}", cert_path.display()))?;
    Ok(())
}

/// Writes a file readable by the owner only (keys, secrets).
pub fn write_private(path: &Path, bytes: &[u8]) -> Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .write(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("cannot write {}", path.display()))?;
    f.write_all(bytes).with_context(|| format!("cannot write {}", path.display()))?;
    f.sync_all().with_context(|| format!("cannot write {}", path.display()))?;
    Ok(())
}

/// A rustls server configuration for the HTTPS listeners.
pub fn server_config(cert: &ServiceCert) -> Result<Arc<rustls::ServerConfig>> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .context("TLS protocol versions")?
        .with_no_client_auth()
        .with_single_cert(cert.chain.clone(), cert.key.clone_key())
        .context("the certificate and key do not match")?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}
