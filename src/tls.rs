//! rustls configuration: the listener's `ServerConfig` (ALPN h2 and http/1.1) from PEM files, and the
//! upstream `ClientConfig` (webpki roots plus an optional private CA). Both are built when a config is
//! compiled, so a missing, unreadable or mismatched file is a config error with its position, and a
//! reload with a broken certificate keeps the old one serving.

mod pinned;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::crypto::CryptoProvider;
use rustls::{ClientConfig, RootCertStore, ServerConfig};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

use crate::config::file::{read_bounded, FileError, MAX_PEM_BYTES};

/// Why a TLS configuration could not be built.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// A PEM file is not a regular file, is too large, or could not be read.
    #[error(transparent)]
    File(#[from] FileError),
    /// A PEM file could not be read or parsed.
    #[error("cannot read {}: {source}", path.display())]
    Pem {
        /// The file.
        path: PathBuf,
        /// What went wrong.
        source: rustls_pki_types::pem::Error,
    },
    /// The file holds no certificate.
    #[error("{} holds no PEM certificate", path.display())]
    NoCertificate {
        /// The file.
        path: PathBuf,
    },
    /// rustls refused the pair (e.g. the key does not belong to the certificate).
    #[error("certificate {} and key {} do not work together: {source}", cert.display(), key.display())]
    Pair {
        /// Certificate file.
        cert: PathBuf,
        /// Key file.
        key: PathBuf,
        /// rustls's reason.
        source: rustls::Error,
    },
    /// A CA certificate was refused.
    #[error("{}: invalid CA certificate: {source}", path.display())]
    Ca {
        /// The CA file.
        path: PathBuf,
        /// rustls's reason.
        source: rustls::Error,
    },
    /// The crypto provider does not support the default protocol versions (a build problem).
    #[error("TLS setup failed: {0}")]
    Setup(rustls::Error),
}

/// The one crypto provider corsgate uses, named explicitly: the process default is ambiguous when
/// several providers are compiled in.
pub fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let pem = |source| TlsError::Pem {
        path: path.to_path_buf(),
        source,
    };
    // Read through the bound: a PEM reader on `/dev/zero` would grow one line until allocation fails.
    let bytes = read_bounded(path, MAX_PEM_BYTES)?;
    let certs = CertificateDer::pem_slice_iter(&bytes)
        .collect::<Result<Vec<_>, _>>()
        .map_err(pem)?;
    if certs.is_empty() {
        return Err(TlsError::NoCertificate {
            path: path.to_path_buf(),
        });
    }
    Ok(certs)
}

/// The listener's config: the chain and key from PEM (PKCS#8, PKCS#1 RSA or SEC1 EC), ALPN h2 first.
pub fn server_config(cert: &Path, key: &Path) -> Result<Arc<ServerConfig>, TlsError> {
    let chain = certs(cert)?;
    let key_bytes = read_bounded(key, MAX_PEM_BYTES)?;
    let key_der = PrivateKeyDer::from_pem_slice(&key_bytes).map_err(|source| TlsError::Pem {
        path: key.to_path_buf(),
        source,
    })?;
    let mut config = ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(TlsError::Setup)?
        .with_no_client_auth()
        // Checks that the key belongs to the end-entity certificate.
        .with_single_cert(chain, key_der)
        .map_err(|source| TlsError::Pair {
            cert: cert.to_path_buf(),
            key: key.to_path_buf(),
            source,
        })?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// The upstream client config: webpki roots, plus every certificate in `ca_file` when given, each of
/// which the upstream may also present as its own certificate (`pinned::UpstreamVerifier`). There is
/// deliberately no way to turn verification off.
pub(crate) fn client_config(ca_file: Option<&Path>) -> Result<ClientConfig, TlsError> {
    let mut roots = RootCertStore::empty();
    roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    let mut pinned = Vec::new();
    if let Some(path) = ca_file {
        for ca in certs(path)? {
            roots.add(ca.clone()).map_err(|source| TlsError::Ca {
                path: path.to_path_buf(),
                source,
            })?;
            pinned.push(ca);
        }
    }
    let provider = provider();
    // Building fails only without roots, and the webpki roots are always there.
    let verifier = pinned::UpstreamVerifier::new(roots, pinned, Arc::clone(&provider))
        .map_err(|e| TlsError::Setup(rustls::Error::General(e.to_string())))?;
    // ALPN stays empty: hyper-rustls fills it from the protocols the connector enables.
    Ok(ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(TlsError::Setup)?
        .dangerous()
        .with_custom_certificate_verifier(verifier)
        .with_no_client_auth())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, name: &str, body: &str) -> PathBuf {
        let p = dir.join(name);
        std::fs::write(&p, body).unwrap();
        p
    }

    #[test]
    fn a_matching_pair_loads_with_h2_first_and_a_mismatch_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let a = rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap();
        let b = rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap();
        let cert = write(dir.path(), "a.pem", &a.cert.pem());
        let key = write(dir.path(), "a.key", &a.key_pair.serialize_pem());
        let other_key = write(dir.path(), "b.key", &b.key_pair.serialize_pem());
        let config = server_config(&cert, &key).unwrap();
        assert_eq!(config.alpn_protocols[0], b"h2");
        assert!(matches!(
            server_config(&cert, &other_key),
            Err(TlsError::Pair { .. })
        ));
        assert!(matches!(
            server_config(&key, &key),
            Err(TlsError::NoCertificate { .. })
        ));
        assert!(matches!(
            server_config(&dir.path().join("missing.pem"), &key),
            Err(TlsError::File(FileError::Io { .. }))
        ));
        assert!(matches!(
            server_config(&cert, Path::new("/dev/zero")),
            Err(TlsError::File(FileError::NotAFile { .. }))
        ));
        assert!(client_config(Some(Path::new("/dev/zero"))).is_err());
        assert!(client_config(Some(&cert)).is_ok());
        assert!(client_config(Some(&key)).is_err());
    }
}
