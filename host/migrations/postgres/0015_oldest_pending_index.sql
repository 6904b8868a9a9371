-- The pending envelopes in `seq` order, for the reads that want the oldest one or count
-- them (the backlog, the oldest pending, delivery health), and for no other read.
-- `envelopes_pending_seq` had the same condition (`state = 'pending'`) as
-- `envelopes_pending_task`, so the planner could choose either for the relay's per-task
-- reads. Once autovacuum had given the tables statistics in the middle of a backlog, it
-- chose this one for `load_envelopes`: every pending envelope scanned once for each
-- claimed task, filtered by task, one statement running for minutes and the publish stage
-- stalled behind it (BENCHMARKS.md, "The server's autovacuum"). With `seq > 0` in its
-- condition (always true: `seq` counts from 1), only a query that says `seq > 0` as well
-- can use it, and the relay's per-task reads do not.
CREATE INDEX envelopes_pending_oldest ON envelopes (seq) WHERE state = 'pending' AND seq > 0;
DROP INDEX envelopes_pending_seq;
