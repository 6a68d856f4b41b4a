//! A certificate authority made for one test, and the certificates it
//! signs: a registry's server certificate, a client certificate for mutual
//! TLS. Nothing is trusted outside the test that made it.

use std::path::{Path, PathBuf};

/// A CA with its key, living as long as the test holds it.
pub struct TestCa {
    issuer: rcgen::CertifiedIssuer<'static, rcgen::KeyPair>,
}

impl std::fmt::Debug for TestCa {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TestCa")
    }
}

/// A certificate and its private key, both PEM.
#[derive(Debug, Clone)]
pub struct CertifiedKey {
    /// The certificate, PEM.
    pub cert_pem: String,
    /// Its private key, PEM (PKCS#8).
    pub key_pem: String,
}

impl CertifiedKey {
    /// Writes the certificate to `dir/<name>.<cert_ext>` and the key to
    /// `dir/<name>.key`; returns both paths.
    pub fn write(&self, dir: &Path, name: &str, cert_ext: &str) -> (PathBuf, PathBuf) {
        fs_err::create_dir_all(dir).unwrap_or_else(|e| panic!("{e}"));
        let cert = dir.join(format!("{name}.{cert_ext}"));
        let key = dir.join(format!("{name}.key"));
        fs_err::write(&cert, &self.cert_pem).unwrap_or_else(|e| panic!("{e}"));
        fs_err::write(&key, &self.key_pem).unwrap_or_else(|e| panic!("{e}"));
        (cert, key)
    }
}

impl TestCa {
    /// A new CA, `CN=slipway testbed CA`, with a fresh key.
    pub fn new() -> TestCa {
        let key = rcgen::KeyPair::generate().unwrap_or_else(|e| panic!("CA key: {e}"));
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new())
            .unwrap_or_else(|e| panic!("CA params: {e}"));
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "slipway testbed CA");
        params.key_usages = vec![
            rcgen::KeyUsagePurpose::KeyCertSign,
            rcgen::KeyUsagePurpose::CrlSign,
            rcgen::KeyUsagePurpose::DigitalSignature,
        ];
        let issuer = rcgen::CertifiedIssuer::self_signed(params, key)
            .unwrap_or_else(|e| panic!("CA certificate: {e}"));
        TestCa { issuer }
    }

    /// The CA's certificate, PEM: what a client trusts.
    pub fn cert_pem(&self) -> String {
        self.issuer.pem()
    }

    /// A server certificate for `names` (DNS names, or IP addresses such as
    /// `127.0.0.1`), signed by this CA.
    pub fn server(&self, names: &[&str]) -> CertifiedKey {
        self.sign(names, rcgen::ExtendedKeyUsagePurpose::ServerAuth)
    }

    /// A client certificate (`CN=slipway testbed client`), signed by this CA.
    pub fn client(&self) -> CertifiedKey {
        self.sign(&[], rcgen::ExtendedKeyUsagePurpose::ClientAuth)
    }

    fn sign(&self, names: &[&str], usage: rcgen::ExtendedKeyUsagePurpose) -> CertifiedKey {
        let key = rcgen::KeyPair::generate().unwrap_or_else(|e| panic!("key: {e}"));
        let names: Vec<String> = names.iter().map(|n| (*n).to_owned()).collect();
        let mut params =
            rcgen::CertificateParams::new(names).unwrap_or_else(|e| panic!("params: {e}"));
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "slipway testbed client");
        params.extended_key_usages = vec![usage];
        let cert = params
            .signed_by(&key, &self.issuer)
            .unwrap_or_else(|e| panic!("certificate: {e}"));
        CertifiedKey {
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
        }
    }
}

impl Default for TestCa {
    fn default() -> Self {
        Self::new()
    }
}
