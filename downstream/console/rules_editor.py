"""The rules files as the console edits them: read, validate (the same loader the classifier
uses, so an error names the file and the key), and save atomically with a note of who saved."""

from __future__ import annotations

import logging
import os
import tempfile
from datetime import datetime
from pathlib import Path

from classifiers.rules import RULES_DIR, RuleClassifier, RulesError
from classifiers.rules import rule_files as lexicon_files

log = logging.getLogger(__name__)


def rule_files(folder: Path = RULES_DIR) -> list[str]:
    return [p.stem for p in lexicon_files(folder)]


def read(lang: str, folder: Path = RULES_DIR) -> str:
    return (folder / f"{lang}.yaml").read_text(encoding="utf-8")


def validate(lang: str, source: str, folder: Path = RULES_DIR) -> list[str]:
    """Errors of the rules as they would be with `source` as `lang`'s file (empty when valid):
    the whole set is compiled, so a file that breaks the classifier is caught before it is saved."""
    with tempfile.TemporaryDirectory(prefix="omnintake-rules-") as tmp:
        for name in rule_files(folder):
            text = source if name == lang else read(name, folder)
            Path(tmp, f"{name}.yaml").write_text(text, encoding="utf-8")
        try:
            RuleClassifier(Path(tmp))
        except (RulesError, ValueError) as exc:
            return [str(exc).replace(f"{tmp}/", "")]
    return []


def save(lang: str, source: str, who: str, when: datetime, folder: Path = RULES_DIR) -> None:
    target = folder / f"{lang}.yaml"
    fd, tmp = tempfile.mkstemp(prefix=f".{lang}.", suffix=".yaml", dir=folder)
    with os.fdopen(fd, "w", encoding="utf-8") as out:
        out.write(source)
    os.replace(tmp, target)
    log.info("rules %s saved by %s at %s", target.name, who, when.isoformat())
