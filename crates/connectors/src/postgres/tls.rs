//! TLS for PostgreSQL and Redshift connections, as libpq spells it in the URL: `sslmode`
//! (`disable`, `prefer` — libpq's default —, `require`, `verify-ca`, `verify-full`),
//! `sslrootcert` (a PEM file, or `system` for the operating system's roots), and a client
//! certificate (`sslcert`, `sslkey`). The driver does not know the last three nor the two verify
//! modes: [`split`] takes them out of the URL and [`TlsSettings::connector`] builds the rustls
//! configuration they describe.

use crate::{ConnectorError, Result};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, SignatureScheme};
use std::path::PathBuf;
use std::sync::Arc;

/// How a connection uses TLS.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SslMode {
    /// Plain TCP.
    Disable,
    /// TLS when the server offers it, plain otherwise; the certificate is not checked.
    Prefer,
    /// TLS or no connection; the certificate is not checked (unless `sslrootcert` is given:
    /// then as `verify-ca`, like libpq).
    Require,
    /// TLS, the certificate signed by a trusted root; its host name is not checked.
    VerifyCa,
    /// TLS, the certificate signed by a trusted root and naming the host connected to.
    VerifyFull,
}

impl SslMode {
    fn parse(v: &str) -> Option<SslMode> {
        Some(match v {
            "disable" => SslMode::Disable,
            "allow" | "prefer" => SslMode::Prefer,
            "require" => SslMode::Require,
            "verify-ca" => SslMode::VerifyCa,
            "verify-full" => SslMode::VerifyFull,
            _ => return None,
        })
    }

    /// libpq's spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            SslMode::Disable => "disable",
            SslMode::Prefer => "prefer",
            SslMode::Require => "require",
            SslMode::VerifyCa => "verify-ca",
            SslMode::VerifyFull => "verify-full",
        }
    }
}

/// Where trusted roots come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Roots {
    /// The operating system's store.
    System,
    /// A PEM file of CA certificates.
    File(PathBuf),
}

/// A URL's TLS settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsSettings {
    /// The mode.
    pub mode: SslMode,
    /// `sslrootcert`.
    pub roots: Option<Roots>,
    /// `sslcert` and `sslkey`.
    pub client: Option<(PathBuf, PathBuf)>,
}

/// Take the TLS parameters out of a URL's query: (the URL the driver parses, the settings).
/// `default` is the mode when the URL gives none. Unknown `sslmode` values are an error naming
/// the role's key.
pub fn split(url: &str, role: &str, default: SslMode) -> Result<(String, TlsSettings)> {
    let mut settings = TlsSettings {
        mode: default,
        roots: None,
        client: None,
    };
    let Some((base, query)) = url.split_once('?') else {
        return Ok((url.to_string(), settings));
    };
    let (mut cert, mut key) = (None, None);
    let mut kept = Vec::new();
    let mut seen = std::collections::BTreeSet::new();
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        // Keys are decoded as the driver and libpq decode them (`sslm%6Fde` is `sslmode`).
        let k = mirage_core::display::percent_decode(k);
        let v = mirage_core::display::percent_decode(v);
        let k = k.as_str();
        if matches!(k, "sslmode" | "sslrootcert" | "sslcert" | "sslkey")
            && !seen.insert(k.to_string())
        {
            return Err(ConnectorError::Invalid(format!(
                "{role}.url: {k} is given twice; give it once"
            )));
        }
        match k {
            "sslmode" => {
                settings.mode = SslMode::parse(&v).ok_or_else(|| {
                    ConnectorError::Invalid(format!(
                        "{role}.url: sslmode={v} is not one of disable, allow, prefer, require, \
                         verify-ca, verify-full"
                    ))
                })?;
            }
            "sslrootcert" => {
                settings.roots = Some(if v == "system" {
                    Roots::System
                } else {
                    Roots::File(PathBuf::from(v))
                })
            }
            "sslcert" => cert = Some(PathBuf::from(v)),
            "sslkey" => key = Some(PathBuf::from(v)),
            _ => kept.push(pair),
        }
    }
    settings.client = match (cert, key) {
        (Some(c), Some(k)) => Some((c, k)),
        (None, None) => None,
        _ => {
            return Err(ConnectorError::Invalid(format!(
                "{role}.url: a client certificate needs both sslcert and sslkey"
            )));
        }
    };
    let url = if kept.is_empty() {
        base.to_string()
    } else {
        format!("{base}?{}", kept.join("&"))
    };
    Ok((url, settings))
}

