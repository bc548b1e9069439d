-- Least privilege (issue #31): the API connects as its own role, kubechat_api, which can use the
-- application's tables but can only read and append to the audit trail. The owner (kubechat) is used
-- by migrations only. CloudNativePG creates kubechat_api from the Cluster's spec.managed.roles
-- (constructs/kubechat_deploy/data/database.py); with a managed database the DBA creates it first
-- (overlays/components/external-database).
--
-- What the audit trail no longer trusts:
-- - a setting: 0005 let a DELETE through when `kubechat.audit_prune` was 'on', and any session may set
--   a placeholder setting (PostgreSQL's guc.c). Pruning now opens the table only for the transaction that
--   audit_prune() itself registered in audit_prune_grants, a table only the owner can write;
-- - the writer's clock and ids: the API may insert only actor_id, action, target and details (column
--   privileges), so it can neither backdate a row (a backdated newest row would let audit_prune remove
--   every row before it) nor choose an id;
-- - the database alone to know its newest row: audit_verify_anchor() checks a head recorded outside
--   the database (each logical backup's manifest records one), so removing the newest rows is reported.
BEGIN;

-- The API's role is created by CloudNativePG's instance manager shortly after the primary is ready; the
-- migration hook may start first. Wait for it rather than fail (a failed migration leaves the schema dirty).
DO $$
DECLARE
    waited integer := 0;
BEGIN
    WHILE NOT EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname = 'kubechat_api') LOOP
        IF waited >= 300 THEN
            RAISE EXCEPTION 'role kubechat_api does not exist after % s: CloudNativePG creates it from the Cluster''s '
                            'spec.managed.roles (is the Secret kubechat-db-api there, with keys username and password?); '
                            'with a managed database, create it first: CREATE ROLE kubechat_api LOGIN PASSWORD ''...''',
                            waited;
        END IF;
        PERFORM pg_sleep(5);
        waited := waited + 5;
    END LOOP;
END
$$;

-- Nobody but the owner creates objects in the schema (PostgreSQL 15+ already revokes this from PUBLIC;
-- an older database upgraded in place may not have).
REVOKE CREATE ON SCHEMA public FROM PUBLIC;
GRANT USAGE ON SCHEMA public TO kubechat_api;

-- The application's own tables: read and write.
GRANT SELECT, INSERT, UPDATE, DELETE ON roles, users, user_roles, sessions, chat_sessions, chat_messages,
    kubernetes_operations TO kubechat_api;
GRANT SELECT ON schema_migrations TO kubechat_api;

-- The audit trail: read, and append the columns a writer may choose.
GRANT SELECT ON audit_log, audit_checkpoints, audit_settings TO kubechat_api;
GRANT INSERT (actor_id, action, target, details) ON audit_log TO kubechat_api;

-- The transactions audit_prune() is running in: the only DELETEs the append-only trigger lets through.
CREATE TABLE IF NOT EXISTS audit_prune_grants (
    transaction_id xid8 PRIMARY KEY
);
REVOKE ALL ON audit_prune_grants FROM PUBLIC;

CREATE OR REPLACE FUNCTION audit_log_reject_change() RETURNS trigger
LANGUAGE plpgsql SET search_path = public, pg_temp AS $$
BEGIN
    IF TG_OP = 'DELETE' AND EXISTS (SELECT FROM audit_prune_grants WHERE transaction_id = pg_current_xact_id()) THEN
        RETURN OLD;  -- audit_prune() removing rows past the retention period
    END IF;
    RAISE EXCEPTION 'audit_log is append-only: % is not allowed', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END
$$;

-- The chain is extended with the owner's rights and a fixed search path: a writer's temporary table named
-- audit_log or audit_checkpoints cannot feed it another previous hash.
CREATE OR REPLACE FUNCTION audit_log_chain() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
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
REVOKE EXECUTE ON FUNCTION audit_log_chain() FROM PUBLIC;

-- Compliance retention, callable by the API: runs with the owner's rights and never removes a row younger
-- than audit_settings.min_retention, which only the owner can change.
CREATE OR REPLACE FUNCTION audit_prune(older_than interval) RETURNS bigint
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
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
    INSERT INTO audit_prune_grants (transaction_id) VALUES (pg_current_xact_id());
    DELETE FROM audit_log WHERE id <= last_id;
    GET DIAGNOSTICS removed = ROW_COUNT;
    DELETE FROM audit_prune_grants WHERE transaction_id = pg_current_xact_id();
    INSERT INTO audit_checkpoints (last_pruned_id, last_row_hash, pruned_rows) VALUES (last_id, last_hash, removed);
    RETURN removed;
END
$$;
REVOKE EXECUTE ON FUNCTION audit_prune(interval) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION audit_prune(interval) TO kubechat_api;

-- A head recorded outside the database (id, row_hash and occurred_at of the newest row at that time, as
-- each logical backup's manifest records it): the row must still be there, unchanged, or have been pruned
-- legitimately (covered by a checkpoint and older than the minimum retention). Returns nothing when the
-- anchor holds, else the anchored row and why. audit_verify_chain() cannot see newest rows removed: the
-- rows before them still chain.
CREATE OR REPLACE FUNCTION audit_verify_anchor(anchor_id bigint, anchor_hash bytea, anchor_time timestamptz)
RETURNS TABLE (broken_id bigint, reason text)
LANGUAGE plpgsql STABLE SET search_path = public, pg_temp AS $$
DECLARE
    found_hash bytea;
    pruned_through bigint;
    minimum interval;
BEGIN
    SELECT row_hash INTO found_hash FROM audit_log WHERE id = anchor_id;
    IF found_hash IS NOT NULL THEN
        IF found_hash IS DISTINCT FROM anchor_hash THEN
            broken_id := anchor_id;
            reason := 'row_hash differs from the one recorded outside the database (the row was rewritten)';
            RETURN NEXT;
        END IF;
        RETURN;
    END IF;
    SELECT max(last_pruned_id) INTO pruned_through FROM audit_checkpoints;
    SELECT min_retention INTO minimum FROM audit_settings;
    IF pruned_through IS NOT NULL AND anchor_id <= pruned_through AND anchor_time < now() - minimum THEN
        RETURN;  -- pruned by audit_prune() after the retention period
    END IF;
    broken_id := anchor_id;
    reason := format('the row recorded outside the database (written %s) is missing: rows were removed', anchor_time);
    RETURN NEXT;
END
$$;
GRANT EXECUTE ON FUNCTION audit_verify_anchor(bigint, bytea, timestamptz) TO kubechat_api;

COMMIT;
