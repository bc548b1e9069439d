-- Back to 0005: the owner's functions as they were, no grants to kubechat_api (the role itself is
-- CloudNativePG's; it stays, with nothing to use).
BEGIN;

DROP FUNCTION IF EXISTS audit_verify_anchor(bigint, bytea, timestamptz);

CREATE OR REPLACE FUNCTION audit_prune(older_than interval) RETURNS bigint
LANGUAGE plpgsql SECURITY INVOKER AS $$
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
GRANT EXECUTE ON FUNCTION audit_prune(interval) TO PUBLIC;
DO $$
BEGIN
    IF EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname = 'kubechat_api') THEN
        REVOKE EXECUTE ON FUNCTION audit_prune(interval) FROM kubechat_api;
    END IF;
END
$$;

CREATE OR REPLACE FUNCTION audit_log_chain() RETURNS trigger
LANGUAGE plpgsql SECURITY INVOKER AS $$
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
GRANT EXECUTE ON FUNCTION audit_log_chain() TO PUBLIC;

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

DROP TABLE IF EXISTS audit_prune_grants;

DO $$
BEGIN
    IF EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname = 'kubechat_api') THEN
        REVOKE ALL ON roles, users, user_roles, sessions, chat_sessions, chat_messages, kubernetes_operations,
            schema_migrations, audit_log, audit_checkpoints, audit_settings FROM kubechat_api;
        REVOKE USAGE ON SCHEMA public FROM kubechat_api;
    END IF;
END
$$;

COMMIT;
