"""The official Python MCP SDK as a client of ciwatch-mcp, over stdio and Streamable HTTP.

Run by `.ci/run` (and by hand): python tests/python/test_clients.py <path to ciwatch-mcp>.
The binary's hidden `fixture-server` command serves the bundled Buildkite and GitHub fixtures
on 127.0.0.1; both transports list every tool and call each of them.
"""

import asyncio
import json
import os
import socket
import subprocess
import sys
import time

import httpx2
from mcp import ClientSession, StdioServerParameters
from mcp.client.stdio import stdio_client
from mcp.client.streamable_http import streamable_http_client

EXPECTED_TOOLS = {"ciwatch_scan_build", "ciwatch_scan_latest_nightly", "ciwatch_render", "ciwatch_test_history",
                  "ciwatch_get_job_test_failures", "ciwatch_analyze_main_branch",
                  "ciwatch_test_history_analytics", "ciwatch_get_test_analytics_bulk", "ciwatch_get_job_log",
                  "ciwatch_bisect_plan", "ciwatch_view"}


async def exercise(session: ClientSession, transport: str) -> None:
    await session.initialize()
    tools = await session.list_tools()
    names = {tool.name for tool in tools.tools}
    assert names == EXPECTED_TOOLS, names
    scan = await session.call_tool("ciwatch_scan_build", {"build_id_or_url": "65099", "detail_level": "summary"})
    assert not scan.is_error, scan
    result = scan.structured_content
    assert result["build_info"]["build_number"] == "65099", result["build_info"]
    # At summary the failed jobs are counted in `completeness` (those not read whole listed).
    completeness = result["completeness"]
    counted = completeness["failed_jobs_read"] + len(completeness.get("read_in_part", [])) + len(completeness.get("not_read", []))
    assert counted == 24, completeness
    nightly = await session.call_tool("ciwatch_scan_latest_nightly", {"detail_level": "minimal"})
    assert not nightly.is_error, nightly
    assert nightly.structured_content["selection"].startswith("newest scheduled nightly"), nightly.structured_content["selection"]
    view = await session.call_tool("ciwatch_view", {"result": result})
    assert not view.is_error, view
    assert "data-failure-key=" in view.structured_content["html"], view.structured_content["html"][:200]
    rendered = await session.call_tool("ciwatch_render", {"scan_result": result, "format": "standup"})
    assert not rendered.is_error, rendered
    assert rendered.structured_content["text"].startswith("Nightly build [65099]"), rendered.structured_content
    history = await session.call_tool(
        "ciwatch_test_history",
        {"test_nodeid": "tests/v1/distributed/test_dbo.py::test_dbo_dp_ep_gsm8k[deepep_low_latency]"},
    )
    assert not history.is_error, history
    assert history.structured_content["timeline"][0]["test_status"] == "fail", history.structured_content["timeline"]
    job = await session.call_tool("ciwatch_get_job_test_failures", {"build_id_or_url": "65099", "job_name_or_id": "Examples"})
    assert not job.is_error, job
    assert job.structured_content["test_failures"][0]["error_message"] == "KeyError: 'kimi_vl'", job.structured_content
    log = await session.call_tool("ciwatch_get_job_log", {"build_id_or_url": "65099", "job_name_or_id": "Examples", "search": "KeyError"})
    assert not log.is_error, log
    assert any("KeyError: 'kimi_vl'" in line["text"] for line in log.structured_content["lines"]), log.structured_content
    main = await session.call_tool("ciwatch_analyze_main_branch", {"exclude_scheduled": False, "detail_level": "minimal"})
    assert not main.is_error, main
    assert main.structured_content["analysis_window"]["builds_scanned"] == 1, main.structured_content["analysis_window"]
    # The fixture nightly has no earlier nightly: its failures have no onset to bisect, and the
    # tool says what to give instead.
    failure_key = result["failures"][0]["failure_key"]
    bisect = await session.call_tool("ciwatch_bisect_plan", {"failure_key": failure_key})
    assert bisect.is_error and "good_commit and bad_commit" in bisect.content[0].text, bisect
    # The fixture server has no Test Engine suite: both tools answer with a clear error.
    for name, args in [("ciwatch_test_history_analytics", {"test_name_or_nodeid": "a.py::t"}),
                       ("ciwatch_get_test_analytics_bulk", {"test_nodeids": ["a.py::t"]})]:
        analytics = await session.call_tool(name, args)
        assert analytics.is_error, analytics
    prompts = await session.list_prompts()
    assert any(p.name == "ci_watch_daily" for p in prompts.prompts), prompts
    print(f"python mcp client over {transport}: {len(names)} tools listed and called")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def main(binary: str) -> None:
    fixtures = subprocess.Popen([binary, "fixture-server"], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    urls = json.loads(fixtures.stdout.readline())
    env = {
        "BUILDKITE_TOKEN": "bkua_python_client",
        "BUILDKITE_API_URL": urls["buildkite"],
        "GITHUB_API_URL": urls["github"],
        # The fixture build is from May 2026: widen the nightly window to find it.
        "CIWATCH_NIGHTLY_WINDOW_HOURS": "1000000",
        "CIWATCH_REQUESTS_PER_MINUTE": "6000",
        "CIWATCH_REQUEST_BURST": "1000",
        "RUST_LOG": "warn",
        "CIWATCH_NO_CACHE": "true",
        "PATH": os.environ.get("PATH", ""),
    }
    http_server = None
    try:
        params = StdioServerParameters(command=binary, args=[], env=env)
        async with stdio_client(params) as (read, write):
            async with ClientSession(read, write) as session:
                await exercise(session, "stdio")

        port = free_port()
        http_env = dict(env, CIWATCH_HTTP_TOKEN="python-endpoint-token")
        http_server = subprocess.Popen([binary, "serve", "--http", f"127.0.0.1:{port}"], env=http_env)
        deadline = time.time() + 20
        while True:
            try:
                if httpx2.get(f"http://127.0.0.1:{port}/health").status_code == 200:
                    break
            except Exception:
                if time.time() > deadline:
                    raise
                time.sleep(0.1)
        headers = {"Authorization": "Bearer python-endpoint-token"}
        async with httpx2.AsyncClient(headers=headers, timeout=60) as client:
            async with streamable_http_client(f"http://127.0.0.1:{port}/mcp", http_client=client) as (read, write):
                async with ClientSession(read, write) as session:
                    await exercise(session, "streamable HTTP")
    finally:
        if http_server is not None:
            http_server.terminate()
            http_server.wait(timeout=10)
        fixtures.stdin.close()
        fixtures.wait(timeout=10)


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1]))
