#!/usr/bin/env python3
"""`make bench`: the filter's throughput as a ratio to Envoy routing on a
client-sent cluster header with no filter (the floor), in the same run.

One Envoy under test (--concurrency 1) has a listener per case, sharing routes
and clusters: the floor (no Wasm filter, the client sends x-llm-cluster), a
null Wasm filter that only holds the headers, buffers the body and copies it
into the VM (the limit of this design), the same null filter making the host
calls llm-router makes to forward a request (with fixed values and no logic),
llm-router with a 5-route and with a 5,000-route table (master key on), the
first round's build (5e81e6b, routing only) with the 5-route table, and
llm-router in front of a two-deployment model group whose cluster runs, per
attempt, llm-router's upstream filter or the null filter (the limit of the
group design), and llm-router with virtual keys, one listener's keys under
rpm and tpm limits checked by Envoy's rate-limit filter against
llm-router-limits on loopback. A second Envoy is the upstream: a buffer filter, then a
direct_response, so every request body is read in full upstream. wrk loads
each listener in turn, A B A B, and the table shows each run's ratio to the
floor run next to it and the median ratios. Before the load, bench/stages
times the filter's own stages inside Envoy's V8 with no traffic.
"""

import hashlib
import json
import os
import re
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ENVOY = os.environ.get("ENVOY", os.path.join(ROOT, ".venv/bin/envoy"))
WASM = os.path.join(ROOT, "target/wasm32-wasip1/release/llm_router.wasm")
NULL_WASM = os.path.join(ROOT, "target/wasm32-wasip1/release/null_filter.wasm")
STAGES_WASM = os.path.join(ROOT, "target/wasm32-wasip1/release/stages.wasm")
LIMITS = os.path.join(ROOT, "target/release/llm-router-limits")
# The first round's build (commit 5e81e6b, built by `make bench`): the
# reference the response side is held to.
FIRST_ROUND_WASM = os.path.join(ROOT, "target/first-round/llm_router.wasm")
GENERATOR = os.path.join(ROOT, "target/debug/llm-router-config")
# The many-streams scenario's slow upstream and client (bench/streams).
STREAMS_TOOL = os.path.join(ROOT, "target/release/bench-streams")
STREAM_COUNTS = [int(n) for n in os.environ.get("BENCH_STREAMS", "100,1000,5000").split(",") if n]
STREAM_EVENTS = int(os.environ.get("BENCH_STREAM_EVENTS", "32"))
STREAM_GAP_MS = int(os.environ.get("BENCH_STREAM_GAP_MS", "1000"))
# Copies of the modules that count their host calls (bench/host-calls, made
# by `make bench`), for a counting pass before the load.
COUNTED = os.path.join(ROOT, "target/host-calls")
MASTER_KEY = "sk-bench-5d1f0a9c"
SECONDS = int(os.environ.get("BENCH_SECONDS", "5"))
ROUNDS = int(os.environ.get("BENCH_ROUNDS", "3"))
CONNECTIONS = int(os.environ.get("BENCH_CONNECTIONS", "8"))
PROVIDERS = ["openai", "anthropic", "groq"]
TABLE_SIZES = {"filter5": 5, "filter5000": 5000}
# The 5-route table with `access_log_facts: false`: no access log reads the
# facts, so the filter writes none.
UNLOGGED = "filter5unlogged"
# The keyed listeners: how many virtual keys each table has.
KEYS = {"keys10": 10, "keys10000": 10_000, "keys10limited": 10}
# The listener whose keys have an rpm and a tpm limit: Envoy's rate-limit
# filter after llm-router, as llm-router-config writes it, asking
# llm-router-limits on loopback.
LIMITED = "keys10limited"
# The two-deployment group's cluster (two endpoints on the same upstream).
GROUP_CLUSTER = "group_pair"
# The Envoy under test gets a core of its own; the upstream Envoy and wrk share
# the other. The scheduler does much the same unasked, but less steadily.
CPUS = sorted(os.sched_getaffinity(0))
ROUTER_CPUS = {CPUS[-1]} if len(CPUS) > 1 else set(CPUS)
LOAD_CPUS = set(CPUS[:-1]) if len(CPUS) > 1 else set(CPUS)
TICKS = os.sysconf("SC_CLK_TCK")
LISTENERS = ["floor", "null", "calls", "filter5", "filter5000", "first5", UNLOGGED, "group", "group_null"] + list(KEYS)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def free_ports(names):
    """A distinct free port for each name (the sockets held until all are bound)."""
    sockets = []
    try:
        for _ in names:
            s = socket.socket()
            s.bind(("127.0.0.1", 0))
            sockets.append(s)
        return {name: s.getsockname()[1] for name, s in zip(names, sockets)}
    finally:
        for s in sockets:
            s.close()


