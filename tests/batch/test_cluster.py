"""The same cohort on a two-node Ray cluster on this machine (a head and a second node started
by ``ray start`` in separate processes, each with its own temp dir and ports, 1 CPU each) gives
the same outputs as the local run."""
from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
RAY = Path(sys.executable).with_name("ray")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _start(args: list[str], log: Path) -> subprocess.Popen:
    """``ray start ... --block`` in its own session (so its process group can be ended)."""
    handle = open(log, "wb")
    return subprocess.Popen([str(RAY), "start", "--block", "--disable-usage-stats", "--num-cpus", "1",
                             "--object-store-memory", str(100 * 2**20), *args],
                            stdout=handle, stderr=subprocess.STDOUT, start_new_session=True)


def _stop(process: subprocess.Popen) -> None:
    """End what this test started: SIGTERM to ``ray start --block`` (it stops its node), then
    SIGKILL to anything left in its process group."""
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(timeout=30)
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, signal.SIGKILL)
    process.wait(timeout=10)


def _wait_for_nodes(address: str, count: int, env: dict, timeout: float = 120.0) -> None:
    probe = ("import ray, sys; ray.init(address=sys.argv[1], log_to_driver=False); "
             "print(sum(1 for n in ray.nodes() if n['Alive']))")
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        done = subprocess.run([sys.executable, "-c", probe, address], capture_output=True, text=True, env=env,
                              timeout=120)
        if done.returncode == 0 and done.stdout.strip().splitlines()[-1:] == [str(count)]:
            return
        time.sleep(2)
    pytest.fail(f"the {count}-node Ray cluster did not come up at {address}")


@pytest.mark.slow
def test_two_node_cluster_same_outputs(first_run, cohort_dir, tmp_path):
    if not RAY.is_file():
        pytest.skip("the ray command is not installed beside this Python")
    port = _free_port()
    address = f"127.0.0.1:{port}"
    env = dict(os.environ, RAY_USAGE_STATS_ENABLED="0", PYTHONPATH=os.pathsep.join(
        [str(HERE), os.environ.get("PYTHONPATH", "")]))
    env.pop("RAY_ADDRESS", None)
    nodes = []
    try:
        nodes.append(_start(["--head", "--port", str(port), "--node-ip-address", "127.0.0.1",
                             "--include-dashboard=false", "--temp-dir", str(tmp_path / "head")], tmp_path / "head.log"))
        _wait_for_nodes(address, 1, env)
        nodes.append(_start(["--address", address, "--node-ip-address", "127.0.0.1",
                             "--temp-dir", str(tmp_path / "node2")], tmp_path / "node2.log"))
        _wait_for_nodes(address, 2, env)
        out = tmp_path / "results"
        done = subprocess.run([sys.executable, str(HERE / "cluster_driver.py"), address, str(cohort_dir), str(out)],
                              capture_output=True, text=True, env=env, timeout=300)
        assert done.returncode == 0, done.stderr[-3000:]
        run = json.loads(done.stdout.strip().splitlines()[-1])
    finally:
        for process in reversed(nodes):
            _stop(process)
    assert (run["analysed"], run["failed"], run["workers"]) == (3, 2, 2)
    assert len(run["nodes"]) == 2  # one worker on each node
    reference, snapshot = first_run
    for case, regions in snapshot["regions"].items():
        assert json.loads((out / case / "summary.json").read_text())["regions"] == regions
        assert (out / case / "regions.csv").read_text() == snapshot["regions_csv"][case]
    assert _table(out / "cohort.csv") == snapshot["table"]


def _table(path: Path) -> list[list[str]]:
    """cohort.csv without the columns that differ between runs (seconds)."""
    import csv

    with open(path, newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    return [[value for key, value in row.items() if key != "seconds"] for row in rows]
