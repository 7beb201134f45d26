"""Read app.yaml's text into data, refusing what plain ``yaml.safe_load`` lets through.

PyYAML keeps the last of two equal keys, so a second ``when:`` in a rule silently drops the
first condition: here a duplicate key is an error naming both lines. A scalar PyYAML cannot
construct (``!!int abc``) raises a bare ValueError there: here it is an error naming its path.
A bare ``2026-13-01`` looks like a date to YAML 1.1 and its constructor raises; it is kept as
the text it is, so the field's own validation names the path and says why it is no date.
"""

from __future__ import annotations

from typing import Any

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from workflows.errors import ConfigError, ConfigErrors

_MERGE = "tag:yaml.org,2002:merge"


class _Loader(yaml.SafeLoader):
    def construct_yaml_timestamp(self, node: ScalarNode) -> Any:
        try:
            return super().construct_yaml_timestamp(node)
        except ValueError:
            return str(node.value)


_Loader.add_constructor("tag:yaml.org,2002:timestamp", _Loader.construct_yaml_timestamp)


def load_yaml(text: str, source: str) -> Any:
    """The data of one YAML document; ``ConfigErrors`` naming lines and paths otherwise.

    ``source`` names the file in errors that have no path inside it (a syntax error).
    """
    loader = _Loader(text)
    try:
        try:
            node = loader.get_single_node()
        except RecursionError:
            raise ConfigErrors([ConfigError("", f"{source}: nested too deeply")]) from None
        except yaml.YAMLError as exc:
            raise ConfigErrors([ConfigError("", f"{source}: {_describe(exc)}")]) from None
        if node is None:
            return None
        errors = _check(loader, node)
        if errors:
            raise ConfigErrors(errors)
        try:
            return loader.construct_document(node)
        except yaml.YAMLError as exc:
            raise ConfigErrors([ConfigError("", f"{source}: {_describe(exc)}")]) from None
    finally:
        loader.dispose()


def _describe(exc: yaml.YAMLError) -> str:
    mark = getattr(exc, "problem_mark", None)
    where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
    problem = getattr(exc, "problem", None) or str(exc)
    return f"{where}invalid YAML: {problem}"


def _check(loader: _Loader, root: Node) -> list[ConfigError]:
    """Duplicate keys and scalars that cannot be built, each with its app.yaml path.

    Iterative, and each node visited once: aliases may share nodes or even form a cycle.
    """
    errors: list[tuple[int, ConfigError]] = []
    seen: set[int] = set()
    stack: list[tuple[Node, str]] = [(root, "")]
    while stack:
        node, path = stack.pop()
        if id(node) in seen:
            continue
        seen.add(id(node))
        if isinstance(node, ScalarNode):
            problem = _unbuildable(loader, node)
            if problem:
                errors.append((node.start_mark.line, ConfigError(path, problem)))
        elif isinstance(node, SequenceNode):
            stack.extend((item, f"{path}[{i}]") for i, item in enumerate(node.value))
        elif isinstance(node, MappingNode):
            first_line: dict[Any, int] = {}
            for key_node, value_node in node.value:
                if key_node.tag == _MERGE:
                    stack.append((value_node, path))
                    continue
                name = key_node.value if isinstance(key_node, ScalarNode) else "?"
                child = f"{path}.{name}" if path else str(name)
                key = _key(loader, key_node)
                line = key_node.start_mark.line + 1
                if key is not None and key in first_line:
                    message = (
                        f"duplicate key on lines {first_line[key]} and {line}"
                        " (YAML would silently keep only the last)"
                    )
                    errors.append((line, ConfigError(child, message)))
                elif key is not None:
                    first_line[key] = line
                stack.extend([(key_node, child), (value_node, child)])
    return [error for _, error in sorted(errors, key=lambda item: item[0])]


def _key(loader: _Loader, node: Node) -> Any:
    if not isinstance(node, ScalarNode):
        return None  # an unhashable key: construction refuses it with its line
    try:
        value = loader.construct_object(node)
    except (ValueError, TypeError, AttributeError, OverflowError, yaml.YAMLError):
        return None  # reported as an unbuildable scalar
    return (type(value).__name__, value) if _hashable(value) else None


def _hashable(value: Any) -> bool:
    try:
        hash(value)
    except TypeError:
        return False
    return True


def _unbuildable(loader: _Loader, node: ScalarNode) -> str | None:
    try:
        loader.construct_object(node)
    except yaml.YAMLError as exc:
        line = node.start_mark.line + 1
        return f"line {line}: {getattr(exc, 'problem', None) or exc}"
    except (ValueError, TypeError, AttributeError, OverflowError) as exc:
        tag = node.tag.rsplit(":", 1)[-1]
        return f"line {node.start_mark.line + 1}: {node.value!r} is not a valid {tag} ({exc})"
    return None
