"""Tasks: what differs between kinds of learning (targets, head, loss, step, predictions, metrics).

The training loop (`deepsky.train.fit`), the K-fold evaluator and `deepsky predict` are shared;
a task is built from its *spec*, a small JSON-able dict saved in every model file:

>>> task = make_task({"name": "binary", "class_names": ["non-lens", "lens"]})
>>> task.head_size
1

A new kind of experiment registers its own task class with :func:`register_task`.
"""

from deepsky.tasks.base import Amp, Task, make_task, register_task, registered_tasks, task_from_meta

# Classification and regression register on import; the other built-in tasks
# (base.BUILTIN_TASK_MODULES) are imported by make_task when first asked for.
from deepsky.tasks import classification, regression  # noqa: E402,F401

__all__ = ["Amp", "Task", "make_task", "register_task", "registered_tasks", "task_from_meta"]
