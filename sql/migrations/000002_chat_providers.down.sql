DROP TABLE chat_model_configs;
DROP TABLE chat_providers;
