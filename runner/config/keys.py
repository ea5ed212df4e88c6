"""Every key of a composed config is one its chosen options take: what Hydra lets through
(``+key=value`` additions) is refused with the option that does take it, or a close match."""

from __future__ import annotations

import dataclasses
from typing import Any

from omegaconf import DictConfig, OmegaConf

from .errors import ConfigError, did_you_mean
from .options import option_schemas
from .schema import Config


def check_keys(cfg: DictConfig) -> None:
    """Every key of the composed ``cfg`` (without its ``hydra`` node) is one the chosen options take.

    Hydra lets ``+key=value`` add keys that no schema declares; they would be logged as if they
    had taken effect.  So any key outside its node's schema is a ConfigError naming it, with the
    option that does take it or a close match.
    """
    _check_node(cfg, "")


def _check_node(node: DictConfig, prefix: str) -> None:
    schema = OmegaConf.get_type(node)
    if not dataclasses.is_dataclass(schema):
        return  # a free-form dict (e.g. dataset.init_params)
    declared = [f.name for f in dataclasses.fields(schema)]
    group = prefix.rstrip(".")
    option = schema_option(schema)
    for key in node.keys():
        path = f"{prefix}{key}"
        if key not in declared:
            value = OmegaConf.select(node, str(key), throw_on_missing=False)
            raise ConfigError(f"{path}={_text(value)}", unknown_key_rule(group, schema, str(key)))
        if OmegaConf.is_missing(node, key):
            continue
        child = node[key]
        if isinstance(child, DictConfig):
            _check_node(child, f"{path}.")
    if group and "name" in declared and node.get("name") not in _options(group, schema):
        raise ConfigError(f"{group}.name={node.get('name')}",
                          f"choose an option with {group}={node.get('name')}, not by renaming {group}={option}")


def _options(group: str, schema: type) -> set[str]:
    """The options of ``group`` whose schema is ``schema`` (tracking's two share one)."""
    return {option for (g, option), s in option_schemas().items() if g == group and s is schema}


def schema_option(schema: type | None) -> str | None:
    """The option whose schema ``schema`` is (``he_normal`` for init's), or None."""
    return next((option for (_, option), s in option_schemas().items() if s is schema), None)


def unknown_key_rule(group: str, schema: type | None, key: str) -> str:
    """The rule for ``key``, which ``group``'s chosen option (of schema ``schema``) does not take: the
    options that do take it, or a close match.  ``group=""`` is the top level."""
    if not group:
        known = [f.name for f in dataclasses.fields(Config)]
        return (f"no config group or key {key!r}{did_you_mean(key, known)}"
                f" (a new key with +{key}=... is refused too: nothing reads it)")
    option = schema_option(schema)
    if group.startswith("hydra.") and dataclasses.is_dataclass(schema):  # a Hydra node with a schema: hydra.sweeper
        others = _hydra_options_taking(group, key)
        takes = f" ({key} is a parameter of {group.replace('.', '/')}={', '.join(others)})" if others else \
            f" ({key} is a key of the top level: {key}=...)" if key in {f.name for f in dataclasses.fields(Config)} else ""
        return f"{group} has no key {key!r}{takes or did_you_mean(key, [f.name for f in dataclasses.fields(schema)])}"
    if group == "hydra.sweeper.params":  # a preset's sweep: {key: values}
        return f"the preset's sweep has no key {key!r}: sweep a key on the command line instead, e.g. -m {key}=a,b"
    if group.startswith("hydra."):  # a free-form Hydra node (hydra.job.env_set)
        return f"{group} has no key {key!r} (a new key is added with +{group}.{key}=...)"
    top = group.split(".")[0]
    known = [f.name for f in dataclasses.fields(Config)]
    if option is None and top not in known:
        return f"no config group or key {top!r}{did_you_mean(top, known)}"
    if option is None:
        return f"{group} has no key {key!r}"
    takes = [f.name for f in dataclasses.fields(schema) if f.name != "name"]
    rule = f"not a parameter of {group}={option}, which takes: {', '.join(takes) or 'no parameters'}"
    others = sorted(o for (g, o), s in option_schemas().items()
                    if g == group and s is not schema and key in {f.name for f in dataclasses.fields(s)})
    if others:
        return f"{rule} ({key} is a parameter of {group}={', '.join(others[:4])}{', ...' if len(others) > 4 else ''})"
    return rule + did_you_mean(key, takes)


def _hydra_options_taking(group: str, key: str) -> list[str]:
    """The options of Hydra's ``group`` (``hydra.launcher``: basic, joblib, ...) that take ``key``."""
    from hydra.core.config_store import ConfigStore

    node = ConfigStore.instance().repo
    for part in group.split("."):
        node = node.get(part, {}) if isinstance(node, dict) else {}
    return sorted(name.removesuffix(".yaml") for name, option in node.items()
                  if hasattr(option, "node") and key in option.node)


def _text(value: Any) -> str:
    if OmegaConf.is_config(value):
        value = OmegaConf.to_container(value, resolve=False)
    return str(value).replace(" ", "") if isinstance(value, (list, dict)) else str(value)
