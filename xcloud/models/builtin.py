"""xcloud's own models (SEnSeI-based fine segmenter, coarse classifier, cascade)."""
