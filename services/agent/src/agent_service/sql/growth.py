"""How far one query may grow a text value: string-building calls (replace, concat, `||`,
group_concat / string_agg, repeat, lpad / rpad) may nest only a few deep, and `replace` may only
substitute a literal for a literal of bounded growth, so a short query cannot build a huge value
in one engine step (where neither a row cap nor a deadline can stop it). Pure.
"""

from __future__ import annotations

from typing import Final

from sqlglot import exp

__all__ = ["MAX_REPLACE_GROWTH", "string_growth_problem"]

MAX_REPLACE_GROWTH: Final = 16
"""Largest factor by which a chain of nested replace() calls may lengthen its input."""

_BUILDERS: Final[tuple[type[exp.Expr], ...]] = tuple(
    cls
    for cls in (
        getattr(exp, name, None)
        for name in ("Replace", "Concat", "ConcatWs", "DPipe", "GroupConcat", "Repeat", "Pad")
    )
    if isinstance(cls, type)
)
_SIZED: Final[tuple[type[exp.Expr], ...]] = tuple(
    cls for cls in (getattr(exp, n, None) for n in ("Repeat", "Pad")) if isinstance(cls, type)
)
_ANONYMOUS_BUILDERS: Final = frozenset(
    {"replace", "concat", "concat_ws", "group_concat", "string_agg", "repeat", "lpad", "rpad",
     "printf", "format", "zeroblob", "randomblob", "hex", "char"}
)  # fmt: skip
_MAX_SIZED_LENGTH: Final = 1000


def string_growth_problem(tree: exp.Expr, max_nesting: int) -> str | None:
    """Why `tree` could build an oversized value (a user-safe reason), or None if it cannot."""
    # Builder ancestors of each node, carried down in one walk (parents come before children):
    # asking each node for its ancestors instead was quadratic, 0.5 s for a 4,000-char chain.
    outer: dict[int, int] = {}
    for node in tree.walk():
        parent = node.parent
        depth = 0
        if parent is not None:
            depth = outer.get(id(parent), 0)
            if _is_builder(parent) and not _same_chain(parent):
                depth += 1
        outer[id(node)] = depth
        if not _is_builder(node):
            continue
        if not _same_chain(node) and depth + 1 > max_nesting:
            return (
                f"string functions (replace, concat, ||, group_concat) may be nested at most "
                f"{max_nesting} deep"
            )
        if isinstance(node, exp.Replace):
            problem = _replace_problem(node)
            if problem:
                return problem
        if isinstance(node, _SIZED) and not _small_literal(node.args.get("expression")):
            return f"repeat, lpad and rpad take a literal length of at most {_MAX_SIZED_LENGTH}"
    return None


def _is_builder(node: exp.Expr) -> bool:
    if isinstance(node, exp.Anonymous):
        return str(node.name).lower() in _ANONYMOUS_BUILDERS
    return isinstance(node, _BUILDERS)


def _same_chain(node: exp.Expr) -> bool:
    """`a || b || c` parses as nested pairs (parenthesised or not): one concatenation."""
    parent = node.parent
    while isinstance(parent, exp.Paren):
        parent = parent.parent
    return isinstance(node, exp.DPipe) and isinstance(parent, exp.DPipe)


def _ancestors(node: exp.Expr) -> list[exp.Expr]:
    found: list[exp.Expr] = []
    parent = node.parent
    while parent is not None:
        found.append(parent)
        parent = parent.parent
    return found


def _replace_problem(node: exp.Replace) -> str | None:
    # replace(x, p, r) is at most len(x) * len(r) / len(p) long; nested, the factors multiply.
    factor = 1.0
    for replace in (node, *(a for a in _ancestors(node) if isinstance(a, exp.Replace))):
        pattern = _text_literal(replace.args.get("expression"))
        replacement = _text_literal(replace.args.get("replacement"))
        if pattern is None or replacement is None:
            return "replace() takes literal text for what to find and what to put instead"
        factor *= max(1.0, len(replacement) / max(len(pattern), 1))
    if factor > MAX_REPLACE_GROWTH:
        return f"nested replace() calls may lengthen text at most {MAX_REPLACE_GROWTH} times"
    return None


def _text_literal(node: exp.Expr | None) -> str | None:
    return str(node.this) if isinstance(node, exp.Literal) and node.is_string else None


def _small_literal(node: exp.Expr | None) -> bool:
    return (
        isinstance(node, exp.Literal) and node.is_int and 0 <= int(node.this) <= _MAX_SIZED_LENGTH
    )
