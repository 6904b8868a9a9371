-- Envelope bodies in a table of their own, written once. Publishing an envelope updates
-- its row (state, attempts, when, by whom); with the body in that row, every publish
-- copied the whole CloudEvent into a new row version (PostgreSQL cannot update a row in
-- place while `state` is in an index). Now the row that changes is narrow, and the body
-- is written once, beside it, under the envelope's `seq`.
CREATE TABLE envelope_bodies (
    seq  BIGINT PRIMARY KEY,  -- envelopes.seq
    body TEXT   NOT NULL
);
INSERT INTO envelope_bodies (seq, body) SELECT seq, body FROM envelopes;
ALTER TABLE envelopes DROP COLUMN body;

-- A body goes with its envelope, whoever deletes it (the pruner).
CREATE FUNCTION envelope_body_gone() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM envelope_bodies WHERE seq = OLD.seq;
    RETURN NULL;
END
$$;
CREATE TRIGGER envelopes_body_gone AFTER DELETE ON envelopes
    FOR EACH ROW EXECUTE FUNCTION envelope_body_gone();
