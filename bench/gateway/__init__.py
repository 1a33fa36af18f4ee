"""The gateway benchmark (issue 12): what a gateway's client costs per request, end to end.

server.py   a fast loopback VP API server (raw asyncio, uvloop) that opens every request
tls.py      the test certificate (self-signed leaf, CA:FALSE)
clients.py  the clients measured: the raw-asyncio floor, libraries by hand, the hand-written
            httpx + cryptography peer, vpseal's own clients
harness.py  server process, CPU pinning, one measured round
cell.py     one (transport, concurrency) cell in a process of its own
scaling.py  1 vs 2 client processes
report.py   the table, the target ratios, bench/.results/gateway.json
run.py      all of it from the command line: cd bench && python -m gateway.run [--short]
"""
