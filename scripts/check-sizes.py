#!/usr/bin/env python3
"""Checks that no file in src/ runs over 600 lines, no function over 80, and no function takes
more than 5 parameters (`self` counted): more travel together in a type of their own.

A function's length is counted from the line of its `fn` keyword to the line of the brace that
closes its body, both included, so attributes and doc comments above it do not count and a
nested function counts inside its parent too. The scanner knows Rust's comments (nested block
comments included), string, byte-string and raw-string literals, and tells char literals from
lifetimes, so braces inside them are not counted.

A parameter is counted at each comma between the function's parentheses that is outside any
nested parentheses, brackets or generic arguments (`HashMap<K, V>`), a trailing comma not.

Usage: scripts/check-sizes.py [--list N] [ROOT]   (ROOT defaults to src/; --list prints the N
longest functions). Exits 1 and names each file or function over its limit.
"""

import pathlib
import re
import sys

MAX_FILE_LINES = 600
MAX_FUNCTION_LINES = 80
MAX_PARAMETERS = 5

IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def code_tokens(text):
    """Yields (kind, value, line) for identifiers and the punctuation `{ } ( ) [ ] ; , < >`
    (not the `>` of `->` or `=>`), skipping comments and literals."""
    i, line, n = 0, 1, len(text)
    while i < n:
        c = text[i]
        if c == "\n":
            line += 1
            i += 1
        elif text.startswith("//", i):
            end = text.find("\n", i)
            i = n if end < 0 else end
        elif text.startswith("/*", i):
            depth, i = 1, i + 2
            while i < n and depth:
                if text.startswith("/*", i):
                    depth, i = depth + 1, i + 2
                elif text.startswith("*/", i):
                    depth, i = depth - 1, i + 2
                else:
                    line += text[i] == "\n"
                    i += 1
        elif (m := re.compile(r"b?r(#*)\"").match(text, i)) and (
            i == 0 or not (text[i - 1].isalnum() or text[i - 1] == "_")
        ):
            close = '"' + m.group(1)
            end = text.find(close, m.end())
            end = n if end < 0 else end + len(close)
            line += text.count("\n", i, end)
            i = end
        elif c == '"' or (c == "b" and text.startswith('b"', i)):
            i += 2 if c == "b" else 1
            while i < n and text[i] != '"':
                if text[i] == "\\":
                    line += text[i + 1 : i + 2] == "\n"
                    i += 1
                line += text[i] == "\n"
                i += 1
            i += 1
        elif c == "'":
            # A char literal closes within a few characters; a lifetime does not.
            m = re.compile(r"'(\\.[^']*|[^\\'])'").match(text, i)
            i = m.end() if m else i + 1
        elif (m := IDENT.match(text, i)) and (i == 0 or not text[i - 1].isalnum()):
            yield ("ident", m.group(0), line)
            i = m.end()
        elif c in "{}()[];,<" or (c == ">" and text[i - 1 : i] not in ("-", "=")):
            yield ("punct", c, line)
            i += 1
        else:
            i += 1


def parameters(tokens, start):
    """The parameters of the list whose `(` is `tokens[start]`."""
    depth, angles, count, seen = 0, 0, 0, False
    for kind, value, _ in tokens[start:]:
        if value in "([":
            depth += 1
        elif value in ")]":
            depth -= 1
            if depth == 0:
                return count + seen
        elif depth == 1 and value == "<":
            angles += 1
        elif depth == 1 and value == ">":
            angles -= 1
        elif depth == 1 and angles == 0 and value == ",":
            count, seen = count + seen, False
            continue
        if depth >= 1 and not (depth == 1 and value == "("):
            seen = True
    return count + seen


def functions(text):
    """Yields (name, first_line, last_line, parameters) for every function with a body."""
    tokens = list(code_tokens(text))
    for at, (kind, value, line) in enumerate(tokens):
        if kind != "ident" or value != "fn" or at + 1 >= len(tokens):
            continue
        name = tokens[at + 1][1]
        opening = next(
            (i for i in range(at + 2, len(tokens)) if tokens[i][1] == "("), len(tokens)
        )
        params = parameters(tokens, opening) if opening < len(tokens) else 0
        parens, j = 0, at + 2
        # The body is the first `{` outside the parameter list; a `;` first means no body.
        while j < len(tokens):
            k, v, _ = tokens[j]
            if v == "(":
                parens += 1
            elif v == ")":
                parens -= 1
            elif parens == 0 and v == ";":
                break
            elif parens == 0 and v == "{":
                depth = 0
                for k2, v2, l2 in tokens[j:]:
                    depth += (v2 == "{") - (v2 == "}")
                    if depth == 0:
                        yield (name, line, l2, params)
                        break
                break
            j += 1


def main(argv):
    listing = 0
    if argv[:1] == ["--list"]:
        listing, argv = int(argv[1]), argv[2:]
    root = pathlib.Path(argv[0] if argv else "src")
    over, lengths = [], []
    for path in sorted(root.rglob("*.rs")):
        text = path.read_text(encoding="utf-8")
        lines = text.count("\n") + (not text.endswith("\n"))
        if lines > MAX_FILE_LINES:
            over.append(f"{path}: {lines} lines (at most {MAX_FILE_LINES} per file)")
        for name, first, last, params in functions(text):
            length = last - first + 1
            if params > MAX_PARAMETERS:
                over.append(
                    f"{path}:{first}: fn {name} takes {params} parameters "
                    f"(at most {MAX_PARAMETERS}; put the ones that travel together in a type)"
                )
            lengths.append((length, f"{path}:{first} fn {name}"))
            if length > MAX_FUNCTION_LINES:
                over.append(
                    f"{path}:{first}: fn {name} runs {length} lines "
                    f"(at most {MAX_FUNCTION_LINES}; split it by step)"
                )
    for length, where in sorted(lengths, reverse=True)[:listing]:
        print(f"{length:5} {where}")
    for problem in over:
        print(problem, file=sys.stderr)
    print(
        f"{len(lengths)} functions in {root}: "
        f"{'all within the limits' if not over else f'{len(over)} over a limit'}"
    )
    return 1 if over else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
