-- Chat sessions and their messages.
BEGIN;

CREATE TABLE IF NOT EXISTS chat_sessions (
    id              uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    user_id         uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    title           text NOT NULL DEFAULT '',
    cluster_context text NOT NULL DEFAULT '',
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now(),
    archived_at     timestamptz
);
-- "My recent chats": a user's sessions, newest first.
CREATE INDEX IF NOT EXISTS chat_sessions_user_recent_idx ON chat_sessions (user_id, updated_at DESC);

CREATE TABLE IF NOT EXISTS chat_messages (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    chat_session_id uuid NOT NULL REFERENCES chat_sessions (id) ON DELETE CASCADE,
    author          text NOT NULL CHECK (author IN ('user', 'assistant', 'system', 'tool')),
    content         text NOT NULL,
    token_count     integer CHECK (token_count >= 0),
    created_at      timestamptz NOT NULL DEFAULT now()
);
-- A session's transcript in order.
CREATE INDEX IF NOT EXISTS chat_messages_session_idx ON chat_messages (chat_session_id, created_at, id);

COMMIT;
