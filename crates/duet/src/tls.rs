//! TLS for the partner link (RFC 8156 §10 via RFC 7653 §9.1): TLS 1.3 with
//! mutual certificate authentication against a locally configured CA (no
//! external service needed during a partition: digest A25), the peer held
//! to the certificate name configured as `peer-name`. Also `duet tls init`.

use anyhow::{anyhow, bail, Context};
use duet_core::config::TlsConfig;
use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose, IsCa, KeyPair,
    KeyUsagePurpose,
};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use rustls::server::WebPkiClientVerifier;
use rustls::{ClientConfig, RootCertStore, ServerConfig};
use std::fs;
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::Path;
use std::sync::Arc;

/// The TLS settings of one relationship.
#[derive(Clone)]
pub struct PartnerTls {
    /// For the primary, which connects.
    pub client: Arc<ClientConfig>,
    /// For the secondary, which accepts.
    pub server: Arc<ServerConfig>,
    /// The name the partner's certificate must carry.
    pub peer_name: String,
}

impl std::fmt::Debug for PartnerTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "PartnerTls(peer-name {})", self.peer_name)
    }
}

fn read_certs(path: &Path, what: &str) -> anyhow::Result<Vec<CertificateDer<'static>>> {
    let certs = CertificateDer::pem_file_iter(path)
        .with_context(|| format!("{what} {}", path.display()))?
        .collect::<Result<Vec<_>, _>>()
        .with_context(|| format!("{what} {}", path.display()))?;
    if certs.is_empty() {
        bail!("{what} {}: no certificate in the file", path.display());
    }
    Ok(certs)
}

/// Loads the certificate, key and CA of a relationship.
pub fn load(t: &TlsConfig) -> anyhow::Result<PartnerTls> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut roots = RootCertStore::empty();
    for c in read_certs(&t.ca, "tls.ca")? {
        roots
            .add(c)
            .with_context(|| format!("tls.ca {}", t.ca.display()))?;
    }
    let chain = read_certs(&t.cert, "tls.cert")?;
    let key = PrivateKeyDer::from_pem_file(&t.key).with_context(|| format!("tls.key {}", t.key.display()))?;
    let client = ClientConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(&[&rustls::version::TLS13])?
        .with_root_certificates(roots.clone())
        .with_client_auth_cert(chain.clone(), key.clone_key())
        .context("tls.cert / tls.key")?;
    let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider.clone())
        .build()
        .context("tls.ca")?;
    let server = ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13])?
        .with_client_cert_verifier(verifier)
        .with_single_cert(chain, key)
        .context("tls.cert / tls.key")?;
    ServerName::try_from(t.peer_name.clone()).map_err(|e| anyhow!("tls.peer-name {:?}: {e}", t.peer_name))?;
    Ok(PartnerTls {
        client: Arc::new(client),
        server: Arc::new(server),
        peer_name: t.peer_name.clone(),
    })
}

/// Checks that the peer's (already chain-verified) certificate names
/// `expected` (the accepting side: rustls checks names only for servers).
pub fn check_peer_name(certs: Option<&[CertificateDer<'_>]>, expected: &str) -> Result<(), String> {
    let cert = certs
        .and_then(|c| c.first())
        .ok_or_else(|| "the peer presented no certificate".to_string())?;
    let ee =
        webpki::EndEntityCert::try_from(cert).map_err(|e| format!("unreadable peer certificate: {e}"))?;
    let name = ServerName::try_from(expected).map_err(|e| format!("peer-name {expected:?}: {e}"))?;
    ee.verify_is_valid_for_subject_name(&name)
        .map_err(|_| format!("the peer's certificate is not for {expected:?}"))
}

fn write_private(path: &Path, data: &str) -> anyhow::Result<()> {
    let mut f = fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("writing {}", path.display()))?;
    f.write_all(data.as_bytes())?;
    fs::set_permissions(path, fs::Permissions::from_mode(0o600))?;
    Ok(())
}

/// `duet tls init --out DIR --names a,b`: a CA and one certificate + key
/// per server name (PEM; keys mode 0600). Existing files are not replaced.
pub fn init(out: &Path, names: &[String]) -> anyhow::Result<()> {
    if names.is_empty() {
        bail!("--names needs at least one server name");
    }
    fs::create_dir_all(out).with_context(|| format!("creating {}", out.display()))?;
    let mut files = vec![out.join("ca.crt"), out.join("ca.key")];
    for n in names {
        ServerName::try_from(n.clone()).map_err(|e| anyhow!("server name {n:?} is not a DNS name: {e}"))?;
        files.push(out.join(format!("{n}.crt")));
        files.push(out.join(format!("{n}.key")));
    }
    if let Some(f) = files.iter().find(|f| f.exists()) {
        bail!(
            "{} already exists; not replacing certificates or keys",
            f.display()
        );
    }
    let ca_key = KeyPair::generate()?;
    let ca_key_pem = ca_key.serialize_pem();
    let mut ca_params = CertificateParams::new(Vec::<String>::new())?;
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(DnType::CommonName, "duet partner-link CA");
    ca_params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    let ca = CertifiedIssuer::self_signed(ca_params, ca_key)?;
    fs::write(out.join("ca.crt"), ca.pem())?;
    write_private(&out.join("ca.key"), &ca_key_pem)?;
    for n in names {
        let key = KeyPair::generate()?;
        let mut params = CertificateParams::new(vec![n.clone()])?;
        params.distinguished_name.push(DnType::CommonName, n.as_str());
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = vec![
            ExtendedKeyUsagePurpose::ServerAuth,
            ExtendedKeyUsagePurpose::ClientAuth,
        ];
        let cert = params.signed_by(&key, &ca)?;
        fs::write(out.join(format!("{n}.crt")), cert.pem())?;
        write_private(&out.join(format!("{n}.key")), &key.serialize_pem())?;
    }
    Ok(())
}
