"""environment.yml and requirements.txt pin the same packages at the same versions."""

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PIN = re.compile(r"^\s*(?:-\s*)?([A-Za-z0-9_.\-]+)==([A-Za-z0-9_.+\-]+)\s*$")


def pins(path: Path) -> dict[str, str]:
    found = {}
    for line in path.read_text().splitlines():
        match = PIN.match(line.split("#", 1)[0])
        if match:
            found[match.group(1).lower().replace("_", "-")] = match.group(2)
    return found


def test_requirements_and_environment_agree():
    requirements, environment = pins(ROOT / "requirements.txt"), pins(ROOT / "environment.yml")
    assert requirements == environment
    for name in ("torch", "numpy", "matplotlib", "keras", "jupyterlab", "ipykernel", "papermill",
                 "pytest", "tqdm"):
        assert name in requirements, f"{name} is not pinned"
    assert requirements["torch"] == "2.13.0"


def test_every_requirement_is_pinned_exactly():
    for line in (ROOT / "requirements.txt").read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            assert PIN.match(line), f"not pinned with ==: {line}"
    assert "python=3.11" in (ROOT / "environment.yml").read_text()
