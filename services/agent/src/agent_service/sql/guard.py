"""The SQL guard: validate model-written SQL against allow-lists and rewrite it so every table read
is confined to one tenant. Pure (no I/O); the engine enforces the same confinement again, since a
parser can disagree with the database about what a statement means.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Final, Literal

import sqlglot
from sqlglot import exp
from sqlglot.errors import ParseError, TokenError

from agent_service.sql.expansion import ExpansionError, expanded_size
from agent_service.sql.growth import string_growth_problem
from agent_service.sql.schema import TENANT_COLUMN, TENANT_TABLES
from contracts.agent_api import ID_PATTERN, MAX_ID_CHARS

Dialect = Literal["sqlite", "postgres"]

TENANT_PARAM: Final = "tenant_id"
"""The bind parameter every rewritten table reference filters on."""

_ID_RE: Final = re.compile(ID_PATTERN)
_FUNC_NAME_RE: Final = re.compile(r"\s*([A-Za-z_][A-Za-z0-9_]*)\s*\(")
_UNENCODABLE_RE: Final = re.compile(r"[\x00\ud800-\udfff]")

# Statement and clause types that are never a plain read (sqlglot also turns anything it cannot
# parse into exp.Command, which lands here too).
_FORBIDDEN_NODES: Final[tuple[type[exp.Expr], ...]] = tuple(
    cls
    for cls in (
        getattr(exp, name, None)
        for name in (
            "DML", "DDL", "Insert", "Update", "Delete", "Merge", "Drop", "Create", "Alter",
            "TruncateTable", "Command", "Pragma", "Attach", "Detach", "Into", "Lock",
            "Transaction", "Commit", "Rollback", "Set", "Use", "Copy", "LoadData", "Grant",
            "Revoke", "Analyze", "Describe", "Show", "Kill", "Cache", "Uncache", "Refresh",
            "Declare", "Execute", "Summarize", "Placeholder", "Parameter", "SessionParameter",
            "Lateral", "Pivot", "Unnest",
        )
    )
    if isinstance(cls, type)
)  # fmt: skip

# Functions the SQL path may call, as sqlglot classes (dialect-neutral) ...
_ALLOWED_FUNCS: Final[tuple[type[exp.Expr], ...]] = tuple(
    cls
    for cls in (
        getattr(exp, name, None)
        for name in (
            "Count", "Sum", "Avg", "Min", "Max", "GroupConcat", "Coalesce", "Nullif", "If",
            "Case", "Cast", "TryCast", "Round", "Abs", "Floor", "Ceil", "Sign", "Lower", "Upper",
            "Length", "Substring", "Trim", "Replace", "StrPosition", "Greatest", "Least",
            "Concat", "ConcatWs", "TimeToStr", "Date", "CurrentDate", "CurrentTimestamp",
            "CurrentTime", "TimestampTrunc", "DateTrunc", "Extract", "RowNumber", "Rank",
            "DenseRank", "Lag", "Lead", "FirstValue", "LastValue", "Ntile", "PercentRank",
            "CumeDist", "Exists", "TsOrDsToTimestamp", "StrToDate", "Left", "Right",
        )
    )
    if isinstance(cls, type)
)  # fmt: skip
# ... and functions sqlglot does not model (exp.Anonymous), by lower-case name.
_ALLOWED_ANONYMOUS: Final = frozenset(
    {"total", "julianday", "date", "datetime", "time", "strftime", "unixepoch", "ifnull",
     "iif", "substr", "ltrim", "rtrim", "date_part", "to_char", "now"}
)  # fmt: skip

# Names that exist in the database but are never readable; a CTE may not borrow them either.
_RESERVED_TABLES: Final = frozenset(
    {"companies", "sqlite_master", "sqlite_schema", "sqlite_temp_master", "sqlite_sequence"}
)


class SqlError(Exception):
    """A query the SQL path will not answer; `reason` is safe to show a user and to feed a model."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class SqlRejected(SqlError):
    """The query is not allowed (by the guard or by the engine's authorizer)."""


@dataclass(frozen=True, slots=True)
class GuardLimits:
    """Structural caps on a query, checked before anything runs."""

    max_sql_chars: int = 4000
    max_joins: int = 8
    max_nesting: int = 4
    """Deepest SELECT inside SELECT (0 = no subqueries)."""
    max_string_nesting: int = 3
    """Deepest string-building call inside another (see `sql_growth`)."""
    max_expanded_nodes: int = 20_000
    """Largest syntax tree once CTEs and derived tables are inlined (see `sql.expansion`)."""


