//! API credentials, and loading them from the environment or from a JSON file.
//!
//! Secrets never appear in `Debug`/`Display` output or in error messages: a credential printed
//! into a log, a panic message or a bug report must not hand over the account. The loaders are
//! pure: the caller passes the environment lookup, or the file's bytes and mode bits, so the
//! checks (missing pieces, permissions) are testable without touching the real environment.

use core::fmt;
use std::path::{Path, PathBuf};

use ed25519_dalek::SigningKey;
use ed25519_dalek::pkcs8::DecodePrivateKey;

use crate::model::Venue;

/// One venue account's API key material.
///
/// Fields are private so the secret can only be read deliberately (through [`Credentials::secret`]
/// and friends), never by printing the struct.
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    api_key: String,
    secret: String,
    passphrase: Option<String>,
    ed25519_pem: Option<String>,
}

impl Credentials {
    /// HMAC credentials: the public API key and its secret.
    pub fn new(api_key: impl Into<String>, secret: impl Into<String>) -> Credentials {
        Credentials {
            api_key: api_key.into(),
            secret: secret.into(),
            passphrase: None,
            ed25519_pem: None,
        }
    }

    /// Adds the passphrase OKX requires with every key.
    pub fn with_passphrase(mut self, passphrase: impl Into<String>) -> Credentials {
        self.passphrase = Some(passphrase.into());
        self
    }

    /// Adds an Ed25519 private key (PKCS#8 PEM). Binance then signs with it instead of HMAC.
    pub fn with_ed25519_pem(mut self, pem: impl Into<String>) -> Credentials {
        self.ed25519_pem = Some(pem.into());
        self
    }

    /// The public API key (sent in a header; not a secret, but still shortened when printed).
    pub fn api_key(&self) -> &str {
        &self.api_key
    }

    /// The HMAC secret. Empty for a Binance key that is Ed25519-only.
    pub fn secret(&self) -> &str {
        &self.secret
    }

    /// The OKX passphrase, when configured.
    pub fn passphrase(&self) -> Option<&str> {
        self.passphrase.as_deref()
    }

    /// The Ed25519 private key as PKCS#8 PEM, when configured.
    pub fn ed25519_pem(&self) -> Option<&str> {
        self.ed25519_pem.as_deref()
    }
}

/// `"vmPU…(64 chars)"`: enough to tell keys apart in a log, not enough to use one.
fn abbreviate(key: &str) -> String {
    let head: String = key.chars().take(4).collect();
    format!("{head}…({} chars)", key.chars().count())
}

fn redacted(value: &Option<String>) -> &'static str {
    match value {
        Some(_) => "<redacted>",
        None => "None",
    }
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "Credentials {{ api_key: {:?}, secret: <redacted>, passphrase: {}, ed25519_pem: {} }}",
            abbreviate(&self.api_key),
            redacted(&self.passphrase),
            redacted(&self.ed25519_pem),
        )
    }
}

impl fmt::Display for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "api_key: {:?}, secret: <redacted>",
            abbreviate(&self.api_key)
        )?;
        if self.passphrase.is_some() {
            f.write_str(", passphrase: <redacted>")?;
        }
        if self.ed25519_pem.is_some() {
            f.write_str(", ed25519 key: <redacted>")?;
        }
        Ok(())
    }
}

/// Why credentials could not be loaded. No variant carries secret material: they name
/// variables, paths, fields and modes only.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum CredentialsError {
    /// A required environment variable is unset or empty.
    #[error("environment variable {var} is not set (or empty): {why}")]
    MissingVar { var: String, why: &'static str },
    /// A variable is set that this venue cannot use.
    #[error("environment variable {var} is set but not accepted: {why}")]
    NotAccepted { var: String, why: &'static str },
    /// A credentials file lacks a required field.
    #[error("{}: missing field `{field}`: {why}", path.display())]
    MissingField {
        path: PathBuf,
        field: &'static str,
        why: &'static str,
    },
    /// A key file is readable by group or others.
    #[error(
        "{} is readable by group or others (mode {mode:o}); a key file must be private: chmod 600 {}",
        path.display(),
        path.display()
    )]
    Permissions { path: PathBuf, mode: u32 },
    /// A credentials file is not the expected JSON. `detail` holds position and category only,
    /// never the text around the error (it could be the secret).
    #[error("{}: not a credentials file: {detail}", path.display())]
    Malformed { path: PathBuf, detail: String },
    /// The Ed25519 key is not a PKCS#8 PEM Ed25519 private key.
    #[error("{source_name}: not an Ed25519 private key in PKCS#8 PEM form (BEGIN PRIVATE KEY)")]
    BadEd25519Key { source_name: String },
}

