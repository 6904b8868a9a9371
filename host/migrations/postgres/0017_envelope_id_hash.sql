-- The envelope id's index, as a hash. An envelope id is a UUIDv5 (a hash of the mutation
-- id, mapper and event index), so in the B-tree of `envelopes_id_key` each new envelope
-- went to a random leaf page, and publishing it (not a HOT update) added a second entry
-- at another random page. Once that index outgrew the cache, every mapped and every
-- published envelope paid for a page read and a dirty page of it. A hash index holds a
-- 4-byte hash per row instead of the 36-character text, so it is a third smaller, and is
-- all a lookup by id needs (always by equality: the console, dead letters, pruning).
--
-- A hash index cannot be unique. Uniqueness moves to what the id is made of:
-- (mutation_id, mapper, event_index), the conflict target of the relay's inserts. Mutation
-- ids are time-ordered (UUIDv7), so that index grows at its end, and it serves the lookups
-- by mutation that `envelopes_mutation` served.
CREATE UNIQUE INDEX envelopes_mutation_event ON envelopes (mutation_id, mapper, event_index);
DROP INDEX envelopes_mutation;
ALTER TABLE envelopes DROP CONSTRAINT envelopes_id_key;
CREATE INDEX envelopes_id ON envelopes USING hash (id);
