//! The keyring's secrets: from configuration, or generated once in the data
//! directory (mode 0600) so `contrail serve` works with no setup.

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use contrail_edge::Keyring;

use crate::config::KeysConfig;
use crate::error::{Error, Result};

/// File name of the generated secret inside the data directory.
pub const SECRET_FILE: &str = "secret";

/// Where the secrets came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SecretSource {
    /// `keys.secrets` in the configuration or `CONTRAIL_KEYS_SECRETS`.
    Config,
    /// The data directory's secret file, which existed.
    DataDir,
    /// The data directory's secret file, created now.
    Generated,
}

/// Builds the keyring from configuration or the data directory's secret,
/// creating the latter if `create` and it does not exist.
pub fn keyring(keys: &KeysConfig, data: &Path, create: bool) -> Result<(Keyring, SecretSource)> {
    if !keys.secrets.is_empty() {
        let secrets = keys.secrets.iter().map(|s| s.as_bytes().to_vec()).collect();
        let ring = Keyring::new(secrets, keys.denied.iter().cloned()).map_err(Error::Config)?;
        return Ok((ring, SecretSource::Config));
    }
    let path = data.join(SECRET_FILE);
    let (secret, source) = match std::fs::read_to_string(&path) {
        Ok(text) => (text.trim().to_owned(), SecretSource::DataDir),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && create => {
            std::fs::create_dir_all(data).map_err(Error::io(format!("creating {}", data.display())))?;
            let secret = URL_SAFE_NO_PAD.encode(rand::random::<[u8; 32]>());
            let mut file = std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(&path)
                .map_err(Error::io(format!("creating {}", path.display())))?;
            file.write_all(secret.as_bytes())
                .and_then(|()| file.sync_all())
                .map_err(Error::io(format!("writing {}", path.display())))?;
            (secret, SecretSource::Generated)
        }
        Err(e) => {
            return Err(Error::Config(format!(
                "no secret configured and {} cannot be read ({e}); run `contrail serve` once, or set CONTRAIL_KEYS_SECRETS",
                path.display()
            )));
        }
    };
    let ring = Keyring::new(vec![secret.into_bytes()], keys.denied.iter().cloned()).map_err(Error::Config)?;
    Ok((ring, source))
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    #[test]
    fn a_secret_is_generated_once_with_owner_only_permissions() {
        let dir = tempfile::tempdir().unwrap();
        let keys = KeysConfig::default();
        assert!(keyring(&keys, dir.path(), false).is_err(), "no secret and not allowed to create");
        let (first, source) = keyring(&keys, dir.path(), true).unwrap();
        assert_eq!(source, SecretSource::Generated);
        let mode = std::fs::metadata(dir.path().join(SECRET_FILE)).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        let (again, source) = keyring(&keys, dir.path(), true).unwrap();
        assert_eq!(source, SecretSource::DataDir);
        assert_eq!(first.admin_token(), again.admin_token());
    }
}
