// The Lua script behind the global limiter: GCRA with an adaptive factor, all in one atomic step on
// Redis server time (TIME), so replica clocks never matter.

/**
 * KEYS[1]: the state hash of one (account, region, api): `tat` (theoretical arrival time, µs),
 * `f` (adaptive factor), `fts` (when `f` was last written, µs), `pts` (last halving, µs).
 *
 * ARGV: op ('acquire' | 'penalize' | 'state'), quota, fraction, windowUs, minFactor, recoverPerUs,
 * burst, retryAfterUs, cooldownUs, multiplier.
 *
 * Invariant: every emission interval is >= tMin = ceil(windowUs / (fraction * quota)) and the
 * tolerance is the fixed tau = (burst - 1) * tMin, so any span shorter than windowUs holds at most
 * ceil(fraction * quota) + burst - 1 grants; the caller picks burst so that this is <= quota.
 *
 * Returns { granted (0/1), nowUs, waitUs, factor, perWindow } as strings (Redis truncates Lua numbers).
 */
export const GCRA_SCRIPT = `
local op = ARGV[1]
local quota = tonumber(ARGV[2])
local fraction = tonumber(ARGV[3])
local windowUs = tonumber(ARGV[4])
local minFactor = tonumber(ARGV[5])
local recoverPerUs = tonumber(ARGV[6])
local burst = tonumber(ARGV[7])
local retryAfterUs = tonumber(ARGV[8])
local cooldownUs = tonumber(ARGV[9])
local multiplier = tonumber(ARGV[10])

local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])

local st = redis.call('HMGET', KEYS[1], 'tat', 'f', 'fts', 'pts')
local tat = tonumber(st[1]) or 0
local factor = tonumber(st[2]) or 1
local fts = tonumber(st[3]) or now
local pts = tonumber(st[4]) or 0
if fts > now then fts = now end

-- Linear recovery is path independent, so it is applied lazily from the last write.
factor = factor + recoverPerUs * (now - fts)
if factor > 1 then factor = 1 end
if factor < minFactor then factor = minFactor end

local fullRate = fraction * quota
local tMin = math.ceil(windowUs / fullRate)
local tau = (burst - 1) * tMin

local function fmt(x) return string.format('%.0f', x) end

local function save(newTat)
  redis.call('HSET', KEYS[1], 'tat', fmt(newTat), 'f', string.format('%.6f', factor), 'fts', fmt(now), 'pts', fmt(pts))
  -- Idle keys expire once nothing they hold matters: the TAT has passed and the factor has recovered.
  local recoverUs = 0
  if recoverPerUs > 0 then recoverUs = (1 - factor) / recoverPerUs end
  local keepUs = math.max(newTat - now, 0) + math.max(windowUs, recoverUs)
  redis.call('PEXPIRE', KEYS[1], math.ceil(keepUs / 1000) + 1000)
end

local function reply(granted, waitUs)
  return { tostring(granted), fmt(now), fmt(waitUs), string.format('%.6f', factor), string.format('%.6f', fullRate * factor) }
end

if op == 'acquire' then
  local interval = math.ceil(windowUs / (fullRate * factor))
  local base = tat
  if base < now then base = now end
  if base - now > tau then
    return reply(0, base - now - tau)
  end
  save(base + interval)
  return reply(1, 0)
elseif op == 'penalize' then
  -- Several in-flight calls throttled together count as one signal.
  if now - pts >= cooldownUs then
    factor = factor * multiplier
    if factor < minFactor then factor = minFactor end
    pts = now
  end
  if retryAfterUs > 0 and tat < now + retryAfterUs + tau then tat = now + retryAfterUs + tau end
  save(tat)
  return reply(1, 0)
end
return reply(1, 0)
`;
