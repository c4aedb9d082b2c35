//! The cluster's certificates and the admin kubeconfig.
//!
//! As kube-apiserver does with kubeadm's PKI, the first start generates a CA,
//! a serving certificate for the API server and an admin client certificate
//! (`CN=kubernetes-admin, O=system:masters`) under `DIR/pki`; later starts
//! reuse them, so a kubeconfig written once keeps working across restarts.

use std::net::IpAddr;
use std::path::{Path, PathBuf};

use base64::Engine as _;
use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose, SanType,
};

#[derive(Debug, thiserror::Error)]
pub enum PkiError {
    #[error("generating certificates failed")]
    Generate(#[from] rcgen::Error),
    #[error("reading or writing {path}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{0} holds no usable PEM data")]
    BadPem(PathBuf),
}

/// PEM-encoded certificates and keys, as found in `DIR/pki`.
#[derive(Clone)]
pub struct Pki {
    pub ca_cert: String,
    pub server_cert: String,
    pub server_key: String,
    pub admin_cert: String,
    pub admin_key: String,
    ca_key: String,
}

const FILES: [&str; 6] = ["ca.crt", "ca.key", "apiserver.crt", "apiserver.key", "admin.crt", "admin.key"];

/// Names the serving certificate answers to: loopback and the in-cluster
/// names of the `kubernetes` Service.
const SERVER_DNS_NAMES: [&str; 5] =
    ["localhost", "kubernetes", "kubernetes.default", "kubernetes.default.svc", "kubernetes.default.svc.cluster.local"];

impl Pki {
    /// Loads the PKI from `dir`, generating whatever is missing. If any file
    /// is missing, all are regenerated, so the set is always consistent.
    pub fn load_or_create(dir: &Path, extra_ips: &[IpAddr]) -> Result<Self, PkiError> {
        let read = |name: &str| {
            let path = dir.join(name);
            std::fs::read_to_string(&path).map_err(|source| PkiError::Io { path, source })
        };
        if FILES.iter().all(|f| dir.join(f).exists()) {
            return Ok(Pki {
                ca_cert: read("ca.crt")?,
                ca_key: read("ca.key")?,
                server_cert: read("apiserver.crt")?,
                server_key: read("apiserver.key")?,
                admin_cert: read("admin.crt")?,
                admin_key: read("admin.key")?,
            });
        }
        let pki = Self::generate(extra_ips)?;
        std::fs::create_dir_all(dir).map_err(|source| PkiError::Io { path: dir.into(), source })?;
        let contents = [&pki.ca_cert, &pki.ca_key, &pki.server_cert, &pki.server_key, &pki.admin_cert, &pki.admin_key];
        for (name, data) in FILES.iter().zip(contents) {
            write_private(&dir.join(name), data.as_bytes())?;
        }
        Ok(pki)
    }

    fn generate(extra_ips: &[IpAddr]) -> Result<Self, PkiError> {
        let ca_key = KeyPair::generate()?;
        let mut ca_params = CertificateParams::default();
        ca_params.distinguished_name = dn(&[(DnType::CommonName, "svcnet-ca")]);
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca_params.key_usages =
            vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign, KeyUsagePurpose::DigitalSignature];
        ca_params.not_before = rcgen::date_time_ymd(2024, 1, 1);
        ca_params.not_after = rcgen::date_time_ymd(2124, 1, 1);
        let ca_cert = ca_params.self_signed(&ca_key)?;
        let issuer = Issuer::new(ca_params, &ca_key);

        let server_key = KeyPair::generate()?;
        let mut server_params = CertificateParams::default();
        server_params.distinguished_name = dn(&[(DnType::CommonName, "kube-apiserver")]);
        let mut sans: Vec<SanType> = Vec::new();
        for name in SERVER_DNS_NAMES {
            sans.push(SanType::DnsName(name.try_into()?));
        }
        sans.push(SanType::IpAddress(IpAddr::from([127, 0, 0, 1])));
        sans.extend(extra_ips.iter().copied().map(SanType::IpAddress));
        server_params.subject_alt_names = sans;
        server_params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        server_params.not_before = rcgen::date_time_ymd(2024, 1, 1);
        server_params.not_after = rcgen::date_time_ymd(2124, 1, 1);
        let server_cert = server_params.signed_by(&server_key, &issuer)?;

