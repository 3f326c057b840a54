//! TLS for server sessions, on rustls: pure Rust, so a program that links
//! this crate loads no system TLS library at start-up (the `lockutils`
//! command starts in about a millisecond less than with OpenSSL).
//!
//! What each `sslmode` checks follows libpq:
//!
//! | `sslmode` | certificate chain | host name |
//! |---|---|---|
//! | `disable`, `prefer`, `require` without `sslrootcert` | not checked | not checked |
//! | `require` with `sslrootcert`, `verify-ca` | checked | not checked |
//! | `verify-full` | checked | checked |
//!
//! The chain is checked against `sslrootcert` when the URL gives one, else
//! against the system's trusted certificates.

use std::path::Path;
use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::WebPkiServerVerifier;
use rustls::crypto::{verify_tls12_signature, verify_tls13_signature, CryptoProvider};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{
    CertificateError, ClientConfig, DigitallySignedStruct, Error, RootCertStore, SignatureScheme,
};

use crate::url::{PgUrl, SslMode};

/// What opens a TLS session to the server, for `tokio_postgres`.
pub(crate) type Connector = tokio_postgres_rustls::MakeRustlsConnect;

/// The connector for `url`'s `sslmode` and `sslrootcert`. An error says
/// what is wrong with the certificate file and how to fix it.
pub(crate) fn connector(url: &PgUrl) -> Result<Connector, String> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let verifier: Arc<dyn ServerCertVerifier> = match (url.ssl_mode(), url.ssl_root_cert()) {
        (SslMode::Disable | SslMode::Prefer, _) | (SslMode::Require, None) => {
            Arc::new(AnyCertificate(Arc::clone(&provider)))
        }
        (mode, root) => {
            let roots = match root {
                Some(path) => roots_from(path)?,
                None => system_roots()?,
            };
            let chain =
                WebPkiServerVerifier::builder_with_provider(Arc::new(roots), Arc::clone(&provider))
                    .build()
                    .map_err(|e| format!("cannot set up TLS certificate checks: {e}"))?;
            match mode {
                SslMode::VerifyFull => chain,
                _ => Arc::new(AnyHostName(chain)),
            }
        }
    };
    let config = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("cannot set up TLS: {e}"))?
        .dangerous()
        .with_custom_certificate_verifier(verifier)
        .with_no_client_auth();
    Ok(Connector::new(config))
}

/// The certificates of the PEM file at `path`.
fn roots_from(path: &Path) -> Result<RootCertStore, String> {
    let pem = std::fs::read(path).map_err(|e| {
        format!(
            "cannot read sslrootcert {}: {e}; give a readable PEM file",
            path.display()
        )
    })?;
    let not_pem = |e: &dyn std::fmt::Display| {
        format!(
            "sslrootcert {} is not a PEM certificate: {e}; give the CA certificate in PEM form",
            path.display()
        )
    };
    let mut roots = RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(&pem) {
        let cert = cert.map_err(|e| not_pem(&e))?;
        roots.add(cert).map_err(|e| not_pem(&e))?;
    }
    if roots.is_empty() {
        return Err(not_pem(&"no CERTIFICATE block"));
    }
    Ok(roots)
}

/// The system's trusted certificates.
fn system_roots() -> Result<RootCertStore, String> {
    let found = rustls_native_certs::load_native_certs();
    let mut roots = RootCertStore::empty();
    let (added, _unusable) = roots.add_parsable_certificates(found.certs);
    if added == 0 {
        let why = found
            .errors
            .first()
            .map_or_else(|| "none found".to_owned(), ToString::to_string);
        return Err(format!(
            "sslmode=verify-full without sslrootcert needs the system's trusted \
             certificates, and none could be loaded ({why}); give sslrootcert=FILE"
        ));
    }
    Ok(roots)
}

/// Accepts any certificate (the session is still encrypted): `sslmode`
/// `prefer`, and `require` without `sslrootcert`. The handshake signatures
/// are still checked, so the server holds the key of what it presented.
#[derive(Debug)]
struct AnyCertificate(Arc<CryptoProvider>);

impl ServerCertVerifier for AnyCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
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
    ) -> Result<HandshakeSignatureValid, Error> {
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

/// Checks the chain but not the host name: `verify-ca`, and `require` with
/// `sslrootcert`. The chain is checked before the name, so a name mismatch
/// is only ever reported for a trusted chain.
#[derive(Debug)]
struct AnyHostName(Arc<WebPkiServerVerifier>);

impl ServerCertVerifier for AnyHostName {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, Error> {
        match self
            .0
            .verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now)
        {
            Err(Error::InvalidCertificate(
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
            )) => Ok(ServerCertVerified::assertion()),
            other => other,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        self.0.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        self.0.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.supported_verify_schemes()
    }
}

/// The TLS handshake's error, if that is what `e` (or an error it wraps)
/// is: a refused certificate says why, and what to change in the URL.
pub(crate) fn failure(e: &(dyn std::error::Error + 'static)) -> Option<String> {
    let mut next = Some(e);
    while let Some(err) = next {
        let tls = err.downcast_ref::<Error>().or_else(|| {
            err.downcast_ref::<std::io::Error>()
                .and_then(|io| io.get_ref())
                .and_then(|inner| inner.downcast_ref::<Error>())
        });
        if let Some(tls) = tls {
            return Some(format!(
                "TLS handshake failed: {tls}; check sslmode and sslrootcert (the server's \
                 certificate must be signed by a CA in sslrootcert, or in the system's store \
                 without it, and with verify-full must name the URL's host)"
            ));
        }
        next = err.source();
    }
    None
}
