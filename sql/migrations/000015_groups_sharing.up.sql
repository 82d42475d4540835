-- Groups, chats shared with viewers, and read-only share links.
--
-- Groups are deployment-wide (owners manage them; single sign-on will fill them from an identity provider's claims).
CREATE TABLE groups (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    name text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT groups_name_length CHECK (char_length(name) BETWEEN 1 AND 128)
);
CREATE UNIQUE INDEX groups_name_key ON groups (lower(name));

CREATE TABLE group_members (
    group_id uuid NOT NULL REFERENCES groups (id) ON DELETE CASCADE,
    user_id uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    added_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (group_id, user_id)
);
-- A user's groups, read with their key at authentication (GetAPIKeyWithUser).
CREATE INDEX group_members_user ON group_members (user_id, group_id);

-- Viewer grants, one row per grantee: a table rather than array columns on chats, so that removing a user or a group
-- removes their grants (foreign keys), "shared with me" is an index lookup by grantee, and the hot chats row (its
-- status is written on every turn) does not grow.
CREATE TABLE chat_acl (
    chat_id uuid NOT NULL REFERENCES chats (id) ON DELETE CASCADE,
    user_id uuid REFERENCES users (id) ON DELETE CASCADE,
    group_id uuid REFERENCES groups (id) ON DELETE CASCADE,
    role text NOT NULL DEFAULT 'viewer',
    created_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT chat_acl_one_grantee CHECK ((user_id IS NULL) <> (group_id IS NULL)),
    CONSTRAINT chat_acl_role CHECK (role IN ('viewer'))
);
CREATE UNIQUE INDEX chat_acl_chat_user ON chat_acl (chat_id, user_id) WHERE user_id IS NOT NULL;
CREATE UNIQUE INDEX chat_acl_chat_group ON chat_acl (chat_id, group_id) WHERE group_id IS NOT NULL;
CREATE INDEX chat_acl_user ON chat_acl (user_id) WHERE user_id IS NOT NULL;
CREATE INDEX chat_acl_group ON chat_acl (group_id) WHERE group_id IS NOT NULL;

-- THE rule "who may read a chat", in SQL: its owner, a user granted directly, a member of a granted group. Every query
-- that lists or reads chats (or what belongs to them: messages, files, search) for a user goes through this view;
-- functions/core/access.ts (`chatAccess`) is the same rule for the chat's object.
CREATE VIEW chat_readers AS
    SELECT c.id AS chat_id, c.owner_id AS user_id, 'owner'::text AS access
    FROM chats c
    UNION ALL
    SELECT a.chat_id, a.user_id, 'viewer'::text
    FROM chat_acl a
    WHERE a.user_id IS NOT NULL
    UNION ALL
    SELECT a.chat_id, m.user_id, 'viewer'::text
    FROM chat_acl a
    JOIN group_members m ON m.group_id = a.group_id;

-- Read-only links: only the SHA-256 of the token is kept. The snapshot is every live message up to last_message_id
-- (the newest when the link was made; 0: none). Revoking deletes the row.
CREATE TABLE chat_share_links (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    chat_id uuid NOT NULL REFERENCES chats (id) ON DELETE CASCADE,
    hashed_token text NOT NULL,
    last_message_id bigint NOT NULL,
    expires_at timestamptz,
    created_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT chat_share_links_token_key UNIQUE (hashed_token)
);
CREATE INDEX chat_share_links_chat ON chat_share_links (chat_id, created_at);
