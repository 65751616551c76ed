"""Training xcloud's models. Sits on top of the package: nothing in ``xcloud`` imports it."""
