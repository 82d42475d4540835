-- Chat files (docs/files.md): metadata here, bytes in R2 under r2_key. A row is written before its bytes (ready =
-- false while they stream) and finalized after; the cron removes rows with their bytes, never one without the other.

CREATE TABLE chat_files (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    owner_id uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    name text NOT NULL,
    media_type text NOT NULL,
    -- While uploading: the bytes reserved against the quota; once ready: the file's size.
    size bigint NOT NULL,
    -- Hex SHA-256 of the bytes; '' until ready.
    sha256 text NOT NULL DEFAULT '',
    r2_key text NOT NULL UNIQUE,
    ready boolean NOT NULL DEFAULT false,
    created_at timestamptz NOT NULL DEFAULT now(),
    -- The last time a message started using it (NULL: never used).
    last_used_at timestamptz,
    -- Set by the cron just before it removes the bytes: the row is then gone for every reader.
    deleted_at timestamptz,
    CONSTRAINT chat_files_size CHECK (size >= 0),
    CONSTRAINT chat_files_name CHECK (length(name) BETWEEN 1 AND 255)
);

CREATE INDEX chat_files_owner ON chat_files (owner_id, created_at);
-- The cron's candidates: files with no message link (never used, or whose chats went).
CREATE INDEX chat_files_cleanup ON chat_files (coalesce(last_used_at, created_at)) WHERE deleted_at IS NULL;

-- Each user's stored bytes (ready and uploading files), checked against FILE_QUOTA_BYTES by the statement that
-- reserves an upload: a row lock, so two concurrent uploads cannot both pass the quota.
CREATE TABLE chat_file_usage (
    owner_id uuid PRIMARY KEY REFERENCES users (id) ON DELETE CASCADE,
    bytes bigint NOT NULL DEFAULT 0
);

-- Which messages use which files. Written by the trigger below in the statement that writes the message (every path
-- that stores a user message: create, post, queue, edit), so a link can never be missing; it goes with its message
-- and its chat (ON DELETE CASCADE).
CREATE TABLE chat_message_files (
    message_id bigint NOT NULL REFERENCES chat_messages (id) ON DELETE CASCADE,
    file_id uuid NOT NULL REFERENCES chat_files (id) ON DELETE CASCADE,
    chat_id uuid NOT NULL REFERENCES chats (id) ON DELETE CASCADE,
    PRIMARY KEY (message_id, file_id)
);

CREATE INDEX chat_message_files_file ON chat_message_files (file_id);
CREATE INDEX chat_message_files_chat ON chat_message_files (chat_id);

-- Links the file parts of a user message ({type:"file", file_id, ...}; the Worker checked each file is the poster's),
-- and marks the files used now. An edit replaces the message's links.
CREATE FUNCTION chat_message_files_link() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'UPDATE' THEN
        DELETE FROM chat_message_files WHERE message_id = NEW.id;
    END IF;
    WITH ids AS (
        SELECT DISTINCT (p ->> 'file_id')::uuid AS file_id
        FROM jsonb_array_elements(NEW.content) AS p
        WHERE p ->> 'type' = 'file'
            AND p ->> 'file_id' ~* '^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$'
    ), used AS (
        UPDATE chat_files f SET last_used_at = now()
        FROM ids WHERE f.id = ids.file_id AND f.deleted_at IS NULL
        RETURNING f.id
    )
    INSERT INTO chat_message_files (message_id, file_id, chat_id)
    SELECT NEW.id, used.id, NEW.chat_id FROM used
    ON CONFLICT DO NOTHING;
    RETURN NULL;
END;
$$;

-- Only rows with a file part run the function: a plain text message costs the WHEN test and nothing more.
CREATE TRIGGER chat_messages_files_insert
    AFTER INSERT ON chat_messages
    FOR EACH ROW
    WHEN (NEW.role = 'user' AND NEW.content @> '[{"type": "file"}]')
    EXECUTE FUNCTION chat_message_files_link();

CREATE TRIGGER chat_messages_files_update
    AFTER UPDATE OF content ON chat_messages
    FOR EACH ROW
    WHEN (NEW.role = 'user' AND (NEW.content @> '[{"type": "file"}]' OR OLD.content @> '[{"type": "file"}]'))
    EXECUTE FUNCTION chat_message_files_link();
