-- wrk script of the runtime benchmark: POST one Open Inference Protocol v2 body, read from a file.
--   wrk ... -s post.lua URL -- BODY_FILE PATH [TOKEN_FILE]
-- The bearer token (ours only) is read from a file so it never appears on a command line.
-- done() prints one JSON line with exact percentiles (microseconds) and the error counts.

local req

local function slurp(path)
  local f = assert(io.open(path, "rb"))
  local s = f:read("*a")
  f:close()
  return s
end

function init(args)
  local headers = {}
  headers["Host"] = wrk.host .. ":" .. wrk.port
  headers["Content-Type"] = "application/json"
  if args[3] ~= nil and #args[3] > 0 then
    headers["Authorization"] = "Bearer " .. slurp(args[3]):gsub("%s+$", "")
  end
  req = wrk.format("POST", args[2], headers, slurp(args[1]))
end

function request()
  return req
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'WRKJSON {"requests":%d,"duration_us":%d,"bytes":%d,"p50_us":%d,"p90_us":%d,"p99_us":%d,' ..
    '"max_us":%d,"mean_us":%.1f,"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d}\n',
    summary.requests, summary.duration, summary.bytes, latency:percentile(50), latency:percentile(90),
    latency:percentile(99), latency.max, latency.mean, e.connect, e.read, e.write, e.status, e.timeout))
end
