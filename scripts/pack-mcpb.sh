#!/usr/bin/env bash
# Packs the Claude Desktop bundle, target/ciwatch-mcp.mcpb: manifest.json and the release
# binary (built without the demo). Needs the mcpb CLI: `npm install -g @anthropic-ai/mcpb`,
# or MCPB=/path/to/mcpb.
set -euo pipefail
cd "$(dirname "$0")/.."
mcpb=${MCPB:-mcpb}
cargo build --locked --release --no-default-features
stage=target/mcpb
rm -rf "$stage"
mkdir -p "$stage/server"
cp manifest.json "$stage/"
cp target/release/ciwatch-mcp "$stage/server/ciwatch-mcp"
"$mcpb" validate "$stage/manifest.json"
"$mcpb" pack "$stage" target/ciwatch-mcp.mcpb
echo "bundle: target/ciwatch-mcp.mcpb"
