/* @name GetSiteConfig */
SELECT value FROM site_configs WHERE key = :key!::text;

/* @name UpsertSiteConfig */
INSERT INTO site_configs (key, value) VALUES (:key!::text, :value!::text)
ON CONFLICT (key) DO UPDATE SET value = excluded.value, updated_at = now()
RETURNING value;

/* @name DeleteSiteConfig */
DELETE FROM site_configs WHERE key = :key!::text;
