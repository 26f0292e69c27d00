//! A newcomer's set-up: the binary starts with `.env.example` exported exactly as written (empty
//! values mean "not set"), and that file documents every setting the binary reads.

use rmcp::transport::{ConfigureCommandExt, TokioChildProcess};
use rmcp::ServiceExt;

const ENV_EXAMPLE: &str = include_str!("../../.env.example");

/// `NAME=value` lines of `.env.example`, as `set -a; . .env.example` would export them.
fn env_example() -> Vec<(&'static str, &'static str)> {
    ENV_EXAMPLE
        .lines()
        .filter(|line| !line.trim_start().starts_with('#'))
        .filter_map(|line| line.split_once('='))
        .collect()
}

#[tokio::test]
async fn the_binary_starts_with_env_example_exported_as_written() {
    let variables = env_example();
    assert!(
        variables.iter().any(|(_, value)| value.is_empty()),
        "the file ships empty values, which must mean not set"
    );
    let home = tempfile::tempdir().expect("temp home");
    let command =
        tokio::process::Command::new(env!("CARGO_BIN_EXE_ciwatch-mcp")).configure(|cmd| {
            cmd.env_clear()
                .env("PATH", std::env::var_os("PATH").unwrap_or_default())
                .env("HOME", home.path())
                .envs(variables.iter().copied());
        });
    let transport = TokioChildProcess::new(command).expect("server binary starts");
    let client = ().serve(transport).await.expect("MCP initialize succeeds");
    let tools = client.list_all_tools().await.expect("tools/list answers");
    assert!(
        tools.iter().any(|t| t.name == "ciwatch_scan_build") && tools.len() >= 9,
        "{:?}",
        tools.iter().map(|t| &t.name).collect::<Vec<_>>()
    );
    let _ = client.cancel().await;
}

/// Every `[env: NAME=…]` of the binary's help (its settings and the HTTP server's) is in
/// `.env.example`, with a comment line above it.
#[test]
fn env_example_documents_every_setting() {
    let help = |args: &[&str]| {
        let output = std::process::Command::new(env!("CARGO_BIN_EXE_ciwatch-mcp"))
            .args(args)
            .env_clear()
            .output()
            .expect("help prints");
        String::from_utf8_lossy(&output.stdout).into_owned()
    };
    let documented: Vec<&str> = env_example().into_iter().map(|(name, _)| name).collect();
    let mut read = Vec::new();
    for text in [help(&["--help"]), help(&["serve", "--help"])] {
        for piece in text.split("[env: ").skip(1) {
            let name = piece.split(['=', ']']).next().unwrap_or_default();
            read.push(name.to_string());
        }
    }
    assert!(read.len() >= 20, "{read:?}");
    let missing: Vec<&String> = read
        .iter()
        .filter(|name| !documented.contains(&name.as_str()))
        .collect();
    assert!(
        missing.is_empty(),
        "settings not in .env.example: {missing:?}"
    );
    let lines: Vec<&str> = ENV_EXAMPLE.lines().collect();
    for name in &documented {
        let line = lines
            .iter()
            .position(|l| l.starts_with(&format!("{name}=")))
            .expect("listed");
        let commented = lines[..line]
            .iter()
            .rev()
            .take_while(|l| !l.trim().is_empty())
            .any(|l| l.starts_with('#'));
        assert!(commented, "{name} has no comment saying what it does");
    }
}
