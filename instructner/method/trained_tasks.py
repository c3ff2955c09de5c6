"""Which tasks a model directory was trained for, from the training record beside its weights.

``instructner export`` copies the run's ``training-config.yaml`` into the model directory; its
``tasks`` list is what the model has learnt to answer. A model directory without that record
(a random-init stand-in, a test fixture, a checkpoint from elsewhere) is taken to serve every
task. The server refuses the other tasks with a message naming the served ones, instead of
answering with whatever an untrained prompt produces.
"""

from __future__ import annotations

from pathlib import Path

from instructner.method.prompts import TASKS

TRAINING_RECORD = "training-config.yaml"


def trained_tasks(model_dir: str | Path) -> tuple[str, ...]:
    """Return the tasks ``model_dir`` was trained for, in :data:`TASKS` order.

    Raises:
        ValueError: the record names a task that does not exist, or none.

    """
    record = Path(model_dir) / TRAINING_RECORD
    if not record.is_file():
        return TASKS
    import yaml  # only where a record exists: the serving models never need it

    config = yaml.safe_load(record.read_text(encoding="utf-8")) or {}
    tasks = config.get("tasks", list(TASKS))
    unknown = [t for t in tasks if t not in TASKS]
    if unknown or not tasks:
        raise ValueError(f"{record}: tasks must be some of {', '.join(TASKS)}, got {tasks!r}")
    return tuple(t for t in TASKS if t in tasks)


def parse_served_tasks(value: str) -> tuple[str, ...]:
    """Parse the ``served_tasks`` model-config parameter (comma-separated task names).

    Raises:
        ValueError: an unknown task, or none.

    """
    tasks = tuple(t.strip() for t in value.split(",") if t.strip())
    unknown = [t for t in tasks if t not in TASKS]
    if unknown or not tasks:
        raise ValueError(
            f"parameter served_tasks must name some of {', '.join(TASKS)}, got {value!r}"
        )
    return tasks
