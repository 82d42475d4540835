DROP TABLE api_keys;
DROP TYPE api_key_kind;
DROP TABLE users;