def route_table(size):
    """A mixed table: exact names, prefix patterns, suffix patterns, inner patterns."""
    seed = [
        {"model_name": "anthropic/*", "litellm_params": {"model": "anthropic/*", "api_key": "k-anthropic"}},
        {"model_name": "groq/*", "litellm_params": {"model": "groq/*", "api_key": "k-groq"}},
        {"model_name": "fo::*:static::*", "litellm_params": {"model": "openai/fo::*:static::*", "api_key": "k-openai"}},
        {"model_name": "gpt-4o", "litellm_params": {"model": "openai/gpt-4o", "api_key": "k-openai"}},
        {"model_name": "*-mini", "litellm_params": {"model": "openai/*-mini", "api_key": "k-openai"}},
    ]
    entries = list(seed)
    i = 0
    while len(entries) < size:
        kind = i % 4
        if kind == 0:
            name, target = f"team-{i}-model", f"openai/model-{i}"
        elif kind == 1:
            name, target = f"team-{i}/*", "groq/*"
        elif kind == 2:
            name, target = f"*-variant-{i}", "anthropic/claude-*"
        else:
            name, target = f"org{i}::*::v*", "openai/org*-v*"
        entries.append({"model_name": name, "litellm_params": {"model": target, "api_key": "k-" + target.split("/")[0]}})
        i += 1
    return {"model_list": entries[:size], "general_settings": {"master_key": MASTER_KEY}}


def keyed_table(keys):
    """The 5-route table with `keys` virtual keys (as their SHA-256, LiteLLM's
    stored form), each limited to `groq/*` and in one of ten teams."""
    table = route_table(5)
    table["keys"] = [{"key_alias": f"key-{i}", "token": hashlib.sha256(f"sk-bench-{i}".encode()).hexdigest(),
                      "models": ["groq/*"], "team_id": f"team-{i % 10}"} for i in range(keys)]
    return table


def limited_table():
    """The 10-key table, every key under limits no run reaches (so each
    request is checked and charged, never refused), gpt-4o-mini's prices for
    the route's model."""
    table = keyed_table(10)
    for key in table["keys"]:
        key.update(rpm_limit=10**9, tpm_limit=10**12)
    table["model_prices"] = {"groq/llama3-8b-8192": {"input_cost_per_token": 1.5e-7, "output_cost_per_token": 6e-7}}
    return table


def rate_limit_filters(config_path, service_port):
    """The rate-limit filters and the service's cluster as llm-router-config
    writes them for the limited table."""
    import yaml  # PyYAML, in the venv with LiteLLM's SDK
    out = subprocess.run([GENERATOR, "--envoy", "--ratelimit", f"127.0.0.1:{service_port}", config_path],
                         capture_output=True, text=True, check=True).stdout
    bootstrap = yaml.safe_load(out)
    hcm = bootstrap["static_resources"]["listeners"][0]["filter_chains"][0]["filters"][0]["typed_config"]
    filters = [f for f in hcm["http_filters"] if f["name"].startswith("llm-router-")]
    cluster = next(c for c in bootstrap["static_resources"]["clusters"] if c["name"] == "llm_router_limits")
    return filters, cluster


def bench_key(target):
    """The key wrk sends to a listener: a virtual key from the middle of a keyed table."""
    return f"sk-bench-{KEYS[target] // 2}" if target in KEYS else MASTER_KEY


def group_table():
    """The 5-route table plus `pair`, a model group of two deployments."""
    table = route_table(5)
    table["model_list"] += [
        {"model_name": "pair", "litellm_params": {"model": "openai/gpt-4o", "api_key": "k-openai"}},
        {"model_name": "pair", "litellm_params": {"model": "groq/llama3-8b-8192", "api_key": "k-groq"}},
    ]
    return table


def table(target):
    """The plugin configuration of an llm-router listener."""
    if target == LIMITED:
        return limited_table()
    if target in KEYS:
        return keyed_table(KEYS[target])
    if target == UNLOGGED:
        return dict(route_table(5), access_log_facts=False)
    return group_table() if target.startswith("group") else route_table(TABLE_SIZES[target])


def wasm_filter(plugin_config, module=WASM, root_id="llm-router"):
    """The Wasm filter entry; `plugin_config` is JSON-encoded unless it is a string already."""
    return {
        "name": root_id,
        "typed_config": {
            "@type": "type.googleapis.com/envoy.extensions.filters.http.wasm.v3.Wasm",
            "config": {
                "name": root_id,
                "root_id": root_id,
                "allow_on_headers_stop_iteration": True,
                "failure_policy": "FAIL_CLOSED",
                "vm_config": {"runtime": "envoy.wasm.runtime.v8", "code": {"local": {"filename": module}}},
                "configuration": {"@type": "type.googleapis.com/google.protobuf.StringValue", "value": plugin_config if isinstance(plugin_config, str) else json.dumps(plugin_config)},
            },
        },
    }


def listener(name, port, filters, route):
    return {
        "name": name,
        "address": {"socket_address": {"address": "127.0.0.1", "port_value": port}},
        "per_connection_buffer_limit_bytes": 33554432,
        "filter_chains": [{"filters": [{
            "name": "envoy.filters.network.http_connection_manager",
            "typed_config": {
                "@type": "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager",
                "stat_prefix": name,
                "route_config": {"virtual_hosts": [{"name": name, "domains": ["*"], "routes": [route]}]},
                "http_filters": filters + [{"name": "envoy.filters.http.router", "typed_config": {
                    "@type": "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router"}}],
            },
        }]}],
    }


