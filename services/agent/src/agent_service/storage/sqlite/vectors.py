"""Chunk vectors of one tenant in sqlite-vec: `<root>/<company_id>.vectors.sqlite3`.

A file of its own beside the FTS5 store, opened with a SQLite build that can load extensions
(`pysqlite3`, the standard library's cannot). The file records the embedding model and
dimensions it was written with; a different configuration starts it afresh (the next ingest or
seed fills it again), so vectors of two models are never compared.
"""

from __future__ import annotations

import importlib
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import sqlite_vec


def _connect(path: Path) -> Any:
    try:
        sqlite: Any = importlib.import_module("pysqlite3.dbapi2")
    except ImportError as exc:  # pragma: no cover - wheels exist for linux x86_64 only
        raise RuntimeError(
            "hybrid retrieval on SQLite needs pysqlite3 (pysqlite3-binary) for sqlite-vec"
        ) from exc
    conn = sqlite.connect(str(path))
    conn.enable_load_extension(True)
    sqlite_vec.load(conn)
    conn.enable_load_extension(False)
    return conn


class SqliteVectorIndex:
    """Nearest chunks by cosine distance, keyed by chunk id."""

    def __init__(self, path: Path, model: str, dimensions: int) -> None:
        self._path = path
        self._model = model
        self._dimensions = int(dimensions)

    def replace(
        self, doc_id: str, chunk_ids: Sequence[str], vectors: Sequence[list[float]]
    ) -> None:
        """Store the vectors of `doc_id`'s chunks (replacing its earlier ones)."""
        conn = self._open()
        try:
            with conn:
                self._delete(conn, doc_id)
                for chunk_id, vector in zip(chunk_ids, vectors, strict=True):
                    cursor = conn.execute(
                        "INSERT INTO vector_keys (chunk_id, doc_id) VALUES (?, ?)",
                        (chunk_id, doc_id),
                    )
                    conn.execute(
                        "INSERT INTO vectors (rowid, embedding) VALUES (?, ?)",
                        (cursor.lastrowid, sqlite_vec.serialize_float32(vector)),
                    )
        finally:
            conn.close()

    def delete(self, doc_id: str) -> None:
        if not self._path.is_file():
            return
        conn = self._open()
        try:
            with conn:
                self._delete(conn, doc_id)
        finally:
            conn.close()

    def nearest(self, vector: list[float], k: int) -> list[str]:
        """The ids of the `k` chunks closest to `vector`, closest first."""
        if not self._path.is_file() or len(vector) != self._dimensions:
            return []
        conn = self._open()
        try:
            rows = conn.execute(
                "SELECT k.chunk_id FROM vectors v JOIN vector_keys k ON k.id = v.rowid"
                " WHERE v.embedding MATCH ? AND v.k = ? ORDER BY v.distance",
                (sqlite_vec.serialize_float32(vector), int(k)),
            ).fetchall()
        finally:
            conn.close()
        return [chunk_id for (chunk_id,) in rows]

    def _open(self) -> Any:
        self._path.parent.mkdir(parents=True, exist_ok=True)
        conn = _connect(self._path)
        conn.execute("CREATE TABLE IF NOT EXISTS vector_meta (key TEXT PRIMARY KEY, value TEXT)")
        meta = dict(conn.execute("SELECT key, value FROM vector_meta").fetchall())
        wanted = {"model": self._model, "dimensions": str(self._dimensions)}
        if meta != wanted:
            with conn:
                conn.execute("DROP TABLE IF EXISTS vectors")
                conn.execute("DROP TABLE IF EXISTS vector_keys")
                conn.execute("DELETE FROM vector_meta")
                conn.executemany("INSERT INTO vector_meta VALUES (?, ?)", wanted.items())
                conn.execute(
                    "CREATE TABLE vector_keys (id INTEGER PRIMARY KEY, chunk_id TEXT UNIQUE,"
                    " doc_id TEXT NOT NULL)"
                )
                conn.execute(
                    "CREATE VIRTUAL TABLE vectors USING"
                    f" vec0(embedding float[{self._dimensions}] distance_metric=cosine)"
                )
        return conn

    @staticmethod
    def _delete(conn: Any, doc_id: str) -> None:
        ids = [
            row[0] for row in conn.execute("SELECT id FROM vector_keys WHERE doc_id = ?", (doc_id,))
        ]
        conn.executemany("DELETE FROM vectors WHERE rowid = ?", [(i,) for i in ids])
        conn.execute("DELETE FROM vector_keys WHERE doc_id = ?", (doc_id,))
