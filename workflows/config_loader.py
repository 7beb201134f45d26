"""Read app.yaml from disk: where it is, its text, its version, then ``build_config``."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from workflows.config import Config
from workflows.config_builder import build_config
from workflows.errors import ConfigError, ConfigErrors
from workflows.yaml_loader import load_yaml


def default_config_path() -> Path:
    """``$LEADRELAY_CONFIG``, else ./app.yaml."""
    return Path(os.environ.get("LEADRELAY_CONFIG", "app.yaml"))


def load_config(path: str | Path) -> Config:
    """Read and validate app.yaml; raise ``ConfigErrors`` listing every problem with its path."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigErrors([ConfigError("", f"{path}: {_not_utf8(exc)}")]) from None
    except OSError as exc:
        raise ConfigErrors([ConfigError("", f"cannot read {path}: {exc.strerror}")]) from None
    data = load_yaml(text, str(path))
    if not isinstance(data, dict):
        raise ConfigErrors([ConfigError("", f"{path}: expected a mapping at the top level")])
    return build_config(data, source=path, version=hashlib.sha256(text.encode()).hexdigest()[:12])


def _not_utf8(exc: UnicodeDecodeError) -> str:
    line = exc.object[: exc.start].count(b"\n") + 1
    return f"line {line}: not UTF-8 text (byte 0x{exc.object[exc.start]:02x}); save it as UTF-8"
