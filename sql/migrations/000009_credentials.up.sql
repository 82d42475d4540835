-- Credential management: when a key was last used (its AuthDirectory shard writes it at most once an hour per
-- key, never per request), and suspended accounts (set: the user's tokens stop working and login is refused).
ALTER TABLE api_keys ADD COLUMN last_used_at timestamptz;
ALTER TABLE users ADD COLUMN suspended_at timestamptz;
