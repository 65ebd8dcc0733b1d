"""Load bench of `toolmodal serve` on the loopback: cached vs cold TTFT, a bounded load test, and
what happens beyond the queue limit.

Starts the server as a child process on the given model (a .gguf file runs on llama.cpp, a
folder on transformers), then:

1. TTFT (time to the first streamed chunk, which the server sends when the first token exists)
   at 5 tools: "cold" for tools never seen (the tool block is evaluated), "cached" right after
   a request with the same tools and another question (llama.cpp reuses the KV cache of the
   common prefix), "restored" with another tool set in between (the server puts the tool
   block's snapshot back). Medians over --ttft-samples rounds.
2. Load: --clients concurrent clients send --requests non-streamed requests over --tool-sets
   mixed 5-tool sets from the bundled catalogue; counts by status, p50/p95 latency, requests/s,
   and the server's RSS after warm-up vs at the end.
3. Overload: 4 x --max-queue requests at once; those beyond the limit must get 503 quickly.

    nice .venv/bin/python bench/serve_load.py --model MODEL [--out bench/results/serve_load.json]

Questions come from the tools' request templates (first template, slots filled with their own
names). Deliberately left out: answer quality (the evaluation pipeline measures that).
"""

from __future__ import annotations

import argparse
import json
import re
import socket
import statistics
import subprocess
import sys
import threading
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import openai
import psutil
import yaml

from toolmodal.ingest import load_catalogue
from toolmodal.masking.grammar import object_schema
from toolmodal.schema import Tool

SCHEMAS = Path("data/tool_schemas")
TOOLS_PER_SET = 5


def openai_tool(tool: Tool) -> dict:
    """A catalogue tool back in OpenAI's format (what a client application would send)."""
    return {"type": "function", "function": {"name": tool.name, "description": tool.description,
                                             "parameters": object_schema(tool.parameters)}}


def first_requests(folder: Path) -> dict[str, str]:
    """Tool name -> its first request template, slots and alternatives filled in plainly."""
    questions = {}
    for path in sorted(folder.glob("*/requests.yaml")):
        for name, entry in (yaml.safe_load(path.read_text("utf-8")) or {}).items():
            template = entry["requests"][0]
            template = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", template)   # [text](arg=v)
            template = re.sub(r"\(([^|()]*)\|[^()]*\)", r"\1", template)    # (a|b) -> a
            questions[name] = re.sub(r"\{(\w+)\}", lambda m: m.group(1).replace("_", " "),
                                     template)
    return questions


def workload(n_sets: int) -> list[tuple[list[dict], list[str]]]:
    """`n_sets` disjoint 5-tool sets, each with the questions of its tools."""
    tools = load_catalogue([SCHEMAS]).tools
    questions = first_requests(SCHEMAS)
    sets = []
    for start in range(0, TOOLS_PER_SET * n_sets, TOOLS_PER_SET):
        chosen = tools[start:start + TOOLS_PER_SET]
        asked = [questions.get(t.name, f"Please {t.description.split('.')[0].lower()}.")
                 for t in chosen]
        sets.append(([openai_tool(t) for t in chosen], asked))
    return sets


def start_server(args: argparse.Namespace, port: int) -> subprocess.Popen:
    """Run `toolmodal serve` and wait for /health."""
    command = [sys.executable, "-m", "toolmodal.cli", "serve", "--model", args.model,
               "--port", str(port), "--max-queue", str(args.max_queue),
               "--max-tokens", str(args.max_tokens), "--tool-states", str(args.tool_states),
               "--log-level", "warning", *(["--lora", args.lora] if args.lora else [])]
    process = subprocess.Popen(command)
    deadline = time.monotonic() + args.startup_timeout
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2):
                return process
        except OSError:
            if process.poll() is not None:
                raise RuntimeError(f"server exited with {process.returncode}") from None
            time.sleep(1)
    process.kill()
    raise RuntimeError(f"server not up after {args.startup_timeout} s")


def ttft(client: openai.OpenAI, tools: list[dict], question: str) -> float:
    """Seconds to the first streamed chunk; the stream is closed right after it."""
    started = time.perf_counter()
    stream = client.chat.completions.create(
        model="bench", messages=[{"role": "user", "content": question}], tools=tools,
        stream=True, max_tokens=8)
    next(iter(stream))
    seconds = time.perf_counter() - started
    stream.close()
    time.sleep(0.3)  # the server stops the cancelled generation before the next request
    return seconds


def variant(tools: list[dict], i: int) -> list[dict]:
    """The same tools with the first description changed: a tool block never seen before."""
    first = json.loads(json.dumps(tools[0]))
    first["function"]["description"] += f" (variant {i})"
    return [first, *tools[1:]]


