-- wrk script: paced requests with a varied body, one record per response.
--
-- Run with one connection per thread (wrk -t N -c N), so that each thread's request() and
-- response() pair up and the latency of every request is known here. Each connection
-- sends on its own schedule (N connections x rate/N), staggered so the whole run offers
-- BENCH_RATE requests/s from BENCH_T0 to BENCH_T_END (epoch seconds). A connection still
-- waiting for a slow answer when its slot comes sends as soon as it is free, without
-- bursting to catch up; such slots are counted as `missed` (the offered rate was not held).
--
-- Environment:
--   BENCH_RATE, BENCH_CONNS, BENCH_T0, BENCH_T_END  pacing
--   BENCH_BODIES   file with one request body per line (POST); unset or empty = GET
--   BENCH_RECORDS  CSV written at the end: sent_ms,latency_ms,status,source,circuit,retry_after
--   BENCH_SUMMARY  JSON written at the end: wrk's own counters and percentiles
--   BENCH_SEED     random seed

local ffi = require("ffi")
ffi.cdef [[
typedef struct { long tv_sec; long tv_nsec; } bench_timespec;
int clock_gettime(int clk_id, bench_timespec *tp);
]]
local ts = ffi.new("bench_timespec")
local CLOCK_REALTIME = 0 -- wall clock: the orchestrator's timeline uses it too

local function now_ms()
  ffi.C.clock_gettime(CLOCK_REALTIME, ts)
  return tonumber(ts.tv_sec) * 1000 + tonumber(ts.tv_nsec) / 1e6
end

-- Main state: set up threads, write the results at the end.
local threads = {}

function setup(thread)
  thread:set("tid", #threads)
  table.insert(threads, thread)
end

function done(summary, latency, requests)
  local out = assert(io.open(os.getenv("BENCH_RECORDS"), "w"))
  out:write("sent_ms,latency_ms,status,source,circuit,retry_after\n")
  local missed, records = 0, 0
  for _, t in ipairs(threads) do
    local recs = t:get("records")
    for i = 1, #recs do
      out:write(recs[i], "\n")
    end
    records = records + #recs
    missed = missed + (t:get("missed") or 0)
  end
  out:close()
  local e = summary.errors
  local s = assert(io.open(os.getenv("BENCH_SUMMARY"), "w"))
  s:write(string.format(
    '{"duration_us":%d,"requests":%d,"records":%d,"missed_slots":%d,' ..
    '"errors":{"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d},' ..
    '"wrk_latency_us":{"p50":%d,"p90":%d,"p99":%d,"max":%d}}\n',
    summary.duration, summary.requests, records, missed,
    e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max))
  s:close()
end

-- Thread states: pacing, request bodies, records.
local bodies, interval, next_at, t0, t_end
local sent_at = 0
records, missed = {}, 0

function init(args)
  local rate = tonumber(os.getenv("BENCH_RATE"))
  local conns = tonumber(os.getenv("BENCH_CONNS"))
  t0 = tonumber(os.getenv("BENCH_T0")) * 1000
  t_end = tonumber(os.getenv("BENCH_T_END")) * 1000
  interval = conns * 1000 / rate
  next_at = t0 + tid * interval / conns
  math.randomseed(tonumber(os.getenv("BENCH_SEED") or "1") * 1000 + tid)
  -- Each thread keeps its share of the bodies (line i goes to thread i mod N): the
  -- threads together still ask every body, and memory stays small with many threads.
  bodies = {}
  local path = os.getenv("BENCH_BODIES")
  if path and path ~= "" then
    local i = 0
    for line in io.lines(path) do
      if line ~= "" then
        if i % conns == tid then table.insert(bodies, line) end
        i = i + 1
      end
    end
    if #bodies == 0 then
      -- More threads than bodies: share them round-robin the other way.
      local all = {}
      for line in io.lines(path) do if line ~= "" then table.insert(all, line) end end
      table.insert(bodies, all[(tid % #all) + 1])
    end
  end
end

function delay()
  local now = now_ms()
  if next_at >= t_end then
    return 3600 * 1000 -- schedule over: stay idle until wrk stops
  end
  if next_at < now then
    missed = missed + math.floor((now - next_at) / interval)
    next_at = now
  end
  return next_at - now
end

function request()
  sent_at = now_ms()
  next_at = next_at + interval
  if #bodies == 0 then
    return wrk.format("GET")
  end
  return wrk.format("POST", nil, { ["Content-Type"] = "application/json" },
    bodies[math.random(#bodies)])
end

function response(status, headers, body)
  local latency = now_ms() - sent_at
  local source = body:match('"source":"([%a_]+)"')
  if not source then
    source = (status == 503) and "unavailable" or "-"
  end
  local circuit = body:match('"circuit_state":"([%a_]+)"') or body:match('"state":"([%a_]+)"') or "-"
  local retry_after = headers["Retry-After"] or headers["retry-after"] or "-"
  records[#records + 1] = string.format("%.3f,%.3f,%d,%s,%s,%s",
    sent_at - t0, latency, status, source, circuit, retry_after)
end