@dataclass(frozen=True, slots=True)
class GuardedQuery:
    """A validated query and its tenant-confined rewrite, ready to run with `params`."""

    original: str
    rewritten: str
    params: Mapping[str, str] = field(repr=False)
    tables: tuple[str, ...]


def guard_sql(
    sql: str,
    *,
    tenant_id: str,
    dialect: Dialect,
    max_rows: int,
    limits: GuardLimits,
) -> GuardedQuery:
    """Validate one read-only query and rewrite every table into a tenant subquery; raise
    `SqlRejected` with a user-safe reason otherwise."""
    if not _is_tenant_id(tenant_id):
        raise ValueError("tenant_id does not match the contract's id pattern")
    if max_rows < 1:
        raise ValueError("max_rows must be at least 1")
    text = sql.strip()
    if not text:
        raise SqlRejected("the query is empty")
    if len(text) > limits.max_sql_chars:
        raise SqlRejected(f"the query is longer than {limits.max_sql_chars} characters")
    if _UNENCODABLE_RE.search(text):
        raise SqlRejected("the query contains NUL or unpaired surrogate characters")
    try:
        tree = _parse_one(text, dialect)
        _check_tree(tree, dialect, limits)
        tables = _rewrite_tables(tree, dialect)
        rewritten = _apply_limit(tree, max_rows + 1).sql(dialect=dialect)
    except RecursionError:
        # ~1,500 nested parentheses or ~150 nested CASEs overflow the parser's recursion: the
        # model's mistake, refused like any other (it may retry with a flatter query).
        raise SqlRejected("the query is nested too deeply") from None
    return GuardedQuery(
        original=text,
        rewritten=rewritten,
        params={TENANT_PARAM: tenant_id},
        tables=tuple(sorted(tables)),
    )


def _is_tenant_id(value: str) -> bool:
    return 0 < len(value) <= MAX_ID_CHARS and _ID_RE.fullmatch(value) is not None


def _parse_one(text: str, dialect: Dialect) -> exp.Query:
    try:
        statements = [s for s in sqlglot.parse(text, dialect=dialect) if s is not None]
    except (ParseError, TokenError) as error:
        first = str(error).splitlines()[0] if str(error) else "syntax error"
        raise SqlRejected(f"the query could not be parsed: {first[:200]}") from None
    if len(statements) != 1:
        raise SqlRejected("exactly one statement is allowed")
    root = statements[0]
    if not isinstance(root, exp.Query):
        raise SqlRejected(_forbidden_reason(root))
    return root


def _norm(identifier: exp.Identifier | str, dialect: Dialect) -> str:
    """The name the engine resolves: SQLite folds case always, Postgres only when unquoted."""
    if isinstance(identifier, str):
        return identifier.lower()
    if dialect == "postgres" and identifier.quoted:
        return identifier.name
    return identifier.name.lower()


def _check_tree(tree: exp.Query, dialect: Dialect, limits: GuardLimits) -> None:
    """Reject anything that is not a plain read of allow-listed names."""
    cte_names: set[str] = set()
    for cte in tree.find_all(exp.CTE):
        name = _norm(cte.alias, dialect)
        if name in TENANT_TABLES or name in _RESERVED_TABLES or name.startswith(("sqlite_", "pg_")):
            raise SqlRejected(f"a WITH query may not be named like the table {name}")
        cte_names.add(name)
    for with_ in tree.find_all(exp.With):
        if with_.args.get("recursive"):
            raise SqlRejected("recursive queries are not allowed")
    joins = 0
    for node in tree.walk():
        if isinstance(node, _FORBIDDEN_NODES):
            raise SqlRejected(_forbidden_reason(node))
        if isinstance(node, exp.Join):
            joins += 1
        elif isinstance(node, exp.Table):
            _check_table(node, dialect)
        elif isinstance(node, exp.In) and isinstance(node.args.get("field"), exp.Column):
            # SQLite reads `x IN t` (and `x IN main.t`) as a table: never a column.
            raise SqlRejected("IN takes a parenthesised list or subquery")
        elif isinstance(node, exp.Select) and _select_depth(node) > limits.max_nesting:
            raise SqlRejected(f"subqueries may be nested at most {limits.max_nesting} deep")
        elif isinstance(node, exp.Func) and not isinstance(node, exp.Connector | exp.Binary):
            _check_function(node, dialect)
    if joins > limits.max_joins:
        raise SqlRejected(f"at most {limits.max_joins} joins are allowed")
    growth = string_growth_problem(tree, limits.max_string_nesting)
    if growth is not None:
        raise SqlRejected(growth)
    _check_columns(tree, dialect, cte_names)
    try:
        size = expanded_size(tree, limits.max_expanded_nodes)
    except ExpansionError:
        raise SqlRejected("the query's names could not be resolved") from None
    if size > limits.max_expanded_nodes:
        raise SqlRejected(
            "the query grows too large once its WITH queries and subqueries are expanded "
            "(each use of a WITH query's column copies it); compute each value once"
        )


