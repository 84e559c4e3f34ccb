//! The rustls client side every TLS-speaking probe shares (HTTPS, gRPC over TLS, H2PING).
//!
//! * Crypto is rustls' `ring` provider, passed explicitly: no process-wide default provider is
//!   installed or assumed, so this crate cannot clash with another that installs one.
//! * Verification uses the system's trust store (`rustls-native-certs`, loaded once per
//!   process: parsing the bundle costs milliseconds, a probe must not pay it every interval).
//! * `tls_skip_verify` accepts any certificate chain and name, as Go's `InsecureSkipVerify`
//!   does, but still checks the handshake signatures, so the peer must hold the key of the
//!   certificate it sent.

use std::sync::{Arc, OnceLock};

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{ring, verify_tls12_signature, verify_tls13_signature, CryptoProvider};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{
    CertificateError, ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme,
};
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;
use tokio_rustls::TlsConnector;

/// ALPN for HTTPS probes: HTTP/2 when the server offers it, as Go's transport does.
pub(super) const ALPN_HTTP: &[&[u8]] = &[b"h2", b"http/1.1"];
/// ALPN for gRPC and H2PING: HTTP/2 only.
pub(super) const ALPN_H2: &[&[u8]] = &[b"h2"];

fn provider() -> Arc<CryptoProvider> {
    static PROVIDER: OnceLock<Arc<CryptoProvider>> = OnceLock::new();
    PROVIDER
        .get_or_init(|| Arc::new(ring::default_provider()))
        .clone()
}

/// The system trust store, loaded once. Unreadable entries are skipped (as Go does); an
/// empty store is an error every verifying probe reports.
fn system_roots() -> Result<Arc<RootCertStore>, String> {
    static ROOTS: OnceLock<Result<Arc<RootCertStore>, String>> = OnceLock::new();
    ROOTS
        .get_or_init(|| {
            let found = rustls_native_certs::load_native_certs();
            let mut roots = RootCertStore::empty();
            roots.add_parsable_certificates(found.certs);
            if roots.is_empty() {
                tracing::warn!(
                    errors = found.errors.len(),
                    "no system root certificates found"
                );
                return Err("tls: no trusted root certificates found on this system".to_owned());
            }
            Ok(Arc::new(roots))
        })
        .clone()
}

/// A client config for one probe: verified against system roots, or `skip_verify`.
pub(super) fn client_config(
    skip_verify: bool,
    alpn: &[&[u8]],
) -> Result<Arc<ClientConfig>, String> {
    let builder = ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("tls: {e}"))?;
    let mut config = if skip_verify {
        builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(SkipVerify(provider())))
            .with_no_client_auth()
    } else {
        builder
            .with_root_certificates(system_roots()?)
            .with_no_client_auth()
    };
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    Ok(Arc::new(config))
}

/// Runs the TLS handshake on `stream`, naming `server_name` (SNI and the name verified;
/// an IP address, bracketed or not, is verified against the certificate's IP SANs).
pub(super) async fn connect(
    stream: TcpStream,
    server_name: &str,
    config: Arc<ClientConfig>,
) -> Result<TlsStream<TcpStream>, String> {
    let bare = server_name.trim_start_matches('[').trim_end_matches(']');
    let name = ServerName::try_from(bare.to_owned())
        .map_err(|e| format!("tls: invalid server name {server_name:?}: {e}"))?;
    TlsConnector::from(config)
        .connect(name, stream)
        .await
        .map_err(|e| handshake_error(&e))
}

/// A failed handshake, worded as Go's `crypto/tls` words the common cases.
fn handshake_error(e: &std::io::Error) -> String {
    let Some(err) = e
        .get_ref()
        .and_then(|inner| inner.downcast_ref::<rustls::Error>())
    else {
        return format!("tls: {}", super::consul_text::io_error(e));
    };
    let x509 = match err {
        rustls::Error::InvalidCertificate(CertificateError::UnknownIssuer) => {
            "certificate signed by unknown authority".to_owned()
        }
        rustls::Error::InvalidCertificate(
            CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
        ) => "certificate is not valid for the requested name".to_owned(),
        rustls::Error::InvalidCertificate(
            CertificateError::Expired
            | CertificateError::ExpiredContext { .. }
            | CertificateError::NotValidYet
            | CertificateError::NotValidYetContext { .. },
        ) => "certificate has expired or is not yet valid".to_owned(),
        other => return format!("tls: {other}"),
    };
    format!("tls: failed to verify certificate: x509: {x509}")
}

/// Go's `InsecureSkipVerify`: any chain, any name; handshake signatures still checked.
#[derive(Debug)]
struct SkipVerify(Arc<CryptoProvider>);

impl ServerCertVerifier for SkipVerify {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}
