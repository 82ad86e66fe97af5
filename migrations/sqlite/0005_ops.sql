-- Flagged payments, for the operators' gauges (how many wait for a person,
-- and since when): flags are rare, so a partial index keeps that count and
-- its oldest change cheap however many payments have settled.
CREATE INDEX payments_flagged ON payments (updated_at) WHERE flagged IS NOT NULL;
