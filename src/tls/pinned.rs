//! The upstream server-certificate verifier: webpki path validation against the trusted roots, and
//! one exception to it, for a server certificate that is itself one of the `ca_file` certificates.
//!
//! `openssl req -x509` marks a self-signed certificate `CA:TRUE`, and webpki refuses a CA certificate
//! as an end entity (`CaUsedAsEndEntity`) even when that very certificate is trusted. nginx, curl
//! and Envoy accept such a pinned certificate, so corsgate does too, with the checks path validation
//! would have made of it: the bytes equal a `ca_file` certificate, `now` is within its validity
//! period, it is usable for server authentication, and it names the upstream. The handshake
//! signature is still checked against its key (`verify_tls1x_signature` delegate), so only the holder
//! of that certificate's private key passes. Everything else gets webpki's verdict unchanged.

use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::WebPkiServerVerifier;
use rustls::crypto::CryptoProvider;
use rustls::{DigitallySignedStruct, DistinguishedName, Error, RootCertStore, SignatureScheme};
use rustls_pki_types::{CertificateDer, ServerName, UnixTime};
use x509_parser::certificate::X509Certificate;
use x509_parser::time::ASN1Time;

/// webpki's verifier, plus the `ca_file` certificates that may also serve as the end entity.
#[derive(Debug)]
pub(crate) struct UpstreamVerifier {
    inner: Arc<WebPkiServerVerifier>,
    pinned: Vec<CertificateDer<'static>>,
}

impl UpstreamVerifier {
    /// Verify against `roots`; a presented certificate byte-equal to one of `pinned` (the
    /// `ca_file` certificates, which are also in `roots`) is accepted as itself.
    pub(crate) fn new(
        roots: RootCertStore,
        pinned: Vec<CertificateDer<'static>>,
        provider: Arc<CryptoProvider>,
    ) -> Result<Arc<Self>, rustls::client::VerifierBuilderError> {
        let inner =
            WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider).build()?;
        Ok(Arc::new(UpstreamVerifier { inner, pinned }))
    }

    /// The exception: `end_entity` is a pinned certificate that is valid at `now` for `name`.
    fn accepts_pinned(
        &self,
        end_entity: &CertificateDer<'_>,
        name: &ServerName<'_>,
        now: UnixTime,
    ) -> bool {
        if !self
            .pinned
            .iter()
            .any(|p| p.as_ref() == end_entity.as_ref())
        {
            return false;
        }
        let Ok((_, cert)) = x509_parser::parse_x509_certificate(end_entity.as_ref()) else {
            return false;
        };
        within_validity(&cert, now) && serves_tls(&cert) && names(end_entity, &cert, name)
    }
}

impl ServerCertVerifier for UpstreamVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, Error> {
        match self.inner.verify_server_cert(
            end_entity,
            intermediates,
            server_name,
            ocsp_response,
            now,
        ) {
            Ok(verified) => Ok(verified),
            Err(Error::InvalidCertificate(_))
                if self.accepts_pinned(end_entity, server_name, now) =>
            {
                Ok(ServerCertVerified::assertion())
            }
            Err(e) => Err(e),
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        self.inner.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        self.inner.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.inner.supported_verify_schemes()
    }

    fn root_hint_subjects(&self) -> Option<&[DistinguishedName]> {
        self.inner.root_hint_subjects()
    }
}

/// notBefore <= now <= notAfter.
fn within_validity(cert: &X509Certificate<'_>, now: UnixTime) -> bool {
    i64::try_from(now.as_secs())
        .ok()
        .and_then(|secs| ASN1Time::from_timestamp(secs).ok())
        .is_some_and(|at| cert.validity().is_valid_at(at))
}

/// No extended key usage, or one that allows server authentication (as webpki requires of a leaf).
fn serves_tls(cert: &X509Certificate<'_>) -> bool {
    match cert.extended_key_usage() {
        Ok(None) => true,
        Ok(Some(eku)) => eku.value.any || eku.value.server_auth,
        Err(_) => false,
    }
}

/// The certificate names the upstream: a subjectAltName entry (webpki's matching, wildcards
/// included), or, for a certificate with no subjectAltName at all, a common name equal to the DNS
/// name, as OpenSSL's host check falls back to.
fn names(der: &CertificateDer<'_>, cert: &X509Certificate<'_>, name: &ServerName<'_>) -> bool {
    let by_san = webpki::EndEntityCert::try_from(der)
        .is_ok_and(|ee| ee.verify_is_valid_for_subject_name(name).is_ok());
    if by_san {
        return true;
    }
    let (ServerName::DnsName(dns), Ok(None)) = (name, cert.subject_alternative_name()) else {
        return false;
    };
    let wanted = dns.as_ref().trim_end_matches('.');
    cert.subject()
        .iter_common_name()
        .filter_map(|cn| cn.as_str().ok())
        .any(|cn| cn.eq_ignore_ascii_case(wanted))
}

