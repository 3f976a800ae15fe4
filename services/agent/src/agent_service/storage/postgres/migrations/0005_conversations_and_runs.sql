-- Conversation ownership (the messages live in LangGraph's checkpoint tables), and the busy
-- registry shared by every replica: one row per conversation with a reply being written, held by
-- a lease that its replica renews while the run lasts and that expires if the replica dies.

CREATE TABLE conversations (
    company_id text NOT NULL,
    user_id text NOT NULL,
    id text NOT NULL,
    title text NOT NULL,
    created_at timestamptz NOT NULL,
    updated_at timestamptz NOT NULL,
    message_count integer NOT NULL DEFAULT 0,
    PRIMARY KEY (company_id, user_id, id)
);
CREATE INDEX conversations_by_owner ON conversations (company_id, user_id, updated_at DESC);

CREATE TABLE active_runs (
    key text PRIMARY KEY,
    holder text NOT NULL,
    expires_at timestamptz NOT NULL
);
