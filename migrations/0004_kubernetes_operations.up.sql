-- Kubernetes operations users asked KubeChat to perform, with their approval and execution.
BEGIN;

CREATE TABLE IF NOT EXISTS kubernetes_operations (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    chat_message_id bigint REFERENCES chat_messages (id) ON DELETE SET NULL,
    requested_by    uuid NOT NULL REFERENCES users (id),
    verb            text NOT NULL CHECK (verb IN ('get', 'list', 'logs', 'scale', 'restart', 'delete', 'patch')),
    kind            text NOT NULL,
    namespace       text NOT NULL DEFAULT '',
    name            text NOT NULL DEFAULT '',
    request         jsonb NOT NULL DEFAULT '{}'::jsonb,
    approval_state  text NOT NULL DEFAULT 'pending'
                    CHECK (approval_state IN ('pending', 'approved', 'rejected', 'executed', 'failed', 'not_required')),
    approved_by     uuid REFERENCES users (id),
    approved_at     timestamptz,
    executed_at     timestamptz,
    result          jsonb,
    created_at      timestamptz NOT NULL DEFAULT now(),
    -- An approved or executed write names who approved it, and nobody approves their own request.
    CONSTRAINT approval_has_approver CHECK (
        approval_state NOT IN ('approved', 'executed') OR verb IN ('get', 'list', 'logs')
        OR (approved_by IS NOT NULL AND approved_at IS NOT NULL)),
    CONSTRAINT no_self_approval CHECK (approved_by IS NULL OR approved_by <> requested_by)
);
-- The approvers' queue and a user's history.
CREATE INDEX IF NOT EXISTS kubernetes_operations_pending_idx ON kubernetes_operations (created_at)
    WHERE approval_state = 'pending';
CREATE INDEX IF NOT EXISTS kubernetes_operations_requested_by_idx ON kubernetes_operations (requested_by, created_at DESC);

COMMIT;
