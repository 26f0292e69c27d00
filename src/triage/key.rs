//! The failure key: a stable id for "this test failed this way in this job".
//!
//! The recipe is the original's, kept exactly so keys stay comparable across the two
//! implementations: sha256 over `job_name` (lowercased, spaces → `_`), the test name and, when
//! there is an error message, its first line cut to 100 characters, joined by `::`; the first 16
//! hex digits.

use sha2::{Digest, Sha256};

pub fn failure_key(job_name: &str, test_name: &str, error_message: Option<&str>) -> String {
    let mut components = vec![
        job_name.to_lowercase().replace(' ', "_"),
        test_name.to_string(),
    ];
    if let Some(message) = error_message.filter(|m| !m.is_empty()) {
        let first_line = message.lines().next().unwrap_or("");
        components.push(first_line.chars().take(100).collect());
    }
    let digest = Sha256::digest(components.join("::").as_bytes());
    crate::text::hex(&digest[..8])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_match_the_original_implementation() {
        assert_eq!(
            failure_key("Job A", "test.py::test_foo", Some("Error: timeout")),
            "55cb9320e8421bc2"
        );
        assert_eq!(
            failure_key("Job A", "test.py::test_bar", Some("Error: timeout")),
            "f0f3ec4940376993"
        );
        assert_eq!(
            failure_key("Test Job", "tests/test_foo.py::test_bar", None),
            "ed18d16663576c28"
        );
    }
}
