-- Web Push subscriptions, and a per-user opt-out.
CREATE TABLE webpush_subscriptions (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    user_id uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    endpoint text NOT NULL,
    endpoint_p256dh_key text NOT NULL,
    endpoint_auth_key text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT webpush_subscriptions_user_endpoint_key UNIQUE (user_id, endpoint)
);

ALTER TABLE users ADD COLUMN webpush_enabled boolean NOT NULL DEFAULT true;
