// odqa's page: asks POST /v1/ask and shows the answer inside its passage.
// `/?q=QUESTION[&mode=bm25|dense|hybrid][&k=N]` asks on load.
"use strict";

(function () {
  const $ = (id) => document.getElementById(id);
  const form = $("ask-form");
  const input = $("question");
  const modeSelect = $("mode");
  const topKSelect = $("top-k");
  const button = $("ask");
  const status = $("status");
  const result = $("result");

  // Offsets from the server count Unicode characters (code points);
  // JavaScript strings index UTF-16 units, so slice code point arrays.
  function splitAt(text, start, end) {
    const chars = Array.from(text);
    return [
      chars.slice(0, start).join(""),
      chars.slice(start, end).join(""),
      chars.slice(end).join(""),
    ];
  }

  function el(tag, className, text) {
    const node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined) node.textContent = text;
    return node;
  }

  // `container` gets `text` with characters start..end wrapped in <mark>.
  function fillMarked(container, text, start, end, markClass) {
    container.replaceChildren();
    const [before, answer, after] = splitAt(text, start, end);
    container.append(document.createTextNode(before));
    container.append(el("mark", markClass, answer));
    container.append(document.createTextNode(after));
  }

  function setStatus(text, kind) {
    status.textContent = text;
    status.className = kind || "";
  }

  function fmt(ms) {
    return ms === undefined || ms === null ? "–" : ms.toFixed(ms < 10 ? 1 : 0) + " ms";
  }

  function render(data, clientMs) {
    const answers = data.answers || [];
    const hits = data.hits || [];
    const best = answers[0];
    const card = $("answer-card");
    if (best) {
      card.hidden = false;
      $("answer-text").textContent = best.text;
      $("answer-score").textContent = "score " + best.score.toFixed(3);
      $("answer-title").textContent = best.evidence.title;
      $("answer-passage").textContent =
        best.evidence.passage_id + " · #" + best.evidence.retrieval_rank;
      fillMarked(
        $("answer-context"),
        best.evidence.context,
        best.evidence.passage_char_start,
        best.evidence.passage_char_end,
        "answer"
      );
      const alternatives = $("alternatives");
      alternatives.replaceChildren();
      for (const alt of answers.slice(1)) {
        const li = el("li");
        li.append(el("span", "alt-text", alt.text));
        li.append(el("span", "score", " " + alt.score.toFixed(3) + " · " + alt.evidence.title));
        alternatives.append(li);
      }
    } else {
      card.hidden = true;
    }

    const list = $("hits");
    list.replaceChildren();
    for (const hit of hits) {
      const li = el("li", "hit");
      const head = el("div", "hit-head");
      head.append(el("span", "hit-title", hit.title));
      head.append(el("span", "score", "score " + hit.score.toFixed(3)));
      head.append(el("span", "mono", hit.passage_id));
      li.append(head);
      const text = el("p", "hit-text");
      const answer = best && best.evidence.passage_id === hit.passage_id ? best : null;
      if (answer) {
        li.classList.add("has-answer");
        fillMarked(text, hit.text, answer.evidence.passage_char_start, answer.evidence.passage_char_end, "hit-answer");
      } else {
        text.textContent = hit.text;
      }
      li.append(text);
      list.append(li);
    }

    const t = data.timings || {};
    // The round trip includes the server's time (a headless browser's
    // virtual clock can say otherwise).
    const roundTrip = Math.max(clientMs, t.total_ms || 0);
    $("latency").textContent =
      "지연 시간 " + fmt(roundTrip) + " (서버 " + fmt(t.total_ms) +
      ": 검색 " + fmt(t.retrieve_ms) + " · 토큰화 " + fmt(t.tokenize_ms) +
      " · 대기 " + fmt(t.queue_ms) + " · 읽기 " + fmt(t.inference_ms) +
      ", 창 " + (t.windows ?? "–") + "개) · " + data.mode;
    result.hidden = false;
    setStatus(best ? "" : "답을 찾지 못했습니다. (no answer)", best ? "" : "empty");
  }

  async function ask(question) {
    const body = { question: question, top_k: Number(topKSelect.value) || 10 };
    if (modeSelect.value) body.mode = modeSelect.value;
    button.disabled = true;
    document.body.dataset.state = "asking";
    setStatus("묻는 중…", "busy");
    const started = performance.now();
    try {
      const response = await fetch("/v1/ask", {
        method: "POST",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify(body),
      });
      const data = await response.json().catch(() => null);
      const clientMs = performance.now() - started;
      if (!response.ok) {
        const err = (data && data.error) || { code: String(response.status), message: response.statusText };
        result.hidden = true;
        setStatus("오류 (" + err.code + "): " + err.message, "error");
        document.body.dataset.state = "error";
        return;
      }
      render(data, clientMs);
      document.body.dataset.state = "done";
    } catch (e) {
      result.hidden = true;
      setStatus("서버에 연결할 수 없습니다: " + e, "error");
      document.body.dataset.state = "error";
    } finally {
      button.disabled = false;
    }
  }

  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const question = input.value.trim();
    if (!question) return;
    const params = new URLSearchParams({ q: question });
    if (modeSelect.value) params.set("mode", modeSelect.value);
    params.set("k", topKSelect.value);
    history.replaceState(null, "", "/?" + params.toString());
    ask(question);
  });

  const params = new URLSearchParams(location.search);
  if (params.get("mode")) modeSelect.value = params.get("mode");
  if (params.get("k")) {
    const k = params.get("k");
    if (![...topKSelect.options].some((o) => o.value === k)) {
      topKSelect.append(new Option(k + "개 문단", k));
    }
    topKSelect.value = k;
  }
  const initial = (params.get("q") || "").trim();
  if (initial) {
    input.value = initial;
    ask(initial);
  } else {
    document.body.dataset.state = "idle";
  }
})();