/// What the environment says about one venue's credentials.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EnvCredentials {
    /// Key, secret and passphrase; `ed25519_pem` is never set here, because reading the key
    /// file is I/O the caller does (then [`load_ed25519_pem`] and
    /// [`Credentials::with_ed25519_pem`]).
    pub credentials: Credentials,
    /// `KEEL_<VENUE>_ED25519_KEY_FILE`, when set.
    pub ed25519_key_file: Option<PathBuf>,
}

/// The prefix of a venue's variables: `KEEL_BINANCE_SPOT`, `KEEL_OKX`, ...
pub fn env_prefix(venue: Venue) -> String {
    format!(
        "KEEL_{}",
        venue.name().to_ascii_uppercase().replace('-', "_")
    )
}

/// Reads `KEEL_<VENUE>_API_KEY`, `_API_SECRET`, `_PASSPHRASE` and `_ED25519_KEY_FILE` through
/// `lookup` (pass `|k| std::env::var(k).ok()` in the binary).
///
/// `Ok(None)` when none of the key/secret/key-file variables is set (the venue is not
/// configured). A half-configured venue is an error, not `None`, so a typo in one variable name
/// does not silently run without authentication. OKX requires the passphrase. The secret may be
/// absent only when an Ed25519 key file is given (a Binance Ed25519 key has no HMAC secret).
pub fn credentials_from_env(
    venue: Venue,
    lookup: impl Fn(&str) -> Option<String>,
) -> Result<Option<EnvCredentials>, CredentialsError> {
    let prefix = env_prefix(venue);
    let var = |suffix: &str| format!("{prefix}_{suffix}");
    let get = |name: &str| lookup(name).filter(|v| !v.is_empty());

    let key_var = var("API_KEY");
    let secret_var = var("API_SECRET");
    let pass_var = var("PASSPHRASE");
    let file_var = var("ED25519_KEY_FILE");

    let api_key = get(&key_var);
    let secret = get(&secret_var);
    let passphrase = get(&pass_var);
    let key_file = get(&file_var).map(PathBuf::from);

    if api_key.is_none() && secret.is_none() && key_file.is_none() {
        return Ok(None);
    }
    let Some(api_key) = api_key else {
        return Err(CredentialsError::MissingVar {
            var: key_var,
            why: "the secret or key file is set but the API key is not",
        });
    };
    if key_file.is_some() && !matches!(venue, Venue::BinanceSpot | Venue::BinanceUsdm) {
        return Err(CredentialsError::NotAccepted {
            var: file_var,
            why: "only Binance accepts Ed25519 keys; this venue signs with the HMAC secret",
        });
    }
    let secret = match (secret, &key_file) {
        (Some(secret), _) => secret,
        (None, Some(_)) => String::new(),
        (None, None) => {
            return Err(CredentialsError::MissingVar {
                var: secret_var,
                why: "the API key is set but its secret is not",
            });
        }
    };
    let mut credentials = Credentials::new(api_key, secret);
    match (venue, passphrase) {
        (_, Some(p)) => credentials = credentials.with_passphrase(p),
        (Venue::Okx, None) => {
            return Err(CredentialsError::MissingVar {
                var: pass_var,
                why: "OKX API keys have a passphrase and every request must carry it",
            });
        }
        (_, None) => {}
    }
    Ok(Some(EnvCredentials {
        credentials,
        ed25519_key_file: key_file,
    }))
}

/// Refuses a file that group or others can read; `mode` is the st_mode (type bits ignored).
fn check_private(path: &Path, mode: u32) -> Result<(), CredentialsError> {
    if mode & 0o077 != 0 {
        return Err(CredentialsError::Permissions {
            path: path.to_path_buf(),
            mode: mode & 0o7777,
        });
    }
    Ok(())
}

