"""Fine-tuning on a task with any registered method (methods.py), timed and costed."""

from damoc.finetune.methods import METHODS, get_method, method
from damoc.finetune.train import FinetuneConfig, TrainStats, finetune, lora_target_modules

__all__ = ["METHODS", "FinetuneConfig", "TrainStats", "finetune", "get_method", "lora_target_modules", "method"]
