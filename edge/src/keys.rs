//! Write, query and admin keys: minted and verified from a secret, with no lookup.
//!
//! `ck_<project>_<tag>` (write) and `cq_<project>_<tag>` (query), where `tag` is the
//! base64url (no padding) of the first 16 bytes of HMAC-SHA256(secret, kind ‖ project),
//! `kind` being the ASCII bytes `write` or `query`. The admin token is `ca_<tag>` with
//! HMAC-SHA256(secret, `admin`). Because the tag is a MAC, any edge node holding
//! the secret can verify a key without a database round trip; comparison is
//! constant-time so the tag cannot be guessed byte by byte.
//!
//! Rotation: the keyring holds a list of secrets. Keys are minted with the first
//! and accepted under any, so a new secret can be put first while keys minted
//! under the old one keep working until it is removed. Single keys are revoked
//! by the deny list.

use std::collections::HashSet;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use subtle::ConstantTimeEq;

use crate::project::ProjectId;

type HmacSha256 = Hmac<Sha256>;

/// Bytes of the MAC kept in a key: 128 bits is beyond brute force over HTTP and
/// keeps keys short enough to paste.
const TAG_BYTES: usize = 16;

/// Which API a key opens.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyKind {
    /// Ingest (`ck_…`).
    Write,
    /// Query (`cq_…`).
    Query,
}

impl KeyKind {
    fn prefix(self) -> &'static str {
        match self {
            Self::Write => "ck",
            Self::Query => "cq",
        }
    }

    fn label(self) -> &'static [u8] {
        match self {
            Self::Write => b"write",
            Self::Query => b"query",
        }
    }

    fn other(self) -> Self {
        match self {
            Self::Write => Self::Query,
            Self::Query => Self::Write,
        }
    }
}

/// Why a key was not accepted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    /// Not of the form `ck_<project>_<tag>` (or the admin form).
    #[error("{0}")]
    Malformed(String),
    /// Well-formed, but no configured secret produced this tag.
    #[error("the key was not issued by this deployment (or its secret was rotated out)")]
    Unknown,
    /// On the deny list.
    #[error("the key has been revoked")]
    Revoked,
}

/// The secrets (newest first) and the deny list.
#[derive(Clone)]
pub struct Keyring {
    secrets: Vec<Vec<u8>>,
    denied: HashSet<String>,
}

impl std::fmt::Debug for Keyring {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print secrets, even in debug logs.
        f.debug_struct("Keyring").field("secrets", &self.secrets.len()).field("denied", &self.denied.len()).finish()
    }
}

impl Keyring {
    /// A keyring from secrets (the first mints) and revoked keys.
    ///
    /// # Panics
    /// Never; an empty secret list is an error.
    pub fn new(secrets: Vec<Vec<u8>>, denied: impl IntoIterator<Item = String>) -> Result<Self, String> {
        if secrets.is_empty() || secrets.iter().any(|s| s.len() < 16) {
            return Err("at least one secret of 16 bytes or more is required".into());
        }
        Ok(Self { secrets, denied: denied.into_iter().collect() })
    }

    /// The secret used for minting, also the root of derived secrets (the IP salt).
    pub fn primary_secret(&self) -> &[u8] {
        &self.secrets[0]
    }

    /// Mints the key of `kind` for `project` under the primary secret.
    pub fn mint(&self, kind: KeyKind, project: &ProjectId) -> String {
        let tag = tag(&self.secrets[0], &[kind.label(), project.as_str().as_bytes()]);
        format!("{}_{}_{}", kind.prefix(), project, URL_SAFE_NO_PAD.encode(tag))
    }

    /// The admin token, which reads every project.
    pub fn admin_token(&self) -> String {
        format!("ca_{}", URL_SAFE_NO_PAD.encode(tag(&self.secrets[0], &[b"admin"])))
    }

    /// Verifies a key of `kind` and returns its project.
    pub fn verify(&self, key: &str, kind: KeyKind) -> Result<ProjectId, KeyError> {
        let expected_prefix = kind.prefix();
        let Some(rest) = key.strip_prefix(expected_prefix).and_then(|r| r.strip_prefix('_')) else {
            let hint = if key.starts_with(kind.other().prefix()) {
                format!(
                    "this is a {} key ({}_…); this endpoint needs a {} key ({expected_prefix}_…)",
                    kind_name(kind.other()),
                    kind.other().prefix(),
                    kind_name(kind)
                )
            } else {
                format!("expected a {} key of the form {expected_prefix}_<project>_<tag>", kind_name(kind))
            };
            return Err(KeyError::Malformed(hint));
        };
        // Project names contain no '_', so the first '_' ends the project; the tag
        // (base64url) may itself contain '_'.
        let Some((project, tag_text)) = rest.split_once('_') else {
            return Err(KeyError::Malformed(format!(
                "expected a {} key of the form {expected_prefix}_<project>_<tag>",
                kind_name(kind)
            )));
        };
        let project = ProjectId::parse(project).map_err(KeyError::Malformed)?;
        self.check_tag(tag_text, &[kind.label(), project.as_str().as_bytes()])?;
        if self.denied.contains(key) {
            return Err(KeyError::Revoked);
        }
        Ok(project)
    }

    /// Verifies the admin token.
    pub fn verify_admin(&self, token: &str) -> Result<(), KeyError> {
        let Some(tag_text) = token.strip_prefix("ca_") else {
            return Err(KeyError::Malformed("expected an admin token of the form ca_<tag>".into()));
        };
        self.check_tag(tag_text, &[b"admin"])?;
        if self.denied.contains(token) {
            return Err(KeyError::Revoked);
        }
        Ok(())
    }

