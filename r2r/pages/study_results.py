"""`r2r study-results`: the votes files `r2r study-page` exports, counted as in the paper's user-study table.

For each comparison (two methods) and each question: the number of votes and the percentage preferring each method.
Every file is checked before anything is counted, and a malformed one is one error naming the file (and the vote);
names from the files are printed and written with their control characters escaped (`table.shown`, `md_cell`);
the same browser session given twice is refused, so no vote is counted twice. Output: a rich table, and markdown
and JSON on request. Reads JSON, writes only the files asked for (atomically).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from ..evaluation.table import md_cell, shown
from .study import QUESTIONS, VOTES_FORMAT

RESULTS_FORMAT = "r2r-study-results/1"
CHOICES = ("left", "right")


@dataclass
class VotesFile:
    path: Path
    study: str
    session: str
    participant: str
    methods: list[str]
    votes: list[dict]


def _fail(path: Path, problem: str) -> ValueError:
    return ValueError(f"{path}: {problem}")


def _text(value, path: Path, what: str, *, empty: bool = False) -> str:
    if not isinstance(value, str) or (not value and not empty):
        raise _fail(path, f"{what} must be a{'' if empty else ' non-empty'} string, got {value!r}")
    return value


def load_votes(path: Path) -> VotesFile:
    """One exported votes file, checked field by field."""
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise _fail(path, f"not a readable JSON file ({e})") from None
    if not isinstance(data, dict) or data.get("format") != VOTES_FORMAT:
        raise _fail(path, f"not a votes file of `r2r study-page` (format {VOTES_FORMAT!r})")
    study = _text(data.get("study"), path, "'study'")
    session = _text(data.get("session"), path, "'session'")
    participant = _text(data.get("participant", ""), path, "'participant'", empty=True)
    methods = data.get("methods")
    if not isinstance(methods, list) or len(methods) < 2 or not all(isinstance(m, str) and m for m in methods):
        raise _fail(path, "'methods' must list at least two method names")
    questions = data.get("questions")
    known = {q for q, _ in QUESTIONS}
    if not isinstance(questions, list) or not questions or not set(map(str, questions)) <= known:
        raise _fail(path, f"'questions' must list some of {', '.join(sorted(known))}, got {questions!r}")
    votes = data.get("votes")
    if not isinstance(votes, list):
        raise _fail(path, "'votes' must be a list")
    seen: set[tuple[str, str]] = set()
    for n, v in enumerate(votes):
        where = f"vote {n + 1}"
        if not isinstance(v, dict):
            raise _fail(path, f"{where} is not an object")
        trial = _text(v.get("trial"), path, f"{where}: 'trial'")
        left = _text(v.get("left"), path, f"{where}: 'left'")
        right = _text(v.get("right"), path, f"{where}: 'right'")
        question, choice = v.get("question"), v.get("choice")
        if left not in methods or right not in methods or left == right:
            raise _fail(path, f"{where}: left {left!r} and right {right!r} must be two different methods of "
                              f"{methods!r}")
        if question not in questions:
            raise _fail(path, f"{where}: question {question!r} is not one of {questions!r}")
        if choice not in CHOICES:
            raise _fail(path, f"{where}: choice {choice!r} is not 'left' or 'right'")
        preferred = left if choice == "left" else right
        if "preferred" in v and v["preferred"] != preferred:
            raise _fail(path, f"{where}: 'preferred' {v['preferred']!r} contradicts choice {choice!r} ({preferred!r} "
                              f"was on the {choice})")
        if (trial, question) in seen:
            raise _fail(path, f"{where}: trial {trial!r} is answered twice for {question!r}")
        seen.add((trial, question))
    return VotesFile(path, study, session, participant, methods, votes)


@dataclass
class Comparison:
    methods: tuple[str, str]  # in the order the first file that holds them lists them (the reference first)
    counts: dict[str, dict[str, int]] = field(default_factory=dict)  # question -> method -> votes

    def votes(self, question: str) -> int:
        return sum(self.counts.get(question, {}).values())

    def percent(self, question: str, method: str) -> float | None:
        n = self.votes(question)
        return None if n == 0 else 100.0 * self.counts[question].get(method, 0) / n


def tally(files: list[VotesFile]) -> list[Comparison]:
    """Votes per comparison and question; refuses one browser session given twice."""
    sessions: dict[tuple[str, str], Path] = {}
    for f in files:
        if (f.study, f.session) in sessions:
            raise ValueError(f"{f.path}: the same votes (study {f.study}, session {f.session}) as "
                             f"{sessions[(f.study, f.session)]}; each session counts once")
        sessions[(f.study, f.session)] = f.path
    comparisons: dict[frozenset, Comparison] = {}
    for f in files:
        rank = {m: i for i, m in enumerate(f.methods)}
        for v in f.votes:
            pair = frozenset((v["left"], v["right"]))
            if pair not in comparisons:
                comparisons[pair] = Comparison(tuple(sorted(pair, key=rank.__getitem__)))
            preferred = v["left"] if v["choice"] == "left" else v["right"]
            per_q = comparisons[pair].counts.setdefault(v["question"], {})
            per_q[preferred] = per_q.get(preferred, 0) + 1
    if not comparisons:
        raise ValueError(f"no votes in {', '.join(str(f.path) for f in files)}")
    return list(comparisons.values())


def questions_of(comparisons: list[Comparison]) -> list[str]:
    asked = {q for c in comparisons for q in c.counts}
    return [q for q, _ in QUESTIONS if q in asked]


def _cell(c: Comparison, question: str, method: str) -> str:
    p = c.percent(question, method)
    if p is None:
        return "n/a"
    return f"{p:.1f}% ({c.counts[question].get(method, 0)}/{c.votes(question)})"


def table_rows(comparisons: list[Comparison]) -> tuple[list[str], list[list[str]]]:
    questions = questions_of(comparisons)
    header = ["Comparison", "Preferred", *(q.capitalize() for q in questions)]
    rows = []
    for c in comparisons:
        for n, method in enumerate(c.methods):
            rows.append([f"{c.methods[0]} vs {c.methods[1]}" if n == 0 else "", method,
                         *(_cell(c, q, method) for q in questions)])
    return header, rows


def markdown(comparisons: list[Comparison], files: list[VotesFile]) -> str:
    header, rows = table_rows(comparisons)
    out = ["| " + " | ".join(header) + " |", "|" + "|".join(["---", "---"] + [":---:"] * (len(header) - 2)) + "|"]
    out += ["| " + " | ".join(md_cell(c) for c in row) + " |" for row in rows]
    out += ["", f"Percentage of votes preferring each method, per question (votes in brackets); {len(files)} "
                f"file(s), {sum(len(f.votes) for f in files)} votes."]
    return "\n".join(out) + "\n"


def as_json(comparisons: list[Comparison], files: list[VotesFile]) -> dict:
    questions = questions_of(comparisons)
    return {
        "format": RESULTS_FORMAT,
        "files": [{"path": str(f.path), "study": f.study, "session": f.session, "participant": f.participant,
                   "votes": len(f.votes)} for f in files],
        "votes": sum(len(f.votes) for f in files),
        "comparisons": [{"methods": list(c.methods), "questions": {
            q: {"votes": c.votes(q), "preferred": {m: c.counts.get(q, {}).get(m, 0) for m in c.methods},
                "percent": {m: c.percent(q, m) for m in c.methods}} for q in questions}} for c in comparisons],
    }


def print_rich(comparisons: list[Comparison], files: list[VotesFile]) -> None:
    from rich.console import Console
    from rich.table import Table

    header, rows = table_rows(comparisons)
    table = Table(title=f"Pairwise preference ({len(files)} file(s), {sum(len(f.votes) for f in files)} votes)")
    for h in header:
        table.add_column(shown(h), justify="left" if h in ("Comparison", "Preferred") else "right")
    for n, row in enumerate(rows):  # method names come from the votes files: markup and control characters escaped
        table.add_row(*(shown(c) for c in row), end_section=n % 2 == 1)
    console = Console()
    console.print(table)
    console.print("Percentage of votes preferring each method, per question (votes in brackets).", highlight=False)
