-- wrk script for scripts/load.sh: every request carries `Authorization: Bearer <token>`, the
-- tokens taken round-robin from a file (one per line). With one token it is the warm case; with
-- a pool larger than the run's request count, every request is the first sight of its token.
-- Requests are formatted once, up front, so a pool costs wrk no more per request than one token.
--
--   wrk -t1 -c32 -d10s -s tokens.lua URL -- TOKENS_FILE
--
-- One wrk thread only (-t1): each thread has its own Lua state and would walk the same pool.
-- Prints one JSON line: requests/s, latency percentiles in microseconds, and every failure wrk
-- counts (status >= 400 and socket errors), so that a run that was denied cannot pass as a rate.

local requests = {}
local next_index = 0

function init(args)
  local file = args[1]
  if file == nil then
    error("usage: wrk ... -s tokens.lua URL -- TOKENS_FILE")
  end
  for line in io.lines(file) do
    if line ~= "" then
      requests[#requests + 1] = wrk.format(nil, nil, { ["Authorization"] = "Bearer " .. line })
    end
  end
  if #requests == 0 then
    error("no token in " .. file)
  end
end

function request()
  next_index = next_index % #requests + 1
  return requests[next_index]
end

function done(summary, latency, _)
  local e = summary.errors
  io.write(string.format(
    '{"requests": %d, "duration_us": %d, "rps": %.2f, "p50_us": %d, "p99_us": %d, '
      .. '"non2xx": %d, "connect_errors": %d, "read_errors": %d, "write_errors": %d, "timeouts": %d}\n',
    summary.requests, summary.duration, summary.requests / (summary.duration / 1e6),
    latency:percentile(50), latency:percentile(99),
    e.status, e.connect, e.read, e.write, e.timeout))
end
