-- wrk request generator for bench/api.sh: cycles through the published users (wrk ... -- <first> <count>).
local first, count, n = 200, 1000, 0

function init(args)
  first = tonumber(args[1] or first)
  count = tonumber(args[2] or count)
  n = math.random(0, count - 1)
end

function request()
  n = (n + 1) % count
  return wrk.format("GET", "/post/recommendations/?id=" .. (first + n) .. "&limit=5")
end

function response(status, headers, body)
  if status ~= 200 then
    io.stderr:write("non-200 answer: " .. status .. " " .. body .. "\n")
  end
end
