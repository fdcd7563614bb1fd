//! TLS with certificates made at test time (rcgen): an HTTPS listener with HTTP/2 by ALPN, an https
//! upstream behind a private CA, an upstream with an untrusted certificate (502, kind="tls"), an
//! upstream whose self-signed CA:TRUE certificate is itself the `ca_file`, and a listener certificate
//! rotated by SIGHUP and seen by the next handshake.

use crate::support;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rcgen::{BasicConstraints, CertificateParams, CertifiedKey, IsCa, KeyPair};
use rustls_pki_types::{CertificateDer, ServerName};
use tokio::net::TcpStream;

use crate::support::{Gate, Logged, Upstream};

/// A private CA and a leaf for `localhost`/127.0.0.1 signed by it.
struct Pki {
    ca_pem: String,
    leaf: CertifiedKey,
}

fn ca() -> (rcgen::Certificate, KeyPair) {
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "corsgate test CA");
    let key = KeyPair::generate().unwrap();
    (params.self_signed(&key).unwrap(), key)
}

fn pki() -> Pki {
    let (ca_cert, ca_key) = ca();
    let params = CertificateParams::new(vec!["localhost".into(), "127.0.0.1".into()]).unwrap();
    let key = KeyPair::generate().unwrap();
    let cert = params.signed_by(&key, &ca_cert, &ca_key).unwrap();
    Pki {
        ca_pem: ca_cert.pem(),
        leaf: CertifiedKey {
            cert,
            key_pair: key,
        },
    }
}

fn write(dir: &Path, name: &str, body: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, body).unwrap();
    p
}

/// Write the leaf's cert and key into `dir` as cert.pem / key.pem (replacing atomically).
fn install_leaf(dir: &Path, pki: &Pki) -> (PathBuf, PathBuf) {
    let cert = write(dir, "cert.pem.tmp", &pki.leaf.cert.pem());
    let key = write(dir, "key.pem.tmp", &pki.leaf.key_pair.serialize_pem());
    let (c, k) = (dir.join("cert.pem"), dir.join("key.pem"));
    std::fs::rename(cert, &c).unwrap();
    std::fs::rename(key, &k).unwrap();
    (c, k)
}

fn https_client(ca_pem: &str) -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .use_rustls_tls()
        .tls_built_in_root_certs(false)
        .add_root_certificate(reqwest::Certificate::from_pem(ca_pem.as_bytes()).unwrap())
        .timeout(support::PATIENCE)
        .build()
        .unwrap()
}

fn tls_config(dir: &Path, pki: &Pki, upstream_url: &str, extra_upstream: &str) -> String {
    let (cert, key) = install_leaf(dir, pki);
    format!(
        r#"
[server]
listen = "127.0.0.1:0"
tls = {{ cert = "{}", key = "{}" }}

[log]
format = "json"

[upstreams.up]
url = "{upstream_url}"
timeout = "5s"
{extra_upstream}

[policies.p]
allowed_origins = ["https://app.example"]
allowed_methods = ["GET", "PUT"]
allowed_headers = ["content-type"]

[[routes]]
name = "all"
upstream = "up"
policy = "p"
"#,
        cert.display(),
        key.display()
    )
}

/// The recording upstream over HTTPS, with `pki`'s leaf.
async fn https_upstream(dir: &Path, pki: &Pki) -> Upstream {
    let config = corsgate::testing::server_config(
        &write(dir, "upstream-cert.pem", &pki.leaf.cert.pem()),
        &write(dir, "upstream-key.pem", &pki.leaf.key_pair.serialize_pem()),
    )
    .unwrap();
    Upstream::start_tls(config).await
}

