-- wrk script: requests from 1,000 users in turn, each with its own
-- Authorization header (the identity a per-user rule keys on; a shared
-- rule serves them all its one entry).
local n = 0
request = function()
  n = n % 1000 + 1
  return wrk.format(nil, nil, { ["Authorization"] = "Bearer user-" .. n })
end
