/* Concierge chat widget: one <script> tag, no build step, no framework.
 *
 *   <script src="https://chat.example.com/widget.js" data-concierge-url="https://chat.example.com"
 *           data-user-id="42" data-user-hash="..." data-lang="de" defer></script>
 *
 * Everything lives in a Shadow DOM (the page's CSS does not leak in). Message text is always
 * set with textContent or text nodes: nothing a visitor, the bot or staff writes is parsed as HTML.
 *
 * Delivery: every message the visitor sends gets a client_id and stays in a pending list
 * (kept in localStorage, so a reload does not lose it) until the server acks it. After a
 * reconnect the server's history is the truth: pending messages it already stored are dropped,
 * the rest are sent again (the server stores and answers a client_id once).
 *
 * Page API: window.Concierge.open(), window.Concierge.close().
 */
(function () {
  "use strict";
  if (window.__conciergeWidget) return;
  window.__conciergeWidget = true;

  var script = document.currentScript || document.querySelector("script[data-concierge-url]");
  function attr(name) {
    return (script && script.getAttribute(name)) || null;
  }
  var base = (
    attr("data-concierge-url") ||
    (script && script.src ? new URL(script.src, location.href).origin : location.origin)
  ).replace(/\/+$/, "");
  var userId = attr("data-user-id");
  var userHash = attr("data-user-hash");
  var lang = (attr("data-lang") || navigator.language || "en").slice(0, 2).toLowerCase();

  var KEYS = {
    token: "concierge.token", pending: "concierge.pending", read: "concierge.read", user: "concierge.user"
  };
  var store = {
    get: function (k) {
      try { return window.localStorage.getItem(k); } catch (e) { return null; } // private mode
    },
    set: function (k, v) {
      try { window.localStorage.setItem(k, v); } catch (e) { /* full or blocked: keep going */ }
    },
    remove: function (k) {
      try { window.localStorage.removeItem(k); } catch (e) { /* blocked: nothing stored */ }
    }
  };
  // The conversation kept in this browser belonged to an identified customer, and the page now
  // shows someone else (logged out, another account, the next person at a shared computer):
  // forget it, unsent messages included, and start a new visitor session. (An anonymous
  // visitor who logs in keeps theirs: it becomes the customer's. The server checks the same.)
  var previousUser = store.get(KEYS.user) || "";
  if (previousUser && previousUser !== (userId || "")) {
    store.remove(KEYS.token);
    store.remove(KEYS.pending);
    store.remove(KEYS.read);
  }
  store.set(KEYS.user, userId || "");

  // The widget's labels in each language the shop serves. The server writes them here from its
  // responses (utter_widget_*: built in, and a shop may word them its own way in responses.yml)
  // when it serves this file; read as it is, the file speaks English.
  var TEXTS = /*TEXTS*/{ "default": "en", "texts": { "en": {
    "title": "Chat with us", "open": "Open chat", "close": "Close chat", "unread": "{n} unread",
    "placeholder": "Type your question…", "send": "Send", "offline": "Reconnecting…",
    "too_long": "Too long", "staff": "Team", "failed": "Not delivered.", "retry": "Send again",
    "you": "You", "bot": "Assistant", "replies": "Suggested replies" } } }/*END TEXTS*/;
  var textLang = TEXTS.texts[lang] ? lang : TEXTS["default"];
  var t = TEXTS.texts[textLang];

  // --- DOM -------------------------------------------------------------------------------
  function el(tag, cls, attrs) {
    var e = document.createElement(tag);
    if (cls) e.className = cls;
    for (var k in attrs || {}) e.setAttribute(k, attrs[k]);
    return e;
  }

  var host = el("div", null, { id: "concierge-widget" });
  host.style.display = "none"; // until the stylesheet is in: no flash of an unstyled button
  var root = host.attachShadow({ mode: "open" });
  var css = el("link", null, { rel: "stylesheet", href: base + "/widget.css" });
  css.onload = css.onerror = function () { host.style.display = ""; };
  root.appendChild(css);

  var panel = el("section", "panel", { id: "panel", role: "dialog", "aria-labelledby": "title", lang: textLang });
  panel.hidden = true;
  var header = el("header", "header");
  var title = el("h2", "title", { id: "title" });
  title.textContent = t.title;
  var status = el("span", "status", { role: "status" });
  var closeBtn = el("button", "close", { type: "button", "aria-label": t.close, title: t.close });
  closeBtn.textContent = "×";
  header.appendChild(title);
  header.appendChild(status);
  header.appendChild(closeBtn);
  var list = el("ol", "messages", { "aria-live": "polite", "aria-relevant": "additions", tabindex: "0", "aria-labelledby": "title" });
  var typing = el("div", "typing", { "aria-hidden": "true" });
  typing.appendChild(el("span"));
  typing.appendChild(el("span"));
  typing.appendChild(el("span"));
  typing.hidden = true;
  var form = el("form", "composer");
  var input = el("textarea", "input", {
    rows: "1", placeholder: t.placeholder, "aria-label": t.placeholder, "aria-describedby": "counter"
  });
  var counter = el("span", "counter", { id: "counter" });
  var sendBtn = el("button", "send", { type: "submit" });
  sendBtn.textContent = t.send;
  form.appendChild(input);
  form.appendChild(counter);
  form.appendChild(sendBtn);
  panel.appendChild(header);
  panel.appendChild(list);
  panel.appendChild(typing);
  panel.appendChild(form);

  var launcher = el("button", "launcher", { type: "button", "aria-expanded": "false", "aria-controls": "panel" });
  launcher.appendChild(el("span", "launcher-icon", { "aria-hidden": "true" }));
  var badge = el("span", "badge", { "aria-hidden": "true" });
  badge.hidden = true;
  launcher.appendChild(badge);
  root.appendChild(panel);
  root.appendChild(launcher);

  // --- state -----------------------------------------------------------------------------
  var ws = null; // the current socket
  var ready = false; // session + history received on the current socket
  var attempt = 0; // failed connection attempts since the last good session
  var retryTimer = null;
  var pongTimer = null;
  var typingTimer = null;
  var maxBytes = 4096;
  var greeting = null; // the opening message the server offers for an empty chat
  var pending = loadPending(); // frames sent but not acked yet, oldest first
  var byId = {}; // message id -> <li>
  var byClient = {}; // client_id -> <li> (the visitor's own messages)
  var maxId = 0;
  var lastRead = parseInt(store.get(KEYS.read) || "0", 10) || 0;
  var unread = 0;
  var phone = window.matchMedia ? window.matchMedia("(max-width: 480px)") : { matches: false };

  function loadPending() {
    try {
      var p = JSON.parse(store.get(KEYS.pending) || "[]");
      return Array.isArray(p) ? p.filter(function (f) { return f && f.client_id && f.type; }) : [];
    } catch (e) {
      return [];
    }
  }
  function savePending() {
    store.set(KEYS.pending, JSON.stringify(pending));
  }
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
  function shownText(frame) {
    return frame.type === "button" ? frame.title || frame.payload : frame.text;
  }

  // --- rendering -------------------------------------------------------------------------
  var URL_RE = /https?:\/\/[^\s<>"']+/g;
  function appendText(node, text, links) {
    text = String(text == null ? "" : text);
    if (!links) {
      node.textContent = text;
      return;
    }
    var at = 0;
    text.replace(URL_RE, function (found, pos) {
      var url = found.replace(/[.,;:!?)\]]+$/, "");
      node.appendChild(document.createTextNode(text.slice(at, pos)));
      var a = el("a", "link", { href: url, target: "_blank", rel: "noopener noreferrer" });
      a.textContent = url;
      node.appendChild(a);
      at = pos + url.length;
      return found;
    });
    node.appendChild(document.createTextNode(text.slice(at)));
  }

  function setState(li, state) {
    if (li) li.setAttribute("data-state", state);
  }

  function spendQuickReplies() {
    // once the visitor has answered, older quick replies are history, not choices
    var old = list.querySelectorAll("button.quick");
    for (var i = 0; i < old.length; i++) old[i].disabled = true;
  }

  function addMessage(m, live) {
    if (m.id != null && byId[m.id]) return byId[m.id];
    if (m.client_id && byClient[m.client_id]) {
      if (m.id != null) byId[m.id] = byClient[m.client_id];
      return byClient[m.client_id];
    }
    var sender = /^(user|bot|staff|system)$/.test(m.sender) ? m.sender : "bot";
    var li = el("li", "msg from-" + sender);
    if (m.ts) {
      var when = new Date(m.ts);
      if (!isNaN(when)) li.title = when.toLocaleString(lang);
    }
    if (sender === "staff") {
      var who = el("span", "who");
      who.textContent = (m.metadata && m.metadata.staff_name) || t.staff;
      li.appendChild(who);
    } else if (sender === "user" || sender === "bot") {
      var said = el("span", "sr-only"); // who said it, for screen readers
      said.textContent = (sender === "user" ? t.you : t.bot) + ": ";
      li.appendChild(said);
    }
    var bubble = el("div", "bubble");
    appendText(bubble, m.text, sender !== "user");
    li.appendChild(bubble);
    if (sender === "user") spendQuickReplies();
    if (m.buttons && m.buttons.length) li.appendChild(quickReplies(m.buttons));
    if (m.id != null) {
      byId[m.id] = li;
      if (m.id > maxId) maxId = m.id;
    }
    if (m.client_id) byClient[m.client_id] = li;
    list.appendChild(li);
    list.scrollTop = list.scrollHeight;
    if (live && (sender === "bot" || sender === "staff")) {
      hideTyping();
      if (isOpen()) markRead();
      else setUnread(unread + 1);
    }
    return li;
  }

  function quickReplies(buttons) {
    var row = el("div", "buttons", { role: "group", "aria-label": t.replies });
    buttons.forEach(function (b) {
      if (!b || (b.title == null && b.payload == null)) return;
      var label = String(b.title != null ? b.title : b.payload);
      var btn;
      if (b.url && /^https?:\/\//i.test(b.url)) {
        btn = el("a", "quick link-button", { href: b.url, target: "_blank", rel: "noopener noreferrer" });
      } else {
        btn = el("button", "quick", { type: "button" });
        btn.addEventListener("click", function () {
          if (btn.disabled) return;
          submit({ type: "button", payload: String(b.payload != null ? b.payload : label), title: label, client_id: uuid() });
          input.focus(); // the pressed button is spent (disabled): focus stays in the chat
        });
      }
      btn.textContent = label;
      row.appendChild(btn);
    });
    return row;
  }

  function markFailed(li, frame, reason) {
    if (!li) return;
    setState(li, "failed");
    var old = li.querySelector(".failure");
    if (old) li.removeChild(old);
    var note = el("div", "failure");
    var why = el("span");
    why.textContent = t.failed + (reason ? " " + reason : "");
    var again = el("button", "retry", { type: "button" });
    again.textContent = t.retry;
    again.addEventListener("click", function () {
      list.removeChild(li);
      delete byClient[frame.client_id];
      var copy = {};
      for (var k in frame) copy[k] = frame[k];
      copy.client_id = uuid();
      submit(copy);
      input.focus();
    });
    note.appendChild(why);
    note.appendChild(again);
    li.appendChild(note);
  }

  function setUnread(n) {
    unread = n;
    badge.textContent = n > 99 ? "99+" : String(n);
    badge.hidden = n === 0;
    launcher.setAttribute("aria-label", n ? t.open + " (" + t.unread.replace("{n}", n) + ")" : t.open);
  }
  function markRead() {
    setUnread(0);
    if (maxId > lastRead) {
      lastRead = maxId;
      store.set(KEYS.read, String(lastRead));
    }
  }

  function showTyping(on) {
    clearTimeout(typingTimer);
    typing.hidden = !on;
    if (on) {
      typingTimer = setTimeout(hideTyping, 20000); // never spin forever on a lost "off"
      list.scrollTop = list.scrollHeight;
    }
  }
  function hideTyping() {
    showTyping(false);
  }

  function setStatus(text) {
    status.textContent = text || "";
    panel.classList.toggle("offline", !!text);
  }

  // --- sending ---------------------------------------------------------------------------
  function submit(frame) {
    pending.push(frame);
    savePending();
    setState(addMessage({ sender: "user", text: shownText(frame), client_id: frame.client_id }, true), "sending");
    if (ready) transmit(frame);
  }
  function transmit(frame) {
    if (!ws || ws.readyState !== 1) return false;
    try {
      ws.send(JSON.stringify(frame));
      return true;
    } catch (e) {
      return false;
    }
  }
  function settle(clientId) {
    var before = pending.length;
    pending = pending.filter(function (f) { return f.client_id !== clientId; });
    if (pending.length !== before) savePending();
  }

  // --- connection ------------------------------------------------------------------------
  function socketUrl() {
    var q = [];
    var token = store.get(KEYS.token);
    if (token) q.push("token=" + encodeURIComponent(token));
    if (userId) q.push("user_id=" + encodeURIComponent(userId));
    if (userHash) q.push("user_hash=" + encodeURIComponent(userHash));
    if (lang) q.push("lang=" + encodeURIComponent(lang));
    return base.replace(/^http/i, "ws") + "/ws/chat" + (q.length ? "?" + q.join("&") : "");
  }

  function detach(sock) {
    if (!sock) return;
    sock.onopen = sock.onmessage = sock.onclose = sock.onerror = null;
    try { sock.close(); } catch (e) { /* already closed */ }
  }

  function connect() {
    clearTimeout(retryTimer);
    retryTimer = null;
    detach(ws);
    ready = false;
    var sock;
    try {
      sock = new WebSocket(socketUrl());
    } catch (e) {
      ws = null;
      lost();
      return;
    }
    ws = sock;
    sock.onmessage = function (ev) {
      if (sock !== ws) return;
      clearTimeout(pongTimer);
      var f;
      try { f = JSON.parse(ev.data); } catch (e) { return; }
      if (f && typeof f === "object") onFrame(f);
    };
    sock.onclose = function () {
      if (sock === ws) lost();
    };
    sock.onerror = function () { /* onclose follows */ };
  }

  // the socket is gone (or presumed dead): show it, and try again later with backoff
  function lost() {
    clearTimeout(pongTimer);
    detach(ws);
    ws = null;
    ready = false;
    hideTyping();
    setStatus(t.offline);
    if (retryTimer) return;
    var delay = Math.min(30000, 500 * Math.pow(2, attempt)) * (0.5 + Math.random() / 2);
    attempt = Math.min(attempt + 1, 20);
    retryTimer = setTimeout(connect, delay);
  }

  function onFrame(f) {
    if (f.type === "session") {
      if (f.token) store.set(KEYS.token, f.token);
      if (f.max_message_bytes > 0) maxBytes = f.max_message_bytes;
      greeting = f.greeting && typeof f.greeting.text === "string" ? f.greeting : null;
      updateCounter();
    } else if (f.type === "history") {
      onHistory(Array.isArray(f.messages) ? f.messages : []);
    } else if (f.type === "message") {
      addMessage(f, true);
    } else if (f.type === "typing") {
      showTyping(!!f.on);
    } else if (f.type === "ack") {
      settle(f.client_id);
      var li = byClient[f.client_id];
      setState(li, "sent");
      if (li && f.id != null) byId[f.id] = li;
    } else if (f.type === "error") {
      onError(f);
    }
  }

  function onHistory(messages) {
    list.setAttribute("aria-busy", "true");
    list.textContent = "";
    byId = {};
    byClient = {};
    var stored = {};
    var news = 0;
    if (!messages.length && !pending.length && greeting) {
      // an empty chat opens with a greeting and questions to tap (not stored: nothing to sync)
      addMessage({ sender: "bot", text: greeting.text, buttons: greeting.buttons || [] }, false)
        .classList.add("greeting");
    }
    messages.forEach(function (m) {
      if (m.client_id) stored[m.client_id] = true;
      if (m.id != null && m.id > lastRead && (m.sender === "bot" || m.sender === "staff")) news++;
      addMessage(m, false);
    });
    // what the server already has is done; the rest goes (again) now
    pending = pending.filter(function (f) { return !stored[f.client_id]; });
    savePending();
    pending.forEach(function (f) {
      setState(addMessage({ sender: "user", text: shownText(f), client_id: f.client_id }, false), "sending");
    });
    list.removeAttribute("aria-busy");
    ready = true;
    attempt = 0;
    setStatus("");
    if (isOpen()) markRead();
    else setUnread(news);
    pending.forEach(transmit);
  }

  function onError(f) {
    if (f.client_id) {
      var frame = null;
      pending.forEach(function (p) { if (p.client_id === f.client_id) frame = p; });
      settle(f.client_id);
      if (frame) {
        hideTyping();
        markFailed(byClient[f.client_id], frame, f.message);
        return;
      }
    }
    if (f.code === "bad_identity") {
      if (window.console) console.warn("Concierge: " + f.message);
      return;
    }
    addMessage({ sender: "system", text: f.message || f.code }, false);
  }

  // heartbeat: a ping every 25 s; no answer within 10 s means the link is dead
  setInterval(function () {
    if (!ready || !transmit({ type: "ping" })) return;
    clearTimeout(pongTimer);
    pongTimer = setTimeout(lost, 10000);
  }, 25000);
  window.addEventListener("offline", function () {
    if (ws) lost();
  });
  window.addEventListener("online", function () {
    attempt = 0;
    connect(); // the old socket may be half dead: start fresh
  });
  document.addEventListener("visibilitychange", function () {
    if (document.visibilityState === "visible" && !ws && retryTimer) connect();
  });

  // --- behaviour -------------------------------------------------------------------------
  function open() {
    if (isOpen()) return;
    panel.hidden = false;
    launcher.setAttribute("aria-expanded", "true");
    host.classList.add("open");
    panel.setAttribute("aria-modal", phone.matches ? "true" : "false");
    if (phone.matches) document.documentElement.classList.add("concierge-open");
    markRead();
    list.scrollTop = list.scrollHeight;
    input.focus();
  }
  function close() {
    if (!isOpen()) return;
    panel.hidden = true;
    launcher.setAttribute("aria-expanded", "false");
    host.classList.remove("open");
    document.documentElement.classList.remove("concierge-open");
    launcher.focus();
  }
  launcher.addEventListener("click", function () {
    if (isOpen()) close();
    else open();
  });
  closeBtn.addEventListener("click", close);
  root.addEventListener("keydown", function (e) {
    if (e.key === "Escape" && isOpen()) {
      e.preventDefault();
      close();
    } else if (e.key === "Tab" && isOpen() && phone.matches) {
      trapFocus(e); // full-screen on a phone: the page behind is out of reach
    }
  });
  document.addEventListener("keydown", function (e) {
    // focus may have left the widget for the page body (a removed element): Escape still closes
    var away = document.activeElement === document.body || document.activeElement === null;
    if (e.key === "Escape" && isOpen() && away) {
      e.preventDefault();
      close();
    }
  });
  function trapFocus(e) {
    var all = panel.querySelectorAll("button:not([disabled]), a[href], textarea, [tabindex='0']");
    var items = [];
    for (var i = 0; i < all.length; i++) if (all[i].offsetParent !== null) items.push(all[i]);
    if (!items.length) return;
    var first = items[0];
    var last = items[items.length - 1];
    var active = root.activeElement;
    if (e.shiftKey && active === first) {
      e.preventDefault();
      last.focus();
    } else if (!e.shiftKey && active === last) {
      e.preventDefault();
      first.focus();
    }
  }

  function updateCounter() {
    var n = bytes(input.value);
    var over = n > maxBytes;
    counter.textContent = n > maxBytes * 0.8 ? n + " / " + maxBytes : "";
    form.classList.toggle("too-long", over);
    input.setAttribute("aria-invalid", over ? "true" : "false");
    sendBtn.disabled = over;
    sendBtn.title = over ? t.too_long : "";
  }
  function grow() {
    input.style.height = "auto";
    input.style.height = Math.min(input.scrollHeight + 2, 120) + "px";
  }
  input.addEventListener("input", function () {
    updateCounter();
    grow();
  });
  input.addEventListener("keydown", function (e) {
    if (e.key === "Enter" && !e.shiftKey && !e.isComposing) {
      e.preventDefault();
      if (form.requestSubmit) form.requestSubmit();
      else form.dispatchEvent(new Event("submit", { cancelable: true }));
    }
  });
  form.addEventListener("submit", function (e) {
    e.preventDefault();
    var text = input.value.trim();
    if (!text || bytes(text) > maxBytes) return;
    submit({ type: "message", text: text, client_id: uuid() });
    input.value = "";
    updateCounter();
    grow();
  });

  window.Concierge = { open: open, close: close };

  function mount() {
    var style = document.createElement("style"); // the only rule outside the shadow root
    style.textContent = "html.concierge-open, html.concierge-open body { overflow: hidden; }";
    (document.head || document.body).appendChild(style);
    document.body.appendChild(host);
    setUnread(0);
    updateCounter();
    pending.forEach(function (f) { // typed before a reload and never acked: still on its way
      setState(addMessage({ sender: "user", text: shownText(f), client_id: f.client_id }, false), "sending");
    });
    connect();
  }
  if (document.body) mount();
  else document.addEventListener("DOMContentLoaded", mount);
})();
