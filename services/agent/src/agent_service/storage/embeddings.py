"""Optional hybrid retrieval: embeddings from an OpenAI-compatible `/v1/embeddings` endpoint,
fused with BM25 by reciprocal rank.

Off unless `AGENT_EMBEDDINGS_BASE_URL` is set. The vectors come from langchain-openai's
`OpenAIEmbeddings` (with `check_embedding_ctx_length=False`, so no tokenizer is downloaded and any
OpenAI-compatible server works), and live next to each tenant's FTS5 store in sqlite-vec
(`storage/sqlite/vectors.py`). PostgreSQL stays on full text: see docs/retrieval.md.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final

from pydantic import SecretStr

if TYPE_CHECKING:
    from langchain_core.embeddings import Embeddings
    from langchain_openai import OpenAIEmbeddings

    from agent_service.settings import AgentSettings

RRF_K: Final = 60
"""Reciprocal-rank fusion constant: a passage at rank r of a list scores 1 / (RRF_K + r)."""
CANDIDATES: Final = 20
"""Passages each retriever proposes before fusion (at least the `k` asked for)."""


@dataclass(frozen=True, slots=True)
class EmbeddingConfig:
    base_url: str
    model: str
    dimensions: int
    api_key: str
    timeout_s: float


def embedding_config(settings: AgentSettings) -> EmbeddingConfig | None:
    """The embeddings endpoint of `settings`, or None when hybrid retrieval is off."""
    if not settings.embeddings_base_url:
        return None
    key = settings.embeddings_api_key or settings.openai_api_key
    return EmbeddingConfig(
        base_url=settings.embeddings_base_url,
        model=settings.embeddings_model,
        dimensions=settings.embeddings_dimensions,
        api_key=key.get_secret_value() if key is not None else "EMPTY",
        timeout_s=settings.embeddings_timeout_s,
    )


@dataclass(frozen=True, slots=True)
class Hybrid:
    """What a store needs to add vector search: the embedder and what its vectors are."""

    embedder: Embeddings
    model: str
    dimensions: int
    clients: tuple[Any, ...] = ()
    """HTTP clients the embedder uses, owned here (closed by `aclose`)."""

    async def aclose(self) -> None:
        """Close every client (at the app's shutdown)."""
        self.close()
        for client in self.clients:
            if hasattr(client, "aclose"):
                await client.aclose()

    def close(self) -> None:
        """Close the synchronous clients (after a seed or an ingest, which embed synchronously)."""
        for client in self.clients:
            if not hasattr(client, "aclose"):
                client.close()


def hybrid_for(settings: AgentSettings) -> Hybrid | None:
    """Hybrid retrieval as `settings` configure it, or None (BM25 only); `aclose` it."""
    config = embedding_config(settings)
    if config is None:
        return None
    from langchain_openai._compat import httpx as sdk_httpx

    # our own clients (the SDK's httpx), so closing them is ours and never left to the GC
    async_client = sdk_httpx.AsyncClient()
    sync_client = sdk_httpx.Client()
    embedder = make_embedder(config, http_async_client=async_client, http_client=sync_client)
    return Hybrid(embedder, config.model, config.dimensions, (async_client, sync_client))


def make_embedder(config: EmbeddingConfig, **clients: Any) -> OpenAIEmbeddings:
    """langchain-openai's embeddings client for `config` (`http_client`/`http_async_client`
    optional)."""
    from langchain_openai import OpenAIEmbeddings

    # by the fields' aliases (base_url, api_key, timeout), as ChatOpenAI is built
    options: dict[str, Any] = {
        "base_url": config.base_url,
        "api_key": SecretStr(config.api_key),
        "timeout": config.timeout_s,
        **clients,
    }
    return OpenAIEmbeddings(
        model=config.model,
        dimensions=config.dimensions,
        check_embedding_ctx_length=False,
        max_retries=1,
        **options,
    )


def reciprocal_rank_fusion(*rankings: Sequence[str], k: int = RRF_K) -> list[tuple[str, float]]:
    """Ids of every ranking, best first, scored by the sum of 1 / (k + rank) over the rankings
    (rank from 1); ties keep the order of first appearance."""
    scores: dict[str, float] = {}
    for ranking in rankings:
        for rank, item in enumerate(ranking, start=1):
            scores[item] = scores.get(item, 0.0) + 1.0 / (k + rank)
    order = {item: i for i, item in enumerate(scores)}
    return sorted(scores.items(), key=lambda pair: (-pair[1], order[pair[0]]))
