-- Envelope bodies in a table of their own, written once: the layout PostgreSQL needs
-- (there every publish copied the whole row, body included, into a new row version),
-- kept the same here so that both databases share one schema and one set of reads.
-- SQLite updates a row in place, so the split saves it little; the body is written once
-- either way, under the envelope's `seq`.
CREATE TABLE envelope_bodies (
    seq  INTEGER PRIMARY KEY,  -- envelopes.seq
    body TEXT    NOT NULL
);
INSERT INTO envelope_bodies (seq, body) SELECT seq, body FROM envelopes;
ALTER TABLE envelopes DROP COLUMN body;

-- A body goes with its envelope, whoever deletes it (the pruner).
CREATE TRIGGER envelopes_body_gone AFTER DELETE ON envelopes
BEGIN
    DELETE FROM envelope_bodies WHERE seq = OLD.seq;
END;
