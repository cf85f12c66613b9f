-- wrk script for bench/soak.sh: a mix of what a gateway carries all day, cycled per request.
-- Chat Completions JSON and SSE, Anthropic Messages JSON and SSE translated to the
-- OpenAI-compatible mock, and requests to a provider that refuses connections (failing).
-- Each minute's wrk run appends one CSV line to SOAK_OUT (see done()).
local chat = '{"model":"bench-model","messages":[{"role":"system","content":"You are a helpful assistant."},{"role":"user","content":"Write a short paragraph and a haiku about load balancers."}],"max_tokens":256,"temperature":0.2%s}'
local msgs = '{"model":"bench-model","max_tokens":256,"system":"You are a helpful assistant.","messages":[{"role":"user","content":[{"type":"text","text":"Write a short paragraph and a haiku about load balancers."}]}]%s}'
local failing = '{"model":"failing-model","messages":[{"role":"user","content":"hello"}],"max_tokens":16}'

local mix = {}
local function add(weight, path, body)
  for _ = 1, weight do
    mix[#mix + 1] = wrk.format("POST", path, {
      ["Content-Type"] = "application/json",
      ["Authorization"] = "Bearer sk-soak-1234",
      ["anthropic-version"] = "2023-06-01",
    }, body)
  end
end
add(4, "/v1/chat/completions", string.format(chat, ""))
add(3, "/v1/chat/completions", string.format(chat, ',"stream":true'))
add(1, "/v1/messages", string.format(msgs, ""))
add(1, "/v1/messages", string.format(msgs, ',"stream":true'))
add(1, "/v1/chat/completions", failing)

local i = 0
request = function()
  i = i % #mix + 1
  return mix[i]
end

function done(summary, latency, requests)
  local e = summary.errors
  local secs = summary.duration / 1e6
  local line = string.format("%d,%.1f,%.3f,%.3f,%.3f,%d,%d,%d",
    summary.requests, summary.requests / secs,
    latency:percentile(50) / 1000, latency:percentile(99) / 1000, latency.max / 1000,
    e.status, e.connect + e.read + e.write, e.timeout)
  local out = os.getenv("SOAK_OUT")
  if out and out ~= "" then
    local f = assert(io.open(out, "a"))
    f:write((os.getenv("SOAK_TAG") or "") .. line .. "\n")
    f:close()
  end
end
