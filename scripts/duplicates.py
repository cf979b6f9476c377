"""Blocks of six lines or more repeated across modules (issue 17): a copy is a second place to fix the next bug.

Lines are compared normalised: stripped of indentation and comments; blank lines, docstrings, imports and lines of
brackets only are left out, and so are a class's plain field declarations (`converted: int = 0`): a store table
declares the columns of the core value it stores, and the core may not import the table's library. Migrations and
tests may repeat themselves. `python -m scripts.duplicates` prints every repeated block (module:first-last =
module:first-last ...); tests/unit/test_no_duplicates.py wants none.
"""

from __future__ import annotations

import ast
import io
import tokenize
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("orchestrator", "triggers", "segments", "templates", "integrations", "store", "web", "bench", "scripts")
MIN_LINES = 6


def _left_out(tree: ast.AST) -> set[int]:
    """Line numbers of docstrings, imports and plain field declarations."""
    out: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ClassDef):
            out.update(field.lineno for field in node.body if isinstance(field, ast.AnnAssign)
                       and (field.value is None or isinstance(field.value, ast.Constant)))
        if isinstance(node, ast.Import | ast.ImportFrom):
            out.update(range(node.lineno, (node.end_lineno or node.lineno) + 1))
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef) and node.body:
            first = node.body[0]
            if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant) and isinstance(
                    first.value.value, str):
                out.update(range(first.lineno, (first.end_lineno or first.lineno) + 1))
    return out


def normalised_lines(source: str) -> list[tuple[int, str]]:
    """(line number, normalised text) of the lines that count."""
    lines = source.splitlines()
    for token in tokenize.generate_tokens(io.StringIO(source).readline):
        if token.type == tokenize.COMMENT:  # cut the comment off its line (a '#' inside a string is no comment)
            row, col = token.start
            lines[row - 1] = lines[row - 1][:col]
    left_out = _left_out(ast.parse(source))
    stripped = ((number, line.strip()) for number, line in enumerate(lines, 1) if number not in left_out)
    return [(number, text) for number, text in stripped if any(c.isalnum() for c in text)]


def modules(root: Path = ROOT) -> dict[str, list[tuple[int, str]]]:
    out = {}
    for package in PACKAGES:
        for path in sorted((root / package).rglob("*.py")):
            if "migrations" in path.parts:
                continue
            name = str(path.relative_to(root))
            try:
                out[name] = normalised_lines(path.read_text(encoding="utf-8"))
            except (SyntaxError, tokenize.TokenError) as exc:
                raise SyntaxError(f"{name}: {exc}") from exc
    return out


def repeated_blocks(files: dict[str, list[tuple[int, str]]], size: int = MIN_LINES) -> list[list[tuple[str, int, int]]]:
    """Blocks of at least `size` normalised lines found in two modules or more: for each, its places
    (module, first line, last line), longest blocks first."""
    seen: dict[tuple[str, ...], list[tuple[str, int]]] = defaultdict(list)
    for name, lines in files.items():
        texts = [text for _, text in lines]
        for i in range(len(lines) - size + 1):
            seen[tuple(texts[i:i + size])].append((name, i))
    # A window shared by two modules or more; consecutive shared windows of the same places form one block.
    starts: dict[frozenset[str], set[tuple[tuple[str, int], ...]]] = defaultdict(set)
    for places in seen.values():
        if len({name for name, _ in places}) > 1:
            starts[frozenset(name for name, _ in places)].add(tuple(sorted(places)))
    blocks = []
    for group in starts.values():
        for places in sorted(group):
            before = tuple((name, i - 1) for name, i in places)
            if before in group:
                continue  # inside a block that starts earlier
            length = size
            while tuple((name, i + length - size + 1) for name, i in places) in group:
                length += 1
            blocks.append([(name, files[name][i][0], files[name][i + length - 1][0]) for name, i in places])
    return sorted(blocks, key=lambda b: (-(b[0][2] - b[0][1]), b))


def describe(blocks: list[list[tuple[str, int, int]]]) -> str:
    return "\n".join(" = ".join(f"{name}:{first}-{last}" for name, first, last in block) for block in blocks)


def main() -> int:
    blocks = repeated_blocks(modules())
    print(describe(blocks))
    return 1 if blocks else 0


if __name__ == "__main__":
    raise SystemExit(main())
