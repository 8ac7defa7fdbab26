"""Google Colab: the rest of the notebooks' "Course setup" cell, once the course folder exists.

In Colab the course folder lives in Google Drive (``My Drive/mup-course``): the setup cell at
the top of every notebook mounts Drive, fetches the course files into that folder the first time
(never replacing a file that is already there), then calls :func:`setup` from this file. Every
notebook, and every later session, uses the same folder, so code written in ``helpers/`` while
working on one notebook is there in the next, and after Colab recycles its runtime.

The setup cell runs this file by its path before any package is installed, so it uses the
standard library only and imports nothing from ``helpers``.
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys

# Packages of requirements.txt that Colab's own Jupyter server provides.
SERVER_PACKAGES = {"jupyterlab", "ipykernel"}


def missing_packages(course: str) -> list[str]:
    """The pinned requirements of the course folder whose package this Python cannot import."""
    missing = []
    with open(os.path.join(course, "requirements.txt")) as requirements:
        for line in requirements:
            requirement = line.split("#")[0].strip()
            name = requirement.split("==")[0].strip()
            if name and name not in SERVER_PACKAGES and importlib.util.find_spec(name) is None:
                missing.append(requirement)
    return missing


def setup(course: str) -> str:
    """Install the pinned packages Colab lacks, put the course folder first on ``sys.path``
    (``helpers`` is imported from there) and work in its ``notebooks/`` folder, so that relative
    paths, answers and figures all stay in the course folder. Returns the course folder."""
    course = os.path.abspath(course)
    missing = missing_packages(course)
    if missing:
        subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", *missing], check=True)
    if course in sys.path:
        sys.path.remove(course)
    sys.path.insert(0, course)
    notebooks = os.path.join(course, "notebooks")
    os.chdir(notebooks if os.path.isdir(notebooks) else course)
    installed = f"; installed {', '.join(missing)}" if missing else ""
    print(f"Colab setup: course files in {course}{installed}.\n"
          "They are in your Google Drive: what you change there is kept for every notebook and every later session.")
    return course
