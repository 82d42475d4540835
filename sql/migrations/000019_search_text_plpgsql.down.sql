-- Back to 000013's LANGUAGE sql body (same result, slower insert).
CREATE OR REPLACE FUNCTION chat_message_search_text(role chat_message_role, content jsonb) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$
    SELECT CASE WHEN role IN ('user', 'assistant') THEN chatd_search_prepare(COALESCE((
        SELECT string_agg(p.part ->> 'text', E'\n' ORDER BY p.ord)
        FROM jsonb_array_elements(content) WITH ORDINALITY AS p (part, ord)
        WHERE p.part ->> 'type' = 'text' AND jsonb_typeof(p.part -> 'text') = 'string'
    ), '')) END
$$;
