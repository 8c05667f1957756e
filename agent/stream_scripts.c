/* stream_scripts — see stream_scripts.h. */
#include "stream_scripts.h"

#include "et_macros.h"

#define STR_(x) #x
#define STR(x) STR_(x)

/* Keeps an entry's `event` alone, or its size when larger than the limit; returns what the
 * entry costs in the reply. */
/* clang-format off */
#define SHRINK_LUA                                                                           \
    "local function shrink(e, limit)\n"                                                      \
    "  local fields, event = e[2], nil\n"                                                    \
    "  if type(fields) ~= 'table' then return " STR(STREAM_ENTRY_OVERHEAD) " end\n"          \
    "  if #fields == 2 and fields[1] == 'event' and #fields[2] <= limit then\n"               \
    "    return #fields[2] + " STR(STREAM_ENTRY_OVERHEAD) "\n"                                \
    "  end\n"                                                                                 \
    "  for k = 1, #fields - 1, 2 do\n"                                                       \
    "    if fields[k] == 'event' then event = fields[k + 1] end\n"                           \
    "  end\n"                                                                                \
    "  if event == nil then e[2] = {} return " STR(STREAM_ENTRY_OVERHEAD) " end\n"           \
    "  if #event > limit then\n"                                                             \
    "    e[2] = {'" STREAM_OVERSIZE_FIELD "', tostring(#event)}\n"                           \
    "    return " STR(STREAM_ENTRY_OVERHEAD) "\n"                                            \
    "  end\n"                                                                                \
    "  e[2] = {'event', event}\n"                                                            \
    "  return #event + " STR(STREAM_ENTRY_OVERHEAD) "\n"                                     \
    "end\n"
/* clang-format on */

/* clang-format off */
static const char read_lua[] =
    SHRINK_LUA
    "local max, budget, limit = tonumber(ARGV[3]), tonumber(ARGV[4]), tonumber(ARGV[5])\n"
    "local out, taken, n = {}, 0, 8\n"
    "while #out < max and taken < budget do\n"
    "  n = math.min(n, max - #out)\n"
    "  local r = redis.call('XREADGROUP', 'GROUP', ARGV[1], ARGV[2], 'COUNT', n,\n"
    "                       'STREAMS', KEYS[1], '>')\n"
    "  if not r then break end\n"
    "  local got = r[1][2]\n"
    "  for j = 1, #got do\n"
    "    local e = got[j]\n"
    "    if taken < budget then\n"
    "      taken = taken + shrink(e, limit)\n"
    "    else\n"
    "      e[2] = {'" STREAM_DEFERRED_FIELD "', ''}\n"
    "    end\n"
    "    out[#out + 1] = e\n"
    "  end\n"
    "  if #got < n then break end\n"
    "  n = math.floor((budget - taken) / (taken / #out) / 2)\n"
    "  n = math.max(1, math.min(128, n))\n"
    "end\n"
    "return out\n";
/* clang-format on */

/* clang-format off */
static const char claim_lua[] =
    SHRINK_LUA
    "local budget, limit = tonumber(ARGV[4]), tonumber(ARGV[5])\n"
    "local out, taken, stopped = {}, 0, ''\n"
    "for i = 6, #ARGV - 1, 2 do\n"
    "  local args = {'XCLAIM', KEYS[1], ARGV[1], ARGV[2], ARGV[3], ARGV[i]}\n"
    "  if ARGV[i + 1] ~= '' then\n"
    "    args[7] = 'RETRYCOUNT'\n"
    "    args[8] = ARGV[i + 1]\n"
    "  end\n"
    "  for _, e in ipairs(redis.call(unpack(args))) do\n"
    "    if e then\n"
    "      taken = taken + shrink(e, limit)\n"
    "      out[#out + 1] = e\n"
    "    end\n"
    "  end\n"
    "  if taken >= budget and i + 2 <= #ARGV - 1 then\n"
    "    stopped = ARGV[i]\n"
    "    break\n"
    "  end\n"
    "end\n"
    "return {out, stopped}\n";
/* clang-format on */

static const char *const texts[STREAM_SCRIPT_COUNT] = {
    [STREAM_SCRIPT_READ] = read_lua,
    [STREAM_SCRIPT_CLAIM] = claim_lua,
};

const char *stream_script_text(stream_script_t script)
{
    return texts[script];
}
