-- wrk script for bench/ingest: authenticated POST /v2/heartbeat/{service}, rotating over the
-- seeded services, counting status codes itself.
--
-- Environment (set by run.sh):
--   BENCH_KEY       the API key (write scope), sent as "Authorization: Bearer ..."
--   BENCH_SERVICES  how many services were seeded (names PREFIX0000, PREFIX0001, ...)
--   BENCH_PREFIX    heartbeat-name prefix
--   BENCH_SECONDS   measured window: after it each connection stops sending (wrk itself runs a
--                   little longer, so every request sent gets its answer and the row-count check
--                   can be exact instead of "give or take the requests in flight")
--   BENCH_PACE_MS   pause of each connection between an answer and its next request (default 0:
--                   as fast as answers come)
--   BENCH_RATE      requests/s this wrk thread sends, on a fixed schedule (the n-th request is
--                   sent n / BENCH_RATE s after the first, or as soon as a connection is free if
--                   the server is slower; never in a burst to catch up): bench/soak uses it to
--                   offer a fixed share of capacity whatever the latency. Overrides BENCH_PACE_MS.
local ffi = require("ffi")
ffi.cdef [[
  typedef struct { long tv_sec; long tv_nsec; } bench_timespec;
  int clock_gettime(int clk_id, bench_timespec *tp);
]]
local ts = ffi.new("bench_timespec")
local function now()
  ffi.C.clock_gettime(1, ts) -- CLOCK_MONOTONIC: comparable across wrk threads
  return tonumber(ts.tv_sec) + tonumber(ts.tv_nsec) / 1e9
end

local threads = {}
local next_id = 0

function setup(thread)
  thread:set("id", next_id)
  next_id = next_id + 1
  table.insert(threads, thread)
end

function init(args)
  local key = os.getenv("BENCH_KEY") or error("BENCH_KEY is not set")
  local n = tonumber(os.getenv("BENCH_SERVICES") or "1000")
  local prefix = os.getenv("BENCH_PREFIX") or "bench-"
  window = tonumber(os.getenv("BENCH_SECONDS") or "20")
  pace = tonumber(os.getenv("BENCH_PACE_MS") or "0")
  rate = tonumber(os.getenv("BENCH_RATE") or "0")
  next_at = nil
  local headers = {
    ["Authorization"] = "Bearer " .. key,
    ["Content-Type"] = "application/json",
  }
  local body = '{"status": "UP", "message": "bench"}'
  reqs = {}
  for i = 0, n - 1 do
    reqs[i + 1] = wrk.format("POST", "/v2/heartbeat/" .. prefix .. string.format("%04d", i),
      headers, body)
  end
  -- Threads start at different services so concurrent requests rarely hit the same row.
  idx = (id * 7919) % n
  count = n
  sent, ok, non2xx = 0, 0, 0
  statuses = {}
  first_sent, last_answer = 0, 0
  stop_at = nil
end

function delay()
  local t = now()
  if stop_at == nil then
    stop_at = t + window
    first_sent = t
  end
  if t >= stop_at then
    return 3600 * 1000 -- the window is over: send nothing more, let answers in flight arrive
  end
  if rate > 0 then
    local slot = math.max(next_at or t, t)
    next_at = slot + 1 / rate
    return math.floor((slot - t) * 1000 + 0.5)
  end
  return pace
end

function request()
  -- wrk calls request() once before the run to validate the script (delay() has not run yet):
  -- only count the real ones.
  if stop_at ~= nil then
    sent = sent + 1
  end
  idx = idx % count + 1
  return reqs[idx]
end

function response(status, headers, body)
  last_answer = now()
  if status >= 200 and status < 300 then
    ok = ok + 1
  else
    non2xx = non2xx + 1
    statuses[status] = (statuses[status] or 0) + 1
  end
end

function done(summary, latency, requests)
  local sent_, ok_, non2xx_ = 0, 0, 0
  local t0, t1 = math.huge, 0
  local by_status = {}
  for _, thread in ipairs(threads) do
    sent_ = sent_ + thread:get("sent")
    ok_ = ok_ + thread:get("ok")
    non2xx_ = non2xx_ + thread:get("non2xx")
    local f, l = thread:get("first_sent"), thread:get("last_answer")
    if f > 0 and f < t0 then t0 = f end
    if l > t1 then t1 = l end
    for code, n in pairs(thread:get("statuses")) do
      by_status[code] = (by_status[code] or 0) + n
    end
  end
  local elapsed = (t1 > t0) and (t1 - t0) or (summary.duration / 1e6)
  local e = summary.errors
  local codes = {}
  for code, n in pairs(by_status) do table.insert(codes, code .. "x" .. n) end
  -- One machine-readable line for run.sh.
  io.write(string.format(
    "BENCH sent=%d ok=%d non2xx=%d connect=%d read=%d write=%d timeout=%d " ..
    "elapsed=%.3f rps=%.1f p50_ms=%.2f p90_ms=%.2f p99_ms=%.2f max_ms=%.2f codes=%s\n",
    sent_, ok_, non2xx_, e.connect, e.read, e.write, e.timeout,
    elapsed, ok_ / elapsed,
    latency:percentile(50) / 1000, latency:percentile(90) / 1000,
    latency:percentile(99) / 1000, latency.max / 1000,
    (#codes > 0) and table.concat(codes, ",") or "-"))
end
