-- get.lua: wrk script for the bench's small GETs.
--
-- Arguments (after `--`): <target-url> <form> [close]
--   form "absolute": request line carries the whole URL, as a client of a forward proxy sends it
--                    (RFC 9112 §3.2.2); wrk itself connects to the proxy given on its command line.
--   form "origin":   request line carries only the path, as a client of the origin sends it.
--   close:           adds `Connection: close`, so every request gets a new connection
--                    (wrk reconnects when a response is not keep-alive).
--
-- The request is built once in init, so wrk sends it as a static, pre-formatted request.
-- done() prints one line, `WRKJSON {...}`, that the bench parses; latencies are in µs.

function init(args)
  local url, form, close = args[1], args[2], args[3]
  local authority, path = url:match("^http://([^/]+)(/.*)$")
  wrk.method = "GET"
  wrk.path = (form == "absolute") and url or path
  wrk.headers["Host"] = authority
  if close == "close" then
    wrk.headers["Connection"] = "close"
  end
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'WRKJSON {"requests":%d,"durationUs":%d,"bytes":%d,"connectErrors":%d,"readErrors":%d,' ..
    '"writeErrors":%d,"statusErrors":%d,"timeouts":%d,"p50Us":%d,"p99Us":%d,"maxUs":%d}\n',
    summary.requests, summary.duration, summary.bytes, e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(99), latency.max))
end
