"""Full and LoRA fine-tuning on a task, timed and costed."""

from damoc.finetune.train import FinetuneConfig, TrainStats, finetune, lora_target_modules

__all__ = ["FinetuneConfig", "TrainStats", "finetune", "lora_target_modules"]