impl TlsSettings {
    /// What the driver is told: no TLS, TLS if offered, or TLS required.
    pub fn driver_mode(&self) -> tokio_postgres::config::SslMode {
        match self.mode {
            SslMode::Disable => tokio_postgres::config::SslMode::Disable,
            SslMode::Prefer => tokio_postgres::config::SslMode::Prefer,
            _ => tokio_postgres::config::SslMode::Require,
        }
    }

    /// The certificate check this mode asks for.
    fn check(&self) -> Check {
        match (self.mode, &self.roots) {
            (SslMode::VerifyFull, _) => Check::Full,
            (SslMode::VerifyCa, _) | (SslMode::Require, Some(_)) => Check::Ca,
            _ => Check::None,
        }
    }

    /// The same settings for libpq (`pg_dump`, `pg_restore`): `sslmode`, `sslrootcert`,
    /// `sslcert`, `sslkey`. The system's roots are named by their bundle file (libpq before 16
    /// does not know `system`), and so is the default when mirage fell back to them.
    pub fn libpq(&self) -> Vec<(&'static str, String)> {
        let mut out = vec![("sslmode", self.mode.as_str().to_string())];
        let default_file = default_root_file();
        let roots = match (&self.roots, &default_file) {
            (Some(r), _) => Some(r.clone()),
            (None, Some(f)) => Some(Roots::File(f.clone())),
            (None, None) if self.check() != Check::None => Some(Roots::System),
            (None, None) => None,
        };
        match roots {
            Some(Roots::File(p)) => out.push(("sslrootcert", p.display().to_string())),
            Some(Roots::System) => out.push((
                "sslrootcert",
                system_bundle().map_or_else(|| "system".into(), |p| p.display().to_string()),
            )),
            None => {}
        }
        if let Some((c, k)) = &self.client {
            out.push(("sslcert", c.display().to_string()));
            out.push(("sslkey", k.display().to_string()));
        }
        out
    }

