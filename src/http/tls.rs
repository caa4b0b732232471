//! TLS configuration for the HTTPS front end.
//!
//! Either loads an operator-supplied PEM certificate chain and private key, or
//! generates a self-signed certificate on first start and keeps it under
//! `<data_dir>/tls/` so that later starts present the same certificate.
//!
//! The ring crypto provider is always passed explicitly: nothing here depends on
//! a process-wide default provider being installed.

use std::fmt;
use std::fs;
use std::io::{self, BufReader, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Re-export of the rustls version used by `tokio-rustls`, so callers name the same types.
pub use tokio_rustls::rustls;

use rustls::pki_types::{CertificateDer, PrivateKeyDer};

/// Name of the directory (below the data directory) holding the generated certificate.
pub const TLS_DIR: &str = "tls";
/// File name of the generated certificate chain inside [`TLS_DIR`].
pub const CERT_FILE: &str = "cert.pem";
/// File name of the generated private key inside [`TLS_DIR`].
pub const KEY_FILE: &str = "key.pem";

/// ALPN protocols offered by the server, in order of preference.
const ALPN: [&[u8]; 2] = [b"h2", b"http/1.1"];

/// Names always put into a generated certificate besides the configured host names.
const DEFAULT_SANS: [&str; 3] = ["localhost", "127.0.0.1", "::1"];

/// Why a TLS configuration could not be built.
///
/// Messages name the file involved but never contain key material.
#[derive(Debug)]
pub enum TlsError {
    /// Reading, creating or writing a file or directory failed.
    Io {
        /// The file or directory concerned.
        path: PathBuf,
        /// The underlying error.
        source: io::Error,
    },
    /// The certificate file holds no PEM `CERTIFICATE` block.
    NoCertificate {
        /// The certificate file.
        path: PathBuf,
    },
    /// The key file holds no PKCS#8, PKCS#1 or SEC1 private key.
    NoPrivateKey {
        /// The key file.
        path: PathBuf,
    },
    /// rustls rejected the certificate/key pair or the protocol configuration.
    Rustls(rustls::Error),
    /// Generating the self-signed certificate failed.
    Generate(rcgen::Error),
    /// Only one of the certificate and key paths was given; both or neither are required.
    OnlyOnePath,
}

impl fmt::Display for TlsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TlsError::Io { path, source } => write!(f, "{}: {source}", path.display()),
            TlsError::NoCertificate { path } => {
                write!(f, "{}: no PEM certificate found", path.display())
            }
            TlsError::NoPrivateKey { path } => write!(
                f,
                "{}: no PEM private key (PKCS#8, PKCS#1 or SEC1) found",
                path.display()
            ),
            TlsError::Rustls(e) => write!(f, "invalid TLS certificate or key: {e}"),
            TlsError::Generate(e) => write!(f, "could not generate a self-signed certificate: {e}"),
            TlsError::OnlyOnePath => f.write_str(
                "a TLS certificate and a TLS key must be given together (or neither, to use a generated certificate)",
            ),
        }
    }
}

impl std::error::Error for TlsError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            TlsError::Io { source, .. } => Some(source),
            TlsError::Rustls(e) => Some(e),
            TlsError::Generate(e) => Some(e),
            TlsError::NoCertificate { .. }
            | TlsError::NoPrivateKey { .. }
            | TlsError::OnlyOnePath => None,
        }
    }
}

fn io_err(path: &Path) -> impl FnOnce(io::Error) -> TlsError + '_ {
    move |source| TlsError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Builds the server's TLS configuration.
///
/// * `cert` and `key` both given: load the PEM certificate chain and the PEM
///   private key (PKCS#8, PKCS#1 or SEC1) from those files.
/// * neither given: use `data_dir/tls/cert.pem` and `data_dir/tls/key.pem`,
///   generating a self-signed certificate on first start (SANs: `hostnames`
///   plus `localhost`, `127.0.0.1` and `::1`) and reusing it afterwards. The
///   `tls` directory is created with mode 0700 and the key file with mode 0600.
/// * only one given: [`TlsError::OnlyOnePath`].
///
/// The configuration uses the ring provider, the safe default protocol
/// versions (TLS 1.2 and 1.3) and offers ALPN `h2` and `http/1.1`.
pub fn load_or_generate(
    cert: Option<&Path>,
    key: Option<&Path>,
    data_dir: &Path,
    hostnames: &[String],
) -> Result<Arc<rustls::ServerConfig>, TlsError> {
    let (cert_path, key_path) = match (cert, key) {
        (Some(c), Some(k)) => (c.to_path_buf(), k.to_path_buf()),
        (None, None) => ensure_generated(data_dir, hostnames)?,
        _ => return Err(TlsError::OnlyOnePath),
    };
    let chain = load_certs(&cert_path)?;
    let key = load_key(&key_path)?;
    build_config(chain, key)
}