def admin(port):
    return {"address": {"socket_address": {"address": "127.0.0.1", "port_value": port}}}


# A chat completion as OpenAI sends it, usage last.
USAGE_REPLY = json.dumps({
    "id": "chatcmpl-bench", "object": "chat.completion", "created": 1700000000, "model": "llama3-8b-8192",
    "choices": [{"index": 0, "message": {"role": "assistant", "content": "The quick brown fox jumps over the lazy dog. " * 4,
                                         "refusal": None}, "logprobs": None, "finish_reason": "stop"}],
    "usage": {"prompt_tokens": 260, "completion_tokens": 40, "total_tokens": 300,
              "prompt_tokens_details": {"cached_tokens": 0}, "completion_tokens_details": {"reasoning_tokens": 0}},
    "system_fingerprint": "fp_bench"}, separators=(",", ":"))


def upstream_config(port, admin_port):
    buffer = {"name": "envoy.filters.http.buffer", "typed_config": {
        "@type": "type.googleapis.com/envoy.extensions.filters.http.buffer.v3.Buffer", "max_request_bytes": 33554432}}
    json_type = [{"header": {"key": "content-type", "value": "application/json"}}]
    # `x-bench-reply: usage` (sent by wrk for the usage row) gets a full chat completion.
    usage = {"match": {"prefix": "/", "headers": [{"name": "x-bench-reply", "string_match": {"exact": "usage"}}]},
             "direct_response": {"status": 200, "body": {"inline_string": USAGE_REPLY}},
             "response_headers_to_add": json_type}
    small = {"match": {"prefix": "/"}, "direct_response": {"status": 200, "body": {"inline_string": '{"id":"bench","object":"chat.completion"}'}},
             "response_headers_to_add": json_type}
    upstream = listener("upstream", port, [buffer], small)
    upstream["filter_chains"][0]["filters"][0]["typed_config"]["route_config"]["virtual_hosts"][0]["routes"] = [usage, small]
    return {"admin": admin(admin_port), "static_resources": {"listeners": [upstream]}}


def counted(module):
    """The counting copy of a module."""
    return os.path.join(COUNTED, os.path.basename(os.path.dirname(module)) + "-" + os.path.basename(module))


def router_config(ports, admin_port, upstream_port, limits, module=lambda path: path):
    """The Envoy under test; `module` maps each filter's module path (to the
    counting copies, for the counting pass)."""
    route = {"match": {"prefix": "/"}, "route": {"cluster_header": "x-llm-cluster", "timeout": "60s"},
             "request_headers_to_remove": ["x-llm-cluster"]}
    clusters = [{
        "name": name, "type": "STATIC", "connect_timeout": "1s", "per_connection_buffer_limit_bytes": 33554432,
        "load_assignment": {"cluster_name": name, "endpoints": [{"lb_endpoints": [{"endpoint": {"address": {
            "socket_address": {"address": "127.0.0.1", "port_value": upstream_port}}}}]}]},
    } for name in PROVIDERS]
    rate_limit, limits_cluster = limits
    clusters.append(limits_cluster)
    # As llm-router-config writes a group: an endpoint per deployment, the
    # upstream filter per attempt, Envoy's retries on the route. The same
    # group with the null filter upstream is the limit of this design.
    llm_router_upstream = wasm_filter(group_table(), module(WASM), root_id="llm-router-upstream")
    groups = []
    for name, upstream_filter in (("group", llm_router_upstream), ("group_null", wasm_filter("", module(NULL_WASM)))):
        cluster = f"{GROUP_CLUSTER}_{name}"
        clusters.append({
            "name": cluster, "type": "STATIC", "connect_timeout": "1s", "per_connection_buffer_limit_bytes": 33554432,
            "load_assignment": {"cluster_name": cluster, "endpoints": [{"lb_endpoints": [{
                "endpoint": {"address": {"socket_address": {"address": "127.0.0.1", "port_value": upstream_port}}},
                "metadata": {"filter_metadata": {"llm_router": {"deployment": deployment}}},
            } for deployment in ("pair#1", "pair#2")]}]},
            "typed_extension_protocol_options": {"envoy.extensions.upstreams.http.v3.HttpProtocolOptions": {
                "@type": "type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions",
                "explicit_http_config": {"http_protocol_options": {}}, "http_filters": [upstream_filter, {
                    "name": "envoy.filters.http.upstream_codec", "typed_config": {
                        "@type": "type.googleapis.com/envoy.extensions.filters.http.upstream_codec.v3.UpstreamCodec"}}]}},
        })
        group_route = {"match": {"prefix": "/", "headers": [{"name": "x-llm-cluster",
                                                              "string_match": {"exact": GROUP_CLUSTER}}]},
                       "route": {"cluster": cluster, "timeout": "60s", "retry_policy": {
                           "retry_on": "connect-failure,refused-stream,reset,5xx", "num_retries": 2}},
                       "request_headers_to_remove": ["x-llm-cluster"],
                       "response_headers_to_add": [{"header": {
                           "key": "x-llm-router-deployment",
                           "value": '%UPSTREAM_METADATA(["llm_router", "deployment"])%'},
                           "append_action": "OVERWRITE_IF_EXISTS_OR_ADD"}]}
        group = listener(name, ports[name], [wasm_filter(group_table(), module(WASM))], route)
        group["filter_chains"][0]["filters"][0]["typed_config"]["route_config"]["virtual_hosts"][0]["routes"] = [
            group_route, route]
        groups.append(group)
    listeners = [
        listener("floor", ports["floor"], [], route),
        listener("null", ports["null"], [wasm_filter("", module(NULL_WASM))], route),
        listener("calls", ports["calls"], [wasm_filter("host-calls", module(NULL_WASM))], route),
        listener("filter5", ports["filter5"], [wasm_filter(route_table(TABLE_SIZES["filter5"]), module(WASM))], route),
        listener("filter5000", ports["filter5000"], [wasm_filter(route_table(TABLE_SIZES["filter5000"]), module(WASM))],
                 route),
        listener("first5", ports["first5"], [wasm_filter(route_table(5), module(FIRST_ROUND_WASM))], route),
        listener(UNLOGGED, ports[UNLOGGED], [wasm_filter(table(UNLOGGED), module(WASM))], route),
    ] + [listener(name, ports[name], [wasm_filter(table(name), module(WASM))] + (rate_limit if name == LIMITED else []),
                  route)
         for name in KEYS] + groups
    return {"admin": admin(admin_port), "static_resources": {"listeners": listeners, "clusters": clusters}}