    /// The rustls connector for these settings. `role` names the end in errors.
    pub fn connector(&self, role: &str) -> Result<tokio_postgres_rustls::MakeRustlsConnect> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut roots = rustls::RootCertStore::empty();
        // libpq's default root file, when there is one; else the system's roots.
        let default_roots = default_root_file().map(Roots::File);
        match self.roots.as_ref().or(default_roots.as_ref()) {
            None | Some(Roots::System) => {
                for cert in rustls_native_certs::load_native_certs().certs {
                    let _ = roots.add(cert);
                }
            }
            Some(Roots::File(path)) => {
                let certs = CertificateDer::pem_file_iter(path)
                    .and_then(|i| i.collect::<std::result::Result<Vec<_>, _>>())
                    .map_err(|e| {
                        ConnectorError::Invalid(format!(
                            "{role}.url: sslrootcert {}: {}; give a PEM file of CA certificates \
                             (or sslrootcert=system)",
                            path.display(),
                            pem_problem(&e)
                        ))
                    })?;
                if certs.is_empty() {
                    return Err(ConnectorError::Invalid(format!(
                        "{role}.url: sslrootcert {}: holds no certificate (a -----BEGIN \
                         CERTIFICATE----- block); give a PEM file of CA certificates (or \
                         sslrootcert=system)",
                        path.display()
                    )));
                }
                for cert in certs {
                    roots.add(cert).map_err(|e| {
                        ConnectorError::Invalid(format!(
                            "{role}.url: sslrootcert {}: {e}",
                            path.display()
                        ))
                    })?;
                }
            }
        }
        let builder = rustls::ClientConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .map_err(|e| ConnectorError::Invalid(format!("TLS setup: {e}")))?;
        let check = self.check();
        let builder = if check == Check::Full {
            builder.with_root_certificates(roots)
        } else {
            let inner = if roots.is_empty() {
                None
            } else {
                Some(
                    rustls::client::WebPkiServerVerifier::builder_with_provider(
                        Arc::new(roots),
                        provider.clone(),
                    )
                    .build()
                    .map_err(|e| ConnectorError::Invalid(format!("TLS setup: {e}")))?,
                )
            };
            if check == Check::Ca && inner.is_none() {
                return Err(ConnectorError::Invalid(format!(
                    "{role}.url: sslmode={} needs trusted roots: give sslrootcert=<CA file> \
                     (or sslrootcert=system)",
                    self.mode.as_str()
                )));
            }
            builder
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(Lenient {
                    inner: inner.filter(|_| check == Check::Ca),
                    provider,
                }))
        };
        let config = match &self.client {
            None => builder.with_no_client_auth(),
            Some((cert, key)) => {
                key_is_private(key).map_err(|(why, fix)| {
                    ConnectorError::Invalid(format!(
                        "{role}.url: sslkey {}: {why}; {fix}",
                        key.display()
                    ))
                })?;
                let chain = CertificateDer::pem_file_iter(cert)
                    .and_then(|i| i.collect::<std::result::Result<Vec<_>, _>>())
                    .map_err(|e| {
                        ConnectorError::Invalid(format!(
                            "{role}.url: sslcert {}: {}; give the client certificate as PEM",
                            cert.display(),
                            pem_problem(&e)
                        ))
                    })?;
                if chain.is_empty() {
                    return Err(ConnectorError::Invalid(format!(
                        "{role}.url: sslcert {}: holds no certificate (a -----BEGIN \
                         CERTIFICATE----- block); give the client certificate as PEM",
                        cert.display()
                    )));
                }
                let key = PrivateKeyDer::from_pem_file(key).map_err(|e| {
                    ConnectorError::Invalid(format!(
                        "{role}.url: sslkey {}: {}; give the certificate's private key as PEM",
                        key.display(),
                        pem_problem(&e)
                    ))
                })?;
                builder.with_client_auth_cert(chain, key).map_err(|e| {
                    let why = match e {
                        rustls::Error::InconsistentKeys(_) => {
                            "the key in sslkey is not the private key of the certificate in \
                             sslcert; give the matching pair"
                                .to_string()
                        }
                        e => e.to_string(),
                    };
                    ConnectorError::Invalid(format!("{role}.url: sslcert/sslkey: {why}"))
                })?
            }
        };
        Ok(tokio_postgres_rustls::MakeRustlsConnect::new(config))
    }
}

/// What is wrong with a PEM file, in words.
fn pem_problem(e: &rustls::pki_types::pem::Error) -> String {
    use rustls::pki_types::pem::Error;
    match e {
        Error::NoItemsFound => "holds no PEM item of that kind (a -----BEGIN …----- block)".into(),
        Error::Io(e) => e.to_string(),
        e => format!("is not valid PEM ({e:?})"),
    }
}

/// libpq's default root file, `~/.postgresql/root.crt`, when it exists.
fn default_root_file() -> Option<PathBuf> {
    std::env::var_os("HOME")
        .map(|h| PathBuf::from(h).join(".postgresql/root.crt"))
        .filter(|p| p.is_file())
}

