"""The same cohort on a two-node Ray cluster on this machine (a head and a second node started
by ``ray start`` in separate processes, each with its own temp dir and ports, 1 CPU each) gives
the same outputs as the local run."""
from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
RAY = Path(sys.executable).with_name("ray")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _start(args: list[str], log: Path, env: dict) -> subprocess.Popen:
    """``ray start ... --block`` in its own session (so its process group can be ended)."""
    handle = open(log, "wb")
    return subprocess.Popen([str(RAY), "start", "--block", "--disable-usage-stats", "--num-cpus", "1",
                             "--object-store-memory", str(100 * 2**20), *args],
                            stdout=handle, stderr=subprocess.STDOUT, start_new_session=True, env=env)


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


def _alive_nodes(address: str, env: dict) -> int:
    probe = ("import ray, sys; ray.init(address=sys.argv[1], log_to_driver=False); "
             "print(sum(1 for n in ray.nodes() if n['Alive']))")
    with contextlib.suppress(subprocess.TimeoutExpired):
        done = subprocess.run([sys.executable, "-c", probe, address], capture_output=True, text=True, env=env,
                              timeout=120)
        lines = done.stdout.strip().splitlines()
        if done.returncode == 0 and lines and lines[-1].isdigit():
            return int(lines[-1])
    return 0


def _start_node(args: list[str], temp: Path, env: dict, address: str, count: int, nodes: list) -> None:
    """Start a node and wait until the cluster has ``count`` live nodes. Ray gives a node 30 s to
    register; on a busy machine that can pass, and the node exits: then it is started again
    (three tries)."""
    for attempt in range(3):
        log = temp.with_name(f"{temp.name}-{attempt}.log")
        process = _start([*args, "--temp-dir", str(temp / str(attempt))], log, env)
        nodes.append(process)
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline and process.poll() is None:
            if _alive_nodes(address, env) >= count:
                return
            time.sleep(2)
        _stop(process)
    pytest.fail(f"Ray node {count} did not start at {address}: {log.read_text(errors='replace')[-2000:]}")


@pytest.mark.slow
def test_two_node_cluster_same_outputs(first_run, cohort_dir, tmp_path):
    if not RAY.is_file():
        pytest.skip("the ray command is not installed beside this Python")
    port = _free_port()
    address = f"127.0.0.1:{port}"
    # Token authentication, as a real cluster uses: every node and driver gets the same token.
    env = dict(os.environ, RAY_USAGE_STATS_ENABLED="0", RAY_AUTH_MODE="token", RAY_AUTH_TOKEN=secrets.token_hex(32),
               PYTHONPATH=os.pathsep.join([str(HERE), os.environ.get("PYTHONPATH", "")]))
    env.pop("RAY_ADDRESS", None)
    nodes = []
    short = Path(tempfile.mkdtemp(prefix="lbray", dir="/tmp"))  # Ray's socket paths must stay under 108 bytes
    try:
        head = ["--head", "--port", str(port), "--node-ip-address", "127.0.0.1", "--include-dashboard=false"]
        _start_node(head, short / "h", env, address, 1, nodes)
        second = ["--address", address, "--node-ip-address", "127.0.0.1"]
        _start_node(second, short / "n", env, address, 2, nodes)
        out = tmp_path / "results"
        done = subprocess.run([sys.executable, str(HERE / "cluster_driver.py"), address, str(cohort_dir), str(out)],
                              capture_output=True, text=True, env=env, timeout=300)
        assert done.returncode == 0, done.stderr[-3000:]
        run = json.loads(done.stdout.strip().splitlines()[-1])
    finally:
        for process in reversed(nodes):
            _stop(process)
        shutil.rmtree(short, ignore_errors=True)
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
