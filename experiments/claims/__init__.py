"""The notes' empirical claims, each checked by a small experiment (see config.py)."""
