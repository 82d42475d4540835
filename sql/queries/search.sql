/* @name SearchMessages */
-- GET /chats/search and the search_chats tool (docs/chats.md "Search"). One statement: the caller's readable chats,
-- their live user and assistant messages whose vector matches the web-search query, best match first
-- (ts_rank_cd), then newest; then a snippet for the page's rows only. :q is already normalised by
-- functions/core/search.ts. readable_chats is the access rule for reads, through the view chat_readers (migration
-- 000015): the caller's chats and those shared with them, directly or through a group.
-- The snippet marks matches with U+E001 and U+E002 and keeps '<' '>' as U+E003 U+E004 (chatd_search_prepare);
-- functions/core/search.ts escapes the rest and turns the sentinels into <mark></mark>.
WITH readable_chats AS NOT MATERIALIZED (
    SELECT c.id, c.title, c.archived
    FROM chats c
    WHERE c.id IN (SELECT r.chat_id FROM chat_readers r WHERE r.user_id = :user_id!::uuid)
), readable AS MATERIALIZED (
    -- The chats as one array: one index scan over all of them (combined with one GIN scan, or filtering for common
    -- words), where a join would scan the GIN index again for every chat. Computed once for both branches below.
    SELECT ARRAY(SELECT rc.id FROM readable_chats rc) AS ids
), matches AS NOT MATERIALIZED (
    -- The tsquery is written out where it is used (not in a CTE): the planner then sees its words and their
    -- frequency (the column's statistics) and picks the GIN index for rare words, the caller's chats for common ones.
    -- Two branches, one per index of migration 000020, each message in exactly one: the vectors of at most 2,000
    -- bytes (search_covered) come from the covering index chat_messages_search_cover without reading the heap
    -- (a user's messages lie on as many heap pages as there are of them); the longer ones (and rows the migration's
    -- backfill has not marked yet) from the heap through chat_messages_search_uncovered.
    SELECT m.id, m.chat_id, m.created_at, m.search_tsv
    FROM chat_messages m
    WHERE m.chat_id = ANY ((SELECT r.ids FROM readable r)::uuid[])
        AND m.search_covered
        AND m.search_tsv @@ websearch_to_tsquery('chatd_search'::regconfig, :q!::text)
        AND NOT m.deleted
    UNION ALL
    SELECT m.id, m.chat_id, m.created_at, m.search_tsv
    FROM chat_messages m
    WHERE m.chat_id = ANY ((SELECT r.ids FROM readable r)::uuid[])
        AND m.search_tsv IS NOT NULL AND m.search_covered IS NOT TRUE
        AND m.search_tsv @@ websearch_to_tsquery('chatd_search'::regconfig, :q!::text)
        AND NOT m.deleted
), page AS MATERIALIZED (
    -- Only what the order needs, so the matches never leave the index; role and content for the page's rows only.
    SELECT x.id, x.chat_id, x.created_at,
        ts_rank_cd(x.search_tsv, websearch_to_tsquery('chatd_search'::regconfig, :q!::text)) AS rank
    FROM matches x
    ORDER BY rank DESC, x.created_at DESC, x.id DESC
    LIMIT :limit!::int OFFSET :offset!::int
)
SELECT
    p.chat_id AS "chat_id!",
    rc.title AS "chat_title!",
    rc.archived AS "archived!",
    p.id AS "message_id!",
    m.role AS "role!",
    p.created_at AS "created_at!",
    ts_headline(
        'chatd_search'::regconfig,
        chat_message_search_text(m.role, m.content),
        websearch_to_tsquery('chatd_search'::regconfig, :q!::text),
        'StartSel=' || chr(57345) || ', StopSel=' || chr(57346)
            || ', MaxWords=30, MinWords=12, ShortWord=0, MaxFragments=2, FragmentDelimiter=" … "'
    ) AS "snippet!"
FROM page p
JOIN chat_messages m ON m.id = p.id
JOIN readable_chats rc ON rc.id = p.chat_id
ORDER BY p.rank DESC, p.created_at DESC, p.id DESC;

/* @name GetChatsMatching */
-- GET /chats?q=: the caller's own chats (or, :shared, the chats shared with them, like GetChatsSharedWith), archived
-- or not as asked, whose title or any live user or assistant message matches, most recently active first, like GET
-- /chats.
WITH readable_chats AS NOT MATERIALIZED (
    SELECT c.*, CASE WHEN c.owner_id = :user_id!::uuid THEN 'owner' ELSE 'viewer' END AS access
    FROM chats c
    WHERE (NOT :shared!::boolean AND c.owner_id = :user_id!::uuid)
        OR (:shared!::boolean AND c.owner_id <> :user_id!::uuid
            AND c.id IN (SELECT r.chat_id FROM chat_readers r WHERE r.user_id = :user_id!::uuid AND r.access = 'viewer'))
)
SELECT rc.*
FROM readable_chats rc
WHERE rc.archived = :archived!::boolean
    AND (
        to_tsvector('chatd_search'::regconfig, chatd_search_prepare(rc.title)) @@ websearch_to_tsquery('chatd_search'::regconfig, :q!::text)
        OR EXISTS (
            SELECT 1 FROM chat_messages m
            WHERE m.chat_id = rc.id AND m.search_tsv @@ websearch_to_tsquery('chatd_search'::regconfig, :q!::text) AND NOT m.deleted
        )
    )
ORDER BY rc.updated_at DESC, rc.id DESC
LIMIT :limit!::int OFFSET :offset!::int;
