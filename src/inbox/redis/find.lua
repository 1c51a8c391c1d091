-- Finds one event by its id (the stream id it was first stored under) in the stream,
-- the delayed entries and the dead letters, in one atomic step: an entry moving between
-- them meanwhile (a claim taking a due retry back, a deferral) cannot be missed, as it
-- can be by reads one after the other. Returns {where, deliveries, entry id, fields},
-- where is 'stream', 'delayed' or 'dead' and deliveries the group's count for an entry
-- in flight ('0' otherwise); nil when it is nowhere.
-- KEYS: stream, delayed entries, dead. ARGV: group, id.
local function origin_of(entry)
  local fields = entry[2]
  for i = 1, #fields, 2 do
    if fields[i] == 'origin' then return fields[i + 1] end
  end
  return entry[1]
end
local function find(key)
  -- Where it was first stored, if it never moved: no scan.
  local exact = redis.call('XRANGE', key, ARGV[2], ARGV[2])
  if exact[1] and origin_of(exact[1]) == ARGV[2] then return exact[1] end
  local start = '-'
  while true do
    local page = redis.call('XRANGE', key, start, '+', 'COUNT', 1000)
    for _, entry in ipairs(page) do
      if origin_of(entry) == ARGV[2] then return entry end
    end
    if #page < 1000 then return nil end
    start = '(' .. page[#page][1]
  end
end
local places = {{KEYS[1], 'stream'}, {KEYS[2], 'delayed'}, {KEYS[3], 'dead'}}
for _, place in ipairs(places) do
  local entry = find(place[1])
  if entry then
    local deliveries = '0'
    if place[2] == 'stream' then
      local info = redis.pcall('XPENDING', KEYS[1], ARGV[1], entry[1], entry[1], 1)
      if type(info) == 'table' and info[1] then deliveries = tostring(info[1][4]) end
    end
    return {place[2], deliveries, entry[1], entry[2]}
  end
end
return nil
