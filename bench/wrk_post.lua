-- wrk script of the foundation suite (bench/http_load.py): POSTs pre-encoded JSON bodies, one file per
-- client (`bodies-<n>.txt`, one body a line, written by the bench before the clock starts), wrk thread n
-- holding client n's one connection. A thread stops after its last body and leaves a file `done-<n>`;
-- wrk ends at its -d deadline, or when the bench sends SIGINT because every thread is done.
-- Counted per thread: status codes, the first non-2xx answers, and the integer fields of 2xx JSON
-- answers when asked (the events API's stored/duplicates …). done() writes it all, with wrk's own request count
-- and latency percentiles, to `result.json` in the same directory.
--   wrk -t N -c N -d 15s -s bench/wrk_post.lua http://host:port/path <dir> <token> <totals|->

local threads, counter = {}, 0

function setup(thread)
  thread:set("id", counter)
  counter = counter + 1
  table.insert(threads, thread)
end

function init(args)
  dir, token, count_totals = args[1], args[2], args[3] == "totals"
  bodies, next_body = {}, 1
  for line in io.lines(dir .. "/bodies-" .. id .. ".txt") do
    table.insert(bodies, line)
  end
  statuses, totals, errors = {}, {}, {}
  wrk.method = "POST"
  wrk.headers["Content-Type"] = "application/json"
  wrk.headers["Accept"] = "application/json"
  wrk.headers["Authorization"] = "Token " .. token
end

function request()
  if id == 0 and not verified then
    -- wrk calls thread 0's request() once before the run to check it (script_verify_request);
    -- that one is never sent, so it must not use up a body.
    verified = true
    return wrk.format(nil, nil, nil, bodies[1])
  end
  local body = bodies[next_body]
  if body == nil then
    -- Asked once more after the last answer, before the thread stops: nothing that writes.
    return wrk.format("GET", "/healthz", nil, "")
  end
  next_body = next_body + 1
  return wrk.format(nil, nil, nil, body)
end

function response(status, headers, body)
  local key = tostring(status)
  statuses[key] = (statuses[key] or 0) + 1
  if status >= 200 and status < 300 then
    if count_totals then
      for name, value in string.gmatch(body or "", '"([%w_]+)":%s*(%d+)') do
        totals[name] = (totals[name] or 0) + tonumber(value)
      end
    end
  elseif #errors < 5 then
    table.insert(errors, key .. ": " .. string.sub(body or "", 1, 300))
  end
  if next_body > #bodies and not finished then
    -- This client is done. wrk itself runs until -d or SIGINT: the marker tells the bench, which
    -- sends SIGINT once every client has one.
    finished = true
    io.open(dir .. "/done-" .. id, "w"):close()
    wrk.thread:stop()
  end
end

local function json_string(s)
  return '"' .. s:gsub('[%c"\\]', function(c) return string.format("\\u%04x", c:byte()) end) .. '"'
end

local function json_counts(t)
  local parts = {}
  for k, v in pairs(t) do
    table.insert(parts, json_string(k) .. ": " .. v)
  end
  return "{" .. table.concat(parts, ", ") .. "}"
end

function done(summary, latency, requests)
  local all_statuses, all_totals, all_errors, out_dir = {}, {}, {}, nil
  for _, thread in ipairs(threads) do
    out_dir = thread:get("dir")
    for k, v in pairs(thread:get("statuses")) do all_statuses[k] = (all_statuses[k] or 0) + v end
    for k, v in pairs(thread:get("totals")) do all_totals[k] = (all_totals[k] or 0) + v end
    for _, e in ipairs(thread:get("errors")) do table.insert(all_errors, json_string(e)) end
  end
  local p = {}
  for _, q in ipairs({50, 95, 99}) do
    table.insert(p, '"p' .. q .. '": ' .. latency:percentile(q) / 1000.0)
  end
  local file = io.open(out_dir .. "/result.json", "w")
  file:write("{", '"requests": ', summary.requests, ', "duration_s": ', summary.duration / 1e6,
    ', "latency_ms": {', table.concat(p, ", "), ', "max": ', latency.max / 1000.0, ', "mean": ', latency.mean / 1000.0,
    '}, "statuses": ', json_counts(all_statuses), ', "totals": ', json_counts(all_totals),
    ', "socket_errors": {"connect": ', summary.errors.connect, ', "read": ', summary.errors.read,
    ', "write": ', summary.errors.write, ', "timeout": ', summary.errors.timeout, '}',
    ', "errors": [', table.concat(all_errors, ", "), "]}\n")
  file:close()
end
