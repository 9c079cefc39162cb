-- wrk script for the ingest scenario: POSTs pre-signed, unique KPN Things messages.
--
-- Environment:
--   BENCH_DATA     file of "<token> <body>" lines (bench/payloads.py writes it)
--   BENCH_PATH     request path, e.g. /ingest/<connection id>/
--   BENCH_THREADS  the -t given to wrk (each thread takes every n-th line, so no body repeats)
--   BENCH_RATE     total requests per second to pace at; 0 or unset = as fast as possible
-- done() prints one line "BENCH_RESULT {json}" that bench/run.py reads.

local ffi = require("ffi")
ffi.cdef([[
typedef struct { long tv_sec; long tv_nsec; } bench_timespec;
int clock_gettime(int clk_id, bench_timespec *tp);
]])
local ts = ffi.new("bench_timespec")
local function now()
  ffi.C.clock_gettime(1, ts) -- CLOCK_MONOTONIC
  return tonumber(ts.tv_sec) + tonumber(ts.tv_nsec) / 1e9
end

local threads = {}
local created = 0

function setup(thread)
  thread:set("tid", created)
  created = created + 1
  table.insert(threads, thread)
end

function init(args)
  local nthreads = tonumber(os.getenv("BENCH_THREADS") or "1")
  local path = os.getenv("BENCH_PATH")
  reqs = {}
  local i = 0
  for line in io.lines(os.getenv("BENCH_DATA")) do
    if i % nthreads == tid then
      local sp = line:find(" ", 1, true)
      local headers = { ["Content-Type"] = "application/json", ["Things-Message-Token"] = line:sub(1, sp - 1) }
      reqs[#reqs + 1] = wrk.format("POST", path, headers, line:sub(sp + 1))
    end
    i = i + 1
  end
  idx = 0
  wrapped = 0
  ok = 0
  other = 0
  local rate = tonumber(os.getenv("BENCH_RATE") or "0")
  if rate > 0 then
    interval = nthreads / rate
    next_at = now()
  end
end

function request()
  idx = idx + 1
  if idx > #reqs then
    -- Out of unique bodies: repeats would be answered as duplicates, so run.py discards the run.
    idx = 1
    wrapped = wrapped + 1
  end
  return reqs[idx]
end

function response(status, headers, body)
  if status == 200 then
    ok = ok + 1
  else
    other = other + 1
  end
end

if tonumber(os.getenv("BENCH_RATE") or "0") > 0 then
  -- One send slot every `interval` seconds per thread, whichever connection asks next.
  function delay()
    next_at = next_at + interval
    local wait_ms = (next_at - now()) * 1000
    if wait_ms < 0 then
      return 0
    end
    return wait_ms
  end
end

function done(summary, latency, requests)
  local n_ok, n_other, n_wrapped = 0, 0, 0
  for _, thread in ipairs(threads) do
    n_ok = n_ok + thread:get("ok")
    n_other = n_other + thread:get("other")
    n_wrapped = n_wrapped + thread:get("wrapped")
  end
  io.write(
    string.format(
      'BENCH_RESULT {"duration_us":%d,"requests":%d,"ok":%d,"other":%d,"wrapped":%d,'
        .. '"errors_connect":%d,"errors_read":%d,"errors_write":%d,"errors_timeout":%d,'
        .. '"p50_us":%d,"p90_us":%d,"p99_us":%d,"max_us":%d,"mean_us":%d}\n',
      summary.duration,
      summary.requests,
      n_ok,
      n_other,
      n_wrapped,
      summary.errors.connect,
      summary.errors.read,
      summary.errors.write,
      summary.errors.timeout,
      latency:percentile(50),
      latency:percentile(90),
      latency:percentile(99),
      latency.max,
      latency.mean
    )
  )
end
