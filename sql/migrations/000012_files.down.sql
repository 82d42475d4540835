-- The bytes in R2 stay (the older code never reads them); file parts stay in message content as parts of a kind
-- the older code keeps as they are.
DROP TRIGGER chat_messages_files_update ON chat_messages;
DROP TRIGGER chat_messages_files_insert ON chat_messages;
DROP FUNCTION chat_message_files_link();
DROP TABLE chat_message_files;
DROP TABLE chat_file_usage;
DROP TABLE chat_files;
