"""Network architectures in plain PyTorch (imported only when a model node runs)."""