def pinned(cpus):
    return lambda: os.sched_setaffinity(0, cpus)


def cpu_seconds(pid):
    """User + system CPU time of a process so far."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS


def start_envoy(config, workdir, name, level="warning", cpus=LOAD_CPUS):
    path = os.path.join(workdir, f"{name}.json")
    with open(path, "w") as f:
        json.dump(config, f)
    log = open(os.path.join(workdir, f"{name}.log"), "w")
    started = time.monotonic()
    proc = subprocess.Popen([ENVOY, "-c", path, "--concurrency", "1", "--use-dynamic-base-id", "-l", level],
                            stdout=log, stderr=log, start_new_session=True, preexec_fn=pinned(cpus))
    url = f"http://127.0.0.1:{config['admin']['address']['socket_address']['port_value']}/ready"
    while True:
        if proc.poll() is not None:
            sys.exit(f"{name} Envoy exited:\n" + open(log.name).read())
        try:
            if urllib.request.urlopen(url, timeout=1).status == 200:
                return proc, time.monotonic() - started
        except OSError:
            pass
        if time.monotonic() - started > 30:
            sys.exit(f"{name} Envoy not ready in 30 s")
        time.sleep(0.02)


def body_file(workdir, size, model):
    """An OpenAI-SDK-shaped body of `size` bytes with `model` as the last key."""
    head, tail = '{"messages":[{"role":"user","content":"', f'"}}],"temperature":0.7,"model":"{model}"}}'
    pad = size - len(head) - len(tail)
    path = os.path.join(workdir, f"body-{size}-{model.replace('/', '_')}.json")
    with open(path, "w") as f:
        f.write(head + ("lorem ipsum " * (pad // 12 + 1))[:pad] + tail)
    return path


def wrk(port, body, cluster, seconds, router_pid, reply="", key=MASTER_KEY):
    """(requests/s, p50, p99, CPU microseconds the router spent per request, requests)."""
    env = dict(os.environ, BODY_FILE=body, MASTER_KEY=key, CLUSTER=cluster or "", REPLY=reply)
    cpu_before = cpu_seconds(router_pid)
    out = subprocess.run(["wrk", "-t1", f"-c{CONNECTIONS}", f"-d{seconds}s", "--latency", "-s",
                          os.path.join(ROOT, "bench/post.lua"), f"http://127.0.0.1:{port}/v1/chat/completions"],
                         env=env, capture_output=True, text=True, check=True, preexec_fn=pinned(LOAD_CPUS)).stdout
    cpu = cpu_seconds(router_pid) - cpu_before
    requests = int(re.search(r"(\d+) requests in", out).group(1))
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    lat = dict(re.findall(r"\s+(50|99)%\s+([\d.]+\w+)", out))
    bad = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    errors = re.search(r"Socket errors:.*", out)
    if bad or errors:
        sys.exit(f"run against :{port} had failures:\n{out}")
    return rps, lat.get("50", "?"), lat.get("99", "?"), 1e6 * cpu / max(requests, 1), requests


def stat_counts(admin_port):
    """The counting copies' totals, {(direction, function): count}: "out" for
    each import called, "in" for each callback."""
    text = urllib.request.urlopen(f"http://127.0.0.1:{admin_port}/stats?filter=host_calls", timeout=5).read().decode()
    counts = {}
    for direction, function, n in re.findall(r"host_calls\.(out|in)\.(\w+): (\d+)", text):
        counts[(direction, function)] = counts.get((direction, function), 0) + int(n)
    return counts


def host_calls(workdir, selected, bodies, upstream_port, limits):
    """Host calls per request, {(case label, column): {(direction, function):
    calls per request}}, from an Envoy running the counting copies of the
    modules: each listener warmed up (so that the VMs' configuration is
    counted before), then loaded for a second alone, its counters read before
    and after."""
    ports = free_ports(LISTENERS + ["admin"])
    admin_port = ports.pop("admin")
    proc, _ = start_envoy(router_config(ports, admin_port, upstream_port, limits, counted), workdir, "counting")
    try:
        counts = {}
        columns = lambda target: (("null", ports["null"], "groq"), ("calls", ports["calls"], None),
                                  ("router", ports[target], None))
        for label, _, _, target, reply in selected:
            for _, port, header in columns(target):
                wrk(port, bodies[label], header, 1, proc.pid, reply, bench_key(target))
        for label, _, _, target, reply in selected:
            for column, port, header in columns(target):
                before = stat_counts(admin_port)
                requests = wrk(port, bodies[label], header, 1, proc.pid, reply, bench_key(target))[4]
                after = stat_counts(admin_port)
                counts[(label, column)] = {k: (n - before.get(k, 0)) / max(requests, 1) for k, n in after.items()
                                           if n != before.get(k, 0)}
        return counts
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait()


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        return int(re.search(r"VmRSS:\s+(\d+) kB", f.read()).group(1))


def streams_scenario(workdir):
    """Many concurrent slow streams: for each count, a fresh Envoy per column
    (no filter, the null filter, llm-router), the client holding that many
    streams of STREAM_EVENTS events STREAM_GAP_MS apart. Returns rows of
    (streams, column, the client's summary, Envoy's memory growth in KiB,
    CPU seconds)."""
    upstream_port = free_port()
    server = subprocess.Popen([STREAMS_TOOL, "serve", str(upstream_port), str(STREAM_EVENTS), str(STREAM_GAP_MS)],
                              stdout=subprocess.DEVNULL, start_new_session=True, preexec_fn=pinned(LOAD_CPUS))
    body = os.path.join(workdir, "stream-body.json")
    with open(body, "w") as f:
        json.dump({"model": "groq/llama3-8b-8192", "stream": True,
                   "messages": [{"role": "user", "content": "Say something slowly."}]}, f)
    # Envoy's default circuit breakers stop at 1,024 requests per cluster.
    unlimited = {"thresholds": [{"max_connections": 1_000_000, "max_pending_requests": 1_000_000,
                                 "max_requests": 1_000_000}]}
    clusters = [{"name": name, "type": "STATIC", "connect_timeout": "1s", "circuit_breakers": unlimited,
                 "load_assignment": {"cluster_name": name, "endpoints": [{"lb_endpoints": [{"endpoint": {"address": {
                     "socket_address": {"address": "127.0.0.1", "port_value": upstream_port}}}}]}]}}
                for name in PROVIDERS]
    route = {"match": {"prefix": "/"}, "route": {"cluster_header": "x-llm-cluster", "timeout": "0s"},
             "request_headers_to_remove": ["x-llm-cluster"]}
    columns = [("floor", [], ["x-llm-cluster: groq"]), ("null", [wasm_filter("", NULL_WASM)], ["x-llm-cluster: groq"]),
               ("llm-router", [wasm_filter(route_table(5))], [f"authorization: Bearer {MASTER_KEY}"])]
    rows = []
    try:
        for count in STREAM_COUNTS:
            for column, filters, headers in columns:
                port = free_port()
                config = {"admin": admin(free_port()), "static_resources": {
                    "listeners": [listener(column, port, filters, route)], "clusters": clusters}}
                proc, _ = start_envoy(config, workdir, f"streams-{column}", cpus=ROUTER_CPUS)
                try:
                    def load(streams, gap):
                        return subprocess.Popen([STREAMS_TOOL, "load", str(port), str(streams), str(STREAM_EVENTS),
                                                 str(gap), body] + headers, stdout=subprocess.PIPE, text=True,
                                                preexec_fn=pinned(LOAD_CPUS))
                    load(8, 1).communicate()  # warm-up: the VM, the connections' first allocations
                    idle, cpu_before = rss_kib(proc.pid), cpu_seconds(proc.pid)
                    client, peak = load(count, STREAM_GAP_MS), idle
                    while client.poll() is None:
                        peak = max(peak, rss_kib(proc.pid))
                        time.sleep(0.25)
                    cpu = cpu_seconds(proc.pid) - cpu_before
                    rows.append((count, column, json.loads(client.stdout.read()), peak - idle, cpu))
                finally:
                    os.killpg(proc.pid, signal.SIGTERM)
                    proc.wait()
        return rows
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait()


def report_streams(rows):
    print(f"\nmany concurrent streams: {STREAM_EVENTS} events {STREAM_GAP_MS} ms apart each, a fresh Envoy per run; "
          "Envoy's memory growth (RSS, peak less idle) and CPU per stream, the client's view of the streams")
    print(f"| {'streams':>7} | {'column':<10} | {'complete':>8} | {'short':>5} | {'late max / p99':>14} | "
          f"{'KiB/stream':>10} | {'CPU ms/stream':>13} | {'us/event over floor':>19} |")
    print(f"|{'-' * 9}|{'-' * 12}|{'-' * 10}|{'-' * 7}|{'-' * 16}|{'-' * 12}|{'-' * 15}|{'-' * 21}|")
    floor = {count: cpu for count, column, _, _, cpu in rows if column == "floor"}
    for count, column, seen, grown, cpu in rows:
        # Every event the upstream sent (the filter removes the usage chunk it asked for).
        events = count * (STREAM_EVENTS + 3)
        over = "" if column == "floor" or count not in floor else f"{1e6 * (cpu - floor[count]) / events:.2f}"
        print(f"| {count:>7,} | {column:<10} | {seen['complete']:>8,} | {seen['short']:>5} | "
              f"{str(seen['late_ms_max']) + ' / ' + str(seen['late_ms_p99']) + ' ms':>14} | {grown / count:>10.1f} | "
              f"{1e3 * cpu / count:>13.2f} | {over:>19} |")


def main():
    workdir = tempfile.mkdtemp(prefix="llm-router-bench-")
    ports = free_ports(LISTENERS)
    upstream_port = free_port()
    procs = []
    try:
        up, _ = start_envoy(upstream_config(upstream_port, free_port()), workdir, "upstream")
        procs.append(up)
        limits_config = os.path.join(workdir, "limits.yaml")
        with open(limits_config, "w") as f:
            json.dump(limited_table(), f)  # JSON is YAML
        service_port = free_port()
        procs.append(subprocess.Popen([LIMITS, "--config", limits_config, "--listen", f"127.0.0.1:{service_port}"],
                                      stdout=subprocess.DEVNULL, stderr=open(os.path.join(workdir, "limits.log"), "w"),
                                      start_new_session=True, preexec_fn=pinned(LOAD_CPUS)))
        limits = rate_limit_filters(limits_config, service_port)
        cold = cold_start(workdir)
        # (label, body size, model, the llm-router listener compared against the floor, the upstream's reply)
        scenarios = [
            ("1 KiB, 5 routes", 1024, "groq/llama3-8b-8192", "filter5", ""),
            ("1 KiB, 5,000 routes", 1024, "team-2501/llama3-8b-8192", "filter5000", ""),
            ("1 KiB, reply with usage", 1024, "groq/llama3-8b-8192", "filter5", "usage"),
            ("1 KiB, usage, 1st round", 1024, "groq/llama3-8b-8192", "first5", "usage"),
            ("1 KiB, usage, no log facts", 1024, "groq/llama3-8b-8192", UNLOGGED, "usage"),
            ("1 KiB, 2-deployment group", 1024, "pair", "group", ""),
            ("1 KiB, group, null upstream", 1024, "pair", "group_null", ""),
            ("1 KiB, a key of 10", 1024, "groq/llama3-8b-8192", "keys10", ""),
            ("1 KiB, a key of 10,000", 1024, "groq/llama3-8b-8192", "keys10000", ""),
            ("1 KiB, key, usage", 1024, "groq/llama3-8b-8192", "keys10", "usage"),
            ("1 KiB, key, limits", 1024, "groq/llama3-8b-8192", LIMITED, "usage"),
            ("100 KiB, model last", 100 * 1024, "groq/llama3-8b-8192", "filter5", ""),
            ("100 KiB, 1st round", 100 * 1024, "groq/llama3-8b-8192", "first5", ""),
            ("5 MiB, model last", 5 * 1024 * 1024, "groq/llama3-8b-8192", "filter5", ""),
        ]
        only = [o for o in os.environ.get("BENCH_ONLY", "").split(",") if o]
        selected = [s for s in scenarios if not only or any(o in s[0] for o in only)]
        bodies = {label: body_file(workdir, size, model) for label, size, model, _, _ in selected}
        calls_per_request = host_calls(workdir, selected, bodies, upstream_port, limits) if ROUNDS > 0 else {}
        router, _ = start_envoy(router_config(ports, free_port(), upstream_port, limits), workdir, "router",
                                cpus=ROUTER_CPUS)
        procs.append(router)
        stages = stage_timings(workdir, [(label, bodies[label], model, table(target), bench_key(target))
                                         for label, size, model, target, reply in selected
                                         if size <= 100 * 1024 and (not reply or target == LIMITED)
                                         and target not in ("group_null", "first5")])
        rows = []
        for label, size, model, target, reply in selected if ROUNDS > 0 else []:
            body = bodies[label]
            cluster = "groq"
            key = bench_key(target)
            for port, header in ((ports["floor"], cluster), (ports["null"], cluster), (ports["calls"], None),
                                 (ports[target], None)):
                wrk(port, body, header, 1, router.pid, reply, key)  # warm-up: connections, VM, caches
            runs = []
            for _ in range(ROUNDS):
                floor = wrk(ports["floor"], body, cluster, SECONDS, router.pid, reply, key)
                null = wrk(ports["null"], body, cluster, SECONDS, router.pid, reply, key)
                calls = wrk(ports["calls"], body, None, SECONDS, router.pid, reply, key)
                filtered = wrk(ports[target], body, None, SECONDS, router.pid, reply, key)
                runs.append((floor, null, calls, filtered))
            rows.append((label, runs))
        report(rows, cold, stages, calls_per_request)
        if ROUNDS > 0 and STREAM_COUNTS and (not only or "streams" in only):
            report_streams(streams_scenario(workdir))
    finally:
        for p in procs:
            os.killpg(p.pid, signal.SIGTERM)
            p.wait()


def stream_reply(events):
    """An OpenAI chat stream of `events` content chunks, as the provider
    sends it when asked for usage: the finish chunk, the usage chunk, [DONE]."""
    def chunk(choices, usage=None):
        return "data: " + json.dumps({"id": "chatcmpl-bench", "object": "chat.completion.chunk", "created": 1700000000,
                                      "model": "llama3-8b-8192", "system_fingerprint": "fp_bench", "choices": choices,
                                      "usage": usage}, separators=(",", ":")) + "\n\n"
    words = ("The quick brown fox jumps over the lazy dog " * (events // 9 + 1)).split()[:events]
    out = [chunk([{"index": 0, "delta": {"content": " " + w}, "logprobs": None, "finish_reason": None}]) for w in words]
    out.append(chunk([{"index": 0, "delta": {}, "logprobs": None, "finish_reason": "stop"}]))
    out.append(chunk([], {"prompt_tokens": 260, "completion_tokens": events, "total_tokens": 260 + events}))
    return out + ["data: [DONE]\n\n"]


def stage_timings(workdir, cases):
    """The filter's own stages timed in Envoy's V8 without load (bench/stages):
    {(case label, stage): nanoseconds per call}."""
    if not cases:
        return {}
    def headers(key):
        return [(":authority", "127.0.0.1"), (":path", "/v1/chat/completions"), (":method", "POST"),
                (":scheme", "http"), ("content-type", "application/json"), ("authorization", f"Bearer {key}"),
                ("x-forwarded-proto", "http"), ("x-request-id", "4b1e2f8a-4c9b-4f0e-9d1c-2a7e6b3c5d10")]
    plugin = [{"label": label, "config": config, "body": open(body).read(), "model": model,
               "headers": headers(key) + [("content-length", str(os.path.getsize(body)))],
               "reply": USAGE_REPLY, "stream": stream_reply(100)}
              for label, body, model, config, key in cases]
    filter_ = wasm_filter(json.dumps(plugin), STAGES_WASM)
    config = {"static_resources": {"listeners": [listener("stages", free_port(), [filter_],
                                                          {"match": {"prefix": "/"}, "direct_response": {"status": 200}})]}}
    path = os.path.join(workdir, "stages.json")
    with open(path, "w") as f:
        json.dump(config, f)
    out = subprocess.run([ENVOY, "--mode", "validate", "-c", path, "--concurrency", "1", "--use-dynamic-base-id",
                          "-l", "warning"], capture_output=True, text=True, preexec_fn=pinned(ROUTER_CPUS))
    found = re.findall(r"stage\t([^\t]+)\t([^\t]+)\t(\d+)", out.stdout + out.stderr)
    if out.returncode != 0 or not found:
        sys.exit("stage timings failed:\n" + out.stdout + out.stderr)
    timings = {}
    for label, stage, ns in found:  # each VM Envoy creates runs them: keep the fastest
        timings[(label, stage)] = min(int(ns), timings.get((label, stage), int(ns)))
    return timings


def cold_start(workdir):
    """For a 5- and a 5,000-route table: (seconds from Envoy's start to /ready,
    milliseconds the filter's on_configure took, as it logs them)."""
    times = {}
    for size in (5, 5000):
        port = free_port()
        config = {"admin": admin(free_port()), "static_resources": {
            "listeners": [listener("only", port, [wasm_filter(route_table(size))],
                                   {"match": {"prefix": "/"}, "direct_response": {"status": 200}})]}}
        proc, seconds = start_envoy(config, workdir, f"cold{size}", level="info")
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait()
        logged = re.findall(r"llm-router configured: \d+ deployments, .* in (\d+) ms", open(os.path.join(workdir, f"cold{size}.log")).read())
        times[size] = (seconds, max(int(ms) for ms in logged) if logged else -1)
    return times


def report(rows, cold, stages, calls_per_request):
    size = os.path.getsize(WASM)
    version = re.search(r"/(\d+\.\d+\.\d+)/", subprocess.run([ENVOY, "--version"], capture_output=True, text=True).stdout)
    pinning = (f"Envoy under test on CPU {','.join(map(str, sorted(ROUTER_CPUS)))}, upstream and wrk on "
               f"CPU {','.join(map(str, sorted(LOAD_CPUS)))}")
    print(f"\nllm-router benchmark: Envoy {version.group(1) if version else '?'}, "
          f"--concurrency 1, wrk -t1 -c{CONNECTIONS}, {SECONDS} s per run, {ROUNDS} rounds A B A B; {pinning}")
    print(f"filter .wasm: {size:,} bytes")
    for routes, (ready, configure_ms) in cold.items():
        print(f"cold start, {routes:,} routes: on_configure {configure_ms} ms; Envoy start to /ready {ready:.2f} s")
    print()
    print(f"| {'case':<22} | {'floor':>7} | {'null':>7} | {'calls':>7} | {'router':>7} | {'floor p50 / p99':>19} | "
          f"{'router p50 / p99':>19} | {'CPU us/req: floor  null  calls  router':>38} | {'null':>4} | {'calls':>5} | "
          f"{'ratio':>5} |")
    print(f"|{'-' * 24}|{'-' * 9}|{'-' * 9}|{'-' * 9}|{'-' * 9}|{'-' * 21}|{'-' * 21}|{'-' * 40}|{'-' * 6}|{'-' * 7}|"
          f"{'-' * 7}|")
    medians = {}
    for label, runs in rows:
        ratios, cpus = [], []
        for floor, null, calls, router in runs:
            ratios.append([r[0] / floor[0] for r in (null, calls, router)])
            cpus.append([r[3] for r in (floor, null, calls, router)])
            cpu = "".join(f"{c:>7.1f}" for c in cpus[-1])
            print(f"| {label:<22} | {floor[0]:>7,.0f} | {null[0]:>7,.0f} | {calls[0]:>7,.0f} | {router[0]:>7,.0f} | "
                  f"{floor[1] + ' / ' + floor[2]:>19} | {router[1] + ' / ' + router[2]:>19} | {cpu:>38} | "
                  f"{ratios[-1][0]:>4.2f} | {ratios[-1][1]:>5.2f} | {ratios[-1][2]:>5.2f} |")
        medians[label] = ([statistics.median(r) for r in zip(*ratios)], [statistics.median(c) for c in zip(*cpus)])
    print("\nfloor: no filter; null: the null filter; calls: the null filter making llm-router's host calls;"
          " router: llm-router.\nmedian ratio to the floor, and the median CPU the Envoy under test spent per request:")
    for label, ((null, calls, router), (f_cpu, n_cpu, c_cpu, r_cpu)) in medians.items():
        print(f"  {label:<22} llm-router {router:.2f}  (null {null:.2f}, calls {calls:.2f})   CPU floor {f_cpu:.1f} us, "
              f"null +{n_cpu - f_cpu:.1f}, calls +{c_cpu - f_cpu:.1f}, llm-router +{r_cpu - f_cpu:.1f}")
    if calls_per_request:
        print("\nhost calls per request, out (calls into Envoy) / in (callbacks into the VM), from the counting copies"
              " (bench/host-calls); llm-router's by function:")
        for label, _ in rows:
            def total(column, direction):
                return sum(n for (d, _), n in calls_per_request.get((label, column), {}).items() if d == direction)
            cells = [f"{name} {total(column, 'out'):.1f} / {total(column, 'in'):.1f}"
                     for column, name in (("null", "null"), ("calls", "calls"), ("router", "llm-router"))]
            print(f"  {label:<27} " + ",  ".join(cells))
            mine = sorted(calls_per_request.get((label, "router"), {}).items(), key=lambda kv: (kv[0][0], -kv[1]))
            print(" " * 30 + ", ".join(f"{function.removeprefix('proxy_')} {n:.1f}" for (_, function), n in mine
                                       if n >= 0.05))
    small = [ratios[2] for label, (ratios, _) in medians.items() if label.startswith("1 KiB") and "routes" in label]
    if len(small) == 2:
        print(f"  5,000 vs 5 routes       {small[1] / small[0]:.2f}")
    for mine, first in (("1 KiB, reply with usage", "1 KiB, usage, 1st round"),
                        ("1 KiB, usage, no log facts", "1 KiB, usage, 1st round"),
                        ("100 KiB, model last", "100 KiB, 1st round")):
        if mine in medians and first in medians:
            print(f"  {mine} vs the first round's build: {medians[mine][0][2] / medians[first][0][2]:.2f}")
    keyed = {label: ratios[2] for label, (ratios, _) in medians.items() if label.startswith("1 KiB, key, ")}
    if len(keyed) == 2:
        print(f"  limits vs none          {keyed['1 KiB, key, limits'] / keyed['1 KiB, key, usage']:.2f}"
              " (the same key, reply with usage; latency above)")
    if not stages:
        return
    labels = list(dict.fromkeys(label for label, _ in stages))
    print("\nllm-router's own stages in Envoy's V8, no load (bench/stages), nanoseconds per call:")
    print(f"| {'stage':<42} | " + " | ".join(f"{label:>19}" for label in labels) + " |")
    print(f"|{'-' * 44}|" + "|".join("-" * 21 for _ in labels) + "|")
    for stage in dict.fromkeys(stage for _, stage in stages):
        print(f"| {stage:<42} | " + " | ".join(f"{stages.get((label, stage), 0):>19,}" for label in labels) + " |")


if __name__ == "__main__":
    main()
