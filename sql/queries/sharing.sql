/* @name GetChatAclUsers */
SELECT a.user_id AS "user_id!", u.username, a.role
FROM chat_acl a
JOIN users u ON u.id = a.user_id
WHERE a.chat_id = :chat_id!::uuid
ORDER BY lower(u.username), u.id;

/* @name GetChatAclGroups */
SELECT a.group_id AS "group_id!", g.name, a.role
FROM chat_acl a
JOIN groups g ON g.id = a.group_id
WHERE a.chat_id = :chat_id!::uuid
ORDER BY lower(g.name), g.id;

/* @name GetKnownUserIds */
SELECT id FROM users WHERE id = ANY (:ids!::uuid[]);

/* @name GetKnownGroupIds */
SELECT id FROM groups WHERE id = ANY (:ids!::uuid[]);

/* @name GrantChatToUsers */
INSERT INTO chat_acl (chat_id, user_id)
SELECT :chat_id!::uuid, unnest(:user_ids!::uuid[])
ON CONFLICT (chat_id, user_id) WHERE user_id IS NOT NULL DO NOTHING;

/* @name GrantChatToGroups */
INSERT INTO chat_acl (chat_id, group_id)
SELECT :chat_id!::uuid, unnest(:group_ids!::uuid[])
ON CONFLICT (chat_id, group_id) WHERE group_id IS NOT NULL DO NOTHING;

/* @name RevokeChatGrants */
DELETE FROM chat_acl
WHERE chat_id = :chat_id!::uuid AND (user_id = ANY (:user_ids!::uuid[]) OR group_id = ANY (:group_ids!::uuid[]));

/* @name GetChatAccess */
-- THE SQL form of "may this user read this chat" (the view chat_readers): 'owner', 'viewer', or no row. Files and
-- search filter with the same view: `EXISTS (SELECT 1 FROM chat_readers r WHERE r.chat_id = <chat> AND r.user_id = <user>)`.
SELECT CASE WHEN bool_or(access = 'owner') THEN 'owner' ELSE 'viewer' END AS "access!"
FROM chat_readers
WHERE chat_id = :chat_id!::uuid AND user_id = :user_id!::uuid
HAVING count(*) > 0;

/* @name GetChatsSharedWith */
-- The chats shared with a user (directly or through a group), most recently active first; never their own.
SELECT c.*, 'viewer'::text AS access
FROM chats c
WHERE c.id IN (SELECT r.chat_id FROM chat_readers r WHERE r.user_id = :user_id!::uuid AND r.access = 'viewer')
    AND c.owner_id <> :user_id!::uuid
    AND c.archived = :archived!::boolean
ORDER BY c.updated_at DESC, c.id DESC
LIMIT :limit!::int OFFSET :offset!::int;

/* @name InsertShareLink */
-- The snapshot's end: the newest live message now (0 when there is none).
INSERT INTO chat_share_links (chat_id, hashed_token, last_message_id, expires_at)
VALUES (
    :chat_id!::uuid,
    :hashed_token!::text,
    COALESCE((SELECT max(id) FROM chat_messages WHERE chat_id = :chat_id!::uuid AND deleted = FALSE), 0),
    :expires_at::timestamptz
)
RETURNING id, expires_at, created_at;

/* @name ListShareLinks */
SELECT id, expires_at, created_at
FROM chat_share_links
WHERE chat_id = :chat_id!::uuid
ORDER BY created_at, id;

/* @name DeleteShareLink */
DELETE FROM chat_share_links WHERE id = :id!::uuid AND chat_id = :chat_id!::uuid RETURNING id;

/* @name GetSharedChat */
-- A live link by its token's hash: the chat's title and creation time, the owner's username, the snapshot's end.
SELECT l.chat_id, l.last_message_id, l.expires_at, c.title, c.created_at, u.username AS owner_username
FROM chat_share_links l
JOIN chats c ON c.id = l.chat_id
JOIN users u ON u.id = c.owner_id
WHERE l.hashed_token = :hashed_token!::text AND (l.expires_at IS NULL OR l.expires_at > now());

/* @name GetSharedMessages */
-- The message columns every read selects (not the search vector nor its covering flag: they are Postgres' own).
SELECT id, chat_id, role, content, model_config_id, created_by, input_tokens, output_tokens, total_tokens, reasoning_tokens,
    cache_read_tokens, cache_creation_tokens, deleted, created_at, idempotency_key, cost_micros
FROM chat_messages
WHERE chat_id = :chat_id!::uuid AND id <= :last_message_id!::bigint AND deleted = FALSE
ORDER BY id ASC
LIMIT :limit!::int;

/* @name GetSharedFile */
-- A file of a live link's snapshot: used by a live message of the link's chat no newer than the snapshot's end.
SELECT f.id, f.name, f.media_type, f.size, f.sha256, f.created_at, f.r2_key, l.expires_at
FROM chat_share_links l
JOIN chat_files f ON f.id = :file_id!::uuid AND f.ready AND f.deleted_at IS NULL
WHERE l.hashed_token = :hashed_token!::text AND (l.expires_at IS NULL OR l.expires_at > now())
    AND EXISTS (
        SELECT 1 FROM chat_message_files mf JOIN chat_messages m ON m.id = mf.message_id
        WHERE mf.file_id = f.id AND mf.chat_id = l.chat_id
            AND m.id <= l.last_message_id AND NOT m.deleted
    );
