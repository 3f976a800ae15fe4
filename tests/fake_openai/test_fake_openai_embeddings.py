"""`/v1/embeddings` of the fake server: deterministic, normalised vectors that langchain-openai's
`OpenAIEmbeddings` reads (it asks for base64 by default), and clear errors for bad requests."""

from __future__ import annotations

import math

import httpx
from langchain_openai import OpenAIEmbeddings
from langchain_openai._compat import httpx as sdk_httpx
from pydantic import SecretStr

from fake_openai import Script, running_fake_openai
from fake_openai.embeddings import embed


def cosine(a: list[float], b: list[float]) -> float:
    return sum(x * y for x, y in zip(a, b, strict=True))


def test_vectors_are_deterministic_unit_length_and_close_for_shared_words() -> None:
    a = embed("Overtime is paid at double time on weekends", 64)
    assert a == embed("Overtime is paid at double time on weekends", 64)
    assert math.isclose(math.sqrt(sum(x * x for x in a)), 1.0)
    near = cosine(a, embed("weekend overtime pay", 64))
    far = cosine(a, embed("ladders and fall protection", 64))
    assert near > 0.15 > far
    assert embed("", 8) == [0.0] * 8


async def test_langchain_openai_embeddings_read_the_endpoint() -> None:
    async with (
        running_fake_openai(Script()) as fake,
        sdk_httpx.AsyncClient() as http,
    ):
        with sdk_httpx.Client() as http_sync:
            embedder = OpenAIEmbeddings(
                model="fake-embed",
                openai_api_base=fake.base_url,  # by field name: the plugin types those, not aliases
                openai_api_key=SecretStr("test-key"),
                dimensions=32,
                check_embedding_ctx_length=False,
                http_async_client=http,
                http_client=http_sync,
            )
            documents = await embedder.aembed_documents(["overtime rate", "mileage per mile"])
            query = await embedder.aembed_query("overtime rate")
        requests = list(fake.state.requests)
    assert [len(v) for v in documents] == [32, 32]
    assert all(math.isclose(a, b, abs_tol=1e-6) for a, b in zip(query, documents[0], strict=True))
    assert [r.path for r in requests] == ["/v1/embeddings", "/v1/embeddings"]


async def test_bad_requests_get_openai_shaped_errors() -> None:
    async with running_fake_openai(Script()) as fake, httpx.AsyncClient() as client:
        url = f"{fake.base_url}/embeddings"
        empty = await client.post(url, json={"model": "m", "input": []})
        tokens = await client.post(url, json={"model": "m", "input": [[1, 2, 3]]})
        huge = await client.post(url, json={"model": "m", "input": "x", "dimensions": 10**6})
        floats = await client.post(url, json={"model": "m", "input": "a b", "dimensions": 4})
    assert [r.status_code for r in (empty, tokens, huge)] == [400, 400, 400]
    assert "input" in empty.json()["error"]["message"]
    assert huge.json()["error"]["param"] == "dimensions"
    assert len(floats.json()["data"][0]["embedding"]) == 4
