//! The composition root: the clients and services one process runs with, built from its
//! [`Settings`] in one place, so the CLI's scan (`main.rs`) and the MCP server (`mcp/`) run
//! with the same ones. `config.rs` only reads settings; nothing else builds a client.

use crate::config::{Settings, StoreSetting};
use crate::github::GitHubClient;
use crate::http::HttpClient;
use crate::owners::Owners;
use crate::storage::Store;
use std::sync::Arc;

pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

pub struct Services {
    /// Finished builds and parsed job logs, shared by every call of this process.
    pub store: Option<Arc<Store>>,
    /// Why there is no store, reported in results.
    pub store_warning: Option<String>,
    /// Buildkite's HTTP client: with a shared store, each token's rate window is shared by
    /// the replicas too.
    pub http: HttpClient,
    /// Shared so fetched issues are cached across calls.
    pub github: Arc<GitHubClient>,
    pub owners: Arc<Owners>,
}

impl Services {
    pub fn build(settings: &Settings) -> Result<Self, BoxError> {
        let (store, store_warning) = match open_store(settings) {
            Ok(store) => (store.map(Arc::new), None),
            Err(warning) => (None, Some(warning)),
        };
        let mut http = HttpClient::new(
            settings.http_timeout(),
            settings.rate_budget(),
            settings.retry_policy(),
        )?
        .with_shared_window(store.as_ref().and_then(|s| s.redis_connection()));
        if let Some(path) = &settings.ca_file {
            let pem = std::fs::read(path)
                .map_err(|e| format!("CIWATCH_CA_FILE {}: cannot be read ({e})", path.display()))?;
            http = http.trusting(&pem)?;
        }
        let github = Arc::new(GitHubClient::new(settings.github_options())?);
        let owners = Arc::new(owners(settings, github.clone()));
        Ok(Self {
            store,
            store_warning,
            http,
            github,
            owners,
        })
    }
}

/// The store the settings ask for, or why there is none (a warning for results; `None` with
/// `--no-cache`).
fn open_store(settings: &Settings) -> Result<Option<Store>, String> {
    match settings.store()? {
        StoreSetting::None => Ok(None),
        StoreSetting::Redis { url, password } => Store::redis(url, password).map(Some),
        StoreSetting::Embedded(dir) => Ok(Some(Store::from(crate::storage::Cache::open(&dir)?))),
    }
}

/// The owner lookup: the clone at `VLLM_REPO_PATH` if set, GitHub's CODEOWNERS otherwise.
fn owners(settings: &Settings, github: Arc<GitHubClient>) -> Owners {
    let local = settings
        .vllm_repo_path()
        .map(crate::owners::LocalRepo::open)
        .transpose();
    Owners::new(local, Some(github), settings.owner_options())
}