def _forbidden_reason(node: exp.Expr) -> str:
    if isinstance(node, exp.Into):
        return "SELECT INTO is not allowed"
    if isinstance(node, exp.Lock):
        return "locking reads are not allowed"
    if isinstance(node, exp.Placeholder | exp.Parameter):
        return "query parameters are not allowed; write values inline"
    if isinstance(node, exp.Pragma):
        return "PRAGMA statements are not allowed"
    if isinstance(node, exp.Attach | exp.Detach):
        return "ATTACH is not allowed"
    return "only SELECT statements are allowed"


def _select_depth(node: exp.Expr) -> int:
    depth = 0
    parent = node.parent
    while parent is not None:
        if isinstance(parent, exp.Select):
            depth += 1
        parent = parent.parent
    return depth


def _check_table(table: exp.Table, dialect: Dialect) -> None:
    if not isinstance(table.this, exp.Identifier):
        raise SqlRejected("table-valued functions are not allowed")
    if table.args.get("db") or table.args.get("catalog"):
        raise SqlRejected("schema-qualified table names are not allowed; write just the table name")
    extra = [k for k, v in table.args.items() if v and k not in ("this", "alias")]
    if extra:
        raise SqlRejected("unsupported table syntax")
    name = _norm(table.this, dialect)
    if name not in TENANT_TABLES and not _names_a_cte(table, dialect):
        raise SqlRejected(f"table {name} is not available")


def _names_a_cte(table: exp.Table, dialect: Dialect) -> bool:
    """Whether `table` resolves to a WITH query visible where it stands: one of an enclosing
    query's WITH list, or (inside a WITH query's body) one defined before it in the same list."""
    name = _norm(table.this, dialect)
    child: exp.Expr = table
    parent = table.parent
    while parent is not None:
        if isinstance(parent, exp.With):
            ctes = parent.expressions
            position = next((i for i, cte in enumerate(ctes) if cte is child), len(ctes))
            before = ctes[:position]
            if any(_norm(cte.alias, dialect) == name for cte in before):
                return True
        elif isinstance(parent, exp.Query) and parent.args.get("with_") is not child:
            with_ = parent.args.get("with_")
            if with_ is not None and any(
                _norm(cte.alias, dialect) == name for cte in with_.expressions
            ):
                return True
        child, parent = parent, parent.parent
    return False


def _check_function(node: exp.Func, dialect: Dialect) -> None:
    if isinstance(node, exp.Anonymous):
        name = str(node.name).lower()
        if name not in _ALLOWED_ANONYMOUS:
            raise SqlRejected(f"function {name} is not allowed")
    elif not isinstance(node, _ALLOWED_FUNCS):
        # Name it as the dialect spells it (sqlglot's class names differ: RANDOM is Rand).
        written = _FUNC_NAME_RE.match(node.sql(dialect=dialect))
        name = written.group(1).lower() if written else node.key
        raise SqlRejected(f"function {name} is not allowed")


