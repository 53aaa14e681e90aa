//! Project identifiers.

use std::fmt;

/// A project name: `[a-z0-9-]{1,64}`. It appears in keys (`ck_<project>_…`), in
/// table paths and in Durable Object names, so the alphabet excludes `_`, `/`, `:`
/// and anything that would need escaping in any of them.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ProjectId(String);

impl ProjectId {
    /// Longest accepted name.
    pub const MAX_LEN: usize = 64;

    /// Validates a project name.
    pub fn parse(name: &str) -> Result<Self, String> {
        let ok_chars = name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
        if name.is_empty() || name.len() > Self::MAX_LEN || !ok_chars {
            return Err(format!(
                "invalid project name {name:?}: use 1 to {} characters from a-z, 0-9 and '-'",
                Self::MAX_LEN
            ));
        }
        Ok(Self(name.to_owned()))
    }

    /// The name.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for ProjectId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn project_names_follow_the_documented_alphabet() {
        assert!(ProjectId::parse("demo").is_ok());
        assert!(ProjectId::parse("acme-2").is_ok());
        assert!(ProjectId::parse(&"a".repeat(64)).is_ok());
        for bad in ["", "Demo", "a_b", "a/b", "a:b", "é", &"a".repeat(65)] {
            assert!(ProjectId::parse(bad).is_err(), "{bad:?} should be refused");
        }
    }
}
