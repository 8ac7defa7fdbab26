#@title Course setup for Google Colab (run it first there; elsewhere it does nothing) { display-mode: "form" }
RELEASE_URL = ""  # where the course is published: git URL, .zip (URL or path), folder; "": My Drive/mup-course.zip


def _course_setup(release, folder="drive/MyDrive/mup-course"):
    try:
        from google.colab import drive
    except ImportError:
        return  # not in Colab
    import glob, os, runpy, shutil, subprocess, tempfile, urllib.request, zipfile  # noqa: E401, I001
    content = os.environ.get("COURSE_COLAB_CONTENT", "/content")  # the runtime's disk, lost when it is recycled
    course = os.path.join(content, folder)  # in Google Drive: the same folder for every notebook and session
    if not os.path.isdir(os.path.join(content, "drive", "MyDrive")):
        drive.mount(os.path.join(content, "drive"))
    if not os.path.isfile(os.path.join(course, "helpers", "colab.py")):  # the first time: fetch the course files
        release, source = os.environ.get("COURSE_RELEASE_URL") or release or course + ".zip", tempfile.mkdtemp()
        if release.endswith(".zip"):
            if "://" not in release and not os.path.isfile(release):
                raise FileNotFoundError(f"{release} not found: upload the course zip you were given to My Drive "
                                        "as mup-course.zip (README, Google Colab), then run this cell again")
            archive = urllib.request.urlretrieve(release)[0] if "://" in release else release
            zipfile.ZipFile(archive).extractall(source)
        elif os.path.isdir(release):
            source = release
        else:
            subprocess.run(["git", "clone", "-q", "--depth", "1", release, source], check=True,
                           env={**os.environ, "GIT_TERMINAL_PROMPT": "0"})  # a private repository fails, not hangs
        top = (glob.glob(f"{source}/helpers/colab.py") + glob.glob(f"{source}/*/helpers/colab.py"))[0]
        shutil.copytree(os.path.dirname(os.path.dirname(top)), course, dirs_exist_ok=True,  # never replaces a file:
                        ignore=shutil.ignore_patterns(".git"),
                        copy_function=lambda src, dst: os.path.exists(dst) or shutil.copy2(src, dst))
    runpy.run_path(os.path.join(course, "helpers", "colab.py"))["setup"](course)  # packages, sys.path, folder


_course_setup(RELEASE_URL)
del _course_setup, RELEASE_URL