#[tokio::test(flavor = "multi_thread")]
async fn https_listener_answers_preflights_and_forwards_over_h2_by_alpn() {
    let up = Upstream::start().await;
    let dir = tempfile::tempdir().unwrap();
    let pki = pki();
    let gate = Gate::start(&tls_config(dir.path(), &pki, &up.url(), "")).await;
    let base = format!("https://localhost:{}", gate.addr.port());
    let client = https_client(&pki.ca_pem);

    let pre = client
        .request(reqwest::Method::OPTIONS, format!("{base}/x"))
        .header("origin", "https://app.example")
        .header("access-control-request-method", "PUT")
        .header("access-control-request-headers", "content-type")
        .send()
        .await
        .unwrap();
    assert_eq!(pre.status(), 204);
    assert_eq!(pre.version(), http::Version::HTTP_2, "ALPN picked h2");
    assert_eq!(
        pre.headers()["access-control-allow-origin"],
        "https://app.example"
    );
    assert_eq!(up.hits(), 0, "the preflight was answered by corsgate");

    let res = client
        .put(format!("{base}/x"))
        .header("origin", "https://app.example")
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(res.version(), http::Version::HTTP_2);
    assert_eq!(
        res.headers()["access-control-allow-origin"],
        "https://app.example"
    );
    let seen = up.last();
    assert_eq!(seen.headers["x-forwarded-proto"], "https");

    // Same-origin is judged with the https scheme on a TLS listener.
    let same = client
        .get(format!("{base}/x"))
        .header("origin", base.as_str())
        .send()
        .await
        .unwrap();
    assert_eq!(same.status(), 200);
    assert!(same.headers().get("access-control-allow-origin").is_none());
    gate.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn https_upstream_behind_a_private_ca_works_and_an_untrusted_one_is_a_502() {
    let up_pki = pki();
    let dir = tempfile::tempdir().unwrap();
    let upstream = https_upstream(dir.path(), &up_pki).await;
    let ca = write(dir.path(), "upstream-ca.pem", &up_pki.ca_pem);
    let url = upstream.url();

    // With ca_file: verified, SNI localhost, 200.
    let listener_pki = pki();
    let trusted = tls_config(
        dir.path(),
        &listener_pki,
        &url,
        &format!("ca_file = \"{}\"", ca.display()),
    );
    let gate = Gate::start(&trusted).await;
    let client = https_client(&listener_pki.ca_pem);
    let base = format!("https://localhost:{}", gate.addr.port());
    let res = client
        .get(format!("{base}/x"))
        .header("origin", "https://app.example")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(res.text().await.unwrap(), "hello from upstream\n");
    assert_eq!(upstream.hits(), 1, "the request arrived over TLS");
    assert_eq!(upstream.last().headers["x-forwarded-proto"], "https");
    gate.stop().await;

    // Without it the upstream's CA is unknown: 502, with CORS headers, counted as kind="tls".
    let gate = Gate::start(&tls_config(dir.path(), &listener_pki, &url, "")).await;
    let base = format!("https://localhost:{}", gate.addr.port());
    let res = client
        .get(format!("{base}/x"))
        .header("origin", "https://app.example")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 502);
    assert_eq!(
        res.headers()["access-control-allow-origin"],
        "https://app.example"
    );
    assert_eq!(
        gate.metric(
            "corsgate_upstream_errors_total",
            &[("upstream", "up"), ("kind", "tls")]
        ),
        Some(1.0)
    );
    gate.stop().await;
}

/// A self-signed certificate marked CA:TRUE, as `openssl req -x509` makes one, for `names`.
fn self_signed_ca(names: &[&str]) -> CertifiedKey {
    let sans = names.iter().map(|n| (*n).to_owned()).collect::<Vec<_>>();
    let mut params = CertificateParams::new(sans).unwrap();
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, names[0]);
    let key_pair = KeyPair::generate().unwrap();
    let cert = params.self_signed(&key_pair).unwrap();
    CertifiedKey { cert, key_pair }
}

/// One request through a gate whose upstream trusts `ca_pem` (the file's whole content).
async fn status_through(dir: &Path, upstream: &Upstream, ca_pem: &str) -> (u16, Option<f64>) {
    let ca = write(dir, "pinned-ca.pem", ca_pem);
    let listener_pki = pki();
    let toml = tls_config(
        dir,
        &listener_pki,
        &upstream.url(),
        &format!("ca_file = \"{}\"", ca.display()),
    );
    let gate = Gate::start(&toml).await;
    let res = https_client(&listener_pki.ca_pem)
        .get(format!("https://localhost:{}/x", gate.addr.port()))
        .header("origin", "https://app.example")
        .send()
        .await
        .unwrap();
    let tls_errors = gate.metric(
        "corsgate_upstream_errors_total",
        &[("upstream", "up"), ("kind", "tls")],
    );
    gate.stop().await;
    (res.status().as_u16(), tls_errors)
}

