-- Section-aware chunks (chunk format 2, storage/chunks.py): each chunk is one section and keeps
-- its heading in a column of its own, ranked above the body like the FTS5 store's bm25 weights:
-- heading A, document title B, body D (ts_rank weights in pg_documents.py / documents.py).
-- Documents record the chunk format they were written in; the seed path re-chunks older ones.

ALTER TABLE documents ADD COLUMN chunk_format integer NOT NULL DEFAULT 1;

ALTER TABLE document_chunks ADD COLUMN heading text NOT NULL DEFAULT '';
ALTER TABLE document_chunks DROP COLUMN search;
ALTER TABLE document_chunks ADD COLUMN search tsvector GENERATED ALWAYS AS (
    setweight(to_tsvector('english', heading), 'A')
    || setweight(to_tsvector('english', title), 'B')
    || setweight(to_tsvector('english', body), 'D')
) STORED;

CREATE INDEX document_chunks_search ON document_chunks USING gin (search);
