-- Tests of the Argo CD health checks in manifests/argocd/argocd-cm-health.yaml: the Lua is read
-- out of that YAML (the file users apply) and run the way Argo CD runs it, against every status
-- sluice-operator writes (controllers/rollout/engine.cpp, controllers/modeldeployment/
-- reconciler.cpp, controllers/featureview/reconciler.cpp).
--
-- Usage: lua5.1 argocd_health_test.lua <argocd-cm-health.yaml>   (SHOW=1 prints every result)
-- Exits 0 when every case passes, 1 otherwise, printing each failure.

local yaml_path = arg[1]
if yaml_path == nil then
  io.stderr:write("usage: lua5.1 argocd_health_test.lua <argocd-cm-health.yaml>\n")
  os.exit(2)
end

-- ---------------------------------------------------------------------------------------------
-- Reading the scripts out of the YAML.
--
-- The file is a ConfigMap patch: a top-level `data:` whose keys hold literal block scalars
-- (`key: |`). A block's lines are those indented deeper than its key; its indentation is that of
-- its first non-blank line, and blank lines inside it are kept. Anything else for a health key is
-- an error rather than a guess.
local function read_health_scripts(path)
  local f = assert(io.open(path, "r"))
  local lines = {}
  for line in f:lines() do lines[#lines + 1] = line end
  f:close()
  local scripts = {}
  local in_data = false
  local i = 1
  while i <= #lines do
    local line = lines[i]
    if line:find("^\t") then error(path .. ":" .. i .. ": tab in indentation") end
    if line:match("^data:%s*$") then
      in_data = true
    elseif line:match("^[^%s#]") then
      in_data = false
    elseif in_data then
      local indent, key, value = line:match("^( +)([%w%._/%-]+):%s*(.-)%s*$")
      if key ~= nil and key:find("^resource%.customizations%.health%.") then
        if value ~= "|" and value ~= "|-" and value ~= "|+" then
          error(path .. ":" .. i .. ": " .. key .. " is not a literal block scalar")
        end
        local body, block_indent = {}, nil
        local j = i + 1
        while j <= #lines do
          local l = lines[j]
          if l:match("^%s*$") then
            body[#body + 1] = ""
          else
            local lead = #l:match("^( *)")
            if block_indent == nil then
              if lead <= #indent then break end
              block_indent = lead
            end
            if lead < block_indent then break end
            body[#body + 1] = l:sub(block_indent + 1)
          end
          j = j + 1
        end
        if scripts[key] ~= nil then error(path .. ":" .. i .. ": " .. key .. " twice") end
        scripts[key] = table.concat(body, "\n") .. "\n"
        i = j - 1
      end
    end
    i = i + 1
  end
  return scripts
end

-- ---------------------------------------------------------------------------------------------
-- Running a script as Argo CD does (util/lua/lua.go): a fresh state per object, the global `obj`,
-- only the base, table and a safe os library (no string library, so no string methods either),
-- and the chunk's return value as the health.
local BASE = {
  "assert", "error", "ipairs", "next", "pairs", "pcall", "rawequal", "rawget", "rawset", "select",
  "getmetatable", "setmetatable", "tonumber", "tostring", "type", "unpack", "xpcall", "print",
}
local VALID_STATUS = {
  Healthy = true, Progressing = true, Suspended = true, Degraded = true, Missing = true,
  Unknown = true,
}

local function deep_copy(v)
  if type(v) ~= "table" then return v end
  local t = {}
  for k, x in pairs(v) do t[k] = deep_copy(x) end
  return t
end

local function compile(key, source)
  local fn, err = loadstring(source, "=" .. key)
  if fn == nil then error("does not compile: " .. err) end
  return fn
end

-- Returns the health table, or nil and why.
local function run(fn, obj)
  local env = { obj = deep_copy(obj), table = table, os = { time = os.time, date = os.date } }
  for _, name in ipairs(BASE) do env[name] = _G[name] end
  env._G = env
  setfenv(fn, env)
  local strings = getmetatable("")
  local saved = strings.__index
  strings.__index = setmetatable({}, { __index = function(_, k)
    error("string method " .. tostring(k) .. " used; Argo CD opens no string library", 2)
  end })
  local ok, hs = pcall(fn)
  strings.__index = saved
  if not ok then return nil, "error: " .. tostring(hs) end
  if type(hs) ~= "table" then return nil, "returned " .. type(hs) .. ", not a table" end
  if not VALID_STATUS[hs.status] then return nil, "invalid status " .. tostring(hs.status) end
  if type(hs.message) ~= "string" or hs.message == "" then return nil, "no message" end
  return hs
end

-- ---------------------------------------------------------------------------------------------
-- Building objects: plain Lua tables shaped like the JSON Argo CD decodes.
local STABLE = "fraud-7d9c5b6f4a"
local CANARY = "fraud-5f6e7d8c9b"

local function cond(type_, status, reason, message)
  return {
    type = type_, status = status, reason = reason, message = message or "",
    lastTransitionTime = "2025-06-01T12:00:00Z", observedGeneration = 3,
  }
end

-- md{phase=, conditions={...}, canary=, weight=, generation=, observed=, annotations=, nostatus=}
local function md(o)
  local generation = o.generation or 3
  local obj = {
    apiVersion = "sluice.dev/v1alpha1", kind = "ModelDeployment",
    metadata = { name = "fraud", namespace = "ml", generation = generation,
                 annotations = o.annotations },
  }
  if o.nostatus then return obj end
  local observed = o.observed  -- false: no observedGeneration
  if observed == nil then observed = generation end
  if observed == false then observed = nil end
  obj.status = {
    observedGeneration = observed, phase = o.phase, stableRevision = o.stable,
    canaryRevision = o.canary, canaryWeight = o.weight, conditions = o.conditions,
    replicas = 3, readyReplicas = 3, selector = "app.kubernetes.io/instance=fraud",
  }
  return obj
end

local function fv(o)
  local generation = o.generation or 3
  local obj = {
    apiVersion = "sluice.dev/v1alpha1", kind = "FeatureView",
    metadata = { name = "user-features", namespace = "ml", generation = generation },
  }
  if o.nostatus then return obj end
  local observed = o.observed  -- false: no observedGeneration
  if observed == nil then observed = generation end
  if observed == false then observed = nil end
  obj.status = { observedGeneration = observed, conditions = o.conditions }
  return obj
end

local function reversed(list)
  local r = {}
  for i = #list, 1, -1 do r[#r + 1] = list[i] end
  return r
end

-- ---------------------------------------------------------------------------------------------
-- Cases: { name, kind, obj, status = expected, contains = {...}, absent = {...} }.
local cases = {}
local function case(c) cases[#cases + 1] = c end

-- The phases the operator writes, each with the Progressing condition it writes alongside, its
-- canary, and the Degraded=True condition that goes with it (for Progressing, Healthy, Paused and
-- no phase that combination is not written, but the health must still follow the condition).
local READY_TRUE = cond("Ready", "True", "StableAvailable", "3/3 pods Ready serving revision " .. STABLE)
local READY_FALSE = cond("Ready", "False", "StableNotReady", "1/3 pods Ready serving revision " .. STABLE)
local DEGRADED_FALSE = cond("Degraded", "False", "AsExpected", "")
local at = function(step, n, eff, w) return "canary " .. CANARY .. " step " .. step .. "/" .. n ..
  " at " .. eff .. "% of " .. w .. "%" end
local PHASES = {
  {
    label = "no phase", phase = nil,
    degraded = cond("Degraded", "True", "InvalidSpec", "spec.model.uri: must be set"),
    expect = { status = "Progressing", contains = { "status.phase" } },
  },
  {
    label = "Progressing", phase = "Progressing", canary = CANARY, weight = 10,
    progressing = cond("Progressing", "True", "RolloutInProgress", at(1, 3, 10, 10)),
    degraded = cond("Degraded", "True", "ProgressDeadlineExceeded", at(1, 3, 10, 10) .. ": 1 pods Ready after 10m"),
    expect = { status = "Progressing", contains = { "RolloutInProgress", "step 1/3" } },
  },
  {
    label = "Healthy", phase = "Healthy", stable = STABLE,
    progressing = cond("Progressing", "False", "RolloutComplete", "revision " .. STABLE .. " is stable"),
    degraded = cond("Degraded", "True", "InvalidSpec", "spec.rollout.canary.steps: weights must increase"),
    expect = { status = "Healthy", contains = { "StableAvailable", "3/3 pods Ready" } },
  },
  {
    label = "Paused by annotation", phase = "Paused", canary = CANARY, weight = 10,
    progressing = cond("Progressing", "True", "Paused", at(1, 3, 10, 10) .. "; held by sluice.dev/pause"),
    degraded = cond("Degraded", "True", "InvalidSpec", "spec.replicas: must be at least 0"),
    expect = { status = "Suspended", contains = { "Paused", "paused by annotation sluice.dev/pause", "step 1/3" } },
  },
  {
    label = "Paused waiting for promotion", phase = "Paused", canary = CANARY, weight = 50,
    progressing = cond("Progressing", "True", "WaitingForPromotion", at(2, 3, 50, 50) .. "; waiting for sluice.dev/promote"),
    degraded = cond("Degraded", "True", "InvalidSpec", "spec.replicas: must be at least 0"),
    expect = { status = "Suspended", contains = { "WaitingForPromotion", "waiting for promotion", "sluice.dev/promote", "step 2/3" } },
  },
  {
    label = "Paused for no analysis data", phase = "Paused", canary = CANARY, weight = 10,
    progressing = cond("Progressing", "True", "NoData", at(1, 3, 10, 10) .. "; analysis has no data (4 requests < 10 required)"),
    degraded = cond("Degraded", "True", "InvalidSpec", "spec.replicas: must be at least 0"),
    expect = { status = "Suspended", contains = { "NoData", "noDataPolicy is Pause", "4 requests < 10" } },
  },
  {
    label = "Degraded", phase = "Degraded", canary = CANARY, weight = 0,
    progressing = cond("Progressing", "False", "ProgressDeadlineExceeded", at(1, 3, 0, 10) .. ": 0 pods Ready after 10m"),
    degraded = cond("Degraded", "True", "ProgressDeadlineExceeded", at(1, 3, 0, 10) .. ": 0 pods Ready after 10m"),
    expect = { status = "Degraded", contains = { "ProgressDeadlineExceeded", "0 pods Ready after 10m" } },
  },
  {
    label = "RolledBack", phase = "RolledBack", canary = CANARY, weight = 0, stable = STABLE,
    progressing = cond("Progressing", "False", "RolledBack", "canary " .. CANARY .. " rolled back to " .. STABLE .. ": error-rate 0.034 > max 0.01"),
    degraded = cond("Degraded", "True", "AnalysisFailed", "canary " .. CANARY .. " rolled back to " .. STABLE .. ": error-rate 0.034 > max 0.01"),
    expect = { status = "Degraded", contains = { "RolledBack", "error-rate 0.034 > max 0.01" } },
  },
}

-- The table: phase x Ready x Degraded x condition order.
for _, p in ipairs(PHASES) do
  for _, ready in ipairs({ READY_TRUE, READY_FALSE }) do
    for _, dstate in ipairs({ "True", "False", "absent" }) do
      for _, order in ipairs({ "operator order", "reversed" }) do
        local list = { ready }
        if p.progressing then list[#list + 1] = p.progressing end
        if dstate == "True" then list[#list + 1] = p.degraded end
        if dstate == "False" then list[#list + 1] = DEGRADED_FALSE end
        if order == "reversed" then list = reversed(list) end
        local want
        if dstate == "True" then
          want = { status = "Degraded", contains = { p.degraded.reason, p.degraded.message } }
        elseif p.phase == "Degraded" or p.phase == "RolledBack" then
          want = { status = "Degraded", contains = { p.progressing.reason, p.progressing.message } }
        elseif ready.status ~= "True" then
          want = { status = "Progressing", contains = { "StableNotReady", "1/3 pods Ready" } }
          if p.phase == "Paused" or p.phase == "Progressing" then
            want.contains[#want.contains + 1] = p.progressing.reason
          end
        else
          want = { status = p.expect.status, contains = {} }
          for _, s in ipairs(p.expect.contains) do want.contains[#want.contains + 1] = s end
        end
        local absent = {}
        if p.canary ~= nil and p.phase ~= "RolledBack" then
          want.contains[#want.contains + 1] = "canary " .. p.canary .. " at " .. p.weight .. "% of traffic"
        else
          absent[#absent + 1] = "% of traffic"
        end
        case {
          name = "md phase=" .. p.label .. " Ready=" .. ready.status .. " Degraded=" .. dstate .. " (" .. order .. ")",
          kind = "ModelDeployment",
          obj = md { phase = p.phase, canary = p.canary, weight = p.weight, stable = p.stable, conditions = list },
          status = want.status, contains = want.contains, absent = absent,
        }
      end
    end
  end
  -- A spec the operator has not seen yet: whatever the status says is about the old one.
  case {
    name = "md phase=" .. p.label .. " observedGeneration behind",
    kind = "ModelDeployment",
    obj = md { phase = p.phase, canary = p.canary, weight = p.weight, generation = 4, observed = 3,
               conditions = { READY_TRUE, p.progressing or DEGRADED_FALSE, p.degraded } },
    status = "Progressing", contains = { "observe generation 4", "status is of generation 3" },
  }
end

-- Statuses from particular paths of the operator.
case {
  name = "md first revision not Ready yet",
  kind = "ModelDeployment",
  obj = md { phase = "Progressing", canary = CANARY, weight = 100, conditions = {
    cond("Ready", "False", "NoStableRevision", "no revision has been Ready yet"),
    cond("Progressing", "True", "RolloutInProgress", "waiting for " .. CANARY .. ": 1/3 pods Ready"),
    DEGRADED_FALSE } },
  status = "Progressing", contains = { "NoStableRevision", "RolloutInProgress", "1/3 pods Ready" },
}
case {
  name = "md Healthy phase whose stable pods are not Ready",
  kind = "ModelDeployment",
  obj = md { phase = "Healthy", stable = STABLE, conditions = {
    READY_FALSE, PHASES[3].progressing, DEGRADED_FALSE } },
  status = "Progressing", contains = { "StableNotReady", "1/3 pods Ready serving revision " .. STABLE },
}
case {
  name = "md scaled to zero",
  kind = "ModelDeployment",
  obj = md { phase = "Healthy", stable = STABLE, conditions = {
    cond("Ready", "True", "StableAvailable", "0/0 pods Ready serving revision " .. STABLE),
    cond("Progressing", "False", "RolloutComplete", "scaled to zero"), DEGRADED_FALSE } },
  status = "Healthy", contains = { "StableAvailable", "0/0 pods Ready" },
}
case {
  name = "md invalid spec before any reconcile (no Ready condition)",
  kind = "ModelDeployment",
  obj = md { phase = "Degraded", conditions = {
    cond("Degraded", "True", "InvalidSpec", "spec.autoscaling: replicas and autoscaling are exclusive"),
    cond("Progressing", "False", "InvalidSpec", "spec.autoscaling: replicas and autoscaling are exclusive") } },
  status = "Degraded", contains = { "InvalidSpec", "replicas and autoscaling are exclusive" },
}
case {
  name = "md invalid spec after being Healthy (stale Ready=True listed after Degraded)",
  kind = "ModelDeployment",
  obj = md { phase = "Degraded", stable = STABLE, conditions = {
    cond("Degraded", "True", "InvalidSpec", "spec.model.uri: scheme must be s3, gs or file"),
    cond("Progressing", "False", "InvalidSpec", "spec.model.uri: scheme must be s3, gs or file"),
    READY_TRUE } },
  status = "Degraded", contains = { "InvalidSpec: spec.model.uri: scheme must be s3, gs or file" },
}
case {
  name = "md aborted",
  kind = "ModelDeployment",
  obj = md { phase = "RolledBack", stable = STABLE, canary = CANARY, weight = 0, conditions = {
    READY_TRUE,
    cond("Progressing", "False", "RolledBack", "canary " .. CANARY .. " rolled back to " .. STABLE .. ": aborted by sluice.dev/abort"),
    cond("Degraded", "True", "Aborted", "canary " .. CANARY .. " rolled back to " .. STABLE .. ": aborted by sluice.dev/abort") } },
  status = "Degraded", contains = { "Aborted", "aborted by sluice.dev/abort", CANARY }, absent = { "% of traffic" },
}
case {
  name = "md rolled back, held after a restart without the rollback message",
  kind = "ModelDeployment",
  obj = md { phase = "RolledBack", stable = STABLE, canary = CANARY, weight = 0, conditions = {
    READY_TRUE,
    cond("Progressing", "False", "RolledBack", "revision " .. CANARY .. " was rolled back; change the spec or set sluice.dev/retry to try again"),
    cond("Degraded", "True", "RolledBack", "revision " .. CANARY .. " was rolled back; change the spec or set sluice.dev/retry to try again") } },
  status = "Degraded", contains = { "RolledBack", "sluice.dev/retry" },
}
case {
  name = "md rolling update paused",
  kind = "ModelDeployment",
  obj = md { phase = "Paused", stable = STABLE, canary = CANARY, weight = 50, conditions = {
    cond("Ready", "True", "StableAvailable", "4/3 pods Ready serving revision " .. STABLE),
    cond("Progressing", "True", "Paused", "rolling " .. CANARY .. ": 2/4 pods Ready, 2 old pods left; held by sluice.dev/pause"),
    DEGRADED_FALSE } },
  status = "Suspended", contains = { "Paused", "sluice.dev/pause", "2/4 pods Ready", "at 50% of traffic" },
}
case {
  name = "md rolling update past its deadline",
  kind = "ModelDeployment",
  obj = md { phase = "Degraded", stable = STABLE, canary = CANARY, weight = 20, conditions = {
    cond("Ready", "False", "StableNotReady", "2/3 pods Ready serving revision " .. STABLE),
    cond("Progressing", "False", "ProgressDeadlineExceeded", "rolling " .. CANARY .. ": 1/4 pods Ready, 2 old pods left after 10m"),
    cond("Degraded", "True", "ProgressDeadlineExceeded", "rolling " .. CANARY .. ": 1/4 pods Ready, 2 old pods left after 10m") } },
  status = "Degraded", contains = { "ProgressDeadlineExceeded", "1/4 pods Ready", "at 20% of traffic" },
}
case {
  name = "md Paused with no Progressing condition, annotation set",
  kind = "ModelDeployment",
  obj = md { phase = "Paused", canary = CANARY, weight = 10, annotations = { ["sluice.dev/pause"] = "true" },
             conditions = { READY_TRUE } },
  status = "Suspended", contains = { "Paused", "sluice.dev/pause" },
}
case {
  name = "md Paused with no reason at all",
  kind = "ModelDeployment",
  obj = md { phase = "Paused", conditions = { READY_TRUE } },
  status = "Suspended", contains = { "no reason reported" },
}
case {
  name = "md Healthy phase without a Ready condition",
  kind = "ModelDeployment",
  obj = md { phase = "Healthy", conditions = { PHASES[3].progressing, DEGRADED_FALSE } },
  status = "Progressing", contains = { "no Ready condition" },
}
case {
  name = "md Healthy phase with Ready=Unknown",
  kind = "ModelDeployment",
  obj = md { phase = "Healthy", conditions = { cond("Ready", "Unknown", "Unreachable", "no pod report"), DEGRADED_FALSE } },
  status = "Progressing", contains = { "Unreachable", "no pod report" },
}
case {
  name = "md Degraded=True with an empty message",
  kind = "ModelDeployment",
  obj = md { phase = "Degraded", conditions = { READY_TRUE, cond("Degraded", "True", "InvalidSpec", "") } },
  status = "Degraded", contains = { "InvalidSpec" },
}
case {
  name = "md conditions of other types are ignored",
  kind = "ModelDeployment",
  obj = md { phase = "Healthy", stable = STABLE, conditions = {
    cond("Available", "False", "Other", "not ours"), READY_TRUE, DEGRADED_FALSE } },
  status = "Healthy", contains = { "StableAvailable" },
}
case {
  name = "md numbers that arrive as strings: generation 10, observed 9",
  kind = "ModelDeployment",
  obj = md { phase = "Healthy", generation = "10", observed = "9", conditions = { READY_TRUE } },
  status = "Progressing", contains = { "observe generation 10" },
}
case {
  name = "md numbers that arrive as strings: generation 10 observed",
  kind = "ModelDeployment",
  obj = md { phase = "Progressing", generation = "10", observed = "10", canary = CANARY, weight = "10",
             conditions = { READY_TRUE, PHASES[2].progressing } },
  status = "Progressing", contains = { "RolloutInProgress", "at 10% of traffic" },
}
case {
  name = "md no status",
  kind = "ModelDeployment",
  obj = md { nostatus = true },
  status = "Progressing", contains = { "observe generation 3" },
}
case {
  name = "md status without observedGeneration",
  kind = "ModelDeployment",
  obj = md { observed = false, phase = "Healthy", conditions = { READY_TRUE } },
  status = "Progressing", contains = { "observe generation 3" },
}
case {
  name = "md a phase this check does not know",
  kind = "ModelDeployment",
  obj = md { phase = "Hibernating", conditions = { READY_TRUE, DEGRADED_FALSE } },
  status = "Unknown", contains = { "Hibernating" },
}

-- FeatureViews.
local FV_OK = cond("Degraded", "False", "AsExpected", "the spec and its Secret are valid")
local FV_FAILURES = {
  { "InvalidSpec", "spec.online.redis needs address or addressSecretRef{name, key}" },
  { "InvalidDefault", "spec.features[2].default (ctr): \"x\" is not a finite number" },
  { "InvalidSchedule", "spec.materialization.schedule: minute 61 is out of range" },
  { "InvalidRedisAddress", "spec.online.redis.address: port 99999 is out of range" },
  { "SecretNotFound", "spec.online.redis.addressSecretRef: Secret redis-conn does not exist in namespace ml" },
  { "SecretForbidden", "spec.online.redis.addressSecretRef: the operator may not read Secret redis-conn in namespace ml" },
  { "SecretKeyNotFound", "spec.online.redis.addressSecretRef: Secret redis-conn has no key url" },
  { "InvalidSecret", "spec.online.redis.addressSecretRef: key url of Secret redis-conn is not valid base64" },
  { "InvalidRedisConnection", "spec.online.redis.addressSecretRef: key url of Secret redis-conn: no host" },
}
for _, f in ipairs(FV_FAILURES) do
  local list = { cond("Ready", "False", f[1], f[2]), cond("Degraded", "True", f[1], f[2]) }
  for _, order in ipairs({ "operator order", "reversed" }) do
    case {
      name = "fv " .. f[1] .. " (" .. order .. ")",
      kind = "FeatureView",
      obj = fv { conditions = order == "reversed" and reversed(list) or list },
      status = "Degraded", contains = { f[1] .. ": " .. f[2] },
    }
  end
end
local FV_MATERIALIZED = cond("Ready", "True", "Materialized", "the online store holds a complete materialization")
local FV_NOT_MATERIALIZED = cond("Ready", "False", "NotMaterialized", "the spec is valid; no materialization has completed yet")
for _, order in ipairs({ "operator order", "reversed" }) do
  local function o(list) return order == "reversed" and reversed(list) or list end
  case {
    name = "fv materialized (" .. order .. ")", kind = "FeatureView",
    obj = fv { conditions = o({ FV_MATERIALIZED, FV_OK }) },
    status = "Healthy", contains = { "Materialized", "complete materialization" },
  }
  case {
    name = "fv valid, not materialized yet (" .. order .. ")", kind = "FeatureView",
    obj = fv { conditions = o({ FV_NOT_MATERIALIZED, FV_OK }) },
    status = "Progressing", contains = { "NotMaterialized", "no materialization has completed yet" },
  }
  case {
    name = "fv Degraded=True while Ready=True (" .. order .. ")", kind = "FeatureView",
    obj = fv { conditions = o({ FV_MATERIALIZED, cond("Degraded", "True", "SecretNotFound", "Secret redis-conn does not exist") }) },
    status = "Degraded", contains = { "SecretNotFound", "redis-conn" },
  }
end
case {
  name = "fv conditions of other types are kept and ignored", kind = "FeatureView",
  obj = fv { conditions = { FV_MATERIALIZED, FV_OK, cond("Materializing", "False", "Idle", "no job running") } },
  status = "Healthy", contains = { "Materialized" },
}
case {
  name = "fv no Ready condition", kind = "FeatureView",
  obj = fv { conditions = { FV_OK } },
  status = "Progressing", contains = { "no Ready condition" },
}
case {
  name = "fv observedGeneration behind", kind = "FeatureView",
  obj = fv { generation = 5, observed = 4, conditions = { FV_MATERIALIZED, FV_OK } },
  status = "Progressing", contains = { "observe generation 5" },
}
case {
  name = "fv no status", kind = "FeatureView",
  obj = fv { nostatus = true },
  status = "Progressing", contains = { "observe generation 3" },
}

-- ---------------------------------------------------------------------------------------------
local KEYS = {
  ModelDeployment = "resource.customizations.health.sluice.dev_ModelDeployment",
  FeatureView = "resource.customizations.health.sluice.dev_FeatureView",
}
local ok, scripts = pcall(read_health_scripts, yaml_path)
if not ok then
  io.stderr:write("FAIL reading " .. yaml_path .. ": " .. tostring(scripts) .. "\n")
  os.exit(1)
end
local compiled = {}
local failures = 0
for kind, key in pairs(KEYS) do
  if scripts[key] == nil then
    io.stderr:write("FAIL " .. yaml_path .. " has no " .. key .. "\n")
    failures = failures + 1
  else
    local okc, fn = pcall(compile, key, scripts[key])
    if okc then
      compiled[kind] = fn
    else
      io.stderr:write("FAIL " .. key .. ": " .. tostring(fn) .. "\n")
      failures = failures + 1
    end
  end
end

local function plain_find(s, sub) return s:find(sub, 1, true) ~= nil end

for _, c in ipairs(cases) do
  local problems = {}
  local fn = compiled[c.kind]
  local hs, err
  if fn == nil then
    err = "no script"
  else
    hs, err = run(fn, c.obj)
  end
  if hs == nil then
    problems[#problems + 1] = err
  else
    if hs.status ~= c.status then
      problems[#problems + 1] = "status " .. tostring(hs.status) .. ", want " .. c.status
    end
    for _, s in ipairs(c.contains or {}) do
      if not plain_find(hs.message, s) then problems[#problems + 1] = "message lacks \"" .. s .. "\"" end
    end
    for _, s in ipairs(c.absent or {}) do
      if plain_find(hs.message, s) then problems[#problems + 1] = "message has \"" .. s .. "\"" end
    end
  end
  if hs ~= nil and os.getenv("SHOW") ~= nil then
    io.write(c.name, "\n  -> ", hs.status, ": ", hs.message, "\n")
  end
  if #problems > 0 then
    failures = failures + 1
    io.write("FAIL ", c.name, "\n")
    for _, p in ipairs(problems) do io.write("     ", p, "\n") end
    if hs ~= nil then io.write("     got ", tostring(hs.status), ": ", tostring(hs.message), "\n") end
  end
end

io.write(string.format("%d cases, %d failed (%s)\n", #cases, failures, yaml_path))
os.exit(failures == 0 and 0 or 1)
