-- Mutation history (MUTATION_HISTORY): the outbox keeps mapped mutations for a history
-- diff of a candidate mapper; a window by time finds its first and last rows here.
CREATE INDEX outbox_created ON outbox (created_at);

-- Promotions and rollbacks of mappers (a candidate made live, or taken back), in order:
-- every replica applies the latest row of each mapper name over its MAPPERS_DIR set.
CREATE TABLE mapper_releases (
    generation       INTEGER PRIMARY KEY AUTOINCREMENT,
    action           TEXT    NOT NULL,           -- promote | rollback
    mapper           TEXT    NOT NULL,
    -- The component now live under this name; NULL: the mapper directory's (or none).
    component        BLOB,
    file             TEXT,
    version          TEXT,
    sha256           TEXT,
    previous_version TEXT,
    previous_sha256  TEXT,
    released_by      TEXT    NOT NULL,
    released_at      TEXT    NOT NULL,
    reverts          INTEGER,                    -- rollback: the generation it undid
    -- The generation this one was made on: one release per generation, so two replicas
    -- promoting at once cannot both build on the same state.
    parent           INTEGER NOT NULL UNIQUE
);
CREATE INDEX mapper_releases_mapper ON mapper_releases (mapper, generation);
