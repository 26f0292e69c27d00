#!/usr/bin/env python3
"""Replays the build stage of the Dockerfile without a container engine (CI machines have none),
so a Dockerfile that no longer builds fails CI instead of a newcomer's `docker build .`.

The stage's WORKDIR becomes a fresh temporary directory; its COPY steps copy from this checkout;
its RUN steps run there with bash, in order, and must all succeed. Cargo's target directory is
this checkout's `target/` (CARGO_TARGET_DIR), so compiled dependencies are reused. The stage must
leave the binary that the image's next stage copies (`target/release/ciwatch-mcp`).
"""

import fnmatch
import os
import shlex
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def instructions(dockerfile: Path):
    """(keyword, argument) of each instruction, continuation lines joined, comments dropped."""
    joined = ""
    for line in dockerfile.read_text().splitlines():
        if not joined and (not line.strip() or line.lstrip().startswith("#")):
            continue
        if line.rstrip().endswith("\\"):
            joined += line.rstrip()[:-1] + " "
            continue
        joined += line
        keyword, _, argument = joined.strip().partition(" ")
        yield keyword.upper(), argument.strip()
        joined = ""


def admitted(source: str) -> bool:
    """Whether .dockerignore lets `source` into the build context (its rules in order, the
    last that matches wins; a `!` rule lets a path back in)."""
    ignore = ROOT / ".dockerignore"
    rules = [
        line.strip()
        for line in (ignore.read_text().splitlines() if ignore.exists() else [])
        if line.strip() and not line.lstrip().startswith("#")
    ]
    inside = True
    for rule in rules:
        pattern = rule.removeprefix("!")
        if fnmatch.fnmatch(source.strip("/"), pattern.strip("/")):
            inside = rule.startswith("!")
    return inside


def copy(argument: str, workdir: Path):
    """Docker's rules: a directory's contents go into the destination; files go into it when
    it ends with "/" (or is "."), else to that name."""
    parts = shlex.split(argument)
    if any(p.startswith("--") for p in parts):
        raise SystemExit(f"COPY {argument}: copies from another stage are not replayed here")
    *sources, destination = parts
    target = workdir / destination
    into_directory = destination.endswith("/") or destination in (".", "./")
    for source in sources:
        if not admitted(source):
            raise SystemExit(f"COPY {argument}: .dockerignore keeps {source} out of the build context")
        path = ROOT / source
        if path.is_dir():
            shutil.copytree(path, target, dirs_exist_ok=True)
        elif into_directory:
            target.mkdir(parents=True, exist_ok=True)
            shutil.copy2(path, target / path.name)
        else:
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(path, target)


def main() -> int:
    dockerfile = ROOT / "Dockerfile"
    stages = 0
    env = dict(os.environ, CARGO_TARGET_DIR=str(ROOT / "target"))
    with tempfile.TemporaryDirectory(prefix="dockerfile-replay-") as scratch:
        workdir = Path(scratch)
        for keyword, argument in instructions(dockerfile):
            if keyword == "FROM":
                stages += 1
                if stages > 1:
                    break
                continue
            if keyword == "WORKDIR":
                workdir = Path(scratch) / argument.lstrip("/")
                workdir.mkdir(parents=True, exist_ok=True)
            elif keyword == "COPY":
                copy(argument, workdir)
            elif keyword == "RUN":
                print(f"replaying RUN {argument}", file=sys.stderr, flush=True)
                done = subprocess.run(["bash", "-euo", "pipefail", "-c", argument], cwd=workdir, env=env)
                if done.returncode != 0:
                    print(f"the Dockerfile's step failed ({done.returncode}): RUN {argument}", file=sys.stderr)
                    return 1
            elif keyword in ("ENV", "ARG", "LABEL", "EXPOSE", "USER", "ENTRYPOINT", "CMD"):
                continue
            else:
                raise SystemExit(f"{keyword} is not replayed here: teach scripts/replay-dockerfile.py")
    binary = ROOT / "target" / "release" / "ciwatch-mcp"
    if not binary.is_file():
        print(f"the build stage left no {binary}", file=sys.stderr)
        return 1
    print("the Dockerfile's build stage replays without a container engine", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
