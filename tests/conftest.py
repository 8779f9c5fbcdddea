"""Test-session set-up: keep TensorFlow off any accelerator and quiet."""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
