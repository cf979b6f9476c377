"""Run the benchmarks, each in its own process, and collect their JSON lines.

    python -m bench                 # every bench/bench_*.py
    python -m bench api email       # bench_api.py and bench_email.py only
    python -m bench --quick         # smaller sizes, for a smoke run

Each benchmark prints one JSON object per measured figure; they are appended to bench/results/latest.jsonl
with the machine's description. The figures and how they were obtained go into BENCHMARKS.md by hand.
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).parent


def main(argv: list[str]) -> int:
    quick = "--quick" in argv
    names = [a for a in argv if not a.startswith("-")]
    scripts = sorted(HERE.glob("bench_*.py"))
    if names:
        scripts = [HERE / f"bench_{n}.py" for n in names]
    out_dir = HERE / "results"
    out_dir.mkdir(exist_ok=True)
    machine = {"machine": platform.machine(), "cpus": os.cpu_count(), "python": platform.python_version(),
               "at": time.strftime("%Y-%m-%dT%H:%M:%S")}
    failed = 0
    with open(out_dir / "latest.jsonl", "a", encoding="utf-8") as out:
        for script in scripts:
            print(f"== {script.name}", flush=True)
            cmd = [sys.executable, "-m", f"bench.{script.stem}"] + (["--quick"] if quick else [])
            proc = subprocess.run(cmd, capture_output=True, text=True, cwd=HERE.parent)
            for line in proc.stdout.splitlines():
                print(line, flush=True)
                if line.startswith("{"):
                    out.write(json.dumps({**json.loads(line), **machine, "bench": script.stem}) + "\n")
            if proc.returncode:
                failed += 1
                print(proc.stderr[-2000:], file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