fn validate_ed25519_pem(pem: &str, source_name: &str) -> Result<(), CredentialsError> {
    // Parsing now turns a wrong file into a load-time error instead of a failure at the first
    // signed request. The parser's own error is dropped: it may quote key bytes.
    SigningKey::from_pkcs8_pem(pem)
        .map(|_| ())
        .map_err(|_| CredentialsError::BadEd25519Key {
            source_name: source_name.to_string(),
        })
}

/// Checks an Ed25519 key file the caller has read: private mode, UTF-8 PEM, an Ed25519 key.
/// Returns the PEM text for [`Credentials::with_ed25519_pem`].
pub fn load_ed25519_pem(path: &Path, bytes: &[u8], mode: u32) -> Result<String, CredentialsError> {
    check_private(path, mode)?;
    let name = path.display().to_string();
    let pem = core::str::from_utf8(bytes)
        .map_err(|_| CredentialsError::BadEd25519Key {
            source_name: name.clone(),
        })?
        .to_string();
    validate_ed25519_pem(&pem, &name)?;
    Ok(pem)
}

/// The JSON credentials file. Every field optional here so missing ones get our own message
/// (serde's messages can quote values).
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct CredentialsFile {
    api_key: Option<String>,
    secret: Option<String>,
    passphrase: Option<String>,
    ed25519_pem: Option<String>,
}

/// Parses `venue`'s credentials file the caller has read:
/// `{"api_key": "...", "secret": "...", "passphrase": "...", "ed25519_pem": "..."}`
/// (`passphrase` required for OKX; `ed25519_pem` for a Binance Ed25519 key, which then needs no
/// `secret`). `mode` is the file's st_mode; a file readable by group or others is refused
/// before its content is looked at.
pub fn credentials_from_file(
    venue: Venue,
    path: &Path,
    bytes: &[u8],
    mode: u32,
) -> Result<Credentials, CredentialsError> {
    check_private(path, mode)?;
    let file: CredentialsFile =
        serde_json::from_slice(bytes).map_err(|e| CredentialsError::Malformed {
            path: path.to_path_buf(),
            detail: format!(
                "{} at line {} column {} (expected a JSON object with string fields api_key, \
                 secret, and optionally passphrase and ed25519_pem)",
                match e.classify() {
                    serde_json::error::Category::Io => "read error",
                    serde_json::error::Category::Syntax => "JSON syntax error",
                    serde_json::error::Category::Data => "unexpected field or value type",
                    serde_json::error::Category::Eof => "unexpected end of file",
                },
                e.line(),
                e.column()
            ),
        })?;
    let missing = |field: &'static str, why: &'static str| CredentialsError::MissingField {
        path: path.to_path_buf(),
        field,
        why,
    };
    let api_key = file
        .api_key
        .filter(|k| !k.is_empty())
        .ok_or_else(|| missing("api_key", "every venue needs the API key"))?;
    let secret = match (file.secret.filter(|s| !s.is_empty()), &file.ed25519_pem) {
        (Some(secret), _) => secret,
        (None, Some(_)) => String::new(),
        (None, None) => return Err(missing("secret", "needed unless ed25519_pem is given")),
    };
    let mut credentials = Credentials::new(api_key, secret);
    match (venue, file.passphrase.filter(|p| !p.is_empty())) {
        (_, Some(passphrase)) => credentials = credentials.with_passphrase(passphrase),
        (Venue::Okx, None) => {
            return Err(missing(
                "passphrase",
                "OKX API keys have a passphrase and every request must carry it",
            ));
        }
        (_, None) => {}
    }
    if let Some(pem) = file.ed25519_pem {
        if !matches!(venue, Venue::BinanceSpot | Venue::BinanceUsdm) {
            return Err(CredentialsError::Malformed {
                path: path.to_path_buf(),
                detail: "ed25519_pem is given but only Binance accepts Ed25519 keys".to_string(),
            });
        }
        validate_ed25519_pem(&pem, &format!("{} field ed25519_pem", path.display()))?;
        credentials = credentials.with_ed25519_pem(pem);
    }
    Ok(credentials)
}
