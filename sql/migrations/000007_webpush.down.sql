ALTER TABLE users DROP COLUMN webpush_enabled;
DROP TABLE webpush_subscriptions;
