//! Tokens as a type that never prints its value: `Debug` shows `***`, there is no `Display`,
//! and the value is read only where a request header is built. Imports nothing of the crate,
//! so every layer may hold a `Secret` without depending on configuration.

/// A token that prints as `***`.
#[derive(Clone)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("***")
    }
}
