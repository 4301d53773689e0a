"""The lab's Optuna storage and a sweep's study, rebuilt in any process from the stored spec.

Storage: the lab's own PostgreSQL database when ``DATABASE_URL`` is PostgreSQL (Optuna's tables beside
the lab's, so workers on every host share one study); with SQLite a file of its own beside the lab's,
``LAYERLAB_HOME/optuna.sqlite3``, so Optuna's connections never hold the lab database's write lock.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from pathlib import Path
from urllib.parse import quote

from django.conf import settings

log = logging.getLogger("layerlab.sweeps")
_storages: dict = {}
_lock = threading.Lock()


def storage_url() -> str:
    """The SQLAlchemy URL of the Optuna storage (see the module docstring)."""
    db = settings.DATABASES["default"]
    if "postgresql" in db["ENGINE"]:
        auth = quote(db.get("USER") or "", safe="")
        if db.get("PASSWORD"):
            auth += ":" + quote(db["PASSWORD"], safe="")
        host = db.get("HOST") or "localhost"
        port = f":{db['PORT']}" if db.get("PORT") else ""
        return f"postgresql+psycopg://{auth}{'@' if auth else ''}{host}{port}/{quote(db['NAME'], safe='')}"
    return f"sqlite:///{Path(settings.LAYERLAB_HOME) / 'optuna.sqlite3'}"


def storage():
    """The process's RDBStorage for ``storage_url()`` (made once: it checks Optuna's tables)."""
    import optuna

    url = storage_url()
    with _lock:
        if url not in _storages:
            optuna.logging.set_verbosity(optuna.logging.WARNING)
            kwargs = (
                {"connect_args": {"timeout": 60}} if url.startswith("sqlite") else {"pool_pre_ping": True}
            )
            _storages[url] = optuna.storages.RDBStorage(url, engine_kwargs=kwargs)
        return _storages[url]


def study_create(*, name: str, goal: str):
    import optuna

    return optuna.create_study(storage=storage(), study_name=name, direction=goal)


def study_delete(name: str) -> None:
    import optuna

    with contextlib.suppress(KeyError):  # already gone
        optuna.delete_study(study_name=name, storage=storage())


def study_load(sweep, *, seed_offset: int = 0):
    """The sweep's study with its sampler and pruner (seeded from ``sweep.seed`` plus ``seed_offset``,
    so two processes asking after each other do not draw the same point)."""
    import optuna

    from layerlab.apps.sweeps.spec import pruner_for, sampler_for, spec_from_dict

    spec = spec_from_dict(sweep.spec)
    seed = None if spec.seed is None else spec.seed + seed_offset
    if spec.method == "grid":  # every process must shuffle the grid alike (trial n is grid point n)
        seed = spec.seed or 0
    return optuna.load_study(
        study_name=sweep.study_name,
        storage=storage(),
        sampler=sampler_for(spec, seed=seed),
        pruner=pruner_for(spec),
    )
