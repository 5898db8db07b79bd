"""damoc: choose the LLM to fine-tune for a domain task, and the data to recover a pruned one."""

__version__ = "0.1.0"
