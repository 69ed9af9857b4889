"""Model weights: catalog matching, download and verification, the loaded-model cache."""
