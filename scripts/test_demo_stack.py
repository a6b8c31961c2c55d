"""The demo's start of the local stack, run again and again (make test runs this).

Every start must reach the stack it started, never one a state file from an
earlier run names: after a clean stop, after the demo was killed (SIGKILL, so
no cleanup ran), and after `tvm-local` itself was killed (a stale
`stack.json` that names dead ports).

Needs the workspace binaries (`cargo build --workspace --bins`) and `.venv`.
Run: .venv/bin/python -m unittest discover -s scripts -p 'test_*.py' -v
"""

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import unittest
import urllib.error
import urllib.request

import demo

HERE = os.path.dirname(os.path.abspath(__file__))


def alive(pid):
    """A process that exists and has not exited (a zombie counts as gone)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def wait_gone(pid, limit=20):
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        if not alive(pid):
            return True
        time.sleep(0.05)
    return False


class DemoStart(unittest.TestCase):
    def setUp(self):
        self.state = tempfile.mkdtemp(prefix="tvm-demo-test-")
        self.pids = []

    def tearDown(self):
        # Whatever this test started and left running, the old code included.
        for pid in self.pids:
            if alive(pid):
                os.kill(pid, signal.SIGKILL)
        shutil.rmtree(self.state, ignore_errors=True)

    def start(self):
        proc, stack = demo.start_stack(self.state)
        self.pids.append(proc.pid)
        return proc, stack

    def assert_serves(self, stack):
        """The stack answers: its HTTP front and, as the demo's first call does,
        an AssumeRole through the emulator."""
        try:
            urllib.request.urlopen(stack["endpoint"] + "/v1/health", timeout=10)
        except urllib.error.HTTPError:
            pass  # unsigned, so the SigV4 front refuses it: it answered
        creds = demo.task_credentials(stack, "acme")
        self.assertTrue(creds["AccessKeyId"])

    def test_given_a_clean_stop_when_the_demo_starts_again_then_it_reaches_the_new_stack(self):
        started = []
        for _ in range(2):
            proc, stack = self.start()
            self.assert_serves(stack)
            demo.stop_stack(proc)
            started.append((stack.get("pid"), proc.pid))
        for named, pid in started:
            self.assertEqual(named, pid, "stack.json names another process")

    def test_given_the_demo_was_killed_when_it_starts_again_then_it_works_and_no_stack_is_left_over(self):
        child = subprocess.Popen(
            [sys.executable, "-c", (
                "import json, sys, time, demo\n"
                "proc, stack = demo.start_stack(sys.argv[1])\n"
                "print(json.dumps({'pid': proc.pid}), flush=True)\n"
                "time.sleep(300)\n"
            ), self.state],
            cwd=HERE, stdout=subprocess.PIPE, text=True,
        )
        try:
            line = child.stdout.readline()
            self.assertTrue(line, "the interrupted demo did not start its stack")
            stale = json.loads(line)["pid"]
            self.pids.append(stale)
        finally:
            child.kill()
            child.wait()
            child.stdout.close()

        proc, stack = self.start()
        self.assert_serves(stack)
        demo.stop_stack(proc)
        self.assertTrue(wait_gone(stale), f"the killed demo's tvm-local (pid {stale}) is still running")
        self.assertEqual(stack.get("pid"), proc.pid, "stack.json names another process")

    def test_given_tvm_local_was_killed_when_the_demo_starts_again_then_it_ignores_the_stale_state(self):
        proc, _ = self.start()
        proc.kill()
        proc.wait()
        self.assertTrue(os.path.exists(os.path.join(self.state, "stack.json")))

        proc, stack = self.start()
        self.assert_serves(stack)
        demo.stop_stack(proc)
        self.assertEqual(stack.get("pid"), proc.pid, "stack.json names another process")


if __name__ == "__main__":
    unittest.main()