        let (admin_cert, admin_key) = issue_client_cert(&issuer, "kubernetes-admin", Some("system:masters"))?;
        Ok(Pki {
            ca_cert: ca_cert.pem(),
            ca_key: ca_key.serialize_pem(),
            server_cert: server_cert.pem(),
            server_key: server_key.serialize_pem(),
            admin_cert,
            admin_key,
        })
    }

    /// Issues a client certificate for `user`, in `group` if given, signed
    /// by the CA; used by tests to act as users other than the admin.
    /// (One group only: rcgen keeps one value per attribute type.)
    pub fn issue_client(&self, user: &str, group: Option<&str>) -> Result<(String, String), PkiError> {
        let ca_key = KeyPair::from_pem(&self.ca_key)?;
        // Re-deriving the issuer from parameters is enough: only its name and
        // key matter for signing, and both are the CA's.
        let mut ca_params = CertificateParams::default();
        ca_params.distinguished_name = dn(&[(DnType::CommonName, "svcnet-ca")]);
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca_params.key_usages =
            vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign, KeyUsagePurpose::DigitalSignature];
        let issuer = Issuer::new(ca_params, &ca_key);
        issue_client_cert(&issuer, user, group)
    }

    /// A kubeconfig for the admin user, with everything embedded.
    pub fn admin_kubeconfig(&self, server: &str) -> String {
        let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s.as_bytes());
        format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: svcnet\n  cluster:\n    server: {server}\n    certificate-authority-data: {}\nusers:\n- name: svcnet-admin\n  user:\n    client-certificate-data: {}\n    client-key-data: {}\ncontexts:\n- name: svcnet\n  context:\n    cluster: svcnet\n    user: svcnet-admin\n    namespace: default\ncurrent-context: svcnet\npreferences: {{}}\n",
            b64(&self.ca_cert),
            b64(&self.admin_cert),
            b64(&self.admin_key),
        )
    }
}

fn issue_client_cert(
    issuer: &Issuer<'_, &KeyPair>,
    user: &str,
    group: Option<&str>,
) -> Result<(String, String), PkiError> {
    let key = KeyPair::generate()?;
    let mut params = CertificateParams::default();
    let mut name = DistinguishedName::new();
    if let Some(g) = group {
        name.push(DnType::OrganizationName, g);
    }
    name.push(DnType::CommonName, user);
    params.distinguished_name = name;
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
    params.not_before = rcgen::date_time_ymd(2024, 1, 1);
    params.not_after = rcgen::date_time_ymd(2124, 1, 1);
    let cert = params.signed_by(&key, issuer)?;
    Ok((cert.pem(), key.serialize_pem()))
}

fn dn(parts: &[(DnType, &str)]) -> DistinguishedName {
    let mut name = DistinguishedName::new();
    for (t, v) in parts {
        name.push(t.clone(), *v);
    }
    name
}

/// Writes a file readable by its owner only: these are private keys.
pub fn write_private(path: &Path, data: &[u8]) -> Result<(), PkiError> {
    use std::io::Write as _;
    use std::os::unix::fs::OpenOptionsExt as _;
    let io = |source| PkiError::Io { path: path.into(), source };
    let tmp = path.with_extension("tmp");
    let mut f =
        std::fs::OpenOptions::new().write(true).create(true).truncate(true).mode(0o600).open(&tmp).map_err(io)?;
    f.write_all(data).map_err(io)?;
    f.sync_all().map_err(io)?;
    std::fs::rename(&tmp, path).map_err(io)
}
