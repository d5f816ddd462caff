-- wrk script: every request a new URL (the path with ?n=PREFIX-N), so each
-- is a miss. The prefix is wrk's first script argument, new for each run.
local prefix = "0"
local n = 0
init = function(args)
  prefix = args[1] or tostring(os.time())
end
request = function()
  n = n + 1
  return wrk.format(nil, wrk.path .. "?n=" .. prefix .. "-" .. n)
end
