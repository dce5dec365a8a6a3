/* Concierge chat widget: one <script> tag, no build step, no framework.
 *
 *   <script src="https://chat.example.com/widget.js" data-concierge-url="https://chat.example.com"
 *           data-user-id="42" data-user-hash="..." data-lang="de" defer></script>
 *
 * Everything lives in a Shadow DOM (the page's CSS does not leak in). Message text is always
 * set with textContent: nothing a visitor or the bot writes is ever parsed as HTML.
 */
(function () {
  "use strict";
  if (window.__conciergeWidget) return;
  window.__conciergeWidget = true;

  var script = document.currentScript || document.querySelector("script[data-concierge-url]");
  var base = ((script && script.getAttribute("data-concierge-url")) || (script && new URL(script.src).origin) || location.origin).replace(/\/$/, "");
  var userId = script && script.getAttribute("data-user-id");
  var userHash = script && script.getAttribute("data-user-hash");
  var lang = (script && script.getAttribute("data-lang")) || (navigator.language || "en").slice(0, 2);
  var TOKEN_KEY = "concierge.token";
  var T = {
    en: { title: "Chat with us", open: "Open chat", close: "Close chat", placeholder: "Type your question…", send: "Send", offline: "Reconnecting…", tooLong: "Too long", staff: "Team" },
    de: { title: "Chatte mit uns", open: "Chat öffnen", close: "Chat schließen", placeholder: "Deine Frage…", send: "Senden", offline: "Verbinde neu…", tooLong: "Zu lang", staff: "Team" },
    hu: { title: "Írj nekünk", open: "Csevegés megnyitása", close: "Csevegés bezárása", placeholder: "Írd be a kérdésed…", send: "Küldés", offline: "Újracsatlakozás…", tooLong: "Túl hosszú", staff: "Csapat" },
    sv: { title: "Chatta med oss", open: "Öppna chatten", close: "Stäng chatten", placeholder: "Skriv din fråga…", send: "Skicka", offline: "Återansluter…", tooLong: "För långt", staff: "Team" },
    pl: { title: "Napisz do nas", open: "Otwórz czat", close: "Zamknij czat", placeholder: "Wpisz pytanie…", send: "Wyślij", offline: "Ponowne łączenie…", tooLong: "Za długie", staff: "Zespół" }
  };
  var t = T[lang] || T.en;

  // --- DOM -----------------------------------------------------------------------------
  var host = document.createElement("div");
  host.id = "concierge-widget";
  var root = host.attachShadow({ mode: "open" });
  var css = document.createElement("link");
  css.rel = "stylesheet";
  css.href = base + "/widget.css";
  root.appendChild(css);

  function el(tag, cls, attrs) {
    var e = document.createElement(tag);
    if (cls) e.className = cls;
    for (var k in attrs || {}) e.setAttribute(k, attrs[k]);
    return e;
  }
  var launcher = el("button", "launcher", { type: "button", "aria-label": t.open, "aria-expanded": "false", "aria-controls": "concierge-panel" });
  launcher.appendChild(el("span", "launcher-icon", { "aria-hidden": "true" }));
  var badge = el("span", "badge", { "aria-hidden": "true" });
  badge.hidden = true;
  launcher.appendChild(badge);

  var panel = el("section", "panel", { id: "concierge-panel", role: "dialog", "aria-label": t.title });
  panel.hidden = true;
  var header = el("header", "header");
  var title = el("h2", "title");
  title.textContent = t.title;
  var status = el("span", "status", { role: "status" });
  var closeBtn = el("button", "close", { type: "button", "aria-label": t.close });
  closeBtn.textContent = "×";
  header.appendChild(title);
  header.appendChild(status);
  header.appendChild(closeBtn);
  var list = el("ol", "messages", { "aria-live": "polite", "aria-relevant": "additions", tabindex: "0" });
  var typing = el("div", "typing", { "aria-hidden": "true" });
  typing.appendChild(el("span"));
  typing.appendChild(el("span"));
  typing.appendChild(el("span"));
  typing.hidden = true;
  var form = el("form", "composer");
  var input = el("textarea", "input", { rows: "1", placeholder: t.placeholder, "aria-label": t.placeholder });
  var counter = el("span", "counter", { "aria-live": "polite" });
  var sendBtn = el("button", "send", { type: "submit" });
  sendBtn.textContent = t.send;
  form.appendChild(input);
  form.appendChild(counter);
  form.appendChild(sendBtn);
  panel.appendChild(header);
  panel.appendChild(list);
  panel.appendChild(typing);
  panel.appendChild(form);
  root.appendChild(panel);
  root.appendChild(launcher);

  // --- state -----------------------------------------------------------------------------
  var ws = null;
  var maxBytes = 4096;
  var retry = 0;
  var queue = []; // frames typed while offline, sent on reconnect
  var seen = {}; // message ids and client ids already shown
  var unread = 0;

  function uuid() {
    if (window.crypto && crypto.randomUUID) return crypto.randomUUID();
    return "c" + Date.now().toString(36) + Math.random().toString(36).slice(2);
  }
  function bytes(s) {
    return new TextEncoder().encode(s).length;
  }
  function isOpen() {
    return !panel.hidden;
  }

  function render(m) {
    var key = m.id != null ? "id:" + m.id : null;
    var ckey = m.client_id ? "c:" + m.client_id : null;
    if ((key && seen[key]) || (ckey && seen[ckey] && m.sender === "user")) {
      if (key) seen[key] = true;
      return;
    }
    if (key) seen[key] = true;
    if (ckey) seen[ckey] = true;
    var li = el("li", "msg " + (m.sender === "user" ? "from-user" : "from-" + (m.sender || "bot")));
    if (m.sender === "staff") {
      var who = el("span", "who");
      who.textContent = (m.metadata && m.metadata.staff_name) || t.staff;
      li.appendChild(who);
    }
    var bubble = el("div", "bubble");
    bubble.textContent = m.text; // never innerHTML
    li.appendChild(bubble);
    if (m.buttons && m.buttons.length) {
      var row = el("div", "buttons");
      m.buttons.forEach(function (b) {
        var btn;
        if (b.url && /^https?:\/\//i.test(b.url)) {
          btn = el("a", "quick", { href: b.url, target: "_blank", rel: "noopener noreferrer" });
        } else {
          btn = el("button", "quick", { type: "button" });
          btn.addEventListener("click", function () {
            sendFrame({ type: "button", payload: b.payload, title: b.title, client_id: uuid() }, b.title);
          });
        }
        btn.textContent = b.title;
        row.appendChild(btn);
      });
      li.appendChild(row);
    }
    list.appendChild(li);
    list.scrollTop = list.scrollHeight;
    if (!isOpen() && m.sender !== "user") {
      unread += 1;
      badge.textContent = String(unread);
      badge.hidden = false;
    }
  }

  function sendFrame(frame, shownText) {
    render({ sender: "user", text: shownText, client_id: frame.client_id });
    if (ws && ws.readyState === 1) ws.send(JSON.stringify(frame));
    else queue.push(frame);
  }

  function setStatus(text) {
    status.textContent = text || "";
    panel.classList.toggle("offline", !!text);
  }

  function connect() {
    var url = base.replace(/^http/, "ws") + "/ws/chat";
    var q = [];
    var token = null;
    try { token = localStorage.getItem(TOKEN_KEY); } catch (e) { /* private mode */ }
    if (token) q.push("token=" + encodeURIComponent(token));
    if (userId) q.push("user_id=" + encodeURIComponent(userId));
    if (userHash) q.push("user_hash=" + encodeURIComponent(userHash));
    if (lang) q.push("lang=" + encodeURIComponent(lang));
    ws = new WebSocket(url + (q.length ? "?" + q.join("&") : ""));
    ws.onopen = function () {
      retry = 0;
      setStatus("");
    };
    ws.onmessage = function (ev) {
      var f;
      try { f = JSON.parse(ev.data); } catch (e) { return; }
      if (f.type === "session") {
        try { localStorage.setItem(TOKEN_KEY, f.token); } catch (e) { /* ignore */ }
        maxBytes = f.max_message_bytes || maxBytes;
      } else if (f.type === "history") {
        // the server's history is the truth; keep optimistic messages still queued
        list.textContent = "";
        seen = {};
        (f.messages || []).forEach(render);
        var pending = queue.slice();
        queue = [];
        pending.forEach(function (fr) {
          render({ sender: "user", text: fr.text || fr.title, client_id: fr.client_id });
          ws.send(JSON.stringify(fr));
        });
        unread = 0;
        badge.hidden = true;
      } else if (f.type === "message") {
        render(f);
      } else if (f.type === "typing") {
        typing.hidden = !f.on;
      } else if (f.type === "error") {
        render({ sender: "system", text: f.message });
      } else if (f.type === "ack" && f.id != null) {
        seen["id:" + f.id] = true;
      }
    };
    ws.onclose = function () {
      typing.hidden = true;
      setStatus(t.offline);
      var delay = Math.min(30000, 500 * Math.pow(2, retry++)) * (0.5 + Math.random() / 2);
      setTimeout(connect, delay);
    };
    ws.onerror = function () { /* onclose follows */ };
  }

  // --- behaviour ---------------------------------------------------------------------------
  function open() {
    panel.hidden = false;
    launcher.setAttribute("aria-expanded", "true");
    host.classList.add("open");
    unread = 0;
    badge.hidden = true;
    input.focus();
    list.scrollTop = list.scrollHeight;
  }
  function close() {
    panel.hidden = true;
    launcher.setAttribute("aria-expanded", "false");
    host.classList.remove("open");
    launcher.focus();
  }
  launcher.addEventListener("click", function () { isOpen() ? close() : open(); });
  closeBtn.addEventListener("click", close);
  panel.addEventListener("keydown", function (e) {
    if (e.key === "Escape") { e.preventDefault(); close(); }
  });
  function updateCounter() {
    var n = bytes(input.value);
    var near = n > maxBytes * 0.8;
    counter.textContent = near ? n + " / " + maxBytes : "";
    form.classList.toggle("too-long", n > maxBytes);
    sendBtn.disabled = n > maxBytes;
  }
  input.addEventListener("input", updateCounter);
  input.addEventListener("keydown", function (e) {
    if (e.key === "Enter" && !e.shiftKey && !e.isComposing) {
      e.preventDefault();
      form.requestSubmit ? form.requestSubmit() : form.dispatchEvent(new Event("submit"));
    }
  });
  form.addEventListener("submit", function (e) {
    e.preventDefault();
    var text = input.value.trim();
    if (!text) return;
    if (bytes(text) > maxBytes) {
      render({ sender: "system", text: t.tooLong + " (" + bytes(text) + " / " + maxBytes + ")" });
      return;
    }
    sendFrame({ type: "message", text: text, client_id: uuid() }, text);
    input.value = "";
    updateCounter();
  });
  setInterval(function () {
    if (ws && ws.readyState === 1) ws.send(JSON.stringify({ type: "ping" }));
  }, 25000);

  function mount() {
    document.body.appendChild(host);
    connect();
  }
  if (document.body) mount();
  else document.addEventListener("DOMContentLoaded", mount);
})();
