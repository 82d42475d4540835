-- Search (docs/chats.md "Search"): a tsvector per user and assistant message, kept by the statement that inserts it.
--
-- This part runs in one transaction and takes no long lock: the column is added without a default (a catalog
-- change only), and the trigger fills it for every message inserted from now on. The rows already there are
-- backfilled in batches, and the GIN index built CONCURRENTLY, by 000013_search.online.sql (outside a transaction).
-- Both parts are safe to run again (the runner retries a migration whose online part failed).
--
-- The configuration: `simple` (no stemming, no stop words: words in any language match as written, lowercased)
-- with `unaccent` in front for words with non-ASCII letters ("creme" finds "crème" and the other way round).
-- Languages written without spaces (Chinese, Japanese kana and kanji) are split into one token per character by
-- chatd_search_prepare; a query's run of such characters becomes a phrase of them (functions/core/search.ts).

CREATE EXTENSION IF NOT EXISTS unaccent;

DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_ts_config WHERE cfgname = 'chatd_search') THEN
        CREATE TEXT SEARCH CONFIGURATION chatd_search (COPY = simple);
        ALTER TEXT SEARCH CONFIGURATION chatd_search ALTER MAPPING FOR word, hword, hword_part WITH unaccent, simple;
    END IF;
END
$$;

-- Text as the index and the snippets see it: private-use characters U+E000..U+E004 removed (they serve as
-- sentinels below and in the query); '<' and '>' replaced by U+E003 and U+E004, so that the parser reads
-- "<b>" or "<!-- -->" as words and separators rather than as markup that ts_headline would drop from a snippet
-- (functions/core/search.ts turns them back and escapes them); and each Han, Hiragana or Katakana character set
-- apart by U+E000, which the parser reads as a separator, so such text is indexed one character per token.
CREATE OR REPLACE FUNCTION chatd_search_prepare(t text) RETURNS text
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
AS $$
    SELECT regexp_replace(
        translate(regexp_replace(t, '[\uE000-\uE004]', '', 'g'), '<>', chr(57347) || chr(57348)),
        '([\u3040-\u30FF\u3400-\u4DBF\u4E00-\u9FFF\uF900-\uFAFF])',
        chr(57344) || '\1' || chr(57344),
        'g'
    )
$$;

-- The searchable text of a message: its text parts (not reasoning, tool calls or tool results) of user and
-- assistant messages, one per line; NULL for other roles.
CREATE OR REPLACE FUNCTION chat_message_search_text(role chat_message_role, content jsonb) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$
    SELECT CASE WHEN role IN ('user', 'assistant') THEN chatd_search_prepare(COALESCE((
        SELECT string_agg(p.part ->> 'text', E'\n' ORDER BY p.ord)
        FROM jsonb_array_elements(content) WITH ORDINALITY AS p (part, ord)
        WHERE p.part ->> 'type' = 'text' AND jsonb_typeof(p.part -> 'text') = 'string'
    ), '')) END
$$;

ALTER TABLE chat_messages ADD COLUMN IF NOT EXISTS search_tsv tsvector;

CREATE OR REPLACE FUNCTION chat_messages_search_tsv() RETURNS trigger
LANGUAGE plpgsql
AS $$
BEGIN
    NEW.search_tsv := to_tsvector('chatd_search'::regconfig, chat_message_search_text(NEW.role, NEW.content));
    RETURN NEW;
END
$$;

DROP TRIGGER IF EXISTS chat_messages_search_tsv ON chat_messages;
CREATE TRIGGER chat_messages_search_tsv
    BEFORE INSERT OR UPDATE OF role, content ON chat_messages
    FOR EACH ROW EXECUTE FUNCTION chat_messages_search_tsv();
