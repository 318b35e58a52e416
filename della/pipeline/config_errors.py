"""What a config that fails config/schema.yaml is told: the key's path and the offending key in
the first line, then one line of detail, instead of jsonschema's dump of the schema and the
config (about 85 lines, the path near the end). workflow/rules/common.smk calls it when
Snakemake's validation fails."""

from __future__ import annotations

from collections.abc import Iterable

from jsonschema.exceptions import ValidationError, best_match

__all__ = ["key_path", "schema_error_message", "validate_document"]

SCHEMA_FILE = "config/schema.yaml"


def key_path(parts: Iterable[str | int]) -> str:
    """``datasets.yelp.preprocess``, ``resources.runs[0].gpus``; ``(top level)`` for the root."""
    path = ""
    for part in parts:
        path += f"[{part}]" if isinstance(part, int) else (f".{part}" if path else str(part))
    return path or "(top level)"


def _unknown_keys(error: ValidationError) -> str:
    allowed = sorted(error.schema.get("properties", {}))
    unknown = sorted(set(error.instance) - set(allowed))
    return (
        f"unknown key{'s' if len(unknown) > 1 else ''} {', '.join(map(repr, unknown))} "
        f"(allowed there: {', '.join(allowed)})"
    )


def schema_error_message(error: ValidationError, document: str = "config", schema_file: str = SCHEMA_FILE) -> str:
    """``config <path>: <what is wrong>`` on the first line (``document`` names another file, say
    config/findings.yaml); jsonschema's message and the schema rule that failed on the second. Of
    a ``oneOf``/``anyOf``, the closest branch's error is named."""
    error = best_match([error])
    if error.validator == "additionalProperties" and isinstance(error.instance, dict):
        what = _unknown_keys(error)
    else:
        what = error.message
    rule = "/".join(str(part) for part in error.absolute_schema_path)
    return f"{document} {key_path(error.absolute_path)}: {what}\n({schema_file} rule {rule}: {error.message})"


def validate_document(document: dict, path, schema_path, error_type: type[Exception] = ValueError) -> dict:
    """`document` (read from `path`) checked against the JSON schema in `schema_path` (YAML), its
    defaults filled in; a failure raises `error_type` with the one-line message above."""
    import yaml
    from jsonschema import Draft202012Validator, validators

    with open(schema_path, encoding="utf-8") as handle:
        schema = yaml.safe_load(handle)

    def fill_defaults(validator, properties, instance, schema):
        for name, sub in properties.items():
            if isinstance(instance, dict) and "default" in sub:
                instance.setdefault(name, sub["default"])
        yield from Draft202012Validator.VALIDATORS["properties"](validator, properties, instance, schema)

    validator = validators.extend(Draft202012Validator, {"properties": fill_defaults})(schema)
    error = best_match(validator.iter_errors(document))
    if error is not None:
        raise error_type(schema_error_message(error, str(path), str(schema_path)))
    return document
