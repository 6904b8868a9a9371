# shellcheck shell=bash
# The database's time by statement (sourced by scripts/bench after postgres.sh), for
# BENCH_PG_STATEMENTS=1: pg_stat_statements, reset for the host's database when a measured
# span starts and read when it ends. The server must load the module
# (shared_preload_libraries = 'pg_stat_statements', a restart); track_io_timing = on adds
# the time spent reading blocks. The extension is created in the administrative database
# (PAKAURA_TEST_POSTGRES) and left there: its view covers every database of the server.

pg_statements_on=0

# pg_statements_ready: turns the tables on when the server can give them; warns otherwise.
pg_statements_ready() {
  local loaded
  loaded="$(psql -qtA "$PAKAURA_TEST_POSTGRES" -c "SHOW shared_preload_libraries")" || loaded=""
  if [[ $loaded != *pg_stat_statements* ]]; then
    warn "BENCH_PG_STATEMENTS=1, but the PostgreSQL server does not load pg_stat_statements (shared_preload_libraries = '$loaded'): no statement tables"
    return 0
  fi
  psql -q "$PAKAURA_TEST_POSTGRES" -c "SET client_min_messages = warning" \
    -c "CREATE EXTENSION IF NOT EXISTS pg_stat_statements" >/dev/null ||
    { warn "could not create the extension pg_stat_statements: no statement tables"; return 0; }
  pg_statements_on=1
}

# pg_statements_reset DATABASE: forgets what the server counted for DATABASE so far
# (nothing to do for an empty name: the row runs on SQLite).
pg_statements_reset() {
  [[ $pg_statements_on == 1 && -n $1 ]] || return 0
  psql -qtA "$PAKAURA_TEST_POSTGRES" -v db="$1" >/dev/null <<<"SELECT pg_stat_statements_reset(0, oid, 0) FROM pg_database WHERE datname = :'db'"
}

# pg_statements_report DATABASE LABEL TASKS: a table of DATABASE's statements since the
# reset, the costliest first (the twelve that took the most time; the rest summed), per
# created task: calls, time, and the buffers and WAL each call touched; then a line with
# the totals. Times are the server's execution times (a COMMIT's does not include its WAL
# flush, which runs after the statement's timing ends); "share" is of all the database's
# statement time. Nothing for an empty DATABASE (SQLite).
pg_statements_report() {
  local db=$1 label=$2 tasks=$3
  [[ $pg_statements_on == 1 && -n $db ]] || return 0
  echo "$label, $tasks tasks:"
  echo
  echo "| statement | calls per task | mean | ms per 1,000 tasks | share | rows per call | buffers hit / read / dirtied per call | WAL per call | read wait per call |"
  echo "|---|---|---|---|---|---|---|---|---|"
  psql -qtA "$PAKAURA_TEST_POSTGRES" -v db="$db" -v tasks="$tasks" <<'SQL'
CREATE TEMP VIEW mine AS
  SELECT s.* FROM pg_stat_statements s JOIN pg_database d ON d.oid = s.dbid
  WHERE d.datname = :'db' AND s.calls > 0;
WITH ranked AS (
  SELECT mine.*, row_number() OVER (ORDER BY total_exec_time DESC) AS place,
    sum(total_exec_time) OVER () AS all_ms FROM mine
), grouped AS (
  SELECT CASE WHEN place <= 12
      THEN replace(left(regexp_replace(query, '\s+', ' ', 'g'), 80), '|', '\|')
      ELSE format('(%s more statements)', count(*) OVER (PARTITION BY place > 12)) END AS statement,
    place <= 12 AS top, calls, total_exec_time, all_ms, rows, shared_blks_hit, shared_blks_read,
    shared_blks_dirtied, wal_bytes, blk_read_time
  FROM ranked
)
SELECT '| ' || concat_ws(' | ', statement,
  round(sum(calls) / :tasks, 3),
  round((sum(total_exec_time) / sum(calls))::numeric, 3) || ' ms',
  round((1000 * sum(total_exec_time) / :tasks)::numeric, 1),
  round((100 * sum(total_exec_time) / max(all_ms))::numeric, 1) || ' %',
  round(sum(rows) / sum(calls), 1),
  round(sum(shared_blks_hit) / sum(calls), 1) || ' / ' || round(sum(shared_blks_read) / sum(calls), 1)
    || ' / ' || round(sum(shared_blks_dirtied) / sum(calls), 1),
  pg_size_pretty(round(sum(wal_bytes) / sum(calls))),
  round((sum(blk_read_time) / sum(calls))::numeric, 3) || ' ms') || ' |'
FROM grouped GROUP BY statement, top ORDER BY top DESC, sum(total_exec_time) DESC;
SELECT format('All statements: %s ms of the database''s time per 1,000 tasks, %s calls per task, %s of WAL per task.',
  round((1000 * sum(total_exec_time) / :tasks)::numeric, 1), round(sum(calls) / :tasks, 2),
  pg_size_pretty(round(sum(wal_bytes) / :tasks)))
FROM mine;
SQL
  echo
}

# pg_statements_print FILE: the tables pg_statements_report wrote into FILE
# since the last print, under a heading.
pg_statements_print() {
  [[ -s $1 ]] || return 0
  say "the database's time by statement over each measured span (pg_stat_statements)"
  cat "$1"
  : >"$1"
}
