"""The sweep pages: the list (linked from the project page) and one sweep's page, scoped like runs."""

from __future__ import annotations

import pytest
from django.test import Client

from layerlab.apps.sweeps.services import sweep_create

pytestmark = pytest.mark.django_db(transaction=True)


def test_sweep_page_renders_for_members_and_404s_for_strangers(people):
    section = {"method": "grid", "parameters": {"train.lr": [0.1, 0.01]}, "trials": 2, "parallel": 1}
    sweep = sweep_create(
        project=people["project"],
        user=people["owner"],
        config={"model": {"preset": "mlp"}, "sweep": section},
        name="lr",
    )
    viewer = Client()
    viewer.force_login(people["viewer"])
    page = viewer.get(f"/sweeps/{sweep.id}/")
    assert page.status_code == 200
    text = page.content.decode()
    assert "web/sweep.js" in text and 'id="sweep-meta"' in text and "<script>" not in text
    assert f'href="/sweeps/{sweep.id}/"' in viewer.get("/sweeps/").content.decode()
    assert "/sweeps/?project=" in viewer.get(f"/projects/{people['project'].id}/").content.decode()
    stranger = Client()
    stranger.force_login(people["stranger"])
    assert stranger.get(f"/sweeps/{sweep.id}/").status_code == 404
