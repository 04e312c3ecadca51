-- wrk script for bench/serve_load.py: POST /v1/generate with bodies from a file
-- (one JSON body per line), cycling; counts answers by kind; prints a JSON summary.
local threads = {}

function setup(thread)
  table.insert(threads, thread)
end

function init(args)
  bodies = {}
  for line in io.lines(args[1]) do
    table.insert(bodies, line)
  end
  counter = math.random(#bodies)
  ok, overload, other = 0, 0, 0
end

function request()
  counter = counter + 1
  local body = bodies[(counter % #bodies) + 1]
  return wrk.format("POST", "/v1/generate", {["Content-Type"] = "application/json"}, body)
end

function response(status, headers, body)
  if status == 200 then
    ok = ok + 1
  elseif status == 429 or status == 503 then
    overload = overload + 1
  else
    other = other + 1
  end
end

function done(summary, latency, requests)
  local totals = {ok = 0, overload = 0, other = 0}
  for _, thread in ipairs(threads) do
    totals.ok = totals.ok + thread:get("ok")
    totals.overload = totals.overload + thread:get("overload")
    totals.other = totals.other + thread:get("other")
  end
  local errors = summary.errors
  io.write(string.format(
    'RESULT {"requests": %d, "seconds": %.3f, "ok": %d, "overload": %d, "other": %d, ' ..
    '"socket_errors": %d, "timeouts": %d, "p50_ms": %.2f, "p95_ms": %.2f, "p99_ms": %.2f}\n',
    summary.requests, summary.duration / 1e6, totals.ok, totals.overload, totals.other,
    errors.connect + errors.read + errors.write, errors.timeout,
    latency:percentile(50) / 1e3, latency:percentile(95) / 1e3, latency:percentile(99) / 1e3))
end
