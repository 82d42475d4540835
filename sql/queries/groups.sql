/* @name ListGroups */
SELECT g.id, g.name, g.created_at,
    (SELECT count(*) FROM group_members m WHERE m.group_id = g.id)::int AS "member_count!"
FROM groups g
ORDER BY lower(g.name), g.id;

/* @name GetGroup */
SELECT g.id, g.name, g.created_at,
    (SELECT count(*) FROM group_members m WHERE m.group_id = g.id)::int AS "member_count!"
FROM groups g
WHERE g.id = :id!::uuid;

/* @name InsertGroup */
-- A name taken (case-insensitively) inserts nothing.
INSERT INTO groups (name)
VALUES (:name!::text)
ON CONFLICT ((lower(name))) DO NOTHING
RETURNING id, name, created_at, 0::int AS "member_count!";

/* @name RenameGroup */
-- No row: no such group. A name taken by another group is a unique violation (23505).
UPDATE groups g SET name = :name!::text, updated_at = now()
WHERE g.id = :id!::uuid
RETURNING g.id, g.name, g.created_at,
    (SELECT count(*) FROM group_members m WHERE m.group_id = g.id)::int AS "member_count!";

/* @name DeleteGroup */
-- The group goes with its memberships and grants (cascade); the answer names who and what lost access through it
-- (every sub-statement sees the rows as they were before the delete).
WITH gone AS (DELETE FROM groups WHERE id = :id!::uuid RETURNING id)
SELECT
    gone.id,
    ARRAY(SELECT m.user_id FROM group_members m WHERE m.group_id = gone.id) AS "user_ids!",
    ARRAY(SELECT a.chat_id FROM chat_acl a WHERE a.group_id = gone.id) AS "chat_ids!"
FROM gone;

/* @name ListGroupMembers */
SELECT u.id AS user_id, u.username, u.email
FROM group_members m
JOIN users u ON u.id = m.user_id
WHERE m.group_id = :group_id!::uuid
ORDER BY lower(u.username), u.id;

/* @name AddGroupMember */
-- Idempotent; the answer says whether the group and the user exist.
WITH added AS (
    INSERT INTO group_members (group_id, user_id)
    SELECT g.id, u.id FROM groups g, users u WHERE g.id = :group_id!::uuid AND u.id = :user_id!::uuid
    ON CONFLICT DO NOTHING
    RETURNING user_id
)
SELECT
    EXISTS (SELECT 1 FROM groups WHERE id = :group_id!::uuid) AS "group_exists!",
    EXISTS (SELECT 1 FROM users WHERE id = :user_id!::uuid) AS "user_exists!",
    (SELECT count(*) FROM added)::int AS "added!";

/* @name RemoveGroupMember */
WITH removed AS (
    DELETE FROM group_members WHERE group_id = :group_id!::uuid AND user_id = :user_id!::uuid RETURNING user_id
)
SELECT
    EXISTS (SELECT 1 FROM groups WHERE id = :group_id!::uuid) AS "group_exists!",
    (SELECT count(*) FROM removed)::int AS "removed!";

/* @name GetUserGroupIds */
-- A user's groups as they are now (after a membership change, for the chats where the user has streams open).
SELECT ARRAY(SELECT group_id FROM group_members WHERE user_id = :user_id!::uuid ORDER BY group_id) AS "group_ids!";
