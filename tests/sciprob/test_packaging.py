"""Layout and packaging contract of DESIGN §1."""

import re
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
AREAS = {"sciprob": "sciprob", "ppl": "sciprob.ppl", "physics": "sciprob.physics",
         "control": "sciprob.control", "learning": "sciprob.learning", "theory": "sciprob.theory"}


def _pyproject():
    return tomllib.loads((ROOT / "pyproject.toml").read_text())


def _package_folders():
    found = {}
    for folder, prefix in AREAS.items():
        for init in (ROOT / folder).rglob("__init__.py"):
            if "__pycache__" in init.parts:
                continue
            rel = init.parent.relative_to(ROOT / folder).parts
            found[".".join((prefix, *rel))] = init.parent
    return found


def test_every_package_folder_is_listed():
    listed = set(_pyproject()["tool"]["setuptools"]["packages"])
    missing = sorted(set(_package_folders()) - listed)
    assert not missing, f"package folders missing from pyproject.toml [tool.setuptools] packages: {missing}"


def test_listed_packages_exist():
    listed = set(_pyproject()["tool"]["setuptools"]["packages"])
    stale = sorted(listed - set(_package_folders()))
    assert not stale, f"pyproject.toml lists packages with no folder: {stale}"


def test_package_dir_maps_the_five_areas():
    mapping = _pyproject()["tool"]["setuptools"]["package-dir"]
    assert mapping == {prefix: folder for folder, prefix in AREAS.items()}


def test_python_version_and_requirement():
    assert (ROOT / ".python-version").read_text().strip() == "3.12"
    assert _pyproject()["project"]["requires-python"] == ">=3.12"


def test_each_area_exports_all():
    for folder in AREAS:
        text = (ROOT / folder / "__init__.py").read_text()
        assert "__all__" in text, f"{folder}/__init__.py has no __all__"


def test_dolfinx_is_loaded_only_in_physics_fem():
    pattern = re.compile(r"^\s*(import dolfinx|from dolfinx)", re.M)
    offenders = []
    for folder in AREAS:
        for path in (ROOT / folder).rglob("*.py"):
            rel = path.relative_to(ROOT)
            if rel.parts[:2] == ("physics", "fem"):
                continue
            if pattern.search(path.read_text()):
                offenders.append(str(rel))
    assert not offenders, f"DOLFINx imported outside physics/fem/: {offenders}"
    init = (ROOT / "physics" / "fem" / "__init__.py").read_text()
    first_solver = re.search(r"^import dolfinx_solver\b", init, re.M)
    first_dolfinx = re.search(r"^(import dolfinx|from dolfinx)(\s|\.)", init, re.M)
    assert first_solver and first_dolfinx and first_solver.start() < first_dolfinx.start()


def test_code_never_imports_bare_area_names():
    pattern = re.compile(r"^\s*(from|import) (ppl|physics|control|learning|theory)(\.|\s|$)", re.M)
    offenders = [str(p.relative_to(ROOT)) for folder in [*AREAS, "tests", "benchmarks"]
                 for p in (ROOT / folder).rglob("*.py") if pattern.search(p.read_text())]
    assert not offenders, f"bare area imports (use sciprob.<area>): {offenders}"
