"""A sweep: Hydra's callback around every command, each job composed and checked once, the sweep's
parent run and closing summary.  The only package that touches Hydra's internals
(``tests/test_hydra_contract.py`` pins what it relies on)."""
