"""The markup, style and script of the preference page `r2r study-page` writes (plain inline HTML/CSS/JS, nothing
fetched from the network).

What the page does: shows one trial at a time (the rendered source, then candidate 1 and candidate 2, whose methods
the page never displays), asks QUESTIONS (keys 1/2 answer the highlighted one, buttons answer any), keeps the answers
in localStorage under the study id, and exports them as a JSON download that names the methods, each trial's
left/right assignment and the choice, so the file needs no key to decode. `r2r study-results` reads those files.
The study data sits in a `<script type="application/json">` block; `render` escapes it so that no name from the
input can close the block. Method names and keys reach the DOM only through `textContent` (never `innerHTML`).
"""

from __future__ import annotations

import json

_PAGE = r"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>Image preference study</title>
<style>
body{font-family:system-ui,sans-serif;margin:1rem 1.5rem;color:#222;background:#fafafa}
header{display:flex;flex-wrap:wrap;gap:.6rem;align-items:center}
header h1{font-size:1.2rem;margin:0 1rem 0 0}
#progress{font-weight:600;margin-right:auto}
.help{color:#555;font-size:.9rem;margin:.5rem 0}
.images{display:flex;gap:1rem;align-items:flex-start;justify-content:center;margin:.6rem 0}
figure{margin:0;text-align:center}
figure img{height:55vh;width:auto;max-width:31vw;object-fit:contain;display:block;border:1px solid #bbb;
  background:#eee}
figcaption{font-weight:600;padding:.2rem}
.candidate figcaption{font-size:1.3rem}
#questions{max-width:56rem;margin:0 auto}
.q{display:flex;align-items:center;gap:.6rem;padding:.35rem .6rem;border:2px solid transparent;border-radius:6px}
.q.active{border-color:#2a6fdb;background:#eef4ff}
.q span{flex:1}
.q button{min-width:3.2rem;font-size:1.05rem;padding:.25rem .6rem;border:1px solid #888;border-radius:4px;
  background:#fff;cursor:pointer}
.q button.chosen{background:#2a6fdb;color:#fff;border-color:#2a6fdb}
#status{text-align:center;min-height:1.4rem;color:#245;font-weight:600}
kbd{border:1px solid #999;border-radius:3px;padding:0 .3rem;background:#fff}
</style></head><body>
<header>
<h1>Image preference study</h1>
<span id="progress"></span>
<label>Your name or id (optional) <input id="participant" autocomplete="off" size="14"></label>
<button id="prev" type="button">&larr; Previous</button>
<button id="next" type="button">Next &rarr;</button>
<button id="export" type="button">Download votes (JSON)</button>
</header>
<p class="help">Compare images <b>1</b> and <b>2</b>, both made from the rendered source on the left, and answer each
question. Keys: <kbd>1</kbd> or <kbd>2</kbd> answers the highlighted question, <kbd>&larr;</kbd> <kbd>&rarr;</kbd>
go to the previous or next pair. Your answers stay in this browser; when you are done, download them and send the
file back.</p>
<main>
<div class="images">
<figure class="source"><img id="img-source" alt="rendered source"><figcaption>Rendered source</figcaption></figure>
<figure class="candidate"><img id="img-left" alt="image 1"><figcaption>1</figcaption></figure>
<figure class="candidate"><img id="img-right" alt="image 2"><figcaption>2</figcaption></figure>
</div>
<div id="questions"></div>
<p id="status" role="status"></p>
</main>
<script type="application/json" id="study-data">@@STUDY_DATA@@</script>
<script>
"use strict";
(function () {
  const study = JSON.parse(document.getElementById("study-data").textContent);
  const storeKey = "r2r-study:" + study.id;
  const $ = (id) => document.getElementById(id);

  function newSession() {
    const bytes = new Uint8Array(8);
    crypto.getRandomValues(bytes);
    return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
  }
  function loadState() {
    try {
      const s = JSON.parse(localStorage.getItem(storeKey));
      if (s && typeof s === "object" && s.votes && typeof s.votes === "object" && typeof s.session === "string") {
        return s;
      }
    } catch (e) { /* nothing stored yet, or unreadable: start afresh */ }
    return {session: newSession(), participant: "", current: 0, votes: {}};
  }
  const state = loadState();
  let active = 0;  // index of the highlighted question

  function say(text) { $("status").textContent = text; }
  function save() {
    try { localStorage.setItem(storeKey, JSON.stringify(state)); }
    catch (e) { say("This browser cannot keep your answers: download them before closing the page."); }
  }
  const trial = () => study.trials[state.current];
  const answers = (t) => state.votes[t.id] || {};
  const openQuestion = (t) => study.questions.findIndex((q) => !(q.id in answers(t)));
  const complete = () => study.trials.filter((t) => openQuestion(t) < 0).length;

  const rows = study.questions.map((q, qi) => {
    const row = document.createElement("div");
    row.className = "q";
    const text = document.createElement("span");
    text.textContent = q.text;
    row.appendChild(text);
    for (const [choice, label] of [["left", "1"], ["right", "2"]]) {
      const b = document.createElement("button");
      b.type = "button";
      b.textContent = label;
      b.dataset.question = q.id;
      b.dataset.choice = choice;
      b.addEventListener("click", () => answer(qi, choice));
      row.appendChild(b);
    }
    $("questions").appendChild(row);
    return row;
  });

  function render() {
    const t = trial();
    $("img-source").src = t.source;
    $("img-left").src = t.left.image;
    $("img-right").src = t.right.image;
    const a = answers(t);
    rows.forEach((row, qi) => {
      row.classList.toggle("active", qi === active);
      for (const b of row.querySelectorAll("button")) {
        b.classList.toggle("chosen", a[study.questions[qi].id] === b.dataset.choice);
      }
    });
    $("progress").textContent = "Pair " + (state.current + 1) + " of " + study.trials.length + " \u00b7 " +
      complete() + " complete";
    const next = study.trials[state.current + 1];
    if (next) { for (const src of [next.source, next.left.image, next.right.image]) { new Image().src = src; } }
  }
  function show(i) {
    state.current = Math.max(0, Math.min(study.trials.length - 1, i));
    const open = openQuestion(trial());
    active = open < 0 ? 0 : open;
    say("");
    save();
    render();
  }
  function answer(qi, choice) {
    const t = trial();
    const wasOpen = openQuestion(t) >= 0;
    (state.votes[t.id] = answers(t))[study.questions[qi].id] = choice;
    save();
    const open = openQuestion(t);
    if (open >= 0) {
      active = open;
      render();
    } else if (wasOpen && state.current + 1 < study.trials.length) {
      show(state.current + 1);
    } else {
      active = Math.min(qi + 1, study.questions.length - 1);
      render();
      if (complete() === study.trials.length) { say("All pairs answered. Thank you: please download your votes."); }
    }
  }

  function exportVotes() {
    const votes = [];
    for (const t of study.trials) {
      const a = answers(t);
      for (const q of study.questions) {
        if (!(q.id in a)) continue;
        const choice = a[q.id];
        votes.push({trial: t.id, source_key: t.key, left: t.left.method, right: t.right.method, question: q.id,
                    choice: choice, preferred: choice === "left" ? t.left.method : t.right.method});
      }
    }
    const doc = {format: study.votes_format, study: study.id, seed: study.seed, methods: study.methods,
                 questions: study.questions.map((q) => q.id), session: state.session,
                 participant: state.participant, exported: new Date().toISOString(),
                 trials: study.trials.length, votes: votes};
    const blob = new Blob([JSON.stringify(doc, null, 1) + "\n"], {type: "application/json"});
    const link = document.createElement("a");
    link.href = URL.createObjectURL(blob);
    link.download = "votes-" + study.id + "-" + state.session.slice(0, 8) + ".json";
    document.body.appendChild(link);
    link.click();
    setTimeout(() => { URL.revokeObjectURL(link.href); link.remove(); }, 10000);
    say(votes.length + " votes downloaded (" + link.download + ").");
  }

  document.addEventListener("keydown", (e) => {
    if (e.target instanceof HTMLInputElement || e.altKey || e.ctrlKey || e.metaKey) return;
    if (e.key === "1") answer(active, "left");
    else if (e.key === "2") answer(active, "right");
    else if (e.key === "ArrowLeft") show(state.current - 1);
    else if (e.key === "ArrowRight") show(state.current + 1);
    else return;
    e.preventDefault();
  });
  $("prev").addEventListener("click", () => show(state.current - 1));
  $("next").addEventListener("click", () => show(state.current + 1));
  $("export").addEventListener("click", exportVotes);
  $("participant").value = state.participant || "";
  $("participant").addEventListener("input", (e) => { state.participant = e.target.value; save(); });
  show(typeof state.current === "number" ? state.current : 0);
})();
</script>
</body></html>
"""


def render(data: dict) -> str:
    """The page with `data` (the study: id, questions, trials with picture links and methods) embedded."""
    # JSON inside <script>: "<", ">" and "&" as \u escapes (still the same JSON), so no string can end the block
    text = json.dumps(data, ensure_ascii=False, sort_keys=True)
    text = text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
    return _PAGE.replace("@@STUDY_DATA@@", text)
