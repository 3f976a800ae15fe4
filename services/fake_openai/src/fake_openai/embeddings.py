"""`/v1/embeddings`: deterministic vectors for offline tests of retrieval with embeddings.

Each input becomes a hashed bag of words: every word (lower-cased, a plural or -ing/-ed ending
cut) adds ±1 at a position chosen by its BLAKE2 hash, and the vector is scaled to length 1. Texts
that share words are close (cosine), texts that share none are orthogonal up to hash collisions,
and the same text always gets the same vector, on any machine.
"""

from __future__ import annotations

import base64
import hashlib
import math
import re
import struct
from typing import Any, Final

from fake_openai.request import RequestError

DEFAULT_DIMENSIONS: Final = 256
MAX_DIMENSIONS: Final = 4096
MAX_INPUTS: Final = 2048
_WORD: Final = re.compile(r"[a-z0-9]+")


def _stem(word: str) -> str:
    for suffix in ("ing", "ed", "es", "s"):
        if word.endswith(suffix) and len(word) - len(suffix) >= 3:
            return word[: -len(suffix)]
    return word


def embed(text: str, dimensions: int) -> list[float]:
    """The hashed bag-of-words vector of `text`, of length 1 (all zeros for no words)."""
    vector = [0.0] * dimensions
    for word in _WORD.findall(text.lower()):
        digest = hashlib.blake2b(_stem(word).encode(), digest_size=8).digest()
        value = int.from_bytes(digest, "little")
        vector[value % dimensions] += 1.0 if (value >> 63) & 1 else -1.0
    norm = math.sqrt(sum(x * x for x in vector))
    return [x / norm for x in vector] if norm else vector


def embeddings_response(body: Any, default_model: str) -> dict[str, Any]:
    """The OpenAI-shaped reply to an embeddings request body (float or base64 encoding)."""
    if not isinstance(body, dict):
        raise RequestError("The request body must be a JSON object.")
    inputs = body.get("input")
    if isinstance(inputs, str):
        inputs = [inputs]
    if not isinstance(inputs, list) or not inputs or len(inputs) > MAX_INPUTS:
        raise RequestError(
            f"'input' must be a string or a list of 1 to {MAX_INPUTS} strings.", param="input"
        )
    if not all(isinstance(item, str) for item in inputs):
        raise RequestError("'input' items must be strings (token arrays are not supported).")
    dimensions = body.get("dimensions", DEFAULT_DIMENSIONS)
    if not isinstance(dimensions, int) or not 1 <= dimensions <= MAX_DIMENSIONS:
        raise RequestError(
            f"'dimensions' must be an integer from 1 to {MAX_DIMENSIONS}.", param="dimensions"
        )
    encoding = body.get("encoding_format", "float")
    if encoding not in {"float", "base64"}:
        raise RequestError("'encoding_format' must be 'float' or 'base64'.")
    data = []
    for index, text in enumerate(inputs):
        vector = embed(text, dimensions)
        item: Any = vector
        if encoding == "base64":
            item = base64.b64encode(struct.pack(f"<{dimensions}f", *vector)).decode()
        data.append({"object": "embedding", "index": index, "embedding": item})
    tokens = sum(len(_WORD.findall(text.lower())) for text in inputs)
    return {
        "object": "list",
        "data": data,
        "model": body.get("model") or default_model,
        "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
    }
