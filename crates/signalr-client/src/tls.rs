//! TLS for `https://` and `wss://` hubs: one rustls configuration serves negotiate, Server-Sent
//! Events, Long Polling (through reqwest) and WebSockets (through tokio-tungstenite).

use std::sync::{Arc, OnceLock};

use rustls::pki_types::CertificateDer;
use rustls::{ClientConfig, RootCertStore};

/// The configuration used when the builder adds no certificate authority: Mozilla's roots
/// (the `webpki-roots` bundle), built once per process.
fn with_builtin_roots() -> Arc<ClientConfig> {
    static CONFIG: OnceLock<Arc<ClientConfig>> = OnceLock::new();
    CONFIG
        .get_or_init(|| {
            config(RootCertStore {
                roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
            })
        })
        .clone()
}

/// The configuration that trusts Mozilla's roots and `extra_roots`; an error names the
/// certificate that is not a usable authority.
pub(crate) fn client_config(
    extra_roots: &[CertificateDer<'static>],
) -> Result<Arc<ClientConfig>, String> {
    if extra_roots.is_empty() {
        return Ok(with_builtin_roots());
    }
    let mut roots = RootCertStore {
        roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
    };
    for (index, certificate) in extra_roots.iter().enumerate() {
        roots
            .add(certificate.clone())
            .map_err(|error| format!("root certificate {} is not usable: {error}", index + 1))?;
    }
    Ok(config(roots))
}

/// TLS 1.2 and 1.3 with the aws-lc-rs provider (post-quantum key exchange preferred), no client
/// certificate, and no ALPN (HTTP/1.1, which
/// WebSockets, Server-Sent Events and Long Polling all use).
fn config(roots: RootCertStore) -> Arc<ClientConfig> {
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let config = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("the aws-lc-rs provider supports TLS 1.2 and 1.3")
        .with_root_certificates(roots)
        .with_no_client_auth();
    Arc::new(config)
}
