-- Deployment-wide settings (system prompt, retention, VAPID keys...), one row per key.
CREATE TABLE site_configs (
    key text PRIMARY KEY,
    value text NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now()
);
