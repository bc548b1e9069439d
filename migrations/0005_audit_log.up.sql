-- The audit trail: append-only (triggers reject UPDATE, DELETE and TRUNCATE) and tamper-evident
-- (each row stores a SHA-256 hash chained to the previous row's; audit_verify_chain() recomputes
-- the chain and reports the first row that does not match). Rows older than the compliance
-- retention period can be pruned only through audit_prune(), which records a checkpoint so the
-- chain stays verifiable from the first kept row.
BEGIN;

CREATE TABLE IF NOT EXISTS audit_settings (
    singleton     boolean PRIMARY KEY DEFAULT true CHECK (singleton),
    min_retention interval NOT NULL DEFAULT interval '400 days' CHECK (min_retention >= interval '1 day')
);
INSERT INTO audit_settings DEFAULT VALUES ON CONFLICT DO NOTHING;

CREATE TABLE IF NOT EXISTS audit_log (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    occurred_at timestamptz NOT NULL DEFAULT clock_timestamp(),
    actor_id    uuid,
    action      text NOT NULL,
    target      text NOT NULL DEFAULT '',
    details     jsonb NOT NULL DEFAULT '{}'::jsonb,
    prev_hash   bytea NOT NULL,
    row_hash    bytea NOT NULL
);
CREATE INDEX IF NOT EXISTS audit_log_occurred_at_idx ON audit_log (occurred_at);
CREATE INDEX IF NOT EXISTS audit_log_actor_idx ON audit_log (actor_id, occurred_at);

-- Where a pruned chain continues: the hash of the last row removed.
CREATE TABLE IF NOT EXISTS audit_checkpoints (
    id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    last_pruned_id bigint NOT NULL,
    last_row_hash bytea NOT NULL,
    pruned_rows   bigint NOT NULL,
    created_at    timestamptz NOT NULL DEFAULT now()
);

-- The exact bytes a row's hash covers: every column but the hashes, in a timezone-independent form.
CREATE OR REPLACE FUNCTION audit_row_digest(prev bytea, r audit_log) RETURNS bytea
LANGUAGE sql IMMUTABLE STRICT AS $$
    SELECT sha256(prev || convert_to(concat_ws('|',
        r.id::text,
        to_char(r.occurred_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'),
        coalesce(r.actor_id::text, ''),
        r.action,
        r.target,
        r.details::text), 'UTF8'))
$$;

CREATE OR REPLACE FUNCTION audit_log_chain() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    previous bytea;
BEGIN
    -- One writer at a time extends the chain.
    PERFORM pg_advisory_xact_lock(hashtext('kubechat.audit_log'));
    SELECT row_hash INTO previous FROM audit_log ORDER BY id DESC LIMIT 1;
    IF previous IS NULL THEN
        SELECT last_row_hash INTO previous FROM audit_checkpoints ORDER BY id DESC LIMIT 1;
    END IF;
    NEW.prev_hash := coalesce(previous, '\x'::bytea);
    NEW.row_hash := audit_row_digest(NEW.prev_hash, NEW);
    RETURN NEW;
END
$$;

CREATE OR REPLACE FUNCTION audit_log_reject_change() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE' AND current_setting('kubechat.audit_prune', true) = 'on' THEN
        RETURN OLD;  -- audit_prune() removing rows past the retention period
    END IF;
    RAISE EXCEPTION 'audit_log is append-only: % is not allowed', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END
$$;

DROP TRIGGER IF EXISTS audit_log_chain ON audit_log;
CREATE TRIGGER audit_log_chain BEFORE INSERT ON audit_log
    FOR EACH ROW EXECUTE FUNCTION audit_log_chain();
DROP TRIGGER IF EXISTS audit_log_append_only ON audit_log;
CREATE TRIGGER audit_log_append_only BEFORE UPDATE OR DELETE ON audit_log
    FOR EACH ROW EXECUTE FUNCTION audit_log_reject_change();
DROP TRIGGER IF EXISTS audit_log_no_truncate ON audit_log;
CREATE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON audit_log
    FOR EACH STATEMENT EXECUTE FUNCTION audit_log_reject_change();

-- Recompute the chain. Returns nothing when it is intact, else the first broken row and why.
CREATE OR REPLACE FUNCTION audit_verify_chain()
RETURNS TABLE (broken_id bigint, reason text)
LANGUAGE plpgsql STABLE AS $$
DECLARE
    r audit_log;
    expected_prev bytea;
BEGIN
    SELECT last_row_hash INTO expected_prev FROM audit_checkpoints ORDER BY id DESC LIMIT 1;
    expected_prev := coalesce(expected_prev, '\x'::bytea);
    FOR r IN SELECT * FROM audit_log ORDER BY id LOOP
        IF r.prev_hash IS DISTINCT FROM expected_prev THEN
            broken_id := r.id; reason := 'prev_hash does not match the previous row (a row was removed or reordered)';
            RETURN NEXT; RETURN;
        END IF;
        IF r.row_hash IS DISTINCT FROM audit_row_digest(r.prev_hash, r) THEN
            broken_id := r.id; reason := 'row_hash does not match the row''s contents (the row was modified)';
            RETURN NEXT; RETURN;
        END IF;
        expected_prev := r.row_hash;
    END LOOP;
END
$$;

-- Compliance retention: remove rows older than `older_than` (never less than the configured
-- minimum), keeping the chain verifiable through a checkpoint. Returns the number of rows removed.
CREATE OR REPLACE FUNCTION audit_prune(older_than interval) RETURNS bigint
LANGUAGE plpgsql AS $$
DECLARE
    minimum interval;
    last_id bigint;
    last_hash bytea;
    removed bigint;
BEGIN
    SELECT min_retention INTO minimum FROM audit_settings;
    IF older_than < minimum THEN
        RAISE EXCEPTION 'audit_prune: % is shorter than the minimum retention %', older_than, minimum;
    END IF;
    PERFORM pg_advisory_xact_lock(hashtext('kubechat.audit_log'));
    SELECT id, row_hash INTO last_id, last_hash FROM audit_log
        WHERE occurred_at < now() - older_than ORDER BY id DESC LIMIT 1;
    IF last_id IS NULL THEN
        RETURN 0;
    END IF;
    PERFORM set_config('kubechat.audit_prune', 'on', true);
    DELETE FROM audit_log WHERE id <= last_id;
    GET DIAGNOSTICS removed = ROW_COUNT;
    PERFORM set_config('kubechat.audit_prune', 'off', true);
    INSERT INTO audit_checkpoints (last_pruned_id, last_row_hash, pruned_rows) VALUES (last_id, last_hash, removed);
    RETURN removed;
END
$$;

COMMIT;
