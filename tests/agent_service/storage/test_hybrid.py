"""Hybrid retrieval on the embedded default: chunk vectors from an OpenAI-compatible embeddings
endpoint (the fake server's deterministic one) in sqlite-vec, fused with BM25 by reciprocal rank.
Off by default; an endpoint that fails leaves BM25 answering."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from langchain_core.embeddings import Embeddings
from support.retrieval_questions import KS, REQUIRED_RECALL_AT_3, first_hit, questions, recall

from agent_service.demo.data import DEMO_DOCS_DIR
from agent_service.deps import seed_demo
from agent_service.settings import AgentSettings
from agent_service.storage.embeddings import (
    Hybrid,
    embedding_config,
    hybrid_for,
    reciprocal_rank_fusion,
)
from agent_service.storage.sqlite.documents import SqliteDocumentStore, seed_documents
from fake_openai import FakeServer, Script, running_fake_openai


@pytest.fixture
async def fake() -> AsyncIterator[FakeServer]:
    async with running_fake_openai(Script()) as server:
        yield server


def settings_for(data_dir: Path, base_url: str | None, **overrides: object) -> AgentSettings:
    return AgentSettings(
        data_dir=data_dir,
        env="test",
        embeddings_base_url=base_url,
        embeddings_model="fake-embed",
        **overrides,  # type: ignore[arg-type]
    )


async def closed(hybrid: Hybrid | None) -> None:
    assert hybrid is not None
    await hybrid.aclose()


def test_reciprocal_rank_fusion_rewards_agreement() -> None:
    fused = reciprocal_rank_fusion(["a", "b", "c"], ["c", "a", "d"], k=60)
    assert [item for item, _ in fused] == ["a", "c", "b", "d"]
    assert fused[0][1] == pytest.approx(1 / 61 + 1 / 62)
    assert reciprocal_rank_fusion([], []) == []


def test_hybrid_is_off_unless_an_endpoint_is_set(tmp_path: Path) -> None:
    assert embedding_config(AgentSettings(data_dir=tmp_path, env="test")) is None
    assert hybrid_for(AgentSettings(data_dir=tmp_path, env="test")) is None


async def test_hybrid_retrieval_keeps_recall_on_the_policy_table(
    tmp_path: Path, fake: FakeServer, capsys: pytest.CaptureFixture[str]
) -> None:
    settings = settings_for(tmp_path, fake.base_url, embeddings_dimensions=128)
    # in a thread: ingest's embeddings call is synchronous, and the fake serves on this loop
    await asyncio.to_thread(seed_demo, settings, force=True)
    assert (settings.documents_dir / "vectors" / "acme-hvac.sqlite3").is_file()
    hybrid = hybrid_for(settings)
    store = SqliteDocumentStore(settings.documents_dir, hybrid=hybrid)
    try:
        ranks = [await first_hit(store.search, c, q, s) for c, q, s in questions()]
    finally:
        await closed(hybrid)
    with capsys.disabled():
        figures = " / ".join(f"{recall(ranks, k):.2f}" for k in KS)
        print(f"\nsqlite hybrid (fake hashed embeddings): recall@1/3/5 {figures}")  # noqa: T201
    assert recall(ranks, 3) >= REQUIRED_RECALL_AT_3, [recall(ranks, k) for k in KS]
    paths = {r.path for r in fake.state.requests}
    assert paths == {"/v1/embeddings"}
    assert all(r.body["dimensions"] == 128 for r in fake.state.requests)


class KeywordEmbeddings(Embeddings):
    """A fake embedder: one axis per keyword, so a text is near the query sharing its keyword."""

    KEYWORDS = ("quiet", "van", "zzz")

    def _vector(self, text: str) -> list[float]:
        hits = [1.0 if word in text.lower() else 0.0 for word in self.KEYWORDS]
        return hits if any(hits) else [0.0, 0.0, 1.0]

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        return [self._vector(t) for t in texts]

    def embed_query(self, text: str) -> list[float]:
        return self._vector(text)


async def test_a_passage_only_the_vectors_find_joins_the_results(tmp_path: Path) -> None:
    store = SqliteDocumentStore(tmp_path, hybrid=Hybrid(KeywordEmbeddings(), "kw", 3))
    store.ingest("t1", "noise", "Noise", "## Hours\n\nNo loud work before 8:00 in the quiet zone.")
    store.ingest("t1", "vans", "Vans", "## Parking\n\nVans park in bay 7.")
    lexical = await SqliteDocumentStore(tmp_path).search("t1", "when must it be quiet?")
    hybrid = await store.search("t1", "when must it be quiet?")
    assert [p.doc_id for p in lexical] == ["noise"]
    assert next(p.doc_id for p in hybrid) == "noise"
    # the vectors also propose the other chunk; fused scores are reciprocal ranks
    assert all(0 < p.score < 1 for p in hybrid)
    assert store.delete_document("t1", "noise")
    assert "noise" not in [p.doc_id for p in await store.search("t1", "quiet")]


async def test_a_failing_endpoint_falls_back_to_bm25(tmp_path: Path) -> None:
    settings = settings_for(
        tmp_path, "http://127.0.0.1:9/v1", embeddings_timeout_s=0.5, embeddings_api_key="k"
    )
    hybrid = hybrid_for(settings)
    store = SqliteDocumentStore(settings.documents_dir, hybrid=hybrid)
    try:
        seed_documents(store, DEMO_DOCS_DIR)  # ingest logs the failure and keeps BM25
        passages = await store.search("acme-hvac", "when does overtime kick in")
    finally:
        await closed(hybrid)
    assert passages and passages[0].doc_id == "overtime"


async def test_a_different_dimension_starts_the_vectors_afresh(
    tmp_path: Path, fake: FakeServer
) -> None:
    first = settings_for(tmp_path, fake.base_url, embeddings_dimensions=64)
    await asyncio.to_thread(seed_demo, first, force=True)
    second = settings_for(tmp_path, fake.base_url, embeddings_dimensions=32)
    hybrid = hybrid_for(second)
    store = SqliteDocumentStore(second.documents_dir, hybrid=hybrid)
    try:
        # the 64-dimension vectors are dropped, never compared with 32-dimension queries
        passages = await store.search("acme-hvac", "when does overtime kick in")
    finally:
        await closed(hybrid)
    assert passages and passages[0].doc_id == "overtime"
