"""Multi-host data-parallel training demo (see ``main.py``)."""
