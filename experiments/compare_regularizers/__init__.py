"""compare_regularizers: the notes' regularisers side by side on MNIST-1D (see config.py)."""
