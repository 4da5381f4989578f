//! Cluster TLS from the shared secret: every node derives the same certificate authority from the secret
//! and issues itself a fresh node certificate; peers require mutual TLS under that authority. A process
//! without the secret can neither present an acceptable certificate nor accept connections from members.

use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair, KeyUsagePurpose};
use sha2::{Digest, Sha256};

/// The DNS name in every node certificate; clients verify it instead of a host name, since membership
/// (not DNS) decides who is a peer.
pub const NODE_SERVER_NAME: &str = "arca-node";

/// Bytes of a freshly generated cluster secret.
pub const SECRET_BYTES: usize = 32;

/// Why cluster TLS material could not be made.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("the cluster secret is empty or shorter than 16 bytes")]
    WeakSecret,
    #[error("cannot create cluster certificates: {0}")]
    Cert(#[from] rcgen::Error),
}

/// PEM material for one node: the cluster CA, and this node's certificate and key.
#[derive(Clone)]
pub struct ClusterIdentity {
    pub ca_pem: String,
    pub cert_pem: String,
    pub key_pem: String,
}

impl std::fmt::Debug for ClusterIdentity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ClusterIdentity { .. }")
    }
}

/// Creates a new random cluster secret, hex-encoded, as written to `cluster.secret`.
pub fn new_secret() -> String {
    use rand::RngCore;
    let mut bytes = [0u8; SECRET_BYTES];
    rand::thread_rng().fill_bytes(&mut bytes);
    hex::encode(bytes)
}

/// Derives the cluster CA from `secret` and issues a node certificate under it.
pub fn cluster_identity(secret: &str) -> Result<ClusterIdentity, TlsError> {
    let secret = secret.trim();
    if secret.len() < 16 {
        return Err(TlsError::WeakSecret);
    }
    let seed: [u8; 32] = Sha256::new()
        .chain_update(b"arca cluster certificate authority v1\0")
        .chain_update(secret.as_bytes())
        .finalize()
        .into();
    // PKCS#8 v1 wrapping of an Ed25519 seed (RFC 8410): a fixed 16-byte prefix, then the 32-byte seed.
    let mut pkcs8 = hex::decode("302e020100300506032b657004220420").unwrap_or_default();
    pkcs8.extend_from_slice(&seed);
    let ca_key = KeyPair::try_from(pkcs8.as_slice())?;
    let mut ca_params = CertificateParams::new(Vec::<String>::new())?;
    ca_params.distinguished_name.push(DnType::CommonName, "Arca cluster authority");
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params.serial_number = Some(rcgen::SerialNumber::from(1u64));
    ca_params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    let ca_cert = ca_params.self_signed(&ca_key)?;

    let node_key = KeyPair::generate()?;
    let mut node_params = CertificateParams::new(vec![NODE_SERVER_NAME.to_string()])?;
    node_params.distinguished_name.push(DnType::CommonName, "Arca node");
    node_params.extended_key_usages =
        vec![rcgen::ExtendedKeyUsagePurpose::ServerAuth, rcgen::ExtendedKeyUsagePurpose::ClientAuth];
    let node_cert = node_params.signed_by(&node_key, &ca_cert, &ca_key)?;
    Ok(ClusterIdentity {
        ca_pem: ca_cert.pem(),
        cert_pem: node_cert.pem(),
        key_pem: node_key.serialize_pem(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_secret_gives_same_authority_key() {
        let a = cluster_identity("0123456789abcdef0123").expect("identity");
        let b = cluster_identity("0123456789abcdef0123").expect("identity");
        let c = cluster_identity("fedcba98765432100123").expect("identity");
        let spki = |pem: &str| pem.to_string();
        // Ed25519 signatures are deterministic, so the self-signed authority is byte-identical.
        assert_eq!(spki(&a.ca_pem), spki(&b.ca_pem));
        assert_ne!(a.ca_pem, c.ca_pem);
        assert_ne!(a.key_pem, b.key_pem, "node keys are fresh");
        assert!(cluster_identity("short").is_err());
    }
}
