"""Library hygiene: importing sciprob changes no global setting; only the runtime reseeds global RNGs."""

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
FOLDERS = ["sciprob", "ppl", "physics", "control", "learning", "theory"]

_IMPORT_ALL = r"""
import importlib, pkgutil, sys, warnings
# third-party stacks first: their own import-time filters (torch adds some) are not sciprob's
for dep in ("numpy", "scipy", "torch", "pyro", "sklearn", "gymnasium", "rich", "typer", "dolfinx_solver",
            "dolfinx", "captum", "torch_pruning"):
    try:
        importlib.import_module(dep)
    except ImportError:
        pass
import matplotlib
backend = matplotlib.rcParams._get_backend_or_none()
filters = list(warnings.filters)
import sciprob
names = []
for info in pkgutil.walk_packages(sciprob.__path__, "sciprob."):
    if info.name.endswith("__main__"):
        continue
    names.append(info.name)
for sub in ("ppl", "physics", "control", "learning", "theory"):
    pkg = importlib.import_module("sciprob." + sub)
    names += [i.name for i in pkgutil.walk_packages(pkg.__path__, pkg.__name__ + ".")]
for name in names:
    importlib.import_module(name)
    assert warnings.filters == filters, f"importing {name} changed the warning filters"
    chosen = matplotlib.rcParams._get_backend_or_none()
    assert chosen == backend, f"importing {name} chose the matplotlib backend {chosen}"
print(len(names))
"""


def test_importing_every_module_changes_no_global_setting():
    out = subprocess.run(
        [sys.executable, "-c", _IMPORT_ALL],
        capture_output=True,
        text=True,
        timeout=600,
        env={"PATH": "/usr/bin:/bin", "HOME": str(Path.home())},
    )
    assert out.returncode == 0, out.stderr[-3000:]
    assert int(out.stdout.split()[-1]) > 60  # every module was imported, not a handful


def test_no_global_reseeding_outside_the_runtime():
    pattern = re.compile(
        r"\b(torch\.manual_seed|torch\.cuda\.manual_seed(_all)?|np\.random\.seed|numpy\.random\.seed|"
        r"pyro\.set_rng_seed|random\.seed)\("
    )
    offenders = []
    for path in sorted(ROOT.rglob("*.py")):
        rel = path.relative_to(ROOT)
        if rel.parts[0] in (".venv", "tests") or rel.parts[:2] == ("sciprob", "runtime"):
            continue
        for lineno, line in enumerate(path.read_text().splitlines(), 1):
            if pattern.search(line):
                offenders.append(f"{rel}:{lineno}: {line.strip()}")
    assert not offenders, "global RNGs reseeded outside sciprob.runtime:\n" + "\n".join(offenders)
