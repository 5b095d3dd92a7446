-- wrk script: POST a fixed JSON body with a client token, and check every answer.
--
--   wrk ... -s post.lua URL -- BODY_FILE MUST_CONTAIN [MUST_CONTAIN2]
--
-- An answer counts as malformed when its status is not 200 or its body lacks one of the
-- MUST_CONTAIN strings (e.g. '"model":"fast"' for a rewritten JSON answer, or '[DONE]' and
-- '"model":"stream"' for a rewritten SSE answer).  done() prints one machine-readable line.

local threads = {}

function setup(thread)
   table.insert(threads, thread)
end

function init(args)
   local f = assert(io.open(args[1], "rb"))
   local body = f:read("*a")
   f:close()
   must = {}
   for i = 2, #args do must[#must + 1] = args[i] end
   wrk.method = "POST"
   wrk.body = body
   wrk.headers["Content-Type"] = "application/json"
   wrk.headers["Authorization"] = "Bearer sk-bench"
   req = wrk.format()
   checked, malformed, non200 = 0, 0, 0
end

function request()
   return req
end

function response(status, headers, body)
   checked = checked + 1
   if status ~= 200 then
      non200 = non200 + 1
      malformed = malformed + 1
      return
   end
   for i = 1, #must do
      if not string.find(body, must[i], 1, true) then
         malformed = malformed + 1
         return
      end
   end
end

function done(summary, latency, requests)
   local c, m, n = 0, 0, 0
   for _, t in ipairs(threads) do
      c = c + t:get("checked")
      m = m + t:get("malformed")
      n = n + t:get("non200")
   end
   local e = summary.errors
   io.write(string.format(
      "RESULT requests=%d duration_us=%d bytes=%d p50_us=%d p90_us=%d p99_us=%d max_us=%d " ..
      "err_connect=%d err_read=%d err_write=%d err_timeout=%d err_status=%d " ..
      "checked=%d malformed=%d non200=%d\n",
      summary.requests, summary.duration, summary.bytes,
      latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max,
      e.connect, e.read, e.write, e.timeout, e.status, c, m, n))
end
