-- Room on each page for the relay's claims. The map stage claims an outbox row, and the
-- publish stage a task's queue row, by setting its lease (`locked_by`, `locked_until`,
-- `lock_token`), columns no index holds. PostgreSQL can then write the new row version on
-- the same page without touching any index (a HOT update), but only if the page has room:
-- rows written by inserts alone fill their pages, so every claim copied the row to another
-- page and added an entry to each of the table's indexes. Pages filled this far leave room
-- for the claim's row version. Tables keep what they hold; pages written from now on follow.
ALTER TABLE outbox SET (fillfactor = 60);
ALTER TABLE relay_tasks SET (fillfactor = 50);