    fn check_tag(&self, tag_text: &str, parts: &[&[u8]]) -> Result<(), KeyError> {
        let given = URL_SAFE_NO_PAD
            .decode(tag_text)
            .ok()
            .filter(|t| t.len() == TAG_BYTES)
            .ok_or_else(|| KeyError::Malformed("the key's tag is not 22 base64url characters".into()))?;
        // Every secret is tried, with no early exit, so timing does not reveal
        // which secret (if any) matched.
        let mut matched = subtle::Choice::from(0);
        for secret in &self.secrets {
            matched |= tag(secret, parts).ct_eq(&given);
        }
        if bool::from(matched) { Ok(()) } else { Err(KeyError::Unknown) }
    }
}

fn kind_name(kind: KeyKind) -> &'static str {
    match kind {
        KeyKind::Write => "write",
        KeyKind::Query => "query",
    }
}

fn tag(secret: &[u8], parts: &[&[u8]]) -> [u8; TAG_BYTES] {
    let mut mac = HmacSha256::new_from_slice(secret).expect("HMAC accepts keys of any length");
    for part in parts {
        mac.update(part);
    }
    let full = mac.finalize().into_bytes();
    let mut out = [0u8; TAG_BYTES];
    out.copy_from_slice(&full[..TAG_BYTES]);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ring(secrets: &[&str]) -> Keyring {
        Keyring::new(secrets.iter().map(|s| s.as_bytes().to_vec()).collect(), []).unwrap()
    }

    fn demo() -> ProjectId {
        ProjectId::parse("demo").unwrap()
    }

    #[test]
    fn minted_keys_verify_for_their_project_and_kind_only() {
        let keys = ring(&["0123456789abcdef0123456789abcdef"]);
        let write = keys.mint(KeyKind::Write, &demo());
        let query = keys.mint(KeyKind::Query, &demo());
        assert!(write.starts_with("ck_demo_") && write.len() == "ck_demo_".len() + 22);
        assert_eq!(keys.verify(&write, KeyKind::Write), Ok(demo()));
        assert_eq!(keys.verify(&query, KeyKind::Query), Ok(demo()));
        let err = keys.verify(&query, KeyKind::Write).unwrap_err();
        assert!(err.to_string().contains("query key"), "{err}");
        // The same tag under another project name is not valid.
        let forged = write.replacen("ck_demo_", "ck_other_", 1);
        assert_eq!(keys.verify(&forged, KeyKind::Write), Err(KeyError::Unknown));
    }

    #[test]
    fn tag_matches_an_independent_hmac_computation() {
        // HMAC-SHA256("0123456789abcdef0123456789abcdef", "writedemo")[..16],
        // computed with Python's hmac module.
        let keys = ring(&["0123456789abcdef0123456789abcdef"]);
        assert_eq!(keys.mint(KeyKind::Write, &demo()), "ck_demo_pmlj5C8389ImzsAxxwOgPw");
    }

    #[test]
    fn rotation_accepts_keys_of_every_listed_secret() {
        let old = ring(&["old-secret-old-secret"]);
        let old_key = old.mint(KeyKind::Write, &demo());
        let rotated = ring(&["new-secret-new-secret", "old-secret-old-secret"]);
        assert_eq!(rotated.verify(&old_key, KeyKind::Write), Ok(demo()));
        assert_ne!(rotated.mint(KeyKind::Write, &demo()), old_key);
        let retired = ring(&["new-secret-new-secret"]);
        assert_eq!(retired.verify(&old_key, KeyKind::Write), Err(KeyError::Unknown));
    }

    #[test]
    fn denied_keys_are_revoked_and_others_still_work() {
        let base = ring(&["0123456789abcdef0123456789abcdef"]);
        let revoked = base.mint(KeyKind::Write, &demo());
        let other = base.mint(KeyKind::Write, &ProjectId::parse("other").unwrap());
        let keys = Keyring::new(vec![b"0123456789abcdef0123456789abcdef".to_vec()], [revoked.clone()]).unwrap();
        assert_eq!(keys.verify(&revoked, KeyKind::Write), Err(KeyError::Revoked));
        assert!(keys.verify(&other, KeyKind::Write).is_ok());
    }

    #[test]
    fn admin_token_verifies_and_is_not_a_project_key() {
        let keys = ring(&["0123456789abcdef0123456789abcdef"]);
        let admin = keys.admin_token();
        assert!(keys.verify_admin(&admin).is_ok());
        assert!(keys.verify(&admin, KeyKind::Query).is_err());
        assert!(keys.verify_admin(&keys.mint(KeyKind::Query, &demo())).is_err());
    }

    #[test]
    fn malformed_keys_are_refused_with_a_reason() {
        let keys = ring(&["0123456789abcdef0123456789abcdef"]);
        for bad in ["", "ck_", "ck_demo", "ck_demo_short", "ck_DEMO_ryp_q8MCDK5wiTRDXTt-Qg", "hello"] {
            assert!(matches!(keys.verify(bad, KeyKind::Write), Err(KeyError::Malformed(_))), "{bad:?}");
        }
    }

    #[test]
    fn short_secrets_are_refused() {
        assert!(Keyring::new(vec![b"short".to_vec()], []).is_err());
        assert!(Keyring::new(vec![], []).is_err());
    }
}
