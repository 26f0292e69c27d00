//! The published tool surface (names, titles, descriptions, annotations, input and output
//! schemas) compared with the committed `tests/snapshots/tools_list.json`, so any change to it is
//! deliberate. Re-bless with `UPDATE_SNAPSHOTS=1 cargo test --test it schema_snapshot`.

use ciwatch_mcp::mcp::CiWatchServer;

/// Async only because the GitHub client (octocrab) needs a runtime to be built.
#[tokio::test]
async fn tools_list_matches_the_snapshot() {
    let server = CiWatchServer::new(crate::common::settings("http://127.0.0.1:9")).expect("server");
    let mut tools = server.tools();
    tools.sort_by(|a, b| a.name.cmp(&b.name));
    let actual = serde_json::to_string_pretty(&tools).expect("tools serialise") + "\n";
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/snapshots/tools_list.json"
    );
    if std::env::var_os("UPDATE_SNAPSHOTS").is_some() {
        std::fs::write(path, &actual).expect("snapshot written");
    }
    let expected =
        std::fs::read_to_string(path).expect("snapshot exists (UPDATE_SNAPSHOTS=1 creates it)");
    assert!(
        expected == actual,
        "the tool surface changed; review the diff and re-bless with UPDATE_SNAPSHOTS=1:\n{actual}"
    );
}

/// The Claude Desktop bundle's manifest lists exactly the tools and prompt the server serves.
#[tokio::test]
async fn the_bundle_manifest_names_every_tool() {
    let manifest: serde_json::Value =
        serde_json::from_str(include_str!("../../manifest.json")).expect("manifest.json is JSON");
    let mut listed: Vec<&str> = manifest["tools"]
        .as_array()
        .expect("tools")
        .iter()
        .filter_map(|t| t["name"].as_str())
        .collect();
    listed.sort_unstable();
    let server =
        ciwatch_mcp::mcp::CiWatchServer::new(crate::common::settings("http://127.0.0.1:9"))
            .expect("server");
    let mut served: Vec<String> = server
        .tools()
        .into_iter()
        .map(|t| t.name.to_string())
        .collect();
    served.sort();
    assert_eq!(listed, served);
    assert_eq!(manifest["prompts"][0]["name"], "ci_watch_daily");
    assert_eq!(manifest["version"], env!("CARGO_PKG_VERSION"));
    assert_eq!(
        manifest["user_config"]["buildkite_token"]["sensitive"],
        true
    );
}
