-- Messages keep their tokens; their costs, the ledger's totals, the prices and the spend limits go (the older schema
-- has no place for them). The deployment default limit is a site_configs row the older code never reads: removed too.
DELETE FROM site_configs WHERE key = 'spend_limit';
DROP TABLE user_spend_limits;
DROP TABLE usage_by_chat;
DROP TABLE usage_daily;
ALTER TABLE chat_messages DROP COLUMN cost_micros;
ALTER TABLE chat_model_configs DROP CONSTRAINT chat_model_configs_pricing_object;
ALTER TABLE chat_model_configs DROP COLUMN pricing;
