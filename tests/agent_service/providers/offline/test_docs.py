"""Every question shape docs/offline-provider.md promises is routed to SQL, drafted, run through
the real executor for two companies and answered in words, never with the generic fallback."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from agent_service.demo.data import seed_database
from agent_service.providers.base import AskContext, SqlDraft, UsageMeter
from agent_service.providers.offline.provider import OfflineProvider
from agent_service.sql.executor import SqliteExecutor
from agent_service.sql.schema import curated_schema

DOC = Path(__file__).resolve().parents[4] / "docs" / "offline-provider.md"
EXAMPLES = re.findall(r"^\| \d+ \| [^|]+ \| (.+?) \|$", DOC.read_text(encoding="utf-8"), re.M)


@pytest.fixture(scope="module")
def db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return seed_database(tmp_path_factory.mktemp("offline-docs") / "demo.db").path


def test_the_doc_lists_enough_shapes() -> None:
    assert len(EXAMPLES) >= 40


@pytest.mark.parametrize("question", EXAMPLES)
async def test_each_documented_example_is_answered(db: Path, question: str) -> None:
    provider = OfflineProvider()
    ask = AskContext(question, (), {}, UsageMeter())
    assert (await provider.classify(ask)).route == "sql"
    drafted = await provider.draft_sql(ask, curated_schema(), ())
    assert isinstance(drafted, SqlDraft), drafted
    assert drafted.note.endswith(".")
    for tenant in ("acme-hvac", "citywide-electric"):
        result = await SqliteExecutor(db).run(tenant, drafted.sql)
        text = "".join([t async for t in provider.answer_from_rows(ask, result)])
        assert text.strip()
        assert not text.startswith(("Here is what I found", "The query returned")), text