/// The system's CA bundle file: `$SSL_CERT_FILE`, else where the usual distributions keep it.
fn system_bundle() -> Option<PathBuf> {
    std::env::var_os("SSL_CERT_FILE")
        .map(PathBuf::from)
        .into_iter()
        .chain(
            [
                "/etc/ssl/certs/ca-certificates.crt",
                "/etc/pki/tls/certs/ca-bundle.crt",
                "/etc/ssl/ca-bundle.pem",
                "/etc/ssl/cert.pem",
            ]
            .map(PathBuf::from),
        )
        .find(|p| p.is_file())
}

/// A client key file as libpq accepts it: readable by its owner only (0600), or also by the
/// group when root owns it (0640).
/// `Err((why, fix))` when the key file is missing, not a file, or readable by others.
fn key_is_private(path: &std::path::Path) -> std::result::Result<(), (String, &'static str)> {
    use std::os::unix::fs::MetadataExt;
    let meta = std::fs::metadata(path).map_err(|e| {
        (
            e.to_string(),
            "give the path of the client certificate's key",
        )
    })?;
    if !meta.is_file() {
        return Err((
            "is not a file".into(),
            "give the path of the client certificate's key",
        ));
    }
    let mode = meta.mode() & 0o777;
    let allowed = if meta.uid() == 0 { 0o640 } else { 0o600 };
    if mode & !allowed != 0 {
        return Err((
            format!("others can read it (mode {mode:o})"),
            "chmod 0600 it (libpq refuses it too)",
        ));
    }
    Ok(())
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Check {
    None,
    Ca,
    Full,
}

/// `prefer`/`require` (no check of the certificate, as libpq) and `verify-ca` (the chain is
/// checked, not the host name). Handshake signatures are always verified.
#[derive(Debug)]
struct Lenient {
    inner: Option<Arc<rustls::client::WebPkiServerVerifier>>,
    provider: Arc<rustls::crypto::CryptoProvider>,
}

impl ServerCertVerifier for Lenient {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> std::result::Result<ServerCertVerified, rustls::Error> {
        let Some(inner) = &self.inner else {
            return Ok(ServerCertVerified::assertion());
        };
        match inner.verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now) {
            Err(rustls::Error::InvalidCertificate(
                rustls::CertificateError::NotValidForName
                | rustls::CertificateError::NotValidForNameContext { .. },
            )) => Ok(ServerCertVerified::assertion()),
            other => other,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tls_parameters_leave_the_url_and_keep_the_rest() {
        let (url, s) = split(
            "postgres://u@h:5432/db?sslmode=verify-full&application_name=x&sslrootcert=%2Ftmp%2Fca.pem&sslcert=/c.pem&sslkey=/k.pem",
            "source",
            SslMode::Prefer,
        )
        .unwrap();
        assert_eq!(url, "postgres://u@h:5432/db?application_name=x");
        assert_eq!(s.mode, SslMode::VerifyFull);
        assert_eq!(s.roots, Some(Roots::File("/tmp/ca.pem".into())));
        assert_eq!(s.client, Some(("/c.pem".into(), "/k.pem".into())));
        let (url, s) = split("postgres://u@h/db", "source", SslMode::Prefer).unwrap();
        assert_eq!(
            (url.as_str(), s.mode),
            ("postgres://u@h/db", SslMode::Prefer)
        );
        let e = split(
            "postgres://u@h/db?sslmode=strict",
            "destination",
            SslMode::Prefer,
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("destination.url: sslmode=strict"), "{e}");
        assert!(
            split(
                "postgres://u@h/db?sslcert=/c.pem",
                "source",
                SslMode::Prefer
            )
            .is_err()
        );
        let (_, s) = split(
            "postgres://u@h/db?sslmode=require&sslrootcert=system",
            "s",
            SslMode::Prefer,
        )
        .unwrap();
        assert_eq!(
            s.check(),
            Check::Ca,
            "require with roots checks the chain, as libpq"
        );
        assert_eq!(s.libpq()[0], ("sslmode", "require".to_string()));
    }
}
