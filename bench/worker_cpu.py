"""CPU per request of a server process group, measured from /proc.

Sends the same sequential keep-alive requests to a server and divides the
server processes' user+system CPU time by the requests: a health check (the
fixed cost of one HTTP round trip through the server), a batch of 100 new
events, a batch of 100 already-seen events, and one new event. Used by
bench/worker.sh for workerd (under `wrangler dev`) and `contrail serve`.

    python3 bench/worker_cpu.py PORT WRITE_KEY PID[,PID…] [REQUESTS]
"""

import http.client
import json
import sys
import time

USER_HZ = 100


def cpu_seconds(pids):
    total = 0
    for pid in pids:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / USER_HZ


def event(run, i, j):
    return {
        "type": "track",
        "event": "Viewed Product",
        "userId": f"user-{j}",
        "messageId": f"{run}-{i}-{j}",
        "timestamp": "2026-11-20T10:00:00Z",
        "properties": {"plan": "pro", "price": 12.5, "path": "/pricing", "sku": f"sku-{j % 40}"},
        "context": {
            "page": {"url": "https://shop.example/pricing?ref=ad", "referrer": "https://search.example/"},
            "userAgent": "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_5) AppleWebKit/605.1.15 Version/17.5 Safari/605.1.15",
            "library": {"name": "analytics.js", "version": "5.2.0"},
            "locale": "en-GB",
        },
    }


def main():
    port, key, pids = int(sys.argv[1]), sys.argv[2], [int(p) for p in sys.argv[3].split(",")]
    requests = int(sys.argv[4]) if len(sys.argv) > 4 else 400
    conn = http.client.HTTPConnection("127.0.0.1", port)
    run = f"r{time.time_ns()}"
    headers = {"X-Write-Key": key, "Content-Type": "application/json"}

    def measure(name, method, path, body_for):
        for i in range(20):  # warm up (JIT tiers, caches)
            conn.request(method, path, body=body_for(-1 - i), headers=headers)
            conn.getresponse().read()
        before, started = cpu_seconds(pids), time.perf_counter()
        for i in range(requests):
            conn.request(method, path, body=body_for(i), headers=headers)
            response = conn.getresponse()
            response.read()
            assert response.status == 200, (name, response.status)
        cpu_ms = (cpu_seconds(pids) - before) * 1000 / requests
        wall_ms = (time.perf_counter() - started) * 1000 / requests
        print(json.dumps({"case": name, "cpu_ms": round(cpu_ms, 3), "wall_ms": round(wall_ms, 3)}))

    batch = lambda tag, i, n: json.dumps({"batch": [event(f"{run}-{tag}", i, j) for j in range(n)]})
    measure("healthz", "GET", "/healthz", lambda i: None)
    measure("batch_100_new", "POST", "/v1/batch", lambda i: batch("new", i, 100))
    measure("batch_100_duplicates", "POST", "/v1/batch", lambda i: batch("dup", 0, 100))
    measure("batch_1_new", "POST", "/v1/batch", lambda i: batch("one", i, 1))


if __name__ == "__main__":
    main()
