-- wrk script: as users.lua, each user's request for a URL of its own
-- (/api/items?u=N, a shared rule's entry each): as many entries as the
-- per-user rule's 1,000, without an identity to hash.
local n = 0
request = function()
  n = n % 1000 + 1
  return wrk.format(nil, "/api/items?u=" .. n, { ["Authorization"] = "Bearer user-" .. n })
end
