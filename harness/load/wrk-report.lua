-- lbbench: appended to wrk's normal output as one machine-readable line.
-- Only done() is defined: per-request hooks (request/response) would slow wrk down and make it
-- measure itself. Debian's wrk has no JSON module, so the line is built by hand.

local function num(x)
  -- %.17g round-trips every double; nan/inf come out as bare words, which the parser rejects
  -- rather than turning into zeros.
  return string.format("%.17g", x)
end

-- Percentile keys are short decimals; %.17g would print 99.9 as 99.900000000000006.
local function pct(p)
  return string.format("%.10g", p)
end

-- wrk 4.1's percentile(100) returns 0 (its rank lands past the last sample), so 100 is taken
-- from latency.max instead.
local cdf_points = {}
for p = 1, 99 do cdf_points[#cdf_points + 1] = p end
for _, p in ipairs({ 99.5, 99.9, 99.99 }) do cdf_points[#cdf_points + 1] = p end

local named = { 50, 75, 90, 99, 99.9, 99.99 }

done = function(summary, latency, requests)
  local e = summary.errors
  local out = {}
  local function add(s) out[#out + 1] = s end

  add('{"v":1')
  add(',"duration_us":' .. num(summary.duration))
  add(',"requests":' .. num(summary.requests))
  add(',"bytes":' .. num(summary.bytes))
  add(',"errors":{"connect":' .. num(e.connect) .. ',"read":' .. num(e.read) ..
      ',"write":' .. num(e.write) .. ',"status":' .. num(e.status) ..
      ',"timeout":' .. num(e.timeout) .. '}')
  add(',"latency":{"min":' .. num(latency.min) .. ',"max":' .. num(latency.max) ..
      ',"mean":' .. num(latency.mean) .. ',"stdev":' .. num(latency.stdev))
  add(',"percentiles":[')
  for i, p in ipairs(named) do
    add((i > 1 and ',' or '') .. '[' .. pct(p) .. ',' .. num(latency:percentile(p)) .. ']')
  end
  add(']}')
  add(',"cdf":[')
  for i, p in ipairs(cdf_points) do
    add((i > 1 and ',' or '') .. '[' .. pct(p) .. ',' .. num(latency:percentile(p)) .. ']')
  end
  add(',[100,' .. num(latency.max) .. ']]')
  add('}')
  io.write("LBBENCH_JSON " .. table.concat(out) .. "\n")
end
