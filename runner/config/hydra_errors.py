"""Hydra's, OmegaConf's and YAML's exceptions in our words: one line naming the key, the value and
the rule.  Recognised by type and attribute where they carry them; by their text here, and only
here, where they do not (this is the module to check when Hydra or OmegaConf is upgraded)."""

from __future__ import annotations

import re

import yaml
from hydra.errors import HydraException, MissingConfigException, OverrideParseException
from omegaconf import OmegaConf
from omegaconf.errors import OmegaConfBaseException

from .errors import ConfigError, did_you_mean, one_line
from .keys import unknown_key_rule
from .overrides import override_value


APPLYING_OVERRIDES = "_apply_overrides_to_config"  # Hydra's ConfigLoaderImpl's, with locals override and cfg


def is_composition_error(err: BaseException) -> bool:
    """An exception Hydra or OmegaConf raises for what a user typed or wrote in a config."""
    return isinstance(err, (HydraException, OmegaConfBaseException)) or failed_override(err) is not None


def failed_override(err: BaseException) -> tuple[object, object] | None:
    """(The override, the config) where ``err`` came from Hydra applying an override to a config, else
    None.  OmegaConf fails on some with an error not its own: a key under a null node
    (``hydra.sweeper.params.seed=0`` where no preset sweeps) with an AssertionError, a dict merged into a
    null node with an AttributeError.  Found by the names of Hydra's function and of its locals
    (``tests/test_hydra_contract.py`` pins them)."""
    if isinstance(err, (HydraException, OmegaConfBaseException)):
        return None
    trace, found = err.__traceback__, None
    while trace is not None:
        frame = trace.tb_frame
        if frame.f_code.co_name == APPLYING_OVERRIDES and frame.f_globals.get("__name__", "").startswith("hydra."):
            found = frame.f_locals.get("override"), frame.f_locals.get("cfg")
        trace = trace.tb_next
    return found if found is not None and found[0] is not None else None


def is_user_error(err: BaseException) -> bool:
    return is_composition_error(err) or isinstance(err, (ConfigError, yaml.YAMLError))


def user_error_line(err: BaseException, overrides: list[str]) -> str:
    """The one line for a user error raised while composing ``overrides``."""
    return yaml_error(err) if isinstance(err, yaml.YAMLError) else hydra_error(err, overrides)


def hydra_error(err: BaseException, overrides: list[str]) -> str:
    """One line for an exception Hydra or OmegaConf raised while composing ``overrides``."""
    if failed := failed_override(err):
        return _override_on_null(*failed)
    text, cause = str(err), err.__cause__
    if m := re.search(r"Cannot find primary config '([^']*)'", text):
        return f"--config-name={m.group(1)}: no such config; the command's config is 'config'{did_you_mean(m.group(1), ['config'])}"
    if isinstance(err, MissingConfigException) or "Could not find '" in text:
        return _missing_option(err, text, overrides)
    if isinstance(err, OverrideParseException):
        return (f"{getattr(err, 'override', '') or 'override'}: not valid override syntax ({one_line(text).split(' See ')[0]});"
                " write key=value, group=option, or a sweep key=a,b,c")
    if m := re.search(r"Ambiguous value for argument '(.+)'$|Sweep parameters '(.+)' requires --multirun", text, re.M):
        return (f"{m.group(1) or m.group(2)}: a sweep; run it with -m (one job per value), or give one value "
                "(a list is key=[a,b], a string with a comma is key='a,b')")
    full_key = getattr(cause, "full_key", None) or getattr(err, "full_key", None)
    if (m := re.search(r"Error merging override (\S+)", text)) and full_key and \
            m.group(1).lstrip("+~").startswith(full_key + "."):  # seed.x=1: OmegaConf makes seed a dict, and fails
        return f"{m.group(1)}: {full_key} is a single value, not a group of keys; set it whole ({full_key}=...)"
    if m := re.search(r"Could not override '([^']+)'", text):
        key = m.group(1)
        group, _, leaf = key.rpartition(".")
        return f"{key}={override_value(overrides, key)}: {unknown_key_rule(group, getattr(cause, 'object_type', None), leaf)}"
    if full_key and (m := re.search(r"Invalid value '(.*)', expected one of \[(.*)\]", str(cause))):
        choices = [c.strip() for c in m.group(2).split(",")]
        return f"{full_key}={m.group(1)}: must be one of {' | '.join(choices)}{did_you_mean(m.group(1), choices)}"
    if full_key and "is not Optional" in str(cause):  # optimizer.lr=null: a key whose option needs a value
        return f"{full_key}=null: must be given a value, not null{_takes(cause)}"
    if full_key and "is not a valid bool" in str(cause):
        return f"{full_key}={override_value(overrides, full_key)}: must be a boolean (true or false)"
    if full_key and ("could not be converted" in str(cause) or "is not a" in str(cause)
                     or "Invalid type" in str(cause) or "Incompatible value" in str(cause)):
        expected = re.search(r"converted to (\w+)", str(cause))
        value = override_value(overrides, full_key)
        rule = f"must be a {_type_word(expected.group(1))}" if expected else one_line(str(cause).split("\n")[0])
        return f"{full_key}={value}: {rule}"
    if full_key and "Missing mandatory value" in str(cause or err):
        return f"{full_key}=???: is required by the chosen option; give it on the command line or in a preset"
    if m := re.search(r"Missing mandatory value: ([\w.]+)", text):
        return f"{m.group(1)}=???: is required by the chosen option; give it on the command line or in a preset"
    if cause is not None and type(cause).__module__.startswith("yaml"):
        return yaml_error(cause)
    first = one_line(text.split("\n")[0])
    detail = f" ({one_line(str(cause).split(chr(10))[0])})" if cause is not None and str(cause) not in text else ""
    return f"{first}{detail}"


