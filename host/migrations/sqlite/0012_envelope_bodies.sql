-- Envelope bodies in a table of their own, written once. Publishing an envelope updates
-- its row (state, attempts, when, by whom); with the body in that row, a page of the
-- table held three or four envelopes, so a batch of outcomes wrote as many pages as it
-- had envelopes over three. Now the row that changes is narrow, and the body is written
-- once, beside it, under the envelope's `seq`.
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
