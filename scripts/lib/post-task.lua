-- wrk script: POST /tasks with the bearer token in WRK_TOKEN (scripts/bench).
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer " .. assert(os.getenv("WRK_TOKEN"), "WRK_TOKEN is not set")
wrk.body = '{"title":"load test task","description":"made by wrk"}'

-- Any answer but 201 Created ends the run with an error, so a table never shows
-- refused requests as throughput.
response = function(status, headers, body)
  if status ~= 201 then
    error("POST /tasks answered " .. status .. ": " .. body)
  end
end
