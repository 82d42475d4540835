-- Back to private chats: grants, groups and links cannot be kept (no tables for them before). Chats and messages stay.
DROP TABLE chat_share_links;
DROP VIEW chat_readers;
DROP TABLE chat_acl;
DROP TABLE group_members;
DROP TABLE groups;
