-- wrk workload for `make bench`. BENCH_DATA names a Lua file returning
-- { users = { {id=..., token=..., tasks={ids...}}, ... } }; BENCH_MODE picks the mix.
local data = dofile(os.getenv("BENCH_DATA"))
local mode = os.getenv("BENCH_MODE") or "mixed"
local list_query = os.getenv("BENCH_LIST_QUERY") or "status=pending&limit=50"
local users, by_id, created, cursors = data.users, {}, {}, {}
for _, user in ipairs(users) do by_id[user.id] = user end
math.randomseed(20261124)

local priorities = { "low", "medium", "high" }

local function headers(user, with_body)
  local h = { ["Authorization"] = "Bearer " .. user.token }
  if with_body then h["Content-Type"] = "application/json" end
  return h
end

local function any_user() return users[math.random(#users)] end
local function seeded(user) return "/api/" .. user.id .. "/tasks/" .. user.tasks[math.random(#user.tasks)] end

local ops = {}
function ops.list(user)
  return wrk.format("GET", "/api/" .. user.id .. "/tasks?" .. list_query, headers(user))
end
function ops.get(user) return wrk.format("GET", seeded(user), headers(user)) end
function ops.create(user)
  local body = string.format('{"title":"Bench task %d","priority":"%s"}',
    math.random(1000000), priorities[math.random(3)])
  return wrk.format("POST", "/api/" .. user.id .. "/tasks", headers(user, true), body)
end
function ops.update(user)
  local body = string.format('{"title":"Edited %d","description":"Changed by the bench","priority":"%s"}',
    math.random(1000000), priorities[math.random(3)])
  return wrk.format("PUT", seeded(user), headers(user, true), body)
end
function ops.complete(user) return wrk.format("PATCH", seeded(user) .. "/complete", headers(user)) end
function ops.delete(user)
  -- Deletes only tasks this run created; until one is known, create one.
  local path = table.remove(created)
  if path == nil then return ops.create(user) end
  return wrk.format("DELETE", path, headers(by_id[path:match("^/api/([^/]+)/")]))
end

-- A device polling the change feed with the cursor its user's last answer gave.
function ops.poll(user)
  local cursor = cursors[user.id]
  local query = cursor and ("?limit=100&cursor=" .. cursor) or "?limit=100"
  return wrk.format("GET", "/api/" .. user.id .. "/tasks/changes" .. query, headers(user))
end

-- The sync workload: 60 % feed polls while other devices write: 15 % create, 15 % update,
-- 10 % complete.
local sync_mix = { { 60, ops.poll }, { 75, ops.create }, { 90, ops.update }, { 100, ops.complete } }

-- The mixed workload: 50 % list, 20 % get, 10 % create, 10 % update, 5 % complete, 5 % delete.
local mix = { { 50, ops.list }, { 70, ops.get }, { 80, ops.create }, { 90, ops.update },
              { 95, ops.complete }, { 100, ops.delete } }

function request()
  local user = any_user()
  local steps = mix
  if mode == "sync" then steps = sync_mix
  elseif mode ~= "mixed" then return ops[mode](user) end
  local roll = math.random(100)
  for _, step in ipairs(steps) do
    if roll <= step[1] then return step[2](user) end
  end
end

function response(status, response_headers, body)
  if status == 200 and mode == "sync" then
    -- A feed page names its user in each live task; an empty page keeps the cursor anyway.
    local cursor = body:match('"cursor": ?"([^"]+)"')
    local user_id = body:match('"user_id": ?"([^"]+)"')
    if cursor and user_id then cursors[user_id] = cursor end
  end
  if status == 201 then
    local location = response_headers["Location"] or response_headers["location"]
    if location then created[#created + 1] = location end
  end
end
