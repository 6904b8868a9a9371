-- The envelopes by (state, seq) only where the state is rare. `envelopes_state_seq` held
-- every envelope; since `state` was in it, publishing an envelope (pending -> published)
-- could not be a HOT update and added an entry to every index of the row, this one
-- included, and that entry was never read: published envelopes are listed through the
-- primary key, pending ones through `envelopes_pending_seq` and `envelopes_pending_task`.
-- What it still served, the console's filter on dead and skipped envelopes, this index
-- serves; an envelope enters it only when it is parked or skipped.
CREATE INDEX envelopes_parked_seq ON envelopes (state, seq) WHERE state IN ('dead', 'skipped');
DROP INDEX envelopes_state_seq;
