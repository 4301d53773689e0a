"""Two hosts, one torchrun node each: two network namespaces joined by a veth pair (CI runs as root).

Each namespace has only its own address (10.77.<n>.1 / .2) and loopback, so the ranks reach each other
only over the veth link, as two machines would: the c10d rendezvous listens on host A, gloo's
sockets use each namespace's interface (``GLOO_SOCKET_IFNAME``).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import pytest
import yaml

from netns import netns_hosts

pytestmark = pytest.mark.e2e

CONFIG = {
    "seed": 1,
    "data": {"source": "spiral", "points_per_class": 100},
    "model": {"preset": "mlp", "options": {"hidden": [16], "dropout": 0.0}},
    "train": {"epochs": 3, "batch_size": 32, "lr": 0.01, "optimizer": "sgd", "num_threads": 1},
}


@pytest.fixture
def two_hosts():
    """(namespace, interface, address) of two namespaces linked by veth; skips where they cannot be made."""
    with netns_hosts(2) as hosts:  # tests/netns.py
        yield [(host.netns, host.link, host.address) for host in hosts]


def finish(processes: list[subprocess.Popen], timeout: float) -> list[tuple[str, str]]:
    """Every node's (stdout, stderr); past ``timeout`` all are killed and the test fails with what each
    node printed, not with the first one's timeout alone (a hung node 0 waits on node 1)."""
    deadline = time.monotonic() + timeout
    try:
        return [p.communicate(timeout=max(1.0, deadline - time.monotonic())) for p in processes]
    except subprocess.TimeoutExpired:
        for p in processes:
            p.kill()
        outputs = [p.communicate() for p in processes]
        lines = [
            f"node {i} (exit {p.returncode}):\n{err[-2500:]}"
            for i, (p, (_, err)) in enumerate(zip(processes, outputs, strict=True))
        ]
        pytest.fail(f"the nodes did not finish in {timeout:.0f} s\n" + "\n".join(lines))


def test_one_torchrun_node_in_each_of_two_hosts_trains_one_run(two_hosts, tmp_path):
    config = tmp_path / "spiral.yaml"
    config.write_text(yaml.safe_dump(CONFIG))
    run_dir = tmp_path / "two-hosts"
    endpoint = f"{two_hosts[0][2]}:29461"
    processes = []
    for node_rank, (ns, link, addr) in enumerate(two_hosts):
        env = {
            **os.environ,
            "LAYERLAB_HOME": str(tmp_path / "home"),
            "LAYERLAB_RECORD": "0",
            "OMP_NUM_THREADS": "1",
            "GLOO_SOCKET_IFNAME": link,  # the ranks talk over the veth link only
        }
        command = [
            "ip", "netns", "exec", ns, sys.executable, "-m", "layerlab.cli.main", "train", str(config),
            "--nnodes", "2", "--nproc-per-node", "1", "--node-rank", str(node_rank),
            "--rdzv-endpoint", endpoint, "--local-addr", addr, "--run-dir", str(run_dir), "--json",
        ]  # fmt: skip
        processes.append(
            subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        )
    outputs = finish(processes, timeout=240)
    for node_rank, (process, (_, err)) in enumerate(zip(processes, outputs, strict=True)):
        assert process.returncode == 0, f"node {node_rank}: {err[-3000:]}"
    summaries = [json.loads(out.strip().splitlines()[-1]) for out, _ in outputs if out.strip()]
    assert len(summaries) == 1  # only rank 0 (on whichever host the rendezvous ranked first) prints
    summary = summaries[0]
    assert summary["distributed"]["world_size"] == 2 and summary["distributed"]["nnodes"] == 2
    assert summary["distributed"]["ranks_weights_identical"] is True
    assert summary["epochs"] == 3 and (run_dir / "checkpoints" / "last.ckpt").is_file()
