"""Benchmarks (scripts, not tests): `python -m bench [--items N]`. See bench/README.md."""
