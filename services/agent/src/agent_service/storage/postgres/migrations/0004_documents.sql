-- Per-tenant documents for the RAG path: full-text search (tsvector + GIN, ranked by ts_rank).
-- The application filters on company_id explicitly, and row-level security enforces it again.

CREATE TABLE documents (
    company_id text NOT NULL,
    doc_id text NOT NULL,
    title text NOT NULL,
    chunk_count integer NOT NULL,
    PRIMARY KEY (company_id, doc_id)
);

CREATE TABLE document_chunks (
    company_id text NOT NULL,
    chunk_id text NOT NULL,
    doc_id text NOT NULL,
    title text NOT NULL,
    body text NOT NULL,
    -- titles weigh more than body text (weight A vs B), as in the FTS5 store's bm25 weights
    search tsvector GENERATED ALWAYS AS (
        setweight(to_tsvector('english', title), 'A') || setweight(to_tsvector('english', body), 'B')
    ) STORED,
    PRIMARY KEY (company_id, chunk_id),
    FOREIGN KEY (company_id, doc_id) REFERENCES documents (company_id, doc_id) ON DELETE CASCADE
);

CREATE INDEX document_chunks_search ON document_chunks USING gin (search);
CREATE INDEX document_chunks_doc ON document_chunks (company_id, doc_id);

ALTER TABLE documents ENABLE ROW LEVEL SECURITY;
ALTER TABLE documents FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON documents
    USING (company_id = NULLIF(current_setting('app.tenant_id', true), ''))
    WITH CHECK (company_id = NULLIF(current_setting('app.tenant_id', true), ''));

ALTER TABLE document_chunks ENABLE ROW LEVEL SECURITY;
ALTER TABLE document_chunks FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON document_chunks
    USING (company_id = NULLIF(current_setting('app.tenant_id', true), ''))
    WITH CHECK (company_id = NULLIF(current_setting('app.tenant_id', true), ''));
