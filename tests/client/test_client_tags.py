"""LabClient sends tags, renames and reruns in the API's shape (requests captured, no server)."""

from __future__ import annotations

from layerlab.client import LabClient


def capture(monkeypatch):
    sent = []

    def request(self, method, path, body=None, query=None):
        sent.append((method, path, body))
        return {"id": 1}

    monkeypatch.setattr(LabClient, "request", request)
    return sent


def test_tags_at_submit_and_start_then_update_and_rerun(monkeypatch):
    sent = capture(monkeypatch)
    lab = LabClient("http://lab.test", token="t")
    lab.submit_run(1, {"train": {"epochs": 1}}, tags=["baseline"])
    lab.start_run(1, name="script", tags=("logged",))
    lab.submit_run(1, {})
    lab.update_run(5, name="renamed", tags=[])
    lab.rerun(5, overrides=["train.lr=0.01"], tags=["retry"])
    assert sent[0][2]["tags"] == ["baseline"] and sent[1][2]["tags"] == ["logged"]
    assert "tags" not in sent[2][2]  # none given: the server's default
    assert sent[3] == ("PATCH", "runs/5/", {"name": "renamed", "tags": []})
    assert sent[4] == (
        "POST",
        "runs/5/rerun/",
        {"overrides": ["train.lr=0.01"], "config": {}, "name": "", "tags": ["retry"]},
    )
