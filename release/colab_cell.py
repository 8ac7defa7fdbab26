# Google Colab setup: run this cell first when the notebook is open in Colab; anywhere else it does nothing.
# In Colab it fetches the course files into /content/mup-course (once per session), installs only the
# packages Colab lacks, and makes `helpers` importable.
RELEASE_URL = ""  # where the student release is published: a git URL, a .zip (URL or path) or a folder


def _colab_setup(release, folder="mup-course"):
    try:
        import google.colab  # noqa: F401  (importable in Colab only)
    except ImportError:
        return
    import importlib.util, os, shutil, subprocess, sys, tempfile, urllib.request, zipfile  # noqa: E401
    release = os.environ.get("COURSE_RELEASE_URL") or release
    root = os.path.abspath(folder)
    if not os.path.isfile(os.path.join(root, "helpers", "__init__.py")):
        if not release:
            raise RuntimeError("RELEASE_URL in this cell is empty: ask your instructor where the course files are.")
        if os.path.isdir(release):
            shutil.copytree(release, root, dirs_exist_ok=True)
        elif release.endswith(".zip"):
            with tempfile.TemporaryDirectory() as tmp:
                archive = release if os.path.isfile(release) else urllib.request.urlretrieve(release)[0]
                zipfile.ZipFile(archive).extractall(tmp)
                top = [os.path.join(tmp, name) for name in os.listdir(tmp)]
                shutil.copytree(top[0] if len(top) == 1 and os.path.isdir(top[0]) else tmp, root, dirs_exist_ok=True)
        else:
            env = dict(os.environ, GIT_TERMINAL_PROMPT="0")
            subprocess.run(["git", "clone", "--quiet", "--depth", "1", release, root], check=True, env=env)
    missing = []  # pinned packages of the release that Colab does not have (the Jupyter server it has)
    for line in open(os.path.join(root, "requirements.txt")):
        requirement = line.split("#")[0].strip()
        name = requirement.split("==")[0].strip()
        if name and name not in ("jupyterlab", "ipykernel") and importlib.util.find_spec(name) is None:
            missing.append(requirement)
    if missing:
        subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", *missing], check=True)
    if root not in sys.path:
        sys.path.insert(0, root)
    print(f"Colab setup: course files in {root}" + (f"; installed {', '.join(missing)}" if missing else ""))


_colab_setup(RELEASE_URL)
del _colab_setup, RELEASE_URL
