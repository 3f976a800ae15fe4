"""How large a query becomes once the engine inlines it: SQLite and PostgreSQL flatten CTEs and
derived tables into the outer query, copying a column's whole expression wherever the column is
named. A chain of CTEs that each name the previous one's column twice (`t || t`) doubles the tree
at every level: 800 characters become millions of nodes while the statement is *prepared*, before
any deadline or value cap acts. This bounds that expanded size from the query's scopes. Pure.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlglot import exp
from sqlglot.errors import SqlglotError
from sqlglot.optimizer.scope import Scope, traverse_scope, walk_in_scope

__all__ = ["ExpansionError", "expanded_size"]


class ExpansionError(ValueError):
    """The query's scopes could not be resolved (the guard rejects it)."""


@dataclass(slots=True)
class _Size:
    total: int
    """Nodes of the scope once every source it reads is inlined."""
    column: int
    """Nodes of its largest output column once inlined (what naming that column copies)."""


def expanded_size(tree: exp.Expr, cap: int) -> int:
    """An upper bound of the node count of `tree` with every CTE and derived table inlined where
    it is referenced; stops counting (and returns a value > `cap`) once `cap` is passed."""
    try:
        scopes = list(traverse_scope(tree))
    except SqlglotError as error:
        raise ExpansionError(str(error)) from None
    sizes: dict[int, _Size] = {}
    root = _Size(total=0, column=0)
    for scope in scopes:  # children come before their parents
        size = _measure(scope, sizes, cap)
        sizes[id(scope.expression)] = size
        root = size
        if size.total > cap:
            return size.total
    return root.total


def _measure(scope: Scope, sizes: dict[int, _Size], cap: int) -> _Size:
    weights: dict[int, int] = {}
    total = 0
    for node in walk_in_scope(scope.expression):
        weight = _weight(scope, node, sizes)
        weights[id(node)] = weight
        total = min(total + weight, cap + 1)
    if isinstance(scope.expression, exp.SetOperation):
        parts = [
            sizes[id(p)] for p in (scope.expression.left, scope.expression.right) if id(p) in sizes
        ]
        column = max((p.column for p in parts), default=total)
    elif isinstance(scope.expression, exp.Select):
        column = max(
            (
                min(sum(weights.get(id(n), 1) for n in walk_in_scope(projection)), cap + 1)
                for projection in scope.expression.expressions
            ),
            default=1,
        )
    else:
        column = total
    return _Size(total=total, column=column)


def _weight(scope: Scope, node: exp.Expr, sizes: dict[int, _Size]) -> int:
    if node is not scope.expression and id(node) in sizes:
        return sizes[id(node)].total  # a nested scope (subquery, CTE body) counted in full
    if isinstance(node, exp.Table):
        # A CTE read from is inlined at this reference (each reference copies it).
        source = scope.sources.get(node.alias_or_name)
        if isinstance(source, Scope) and id(source.expression) in sizes:
            return 1 + sizes[id(source.expression)].total
        return 1
    if isinstance(node, exp.Column):
        return 1 + _column_weight(scope, node, sizes)
    if isinstance(node, exp.Star):
        return 1 + sum(
            sizes[id(s.expression)].total
            for s in _selected_scopes(scope)
            if id(s.expression) in sizes
        )
    return 1


def _column_weight(scope: Scope, column: exp.Column, sizes: dict[int, _Size]) -> int:
    """What naming `column` copies: the largest column of the source it may come from."""
    if column.table:
        source = _source(scope, column.table)
        candidates = [source] if source is not None else []
    else:
        # Unqualified: any selected source of this scope or (correlated) of an enclosing one.
        candidates = []
        current: Scope | None = scope
        while current is not None:
            candidates.extend(_selected_scopes(current))
            current = current.parent
    return max(
        (sizes[id(s.expression)].column for s in candidates if id(s.expression) in sizes), default=0
    )


def _source(scope: Scope, name: str) -> Scope | None:
    current: Scope | None = scope
    while current is not None:
        selected = current.selected_sources.get(name)
        if selected is not None:
            found = selected[1]
            return found if isinstance(found, Scope) else None
        current = current.parent
    return None


def _selected_scopes(scope: Scope) -> list[Scope]:
    return [source for _, source in scope.selected_sources.values() if isinstance(source, Scope)]
