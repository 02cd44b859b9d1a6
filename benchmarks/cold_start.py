"""Cold start of the command line, as CPU time (a fresh process each run; CPU, not wall time, so a
busy machine does not move it): `python benchmarks/cold_start.py [RUNS]`.

Measures `llmplan --help` and `llmplan fit …` against Python's own start-up (`python -c pass`);
target: each under 0.4 s of CPU beyond it. Prints each command's runs and median; exit code 1 if
a median misses the target. What keeps it fast — imports made where they are needed — is guarded
by tests/test_cli_startup.py (the modules loaded), not by a timed test.
"""

from __future__ import annotations

import resource
import statistics
import subprocess
import sys

TARGET_S = 0.4
LLMPLAN = [sys.executable, "-c", "from llmplan.cli import entry; entry()"]
COMMANDS = {
    "python -c pass": [sys.executable, "-c", "pass"],
    "llmplan --help": [*LLMPLAN, "--help"],
    "llmplan fit": [*LLMPLAN, "fit", "meta-llama/Llama-3.3-70B-Instruct", "--gpu", "h100-sxm", "--num-gpus", "2",
                    "--context", "8192", "--concurrency", "16", "--json"],
}


def cpu_s(cmd: list[str]) -> float:
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    subprocess.run(cmd, check=True, capture_output=True)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)


def main() -> int:
    runs = int(sys.argv[1]) if len(sys.argv) > 1 else 7
    subprocess.run(COMMANDS["llmplan fit"], check=True, capture_output=True)  # fills the catalog cache
    med = {}
    for name, cmd in COMMANDS.items():
        times = [cpu_s(cmd) for _ in range(runs)]
        med[name] = statistics.median(times)
        print(f"{name}: CPU s " + " ".join(f"{t:.3f}" for t in times) + f"; median {med[name]:.3f}")
    base = med.pop("python -c pass")
    ok = True
    for name, t in med.items():
        beyond = t - base
        ok &= beyond < TARGET_S
        print(f"{name}: {beyond:.3f} s CPU beyond Python's start-up (target < {TARGET_S:.1f} s)")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