def _override_on_null(override, config) -> str:
    """``hydra.sweeper.params.seed=0: hydra.sweeper.params is null here, ...``: the first node of the
    override's key that is null (the override's own, where it merges a dict into it)."""
    line, parts = override.input_line, override.key_or_group.split(".")
    null = next((".".join(parts[:n]) for n in range(1, len(parts) + 1)
                 if OmegaConf.select(config, ".".join(parts[:n]), throw_on_missing=False) is None), None)
    if null is None:
        return f"{line}: cannot be applied to the composed config"
    if null == "hydra.sweeper.params":
        return (f"{line}: hydra.sweeper.params is null here (no preset's sweep to change): give the sweep on the "
                "command line instead, e.g. -m seed=0,1")
    what = "no keys to set" if null != override.key_or_group else "nothing to merge a dict into"
    return f"{line}: {null} is null here, so it has {what}; give {null} a value of its own"


def _takes(cause: BaseException) -> str:
    """``; give a number``: what the key's schema field holds, where it says (``""`` where not)."""
    schema, key = getattr(cause, "object_type", None), str(getattr(cause, "key", ""))
    field = getattr(schema, "__dataclass_fields__", {}).get(key)
    hint = getattr(field, "type", None)
    name = hint if isinstance(hint, str) else getattr(hint, "__name__", "")
    return f"; give a {TYPE_WORDS[name]}" if name in TYPE_WORDS else ""


# a value type in a user's words: as OmegaConf names it in its errors, and as a schema's field is annotated
TYPE_WORDS = {"Float": "number", "Integer": "whole number", "Boolean": "boolean (true/false)", "String": "string",
              "float": "number", "int": "whole number", "bool": "boolean (true/false)", "str": "string"}


def _type_word(omegaconf_type: str) -> str:
    return TYPE_WORDS.get(omegaconf_type, omegaconf_type.lower())


def _missing_option(err: BaseException, text: str, overrides: list[str]) -> str:
    """``activation=rleu: unknown option; options: ...; did you mean 'relu'?``"""
    m = re.search(r"Could not find '([^']+)'", text)
    path = m.group(1) if m else ""
    group, _, option = path.rpartition("/")
    options = list(getattr(err, "options", None) or [])
    if not options:
        options = re.findall(r"^\t(\S+)$", text, flags=re.M)
    if not group:
        return f"{path}: no such config{did_you_mean(path, options)}"
    shown = ", ".join(options) if options else "none"
    return f"{group}={option}: unknown option; {group} options: {shown}{did_you_mean(option, options)}"


def yaml_error(err: BaseException) -> str:
    """``experiment=broken: malformed YAML in .../broken.yaml, line 3: expected ',' or ']'``."""
    mark = getattr(err, "problem_mark", None) or getattr(err, "context_mark", None)
    where = f"{mark.name}, line {mark.line + 1}" if mark is not None else "a config file"
    subject = "config"
    if mark is not None:
        path = mark.name.replace("\\", "/")
        group, option = path.rsplit("/", 2)[-2], path.rsplit("/", 1)[-1].removesuffix(".yaml")
        subject = f"{group}={option}"
    problem = getattr(err, "problem", None) or one_line(str(err))
    return f"{subject}: malformed YAML in {where}: {problem}"


def resolution_rule(err: Exception) -> str:
    """Why an interpolation cannot be resolved, from OmegaConf's message."""
    text = one_line(str(getattr(err, "msg", None) or err).split("\n")[0])
    if "Recursive interpolation" in text:
        return "it refers to itself"
    if m := re.search(r"Environment variable '([^']+)' not found", text):
        return (f"the environment variable {m.group(1)} is not set (set it, or give a default: "
                f"${{oc.env:{m.group(1)},default}})")
    return text[0].lower() + text[1:] if text else type(err).__name__