#[cfg(test)]
mod tests {
    use super::*;
    use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair};

    /// A self-signed `CA:TRUE` certificate, as `openssl req -x509` makes one.
    fn self_signed_ca(sans: &[&str], cn: &str) -> CertificateDer<'static> {
        let mut params =
            CertificateParams::new(sans.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>())
                .unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.distinguished_name.push(DnType::CommonName, cn);
        let key = KeyPair::generate().unwrap();
        params.self_signed(&key).unwrap().der().clone()
    }

    fn verifier(ca_file: &[&CertificateDer<'static>]) -> Arc<UpstreamVerifier> {
        let mut roots = RootCertStore::empty();
        for c in ca_file {
            roots.add((*c).clone()).unwrap();
        }
        let pinned = ca_file.iter().map(|c| (*c).clone()).collect();
        UpstreamVerifier::new(roots, pinned, crate::tls::provider()).unwrap()
    }

    fn verify(v: &UpstreamVerifier, cert: &CertificateDer<'_>, name: &str) -> Result<(), Error> {
        let name = ServerName::try_from(name.to_owned()).unwrap();
        v.verify_server_cert(cert, &[], &name, &[], UnixTime::now())
            .map(|_| ())
    }

    #[test]
    fn a_pinned_self_signed_ca_certificate_is_accepted_for_its_names_only() {
        let cert = self_signed_ca(&["localhost", "127.0.0.1"], "localhost");
        let v = verifier(&[&cert]);
        assert_eq!(verify(&v, &cert, "localhost"), Ok(()));
        assert_eq!(verify(&v, &cert, "127.0.0.1"), Ok(()));
        assert!(verify(&v, &cert, "other.example").is_err());
    }

    #[test]
    fn webpki_alone_refuses_it_as_an_end_entity() {
        let cert = self_signed_ca(&["localhost"], "localhost");
        let mut roots = RootCertStore::empty();
        roots.add(cert.clone()).unwrap();
        let plain =
            WebPkiServerVerifier::builder_with_provider(Arc::new(roots), crate::tls::provider())
                .build()
                .unwrap();
        let name = ServerName::try_from("localhost").unwrap();
        let err = plain
            .verify_server_cert(&cert, &[], &name, &[], UnixTime::now())
            .map(|_| ())
            .unwrap_err();
        assert!(format!("{err:?}").contains("CaUsedAsEndEntity"), "{err:?}");
    }

    #[test]
    fn a_certificate_that_is_not_in_ca_file_is_refused() {
        let trusted = self_signed_ca(&["localhost"], "localhost");
        let other = self_signed_ca(&["localhost"], "localhost");
        let v = verifier(&[&trusted]);
        assert!(verify(&v, &other, "localhost").is_err());
    }

    #[test]
    fn an_expired_or_not_yet_valid_pinned_certificate_is_refused() {
        let key = KeyPair::generate().unwrap();
        for (from, to) in [((2001, 1, 1), (2002, 1, 1)), ((2090, 1, 1), (2091, 1, 1))] {
            let mut params = CertificateParams::new(vec!["localhost".to_owned()]).unwrap();
            params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
            params.not_before = rcgen::date_time_ymd(from.0, from.1, from.2);
            params.not_after = rcgen::date_time_ymd(to.0, to.1, to.2);
            let cert = params.self_signed(&key).unwrap().der().clone();
            let v = verifier(&[&cert]);
            let at = UnixTime::since_unix_epoch(std::time::Duration::from_secs(1_800_000_000));
            let name = ServerName::try_from("localhost").unwrap();
            assert!(v.verify_server_cert(&cert, &[], &name, &[], at).is_err());
            assert!(!v.accepts_pinned(&cert, &name, at));
        }
    }

    #[test]
    fn a_pinned_certificate_without_subject_alt_names_matches_its_common_name() {
        let cert = self_signed_ca(&[], "LocalHost");
        let v = verifier(&[&cert]);
        assert_eq!(verify(&v, &cert, "localhost"), Ok(()));
        assert!(verify(&v, &cert, "localhost.example").is_err());
        // IP addresses are never compared with the common name.
        assert!(verify(&v, &cert, "127.0.0.1").is_err());
    }

    #[test]
    fn a_pinned_certificate_restricted_to_client_auth_is_refused() {
        let mut params = CertificateParams::new(vec!["localhost".to_owned()]).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ClientAuth];
        let cert = params
            .self_signed(&KeyPair::generate().unwrap())
            .unwrap()
            .der()
            .clone();
        let v = verifier(&[&cert]);
        assert!(verify(&v, &cert, "localhost").is_err());
    }
}
