-- Internal API idempotency keys: what an unfinished request created (so a retry
-- resumes it instead of creating another) and until when its holder owns it
-- (a crashed holder's claim is taken over after that).
ALTER TABLE api_idempotency ADD COLUMN resource_id TEXT;
ALTER TABLE api_idempotency ADD COLUMN locked_until TIMESTAMPTZ;
CREATE INDEX api_idempotency_created ON api_idempotency (created_at);
