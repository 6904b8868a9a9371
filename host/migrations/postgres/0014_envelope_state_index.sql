-- One index over the envelopes that are not published, in place of two. `envelopes_state_seq`
-- held every envelope by (state, seq) and `envelopes_pending_seq` the pending ones by seq.
-- Since `state` was in an index, publishing an envelope (pending -> published) could not be
-- a HOT update: it added an entry to every index of the row, this one included, and the
-- entry was never read (published envelopes are listed through the primary key). This index
-- holds pending, dead and skipped envelopes only: the pending ones in `seq` order, as the
-- backlog and the oldest-pending reads want them, and the dead ones for the console's filter.
-- An envelope enters it once, when stored, and its publish adds nothing to it.
CREATE INDEX envelopes_unsettled_seq ON envelopes (state, seq) WHERE state <> 'published';
DROP INDEX envelopes_state_seq;
DROP INDEX envelopes_pending_seq;
