"""Run the benchmarks, each in its own process, and collect their JSON lines.

    python -m bench                        # every bench/bench_*.py
    python -m bench api email              # bench_api.py and bench_email.py only
    python -m bench --quick                # smaller sizes, for a smoke run
    python -m bench email --against REV    # and the same bench on git revision REV, alternated (--rounds N)

Each benchmark prints one JSON object per measured figure; they are appended to bench/results/latest.jsonl
with the machine's description and its reference speed (`bench.reference`, taken at the start). The figures and
how they were obtained go into BENCHMARKS.md by hand.

`--against REV`: the machines differ by a factor of two to three and move within the hour, so a change is measured
against the code before it in the same minutes: REV is exported (`git archive`) to a scratch directory and its own
bench of the same name runs from there, alternately with this tree's, `--rounds` times each (which one goes first
alternates). Each line says which code it measured (`code`).
"""

from __future__ import annotations

import argparse
import io
import json
import os
import platform
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

from bench.reference import measure

HERE = Path(__file__).parent
ROOT = HERE.parent


def export(rev: str, into: Path) -> str:
    """Write git revision `rev` of this repository into `into`; its full commit id."""
    commit = subprocess.run(["git", "rev-parse", "--verify", f"{rev}^{{commit}}"], cwd=ROOT, check=True,
                            capture_output=True, text=True).stdout.strip()
    archive = subprocess.run(["git", "archive", "--format=tar", commit], cwd=ROOT, check=True,
                             capture_output=True).stdout
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        tar.extractall(into, filter="data")
    return commit


def run_one(script: str, tree: Path, quick: bool, tags: dict, out) -> bool:
    """Run bench `script` (a module name) from `tree`; print and record its figures; whether it succeeded."""
    # Run from the tree's own directory: `-m` puts it first on sys.path, ahead of the installed project.
    cmd = [sys.executable, "-m", f"bench.{script}"] + (["--quick"] if quick else [])
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=tree)
    for line in proc.stdout.splitlines():
        print(line, flush=True)
        if line.startswith("{"):
            out.write(json.dumps({**json.loads(line), **tags, "bench": script}) + "\n")
    if proc.returncode:
        print(proc.stderr[-2000:], file=sys.stderr)
    return proc.returncode == 0


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description="Les mesures de vitesse de Déclic.")
    parser.add_argument("names", nargs="*", help="mesures à lancer (bench_NOM.py) ; toutes par défaut")
    parser.add_argument("--quick", action="store_true", help="tailles réduites, pour un essai rapide")
    parser.add_argument("--against", metavar="REV",
                        help="lancer aussi chaque mesure sur cette révision git, en alternance")
    parser.add_argument("--rounds", type=int, default=1, help="passages de chaque code avec --against (1 par défaut)")
    args = parser.parse_args(argv)
    scripts = [p.stem for p in sorted(HERE.glob("bench_*.py"))]
    if args.names:
        unknown = [n for n in args.names if f"bench_{n}" not in scripts]
        if unknown:
            parser.error(f"pas de benchmark {', '.join(unknown)} (connus : "
                         f"{', '.join(s.removeprefix('bench_') for s in scripts)})")
        scripts = [f"bench_{n}" for n in args.names]
    out_dir = HERE / "results"
    out_dir.mkdir(exist_ok=True)
    failed = 0
    with tempfile.TemporaryDirectory(prefix="declic-bench-against-") as scratch:
        codes = [(ROOT, "tree")]
        if args.against:
            try:
                codes.append((Path(scratch), export(args.against, Path(scratch))))
            except subprocess.CalledProcessError:
                parser.error(f"révision git inconnue : {args.against}")
        reference = measure()
        print(f"référence de la machine : {json.dumps(reference)}", flush=True)
        machine = {"machine": platform.machine(), "cpus": os.cpu_count(), "python": platform.python_version(),
                   "at": time.strftime("%Y-%m-%dT%H:%M:%S"), "reference": reference}
        trees = [(tree, {**machine, "code": code}) for tree, code in codes]
        with open(out_dir / "latest.jsonl", "a", encoding="utf-8") as out:
            for script in scripts:
                for round_ in range(args.rounds if args.against else 1):
                    for tree, tags in trees[::-1] if round_ % 2 else trees:
                        if not (tree / "bench" / f"{script}.py").exists():
                            print(f"== {script}.py: absent de {tags['code'][:12]}", flush=True)
                            continue
                        print(f"== {script}.py ({tags['code'][:12]})", flush=True)
                        failed += not run_one(script, tree, args.quick, tags, out)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