fn build_config(
    chain: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
) -> Result<Arc<rustls::ServerConfig>, TlsError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(TlsError::Rustls)?
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .map_err(TlsError::Rustls)?;
    config.alpn_protocols = ALPN.iter().map(|p| p.to_vec()).collect();
    Ok(Arc::new(config))
}

/// Loads every PEM `CERTIFICATE` block of `path`, leaf first.
fn load_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let file = fs::File::open(path).map_err(io_err(path))?;
    let certs = rustls_pemfile::certs(&mut BufReader::new(file))
        .collect::<Result<Vec<_>, _>>()
        .map_err(io_err(path))?;
    if certs.is_empty() {
        return Err(TlsError::NoCertificate {
            path: path.to_path_buf(),
        });
    }
    Ok(certs)
}

/// Loads the first PKCS#8, PKCS#1 or SEC1 private key of `path`.
fn load_key(path: &Path) -> Result<PrivateKeyDer<'static>, TlsError> {
    let file = fs::File::open(path).map_err(io_err(path))?;
    rustls_pemfile::private_key(&mut BufReader::new(file))
        .map_err(io_err(path))?
        .ok_or_else(|| TlsError::NoPrivateKey {
            path: path.to_path_buf(),
        })
}

/// Makes sure `data_dir/tls/{cert,key}.pem` exist, generating them when the
/// certificate is missing, and returns their paths.
///
/// The key is written before the certificate, each through a temporary file
/// renamed into place, so an interrupted first start never leaves a
/// certificate without its key; a leftover key without a certificate is
/// simply replaced.
fn ensure_generated(data_dir: &Path, hostnames: &[String]) -> Result<(PathBuf, PathBuf), TlsError> {
    let dir = data_dir.join(TLS_DIR);
    let cert_path = dir.join(CERT_FILE);
    let key_path = dir.join(KEY_FILE);

    if !dir.exists() {
        fs::create_dir_all(data_dir).map_err(io_err(data_dir))?;
        match fs::DirBuilder::new().mode(0o700).create(&dir) {
            Ok(()) => {}
            // Created concurrently: fine, the checks below still apply.
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(io_err(&dir)(e)),
        }
    }
    let mode = fs::metadata(&dir)
        .map_err(io_err(&dir))?
        .permissions()
        .mode();
    if mode & 0o077 != 0 {
        tracing::warn!(
            dir = %dir.display(),
            mode = format_args!("{:o}", mode & 0o777),
            "TLS directory is accessible to other users; expected mode 0700"
        );
    }

    if cert_path.exists() {
        tracing::debug!(cert = %cert_path.display(), "reusing the generated TLS certificate");
        return Ok((cert_path, key_path));
    }

    let mut sans: Vec<String> = Vec::with_capacity(hostnames.len() + DEFAULT_SANS.len());
    for name in hostnames
        .iter()
        .map(String::as_str)
        .chain(DEFAULT_SANS)
        .map(str::trim)
        .filter(|n| !n.is_empty())
    {
        if !sans.iter().any(|s| s.eq_ignore_ascii_case(name)) {
            sans.push(name.to_owned());
        }
    }
    let mut params = rcgen::CertificateParams::new(sans).map_err(TlsError::Generate)?;
    let cn = hostnames
        .iter()
        .map(|h| h.trim())
        .find(|h| !h.is_empty())
        .unwrap_or("localhost");
    params.distinguished_name = rcgen::DistinguishedName::new();
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, cn);
    params
        .distinguished_name
        .push(rcgen::DnType::OrganizationName, "ozmint self-signed");
    params.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ServerAuth];
    let key_pair = rcgen::KeyPair::generate().map_err(TlsError::Generate)?;
    let cert = params.self_signed(&key_pair).map_err(TlsError::Generate)?;

    write_new(&key_path, key_pair.serialize_pem().as_bytes(), 0o600)?;
    write_new(&cert_path, cert.pem().as_bytes(), 0o644)?;
    tracing::info!(
        cert = %cert_path.display(),
        "generated a self-signed TLS certificate"
    );
    Ok((cert_path, key_path))
}

