-- The search trigger's text, without re-planning on every insert (docs/performance.md "Search").
--
-- 000013 wrote chat_message_search_text in LANGUAGE sql. Its body has a subquery, so Postgres cannot inline it into
-- the trigger's expression, and before Postgres 18 a non-inlined SQL function parses and plans its body again in
-- every transaction: ~0.28 ms of server time per inserted message, a good part of the hot insert (`npm run bench`:
-- 0.30 ms for a plain insert without the trigger, 0.68 ms with it). In PL/pgSQL the same statement is planned once
-- per session and kept: 0.41 ms. Same text, same tsvector: no row needs rewriting.
CREATE OR REPLACE FUNCTION chat_message_search_text(role chat_message_role, content jsonb) RETURNS text
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE
AS $$
DECLARE
    t text;
BEGIN
    IF role IS NULL OR role NOT IN ('user', 'assistant') THEN
        RETURN NULL;
    END IF;
    SELECT string_agg(p.part ->> 'text', E'\n' ORDER BY p.ord) INTO t
    FROM jsonb_array_elements(content) WITH ORDINALITY AS p (part, ord)
    WHERE p.part ->> 'type' = 'text' AND jsonb_typeof(p.part -> 'text') = 'string';
    RETURN chatd_search_prepare(COALESCE(t, ''));
END
$$;
