-- wrk script: POST the V2 request body named by SLUICE_BENCH_BODY on every request.
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
local f = assert(io.open(os.getenv("SLUICE_BENCH_BODY"), "rb"))
wrk.body = f:read("*a")
f:close()
