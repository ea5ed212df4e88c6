"""One run: built once from its config, trained as a short list of named steps, its theory beside its
measurement, and what it leaves on disk."""
