"""rnnkit.train: the one trainer every task shares (see ``protocol.TrainTask``)."""

from rnnkit.train.checkpoint import load_for_inference
from rnnkit.train.config import (
    TrainConfig,
    load_config_file,
    merge_config,
    parse_duration,
    read_run_config,
    task_configs,
)
from rnnkit.train.device import resolve_device
from rnnkit.train.protocol import TrainTask
from rnnkit.train.reproducibility import seed_everything, set_deterministic
from rnnkit.train.trainer import Trainer

__all__ = [
    "Trainer", "TrainConfig", "TrainTask", "load_for_inference", "load_config_file",
    "merge_config", "parse_duration", "read_run_config", "resolve_device", "seed_everything",
    "set_deterministic", "task_configs",
]
