"""Fault injection on the store: `python benchmarks/faults.py [--rounds N] [--postgres]`.

Each round starts WRITERS processes that save versions of one scenario as fast as they can
(contending for the same version numbers), SIGKILLs one of them at a random moment, stops the
others, and then checks the store:

- nothing lost: every save a writer was told succeeded (it logs the version number the store
  returned, after the commit) is in the store, with the body that writer sent;
- nothing torn: version numbers run 1..n without a gap, and every version's YAML matches its body;
- still writable: a new save after the kill succeeds.

SQLite (WAL) always; PostgreSQL with --postgres (a throwaway server, as the tests use; needs the
`postgresql` package: scripts/install-test-deps.sh). Prints one line per backend and a JSON summary."""

from __future__ import annotations

import argparse
import json
import random
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from llmplan.store import Store  # noqa: E402

WRITERS = 3
WRITER = """
import sys
from llmplan.store import Store
url, sid, me, log = sys.argv[1], int(sys.argv[2]), sys.argv[3], open(sys.argv[4], "a", buffering=1)
st = Store(url)
i = 0
while True:
    i += 1
    name = f"{me}-{i}"
    v = st.save_version(sid, {"name": name, "pad": "x" * 5000}, f"name: {name}\\n", f"by {me}")
    log.write(f"{v['version']} {name}\\n")  # written only after the store acknowledged the save
"""


def one_round(url: str, rng: random.Random, tmp: Path, r: int) -> dict:
    st = Store(url)
    sid = st.create_scenario(f"faults-{r}", {"name": "start"}, "name: start\n")["id"]
    logs = [tmp / f"{url.split(':')[0]}-r{r}-w{k}.log" for k in range(WRITERS)]
    procs = [subprocess.Popen([sys.executable, "-c", WRITER, url, str(sid), f"w{k}", str(logs[k])])
             for k in range(WRITERS)]
    time.sleep(rng.uniform(0.8, 2.5))  # includes the writers' start-up
    victim = rng.randrange(WRITERS)
    procs[victim].send_signal(signal.SIGKILL)
    procs[victim].wait(10)
    time.sleep(rng.uniform(0.05, 0.3))
    for p in procs:
        if p.poll() is None:
            p.terminate()
        p.wait(10)
    acked: dict[int, str] = {}
    for log in logs:
        for line in log.read_text().splitlines():
            parts = line.split()
            if len(parts) == 2 and parts[0].isdigit():  # a line torn by the kill is not an acknowledgement
                acked[int(parts[0])] = parts[1]
    st = Store(url)
    versions = st.get_scenario(sid)["versions"]
    numbers = [v["version"] for v in versions]
    gaps = numbers != list(range(1, len(numbers) + 1))
    torn = lost = 0
    by_number = {}
    for v in versions:
        full = st.get_version(sid, v["version"])
        by_number[v["version"]] = full["body"]["name"]
        torn += full["yaml"] != f"name: {full['body']['name']}\n"
    for number, name in acked.items():
        lost += by_number.get(number) != name
    writable = st.save_version(sid, {"name": "after"}, "name: after\n")["version"] == len(numbers) + 1
    return {"versions": len(numbers), "acknowledged": len(acked), "lost": lost, "torn": torn, "gaps": int(gaps),
            "writable": writable}


def run(url: str, rounds: int, seed: int, tmp: Path) -> dict:
    rng = random.Random(seed)
    res = [one_round(url, rng, tmp, r) for r in range(rounds)]
    return {"rounds": rounds, "writers_per_round": WRITERS, "kills": rounds,
            "saves_acknowledged": sum(x["acknowledged"] for x in res),
            "versions_stored": sum(x["versions"] for x in res),
            "lost": sum(x["lost"] for x in res), "torn": sum(x["torn"] for x in res),
            "gaps": sum(x["gaps"] for x in res), "writable_after_every_kill": all(x["writable"] for x in res)}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=10)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--postgres", action="store_true")
    args = ap.parse_args()
    out = {}
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        out["sqlite"] = run(f"sqlite:///{tmp / 'faults.db'}", args.rounds, args.seed, tmp)
        if args.postgres:
            from tests.pg import postgres_url

            with postgres_url() as url:
                out["postgresql"] = run(url, args.rounds, args.seed, tmp)
    for name, r in out.items():
        print(f"{name:10s} {r['kills']} kills, {r['saves_acknowledged']:,} acknowledged saves, "
              f"{r['versions_stored']:,} versions stored: lost {r['lost']}, torn {r['torn']}, gaps {r['gaps']}, "
              f"writable after every kill: {r['writable_after_every_kill']}")
    print(json.dumps(out, indent=1))
    bad = any(r["lost"] or r["torn"] or r["gaps"] or not r["writable_after_every_kill"] for r in out.values())
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
