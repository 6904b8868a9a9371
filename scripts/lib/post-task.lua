-- wrk script: POST /tasks with the bearer token in WRK_TOKEN (scripts/bench).
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer " .. assert(os.getenv("WRK_TOKEN"), "WRK_TOKEN is not set")
wrk.body = '{"title":"load test task","description":"made by wrk"}'

-- Any answer but 201 Created ends the run with an error, so a table never shows
-- refused requests as throughput. With WRK_COUNT_REFUSALS set (the seed design's rows,
-- whose SQLite answers 500 when a request waits too long for the write lock) wrk counts
-- a 500 instead ("Non-2xx or 3xx responses"), for the caller to take out; any other
-- answer still ends the run.
local count_refusals = os.getenv("WRK_COUNT_REFUSALS") ~= nil
response = function(status, headers, body)
  if status ~= 201 and not (count_refusals and status == 500) then
    error("POST /tasks answered " .. status .. ": " .. body)
  end
end