#[tokio::test(flavor = "multi_thread")]
async fn a_self_signed_ca_certificate_in_ca_file_is_accepted_as_the_upstreams_own_certificate() {
    let dir = tempfile::tempdir().unwrap();
    let own = self_signed_ca(&["localhost", "127.0.0.1"]);
    let config = corsgate::testing::server_config(
        &write(dir.path(), "up-cert.pem", &own.cert.pem()),
        &write(dir.path(), "up-key.pem", &own.key_pair.serialize_pem()),
    )
    .unwrap();
    let upstream = Upstream::start_tls(config).await;

    // The certificate itself, pinned: 200, and the request arrived.
    assert_eq!(
        status_through(dir.path(), &upstream, &own.cert.pem())
            .await
            .0,
        200
    );
    assert_eq!(upstream.hits(), 1);

    // Another self-signed CA certificate for the same names: still refused.
    let other = self_signed_ca(&["localhost", "127.0.0.1"]);
    assert_eq!(
        status_through(dir.path(), &upstream, &other.cert.pem()).await,
        (502, Some(1.0))
    );
    assert_eq!(upstream.hits(), 1);

    // The right certificate under a name it does not carry: refused.
    let elsewhere = self_signed_ca(&["elsewhere.example"]);
    let config = corsgate::testing::server_config(
        &write(dir.path(), "else-cert.pem", &elsewhere.cert.pem()),
        &write(
            dir.path(),
            "else-key.pem",
            &elsewhere.key_pair.serialize_pem(),
        ),
    )
    .unwrap();
    let misnamed = Upstream::start_tls(config).await;
    assert_eq!(
        status_through(dir.path(), &misnamed, &elsewhere.cert.pem()).await,
        (502, Some(1.0))
    );
    assert_eq!(misnamed.hits(), 0);
}

/// The leaf certificate the server presents in a fresh handshake.
async fn presented_certificate(addr: SocketAddr, ca_pem: &[&str]) -> CertificateDer<'static> {
    let mut roots = rustls::RootCertStore::empty();
    for pem in ca_pem {
        for c in rustls_pki_types::pem::PemObject::pem_slice_iter(pem.as_bytes()) {
            roots.add(c.unwrap()).unwrap();
        }
    }
    let config = rustls::ClientConfig::builder_with_provider(corsgate::testing::provider())
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    let tcp = TcpStream::connect(addr).await.unwrap();
    let tls = connector
        .connect(ServerName::try_from("localhost").unwrap(), tcp)
        .await
        .unwrap();
    tls.get_ref().1.peer_certificates().unwrap()[0]
        .clone()
        .into_owned()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_listener_certificate_rotated_by_sighup_is_seen_by_the_next_handshake() {
    let up = Upstream::start().await;
    let dir = tempfile::tempdir().unwrap();
    let first = pki();
    let path = write(
        dir.path(),
        "corsgate.toml",
        &tls_config(dir.path(), &first, &up.url(), ""),
    );
    let mut proxy = Logged::start(&path);
    assert_eq!(proxy.scheme, "https");
    let cas = [first.ca_pem.as_str()];
    let before = presented_certificate(proxy.addr, &cas).await;
    assert_eq!(before.as_ref(), first.leaf.cert.der().as_ref());

    // A broken certificate file keeps the old one serving.
    write(
        dir.path(),
        "cert.pem",
        "-----BEGIN CERTIFICATE-----\nnot base64\n",
    );
    let (ok, lines) = proxy.hup();
    assert!(!ok, "{lines:#?}");
    assert!(proxy.alive());
    assert_eq!(
        presented_certificate(proxy.addr, &cas).await.as_ref(),
        first.leaf.cert.der().as_ref()
    );

    // A new pair is picked up by the next handshake.
    let second = pki();
    install_leaf(dir.path(), &second);
    let (ok, lines) = proxy.hup();
    assert!(ok, "{lines:#?}");
    let after = presented_certificate(proxy.addr, &[&first.ca_pem, &second.ca_pem]).await;
    assert_eq!(after.as_ref(), second.leaf.cert.der().as_ref());
}