def measure_ttft(client: openai.OpenAI, sets: list, samples: int) -> dict:
    """Median TTFT: cold (tools never seen), cached (same tools as the request just before),
    restored (same tools as a request two before, another tool set in between)."""
    times: dict[str, list[float]] = {"cold": [], "cached": [], "restored": []}
    for i in range(samples):
        (tools, asked), (other, other_asked) = sets[0], sets[1]
        tools = variant(tools, i)
        times["cold"].append(ttft(client, tools, asked[0]))
        times["cached"].append(ttft(client, tools, asked[1]))
        ttft(client, other, other_asked[0])
        times["restored"].append(ttft(client, tools, asked[2]))
    report = {f"{kind}_ms_median": 1000 * statistics.median(values)
              for kind, values in times.items()}
    return report | {f"{kind}_ms": [round(1000 * v, 1) for v in values]
                     for kind, values in times.items()}


def one_request(client: openai.OpenAI, tools: list[dict], question: str) -> tuple[int, float]:
    """(HTTP status, seconds) of one non-streamed request."""
    started = time.perf_counter()
    try:
        client.chat.completions.create(model="bench", tools=tools,
                                       messages=[{"role": "user", "content": question}])
        status = 200
    except openai.APIStatusError as exc:
        status = exc.status_code
    return status, time.perf_counter() - started


def load_test(client: openai.OpenAI, sets: list, args: argparse.Namespace,
              server: psutil.Process) -> dict:
    """`args.requests` requests from `args.clients` threads over the mixed tool sets."""
    jobs = [sets[i % len(sets)] for i in range(args.requests)]
    warm_rss: list[int] = []
    lock = threading.Lock()
    done = [0]

    def run(i: int) -> tuple[int, float]:
        tools, asked = jobs[i]
        result = one_request(client, tools, asked[i % len(asked)])
        with lock:
            done[0] += 1
            if done[0] == args.warmup:
                warm_rss.append(server.memory_info().rss)
        return result

    started = time.perf_counter()
    with ThreadPoolExecutor(args.clients) as pool:
        results = list(pool.map(run, range(args.requests)))
    wall = time.perf_counter() - started
    end_rss = server.memory_info().rss
    latencies = sorted(s for _, s in results)
    statuses = [status for status, _ in results]
    return {"requests": args.requests, "clients": args.clients, "tool_sets": len(sets),
            "status_counts": {str(s): statuses.count(s) for s in sorted(set(statuses))},
            "errors_5xx": sum(s >= 500 for s in statuses),
            "p50_s": statistics.median(latencies),
            "p95_s": latencies[int(0.95 * (len(latencies) - 1))],
            "requests_per_s": args.requests / wall, "wall_s": wall,
            "rss_after_warmup_mb": warm_rss[0] / 2**20, "rss_end_mb": end_rss / 2**20,
            "rss_growth_pct": 100 * (end_rss - warm_rss[0]) / warm_rss[0]}


def overload(client: openai.OpenAI, sets: list, limit: int) -> dict:
    """4 x limit simultaneous requests: how many got 503, and how fast."""
    tools, asked = sets[0]
    barrier = threading.Barrier(4 * limit)

    def run(i: int) -> tuple[int, float]:
        barrier.wait()
        return one_request(client, tools, asked[i % len(asked)])

    with ThreadPoolExecutor(4 * limit) as pool:
        results = list(pool.map(run, range(4 * limit)))
    refused = [s for status, s in results if status == 503]
    return {"sent": 4 * limit, "queue_limit": limit,
            "status_counts": {str(c): [s for s, _ in results].count(c)
                              for c in sorted({s for s, _ in results})},
            "max_503_latency_ms": 1000 * max(refused) if refused else None}


def health(port: int) -> dict:
    """The server's /health (llama.cpp: how tool blocks were found)."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=10) as reply:
        return json.loads(reply.read())


def wait_idle(port: int) -> None:
    """Wait until no request is in flight (a cancelled stream's prefill still holds a slot)."""
    while health(port)["in_flight"]:
        time.sleep(0.5)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", required=True, help=".gguf file or HF model folder")
    parser.add_argument("--lora", default=None, help="correction adapter (.lora.gguf) to apply")
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--tool-sets", type=int, default=4)
    parser.add_argument("--max-queue", type=int, default=8)
    parser.add_argument("--max-tokens", type=int, default=48, help="budget per request")
    parser.add_argument("--warmup", type=int, default=16, help="requests before the first RSS")
    parser.add_argument("--ttft-samples", type=int, default=5)
    parser.add_argument("--tool-states", type=int, default=8,
                        help="llama.cpp tool-block snapshots the server keeps (0: none)")
    parser.add_argument("--startup-timeout", type=float, default=600)
    parser.add_argument("--out", default="bench/results/serve_load.json")
    args = parser.parse_args()

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    sets = workload(args.tool_sets)
    process = start_server(args, port)
    client = openai.OpenAI(base_url=f"http://127.0.0.1:{port}/v1", api_key="unused",
                           max_retries=0, timeout=600)
    try:
        report = {"model": args.model, "max_tokens": args.max_tokens,
                  "tool_states": args.tool_states, "cpu_count": psutil.cpu_count(),
                  "ttft_5_tools": measure_ttft(client, sets, args.ttft_samples)}
        wait_idle(port)
        report |= {"load": load_test(client, sets, args, psutil.Process(process.pid)),
                  "overload": overload(client, sets, args.max_queue),
                  "health": health(port)}
    finally:
        process.terminate()
        process.wait(timeout=60)
    Path(args.out).write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
