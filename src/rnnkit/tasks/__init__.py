"""rnnkit.tasks: the applications, each registered once (see ``rnnkit.tasks.registry``)."""

from rnnkit.tasks.protocol import Predictor
from rnnkit.tasks.registry import Smoke, TaskSpec, get, load, names, register, train

__all__ = ["Predictor", "Smoke", "TaskSpec", "get", "load", "names", "register", "train"]