def _check_columns(tree: exp.Query, dialect: Dialect, cte_names: set[str]) -> None:
    """Best effort: reject columns no allowed table has and no alias in the query defines."""
    defined: set[str] = set(cte_names)
    for alias in tree.find_all(exp.Alias):
        defined.add(_norm(alias.args["alias"], dialect) if alias.args.get("alias") else "")
    for table_alias in tree.find_all(exp.TableAlias):
        if table_alias.this:
            defined.add(_norm(table_alias.this, dialect))
        defined.update(_norm(c, dialect) for c in table_alias.columns)
    known = {column for columns in TENANT_TABLES.values() for column in columns}
    sources = _source_names(tree, dialect)
    bound = _bound_tables(tree, dialect)
    for column in tree.find_all(exp.Column):
        if isinstance(column.this, exp.Star):
            continue
        name = _norm(column.this, dialect) if isinstance(column.this, exp.Identifier) else ""
        if name == TENANT_COLUMN:
            raise SqlRejected(
                f"column {TENANT_COLUMN} is not available; queries already see only your company"
            )
        if column.args.get("db") or column.args.get("catalog"):
            raise SqlRejected("schema-qualified names are not allowed")
        qualifier = _norm(column.args["table"], dialect) if column.args.get("table") else ""
        if qualifier and qualifier not in sources:
            raise SqlRejected(f"{qualifier}.{name} names no table of the query")
        table = bound.get(qualifier) if qualifier else None
        if table is not None and name not in TENANT_TABLES[table]:
            raise SqlRejected(f"column {name} is not available in table {table}")
        if name not in known and name not in defined:
            hint = " (write text values in single quotes)" if column.this.quoted else ""
            raise SqlRejected(f"column {name} is not available{hint}")


def _source_names(tree: exp.Query, dialect: Dialect) -> set[str]:
    """Every name a column may be qualified with: tables, their aliases, CTEs, subqueries."""
    names: set[str] = set()
    for table in tree.find_all(exp.Table):
        if isinstance(table.this, exp.Identifier):
            names.add(_norm(table.this, dialect))
    for alias in tree.find_all(exp.TableAlias):
        if alias.this:
            names.add(_norm(alias.this, dialect))
    return names


def _bound_tables(tree: exp.Query, dialect: Dialect) -> dict[str, str]:
    """Alias (or bare name) -> real table, for names that bind to exactly one real table."""
    seen: dict[str, set[str]] = {}
    for table in _real_tables(tree, dialect):
        name = _norm(table.this, dialect)
        key = _norm(table.args["alias"].this, dialect) if table.alias else name
        seen.setdefault(key, set()).add(name)
    for subquery in tree.find_all(exp.Subquery, exp.CTE):
        if subquery.alias:
            seen.setdefault(subquery.alias.lower(), set()).add("")
    return {k: next(iter(v)) for k, v in seen.items() if len(v) == 1 and "" not in v}


def _real_tables(tree: exp.Expr, dialect: Dialect) -> Iterator[exp.Table]:
    for table in tree.find_all(exp.Table):
        if isinstance(table.this, exp.Identifier):
            name = _norm(table.this, dialect)
            if name in TENANT_TABLES and not _names_a_cte(table, dialect):
                yield table


def _rewrite_tables(tree: exp.Query, dialect: Dialect) -> set[str]:
    """Replace every real table reference by `(SELECT cols FROM t WHERE company_id = :tenant)`."""
    names: set[str] = set()
    for table in list(_real_tables(tree, dialect)):
        name = _norm(table.this, dialect)
        names.add(name)
        inner = (
            exp.select(*(exp.column(c, quoted=True) for c in TENANT_TABLES[name]))
            .from_(exp.to_table(name, quoted=True))
            .where(
                exp.EQ(
                    this=exp.column(TENANT_COLUMN, quoted=True),
                    expression=exp.Placeholder(this=TENANT_PARAM),
                )
            )
        )
        alias = table.args.get("alias")
        alias = alias.copy() if alias is not None else exp.TableAlias(this=exp.to_identifier(name))
        table.replace(exp.Subquery(this=inner, alias=alias))
    return names


def _apply_limit(tree: exp.Query, cap: int) -> exp.Query:
    """Make the outermost query return at most `cap` rows, keeping a smaller literal LIMIT."""
    limit = tree.args.get("limit")
    if limit is None and not tree.args.get("offset"):
        return tree.limit(cap, copy=False)
    if isinstance(limit, exp.Limit):
        value = limit.expression
        if isinstance(value, exp.Literal) and value.is_int and 0 <= int(value.this) <= cap:
            return tree
    return exp.select("*").from_(tree.subquery("limited_result")).limit(cap)
