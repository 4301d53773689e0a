"""Recording a run that ``layerlab train`` trains in this process; a store failure never stops the training."""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from pathlib import Path

from django.db.models import Q

from layerlab.apps.accounts.services import user_get_or_create_unclaimed
from layerlab.apps.projects.models import Project, Role
from layerlab.apps.projects.selectors import project_list_visible, project_role
from layerlab.apps.projects.services import project_create
from layerlab.apps.runs.execution import Heartbeat, RunRecorder, json_safe, worker_identity
from layerlab.apps.runs.models import Run
from layerlab.apps.runs.services import run_finish_local, run_start_local
from layerlab.core.errors import ConfigError


def local_project(*, user, ref: str) -> Project:
    """The project ``ref`` names for ``user``: owned, else shared with them (editor needed), else a new one.

    A name is looked up among the user's own and shared projects (a superuser does not pick
    someone else's project by name); digits that name no such project are taken as a project id.
    """
    project = Project.objects.filter(owner=user, name=ref).first()
    if project is not None:
        return project
    shared = Project.objects.filter(
        Q(name=ref) & (Q(shares__group__user=user) | Q(members__user=user))
    ).distinct()
    candidates = list(shared)
    if not candidates and ref.isdigit():
        candidates = list(project_list_visible(user=user).filter(id=int(ref)))
    if not candidates:
        return project_create(owner=user, name=ref)
    for candidate in candidates:
        if project_role(user=user, project=candidate) >= Role.EDITOR:
            return candidate
    raise ConfigError(
        f"user '{user.username}' may only view project '{ref}' (owner {candidates[0].owner.username})",
        hint="name a project you own or edit, or a new name to create one",
        where="--project",
    )


class LocalRunRecorder(RunRecorder):
    """RunRecorder that turns the first store error into one warning and then records nothing more.

    Args:
        run_id: the run opened by ``local_run_open``.
        warn: prints one line (the CLI writes it to stderr).
    """

    # `layerlab train` keeps its files in its own run directory (decision: a CLI run is not copied
    # into the lab's storage; its weights stay on the machine that trained it).
    publish = False

    def __init__(self, run_id: int, warn: Callable[[str], None]):
        super().__init__(run_id)
        self.warn = warn
        self.broken = False

    def guarded(self, method, *args):
        if self.broken:
            return None
        try:
            return method(*args)
        except Exception as exc:  # tracking must never cost the training
            self.broken = True
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            self.warn(f"stopped recording run {self.run_id} ({first}); training goes on")
            return None

    def on_run_start(self, trainer, info: dict) -> None:
        self.guarded(super().on_run_start, trainer, info)

    def on_epoch_end(self, trainer, epoch: int, metrics: dict) -> None:
        self.guarded(super().on_epoch_end, trainer, epoch, metrics)

    def on_before_write(self, trainer, what: str) -> None:
        self.guarded(super().on_before_write, trainer, what)

    def on_checkpoint(self, trainer, path: Path, epoch: int, kind: str) -> None:
        self.guarded(super().on_checkpoint, trainer, path, epoch, kind)

    def on_run_end(self, trainer, summary: dict) -> None:
        self.guarded(super().on_run_end, trainer, summary)

    def should_stop(self, trainer=None) -> bool:
        return bool(self.guarded(super().should_stop, trainer))

    def finish(self, status: str, summary: dict | None = None, error: str = "") -> None:
        """Store the queued points, then close the run (even after an earlier write failed: the store may be back)."""
        if self.broken:
            with contextlib.suppress(Exception):  # already said; the writer thread ends
                self.close()
        else:
            self.guarded(self.close)
        self.broken = False
        safe = json_safe(summary) if isinstance(summary, dict) else {}
        self.guarded(lambda: run_finish_local(run_id=self.run_id, status=status, summary=safe, error=error))


class QuietHeartbeat(Heartbeat):
    """The worker's heartbeat thread, silent when the store goes away (the run's last beat stays)."""

    def loop(self) -> None:
        # A lost heartbeat only makes a cancel from the dashboard close the run at once.
        with contextlib.suppress(Exception):
            super().loop()


def local_run_open(
    *, username: str, project: str, config: dict, run_dir: str | Path, resume: bool = False, tags=()
) -> Run:
    """Open (or, for a directory recorded before, reopen) the run of ``layerlab train``.

    Args:
        username: the owner; created without a usable password when new (claim it with createuser).
        project: a project name (or id) of that user; a new name creates it.
        config: the resolved experiment config.
        run_dir: the engine's run directory.
        resume: continue the row recorded for ``run_dir`` (if any).
        tags: the run's tags (``--tag``).
    """
    user = user_get_or_create_unclaimed(username=username)
    return run_start_local(
        project=local_project(user=user, ref=project),
        user=user,
        name=config.get("name") or Path(run_dir).name,
        config=json_safe(config),
        run_dir=run_dir,
        resume=resume,
        tags=tags,
        worker=worker_identity(),
    )
