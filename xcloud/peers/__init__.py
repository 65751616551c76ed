"""Adapters to other cloud maskers, registered as xcloud models."""
