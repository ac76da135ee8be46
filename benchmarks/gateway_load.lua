-- wrk load script for benchmarks/bench_gateway.py: POST a small chat completion.
--
--   COSTPLANE_KEY=cpk_... wrk -t2 -c50 -d10s --latency -s benchmarks/gateway_load.lua http://127.0.0.1:PORT
--
-- Every request is unique (thread id + counter in the prompt), so the gateway's loop detector
-- (same normalised request N times in one run) never fires, and it carries a run id
-- (x-costplane-run, 64 runs per thread) so per-run budgets apply. The prompt is ~20 tokens,
-- model gpt-4o-mini, max_tokens 16, not streamed.
--
-- done() prints one line "COSTPLANE_WRK {json}" with the exact response counts per status
-- (collected in response() on every thread), which the Python driver parses.

local threads = {}
local thread_count = 0

function setup(thread)
   thread_count = thread_count + 1
   thread:set("tid", thread_count)
   table.insert(threads, thread)
end

local key = os.getenv("COSTPLANE_KEY") or "none"
local path = "/v1/chat/completions"
local headers = {
   ["Content-Type"] = "application/json",
   ["Authorization"] = "Bearer " .. key,
}
local counter = 0
statuses = {}

-- COSTPLANE_SALT (a fresh value per wrk run, set by bench_gateway.py) keeps the prompts of one run
-- apart from every earlier run's, so the loop detector never sees a repeat across runs either.
local salt = os.getenv("COSTPLANE_SALT") or ""

-- COSTPLANE_DELAY_MS paces each connection (bench_gateway.py --rate): with C connections each
-- waiting D ms on average between requests, the offered load is about C * 1000 / D requests/s, so
-- latency can be measured below saturation (wrk itself is a closed loop). The wait is drawn from an
-- exponential distribution of mean D, so the connections' requests interleave like independent
-- arrivals (about a Poisson stream in all); a fixed D would keep all C connections firing in
-- lockstep, as they start together, and measure the queue of C simultaneous requests instead.
-- COSTPLANE_PACING=fixed keeps the fixed wait, to compare.
local delay_ms = tonumber(os.getenv("COSTPLANE_DELAY_MS") or "0")
local fixed = os.getenv("COSTPLANE_PACING") == "fixed"
if delay_ms > 0 then
   function delay()
      if fixed then
         return delay_ms
      end
      return math.floor(-math.log(1 - math.random()) * delay_ms + 0.5)
   end
end

function init(args)
   math.randomseed(os.time() * 1000 + tid)  -- each thread its own draws
end

function request()
   counter = counter + 1
   headers["x-costplane-run"] = "bench-" .. tid .. "-" .. (counter % 64)
   local body = '{"model":"gpt-4o-mini","max_tokens":16,"messages":[{"role":"user","content":'
      .. '"Summarise the cloud spend of team bench for last week in one short sentence, please. Request '
      .. salt .. tid .. "-" .. counter .. '."}]}'
   return wrk.format("POST", path, headers, body)
end

function response(status, hdrs, body)
   statuses[status] = (statuses[status] or 0) + 1
end

function done(summary, latency, requests)
   local merged = {}
   for _, thread in ipairs(threads) do
      local counts = thread:get("statuses")
      for status, n in pairs(counts) do
         merged[status] = (merged[status] or 0) + n
      end
   end
   local parts = {}
   for status, n in pairs(merged) do
      table.insert(parts, string.format('"%d":%d', status, n))
   end
   local e = summary.errors
   io.write(string.format(
      'COSTPLANE_WRK {"requests":%d,"duration_us":%d,"statuses":{%s},'
         .. '"errors":{"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d},'
         .. '"p50_us":%d,"p90_us":%d,"p99_us":%d,"max_us":%d}\n',
      summary.requests, summary.duration, table.concat(parts, ","),
      e.connect, e.read, e.write, e.status, e.timeout,
      latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max))
end
