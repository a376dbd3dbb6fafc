// The chat playground: streams an answer from /ui/playground/chat (the gateway, OpenAI dialect)
// and sends ratings and implicit signals to /ui/playground/feedback/<message id>.
"use strict";
const Playground = (() => {
  const csrf = document.querySelector('meta[name="csrf-token"]').content;
  const models = JSON.parse(document.getElementById("agent-models").textContent);
  const agent = document.getElementById("agent");
  const model = document.getElementById("model");
  const conversation = document.getElementById("conversation");
  const prompt = document.getElementById("prompt");
  let history = [];  // [{role, content}] sent with each turn

  const attach = document.getElementById("attach");
  const image = document.getElementById("image");

  function fillModels() {
    model.replaceChildren(new Option("auto (Turnout picks)", "auto"));
    for (const m of models[agent.value] || []) model.add(new Option(m.id, m.id));
    showAttach();
  }
  function showAttach() {  // images only where a model that takes them may answer
    const mine = models[agent.value] || [];
    attach.hidden = model.value === "auto" ? !mine.some((m) => m.vision)
                                           : !mine.some((m) => m.id === model.value && m.vision);
    if (attach.hidden) image.value = "";
  }
  function dataUrl(file) {
    return new Promise((resolve, reject) => {
      const reader = new FileReader();
      reader.onload = () => resolve(reader.result);
      reader.onerror = () => reject(reader.error);
      reader.readAsDataURL(file);
    });
  }
  agent.addEventListener("change", () => { fillModels(); reset(); });
  model.addEventListener("change", showAttach);
  fillModels();
  prompt.addEventListener("keydown", (e) => { if (e.key === "Enter" && e.ctrlKey) send(); });

  function bubble(role, text) {
    const div = document.createElement("div");
    div.className = "bubble " + role;
    const body = document.createElement("div");
    body.className = "text";
    body.textContent = text;
    div.append(body);
    conversation.append(div);
    return div;
  }

  async function post(url, body) {
    return fetch(url, {
      method: "POST", credentials: "same-origin",
      headers: {"content-type": "application/json", "x-csrf-token": csrf},
      body: JSON.stringify(body),
    });
  }

  async function feedback(messageId, body, status) {
    const resp = await post("/ui/playground/feedback/" + messageId, body);
    const data = await resp.json();
    status.textContent = resp.ok
      ? (body.event ? body.event + " noted" : "rated " + data.rating)
      : "not saved: " + ((data.error && data.error.message) || resp.status);
    status.className = "status " + (resp.ok ? "ok" : "error");
  }

  async function answer(div) {
    const started = performance.now();
    const text = div.querySelector(".text");
    const meta = document.createElement("div");
    meta.className = "meta";
    div.append(meta);
    let resp;
    try {
      resp = await post("/ui/playground/chat", {
        agent_id: agent.value, model: model.value, messages: history,
        stream: true, stream_options: {include_usage: true},
      });
    } catch (err) {
      text.textContent = "The gateway could not be reached: " + err;
      div.classList.add("failed");
      return null;
    }
    if (!resp.ok) {
      const data = await resp.json().catch(() => ({}));
      text.textContent = (data.error && data.error.message) || ("error " + resp.status);
      div.classList.add("failed");
      return null;
    }
    const messageId = resp.headers.get("x-turnout-message-id");
    const served = resp.headers.get("x-turnout-model");
    const reader = resp.body.getReader();
    const decoder = new TextDecoder();
    let buffer = "", content = "", usage = null, failure = null;
    for (;;) {
      const {value, done} = await reader.read();
      if (done) break;
      buffer += decoder.decode(value, {stream: true});
      let cut;
      while ((cut = buffer.indexOf("\n\n")) >= 0) {
        const event = buffer.slice(0, cut); buffer = buffer.slice(cut + 2);
        for (const line of event.split("\n")) {
          if (!line.startsWith("data:")) continue;
          const data = line.slice(5).trim();
          if (data === "[DONE]") continue;
          const chunk = JSON.parse(data);
          if (chunk.error) failure = chunk.error.message;
          if (chunk.usage) usage = chunk.usage;
          for (const choice of chunk.choices || []) {
            const piece = choice.delta && choice.delta.content;
            if (piece) { content += piece; text.textContent = content; }
          }
        }
      }
    }
    const ms = Math.round(performance.now() - started);
    if (failure) { text.textContent = content + "\n[" + failure + "]"; div.classList.add("failed"); }
    const tokens = usage ? ` · ${usage.prompt_tokens}+${usage.completion_tokens} tokens` : "";
    meta.textContent = `${served || "?"} · ${ms} ms${tokens}`;
    fetch("/ui/playground/answer/" + messageId, {credentials: "same-origin"})  // its recorded cost
      .then((r) => (r.ok ? r.json() : {}))
      .then((o) => { if (o.cost_usd !== undefined && o.cost_usd !== null) meta.textContent += ` · $${o.cost_usd.toFixed(6)}`; })
      .catch(() => {});
    div.dataset.messageId = messageId;
    controls(div, messageId, content);
    return content;
  }

  function controls(div, messageId, content) {
    const bar = document.createElement("div");
    bar.className = "controls";
    const status = document.createElement("span");
    status.className = "status";
    const button = (label, title, onclick) => {
      const b = document.createElement("button");
      b.type = "button"; b.textContent = label; b.title = title; b.setAttribute("aria-label", title);
      b.addEventListener("click", onclick); bar.append(b); return b;
    };
    button("👍 Good", "Good answer", () => feedback(messageId, {rating: 1.0}, status));
    button("👎 Bad", "Bad answer", () => feedback(messageId, {rating: 0.0}, status));
    button("Regenerate", "Regenerate", () => regenerate(div, messageId, status));
    button("Copy", "Copy", () => {
      if (navigator.clipboard) navigator.clipboard.writeText(content).catch(() => {});
      feedback(messageId, {event: "copy"}, status);
    });
    const why = button("Why this model?", "Why this model?", async () => {
      const panel = div.querySelector(".why") || div.appendChild(document.createElement("div"));
      panel.className = "why";
      const resp = await fetch("/ui/playground/decision/" + messageId, {credentials: "same-origin"});
      panel.innerHTML = await resp.text();  // rendered by the server's autoescaping templates
    });
    why.classList.add("secondary");
    bar.append(status);
    div.append(bar);
  }

  async function regenerate(div, messageId, status) {
    await feedback(messageId, {event: "regenerate"}, status);  // implicit 0.0 on the replaced answer
    history.pop();  // the replaced answer leaves the conversation
    const fresh = bubble("assistant", "…");
    div.replaceWith(fresh);
    const content = await answer(fresh);
    if (content !== null) history.push({role: "assistant", content});
  }

  async function send() {
    const text = prompt.value.trim();
    if (!text) return;
    prompt.value = "";
    const file = !attach.hidden && image.files.length ? image.files[0] : null;
    const asked = file
      ? [{type: "text", text}, {type: "image_url", image_url: {url: await dataUrl(file)}}]
      : text;
    image.value = "";
    history.push({role: "user", content: asked});
    bubble("user", file ? text + "\n[image: " + file.name + "]" : text);
    const div = bubble("assistant", "…");
    document.getElementById("send").disabled = true;
    try {
      const content = await answer(div);
      if (content !== null) history.push({role: "assistant", content});
      else history.pop();
    } finally {
      document.getElementById("send").disabled = false;
    }
  }

  function reset() { history = []; conversation.replaceChildren(); }
  return {send, reset};
})();
