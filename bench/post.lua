-- wrk script: POST the body in $BODY_FILE with the headers a client sends.
local f = assert(io.open(os.getenv("BODY_FILE"), "rb"))
wrk.body = f:read("*a")
f:close()
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer " .. os.getenv("MASTER_KEY")
local cluster = os.getenv("CLUSTER")
if cluster and cluster ~= "" then
  wrk.headers["x-llm-cluster"] = cluster
end
local reply = os.getenv("REPLY")
if reply and reply ~= "" then
  wrk.headers["x-bench-reply"] = reply
end
