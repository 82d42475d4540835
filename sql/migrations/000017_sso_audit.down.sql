DROP TABLE IF EXISTS audit_events;
DROP TABLE IF EXISTS oidc_flows;
DROP TABLE IF EXISTS oidc_identities;
DROP TABLE IF EXISTS oidc_config;
