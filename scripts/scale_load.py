#!/usr/bin/env python3
"""Reads under write load, for scripts/scale.sh: one process posts check-ins for
random members at a fixed offered rate (batches of BATCH events per request), another
reads random members with GET /v1/members/{id} back to back on one keep-alive
connection, and prints the read latencies (measured by this client, Python's own
overhead included) as JSON.

usage: scale_load.py HOST:PORT MEMBERS SECONDS WRITES_PER_SECOND
       (0 writes per second: the reads alone, for what the writes add to them)
"""
import http.client
import json
import multiprocessing
import random
import sys
import time

BATCH = 20


def writer(addr, members, seconds, rate, out):
    host, port = addr.split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=30)
    sent, statuses, n = 0, {}, 0
    run = f"{time.time_ns():x}"  # ids new to the daemon on every run: writes, not duplicates
    start = time.monotonic()
    interval = BATCH / rate
    while time.monotonic() - start < seconds:
        due = start + (sent // BATCH) * interval
        pause = due - time.monotonic()
        if pause > 0:
            time.sleep(pause)
        lines = []
        for _ in range(BATCH):
            n += 1
            member = random.randrange(members)
            lines.append(json.dumps({"id": f"load-{run}-{n}", "type": "checkin", "member": f"m-{member}"}))
        conn.request("POST", "/v1/events", "\n".join(lines), {"content-type": "application/x-ndjson"})
        response = conn.getresponse()
        body = json.loads(response.read())
        for result in body.get("results", []):
            statuses[result["status"]] = statuses.get(result["status"], 0) + 1
        sent += BATCH
    out.put({"events_sent": sent, "statuses": statuses, "seconds": time.monotonic() - start})


def reader(addr, members, seconds, out):
    host, port = addr.split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=30)
    latencies, missing = [], 0
    start = time.monotonic()
    while time.monotonic() - start < seconds:
        member = random.randrange(members)
        began = time.perf_counter()
        conn.request("GET", f"/v1/members/m-{member}")
        response = conn.getresponse()
        response.read()
        latencies.append(time.perf_counter() - began)
        if response.status != 200:
            missing += 1
    latencies.sort()

    def at(q):
        return round(latencies[min(len(latencies) - 1, int(q * len(latencies)))] * 1000, 3)

    out.put({"reads": len(latencies), "not_200": missing, "p50_ms": at(0.50),
             "p99_ms": at(0.99), "max_ms": round(latencies[-1] * 1000, 3)})


def main():
    addr, members, seconds, rate = sys.argv[1], int(sys.argv[2]), float(sys.argv[3]), float(sys.argv[4])
    out = multiprocessing.Queue()
    procs = [multiprocessing.Process(target=reader, args=(addr, members, seconds, out))]
    if rate > 0:
        procs.append(multiprocessing.Process(target=writer, args=(addr, members, seconds, rate, out)))
    for p in procs:
        p.start()
    results = [out.get() for _ in procs]
    for p in procs:
        p.join()
    merged = {}
    for r in results:
        merged.update(r)
    print(json.dumps(merged))


if __name__ == "__main__":
    main()