/// Writes `contents` to `path` atomically: into a fresh temporary file created
/// with `mode` (never widened and then narrowed), synced, then renamed.
fn write_new(path: &Path, contents: &[u8], mode: u32) -> Result<(), TlsError> {
    let mut tmp_name = path.as_os_str().to_owned();
    tmp_name.push(".tmp");
    let tmp = PathBuf::from(tmp_name);
    match fs::remove_file(&tmp) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(io_err(&tmp)(e)),
    }
    let mut file = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(&tmp)
        .map_err(io_err(&tmp))?;
    file.write_all(contents).map_err(io_err(&tmp))?;
    file.sync_all().map_err(io_err(&tmp))?;
    drop(file);
    fs::rename(&tmp, path).map_err(io_err(path))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mode_of(path: &Path) -> u32 {
        fs::metadata(path).expect("metadata").permissions().mode() & 0o777
    }

    #[test]
    fn generates_private_files_and_reuses_them() {
        let dir = tempfile::tempdir().expect("tempdir");
        let hosts = vec!["ozmint.test".to_owned()];
        let config = load_or_generate(None, None, dir.path(), &hosts).expect("generate");
        assert_eq!(
            config.alpn_protocols,
            vec![b"h2".to_vec(), b"http/1.1".to_vec()]
        );

        let tls_dir = dir.path().join(TLS_DIR);
        assert_eq!(mode_of(&tls_dir), 0o700, "tls dir mode");
        assert_eq!(mode_of(&tls_dir.join(KEY_FILE)), 0o600, "key file mode");
        assert!(!tls_dir.join("key.pem.tmp").exists());
        assert!(!tls_dir.join("cert.pem.tmp").exists());

        let cert1 = fs::read(tls_dir.join(CERT_FILE)).expect("read cert");
        let key1 = fs::read(tls_dir.join(KEY_FILE)).expect("read key");
        assert!(cert1.starts_with(b"-----BEGIN CERTIFICATE-----"));

        load_or_generate(None, None, dir.path(), &hosts).expect("reuse");
        let cert2 = fs::read(tls_dir.join(CERT_FILE)).expect("read cert");
        let key2 = fs::read(tls_dir.join(KEY_FILE)).expect("read key");
        assert_eq!(cert1, cert2, "certificate must be reused");
        assert_eq!(key1, key2, "key must be reused");
    }

    #[test]
    fn loads_explicit_pem_paths() {
        let dir = tempfile::tempdir().expect("tempdir");
        let generated =
            rcgen::generate_simple_self_signed(vec!["example.test".to_owned()]).expect("rcgen");
        let cert_path = dir.path().join("chain.pem");
        let key_path = dir.path().join("private.pem");
        fs::write(&cert_path, generated.cert.pem()).expect("write cert");
        fs::write(&key_path, generated.key_pair.serialize_pem()).expect("write key");

        let config = load_or_generate(Some(&cert_path), Some(&key_path), dir.path(), &[])
            .expect("load explicit paths");
        assert_eq!(config.alpn_protocols.len(), 2);
        // Explicit paths never touch the data directory.
        assert!(!dir.path().join(TLS_DIR).exists());
    }

    #[test]
    fn one_path_only_is_an_error() {
        let dir = tempfile::tempdir().expect("tempdir");
        let p = dir.path().join("x.pem");
        assert!(matches!(
            load_or_generate(Some(&p), None, dir.path(), &[]),
            Err(TlsError::OnlyOnePath)
        ));
        assert!(matches!(
            load_or_generate(None, Some(&p), dir.path(), &[]),
            Err(TlsError::OnlyOnePath)
        ));
        assert!(!dir.path().join(TLS_DIR).exists());
    }

    #[test]
    fn bad_files_are_reported_by_name_without_key_material() {
        let dir = tempfile::tempdir().expect("tempdir");
        let generated =
            rcgen::generate_simple_self_signed(vec!["example.test".to_owned()]).expect("rcgen");
        let cert_path = dir.path().join("chain.pem");
        let key_pem = generated.key_pair.serialize_pem();
        let key_path = dir.path().join("private.pem");
        fs::write(&cert_path, generated.cert.pem()).expect("write cert");
        fs::write(&key_path, &key_pem).expect("write key");

        // Missing file.
        let missing = dir.path().join("missing.pem");
        let err = load_or_generate(Some(&missing), Some(&key_path), dir.path(), &[])
            .expect_err("missing cert");
        assert!(matches!(err, TlsError::Io { .. }));
        assert!(err.to_string().contains("missing.pem"), "{err}");

        // A key where the certificate should be: no certificate.
        let err = load_or_generate(Some(&key_path), Some(&key_path), dir.path(), &[])
            .expect_err("key as cert");
        assert!(matches!(err, TlsError::NoCertificate { .. }));
        let msg = err.to_string();
        assert!(msg.contains("private.pem"), "{msg}");
        let key_body: String = key_pem.lines().nth(1).unwrap_or_default().to_owned();
        assert!(!key_body.is_empty());
        assert!(!msg.contains(&key_body), "error message leaks key material");
        assert!(!format!("{err:?}").contains(&key_body));

        // A certificate where the key should be: no private key.
        let err = load_or_generate(Some(&cert_path), Some(&cert_path), dir.path(), &[])
            .expect_err("cert as key");
        assert!(matches!(err, TlsError::NoPrivateKey { .. }));
        assert!(err.to_string().contains("chain.pem"));

        // Mismatched certificate and key: rustls refuses the pair.
        let other =
            rcgen::generate_simple_self_signed(vec!["other.test".to_owned()]).expect("rcgen");
        let other_key = dir.path().join("other-key.pem");
        fs::write(&other_key, other.key_pair.serialize_pem()).expect("write key");
        let err = load_or_generate(Some(&cert_path), Some(&other_key), dir.path(), &[])
            .expect_err("mismatched pair");
        assert!(matches!(err, TlsError::Rustls(_)), "{err:?}");
    }
}
