"""A real Jupyter kernel driven as a student drives one: one cell at a time, with what each cell
shows (its printed text, its error and the first thing on screen). Used by the student-loop and
the Colab tests."""

import re

from jupyter_client.manager import KernelManager

ANSI = re.compile(r"\x1b\[[0-9;]*m")


class KernelSession:
    def __init__(self, cwd, env: dict, kernel_name: str = "python3"):
        self.manager = KernelManager(kernel_name=kernel_name)
        self.manager.start_kernel(cwd=str(cwd), env=env)
        self.client = self.manager.client()
        self.client.start_channels()
        self.client.wait_for_ready(timeout=120)

    def run(self, code: str) -> dict:
        """Execute ``code``; return its stdout, stderr, error (ename, evalue, traceback lines) and
        the first output (kind, text)."""
        out = {"stdout": "", "stderr": "", "error": None, "first": None}

        def hook(message):
            kind, content = message["header"]["msg_type"], message["content"]
            if kind == "stream":
                out[content["name"]] += content["text"]
                out["first"] = out["first"] or ("stream", content["text"])
            elif kind == "error":
                lines = ANSI.sub("", "\n".join(content["traceback"])).splitlines()
                out["error"] = dict(ename=content["ename"], evalue=content["evalue"], lines=lines)
                out["first"] = out["first"] or ("error", lines[0] if lines else "")

        # stop_on_error=False: a student runs one cell at a time; without it ipykernel 6 drops a request
        # sent within moments of an error (status "aborted"), which no person clicking is fast enough to hit
        reply = self.client.execute_interactive(code, output_hook=hook, timeout=180, stop_on_error=False)
        out["reply"] = reply["content"].get("status")
        assert out["reply"] in ("ok", "error"), (code, out)
        assert (out["reply"] == "error") == (out["error"] is not None), (code, out)
        return out

    def close(self):
        self.client.stop_channels()
        self.manager.shutdown_kernel(now=True)
