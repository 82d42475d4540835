-- Users and keys stay. The older schema cannot express a suspension, so a suspended user's sessions and API keys
-- are deleted (suspending already deleted them; this also catches any made since): none of them works after the
-- downgrade. The suspension itself is lost (the user can sign in again), as is last_used_at.
DELETE FROM api_keys WHERE user_id IN (SELECT id FROM users WHERE suspended_at IS NOT NULL);
ALTER TABLE users DROP COLUMN suspended_at;
ALTER TABLE api_keys DROP COLUMN last_used_at;
