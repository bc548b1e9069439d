-- Users and their roles. KubeChat authenticates users itself (JWT); roles gate what they may ask for.
BEGIN;

CREATE TABLE IF NOT EXISTS roles (
    name        text PRIMARY KEY CHECK (name ~ '^[a-z][a-z0-9_-]{1,62}$'),
    description text NOT NULL DEFAULT ''
);

INSERT INTO roles (name, description) VALUES
    ('viewer',   'reads cluster state through chat'),
    ('operator', 'requests write actions, which an approver must approve'),
    ('approver', 'approves or rejects requested write actions'),
    ('admin',    'manages users and roles')
ON CONFLICT (name) DO NOTHING;

CREATE TABLE IF NOT EXISTS users (
    id           uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    email        text NOT NULL CHECK (email = lower(email) AND email LIKE '%_@_%'),
    display_name text NOT NULL DEFAULT '',
    created_at   timestamptz NOT NULL DEFAULT now(),
    disabled_at  timestamptz
);
CREATE UNIQUE INDEX IF NOT EXISTS users_email_key ON users (email);

CREATE TABLE IF NOT EXISTS user_roles (
    user_id    uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    role       text NOT NULL REFERENCES roles (name),
    granted_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (user_id, role)
);
CREATE INDEX IF NOT EXISTS user_roles_role_idx ON user_roles (role);

COMMIT;
