/* Pigeon: the one small script. Every page works without it; with it, the open thread, the
   conversation list and the unread badge stay live over the WebSocket (or, when that is not
   available, by asking the server every few seconds), replies send without a reload, files
   upload as soon as they are chosen, pasted or dropped, and photos open in a viewer.
   Message HTML always comes from the server's templates (escaped there); this script only
   moves it into place and never builds markup from message text (file names it shows are set
   as text). */
(function () {
  "use strict";
  var body = document.body;
  var me = Number(body.dataset.userId || 0);
  var messagingOn = body.dataset.messaging === "on";
  var meta = document.querySelector('meta[name="csrf-token"]');
  var csrf = meta ? meta.content : "";
  var thread = document.getElementById("thread");
  var convId = thread ? Number(thread.dataset.conversationId) : 0;
  var kind = thread ? thread.dataset.kind : "";
  var live = !!thread && thread.dataset.live === "1";
  var list = document.getElementById("messages");
  var scroller = document.getElementById("scroller");
  var form = document.getElementById("reply-form");
  var box = document.getElementById("reply-body");
  var errorEl = document.getElementById("reply-error");
  var typingEl = document.getElementById("typing");
  var jump = document.getElementById("jump");
  var names = {};
  var lastId = thread ? Number(thread.dataset.lastId || 0) : 0;
  var globalLast = 0, readSent = 0, seenUpTo = 0, ws = null, wsTries = 0, pollTimer = null, stopped = false;
  var typingTimer = null, typingSent = 0, fetching = false, again = false, listTimer = null;

  try { names = JSON.parse(thread ? thread.dataset.people || "{}" : "{}"); } catch (e) { names = {}; }

  function api(method, url, data) {
    return fetch(url, {
      method: method, credentials: "same-origin",
      headers: { "Content-Type": "application/json", "Accept": "application/json", "X-CSRF-Token": csrf },
      body: data ? JSON.stringify(data) : undefined
    }).then(function (r) {
      if (r.status === 204) return { ok: true, status: 204, data: null, headers: r.headers };
      return r.json().catch(function () { return null; }).then(function (d) {
        return { ok: r.ok, status: r.status, data: d, headers: r.headers };
      });
    });
  }

  function getHTML(url) {
    return fetch(url, { credentials: "same-origin", headers: { "Accept": "text/html" } })
      .then(function (r) {
        if (r.redirected && /\/login/.test(r.url)) { banner("Your session has ended. Reload the page to sign in again."); stopped = true; stopPolling(); }
        if (!r.ok || r.redirected) throw new Error("HTTP " + r.status);
        return r.text();
      });
  }

  function fragment(html) {
    var t = document.createElement("template");
    t.innerHTML = html;
    return t.content;
  }

  /* --- times in the reader's zone --- */
  // tell the server our zone, so the pages it renders group days as we live them
  try {
    var zone = Intl.DateTimeFormat().resolvedOptions().timeZone;
    if (zone && /^[A-Za-z0-9_+\/-]{1,64}$/.test(zone) && document.cookie.indexOf("tz=" + zone) < 0) {
      document.cookie = "tz=" + zone + "; path=/; max-age=31536000; samesite=lax";
    }
  } catch (e) { /* an old browser: the server's zone it is */ }

  function localize(root) {
    var nodes = (root || document).querySelectorAll("time[data-format]");
    var today = new Date().toDateString();
    for (var i = 0; i < nodes.length; i++) {
      var el = nodes[i], d = new Date(el.getAttribute("datetime"));
      if (isNaN(d)) continue;
      var hm = d.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
      if (el.dataset.format === "time" || d.toDateString() === today) el.textContent = hm;
      else if (Date.now() - d < 6 * 864e5) el.textContent = d.toLocaleDateString([], { weekday: "short" });
      else el.textContent = d.toLocaleDateString([], { month: "short", day: "numeric" });
      el.title = d.toLocaleString();
    }
  }

  /* --- the badge --- */
  function setBadge(total) {
    if (typeof total !== "number" || total < 0) return;
    var badge = document.getElementById("nav-unread");
    if (badge) {
      badge.hidden = total === 0;
      var count = badge.querySelector(".badge-count");
      if (count) count.textContent = String(total);
    }
    document.title = document.title.replace(/^\(\d+\) /, "") ;
    if (total > 0) document.title = "(" + total + ") " + document.title;
  }

  /* --- the conversation list --- */
  function refreshList() {
    var wrap = document.getElementById("convlist-wrap");
    if (!wrap || /[?&]before=/.test(location.search)) return;
    clearTimeout(listTimer);
    listTimer = setTimeout(function () {
      var shelf = /[?&]archived=1/.test(location.search) ? "&archived=1" : "";
      var base = wrap.dataset.requests ? "/messages/requests?partial=1" : "/messages?partial=1";  /* message requests */
      getHTML(base + "&current=" + (convId || 0) + shelf).then(function (html) {
        wrap.replaceChildren(fragment(html));
        localize(wrap);
      }).catch(function () {});
    }, 250);
  }

  /* --- scrolling: the thread opens at the bottom; readers who scrolled up stay put --- */
  function distanceFromBottom() { return scroller ? Math.abs(scroller.scrollTop) : 0; }
  function atBottom() { return distanceFromBottom() < 80; }
  function toBottom() { if (scroller) scroller.scrollTop = 0; if (jump) jump.hidden = true; }

  function keepPlace(change) {
    if (!scroller) { change(); return false; }
    var stick = atBottom();
    var fromTop = scroller.scrollHeight - scroller.clientHeight - distanceFromBottom();
    change();
    if (stick) { toBottom(); return false; }
    scroller.scrollTop = -Math.max(0, scroller.scrollHeight - scroller.clientHeight - fromTop);
    return true;
  }

  /* --- messages in the open thread --- */
  function wire(root) {
    var forms = root.querySelectorAll("form[data-confirm]");
    for (var i = 0; i < forms.length; i++) {
      forms[i].addEventListener("submit", function (e) {
        if (!window.confirm(this.dataset.confirm)) e.preventDefault();
      });
    }
    localize(root);
  }

  function insert(html) {
    var frag = fragment(html);
    var items = Array.prototype.slice.call(frag.children).filter(function (el) {
      return el.tagName === "LI" && (el.classList.contains("msg") || el.classList.contains("day"));
    });
    var added = [], theirs = false;
    var moved = keepPlace(function () {
      items.forEach(function (li) {
        if (li.classList.contains("day")) {
          var days = list.querySelectorAll("li.day");
          var lastDay = days.length ? days[days.length - 1].dataset.day : null;
          if (lastDay !== li.dataset.day) list.appendChild(li);
          return;
        }
        var id = Number(li.dataset.id);
        var old = document.getElementById(li.id);
        if (old) { old.replaceWith(li); return; }
        list.appendChild(li);
        added.push(li);
        if (id > lastId) lastId = id;
        if (Number(li.dataset.sender) !== me) theirs = true;
        else document.querySelectorAll(".msg .seen").forEach(function (s) { s.remove(); });
      });
      var empty = document.querySelector(".empty-thread");
      if (empty && list.querySelector(".msg")) empty.remove();
    });
    added.forEach(wire);
    if (seenUpTo) markSeen(seenUpTo);
    if (moved && theirs && jump) jump.hidden = false;
    if (theirs) { clearTyping(); markRead(); }
  }

  function catchUp() {
    if (!live || !list) return;
    if (fetching) { again = true; return; }
    fetching = true;
    getHTML("/messages/" + convId + "/after/" + lastId).then(insert).catch(function () {})
      .then(function () { fetching = false; if (again) { again = false; catchUp(); } });
  }

  function refreshOne(id, then) {
    if (!list || !document.getElementById("m" + id)) return;
    getHTML("/messages/" + convId + "/m/" + id).then(function (html) {
      var li = fragment(html).querySelector("li.msg");
      var old = document.getElementById("m" + id);
      if (li && old) {
        var seen = old.querySelector(".seen");
        if (seen) li.appendChild(seen);
        old.replaceWith(li); wire(li);
        if (then) then(li);
      }
    }).catch(function () {});
  }

  function markRead() {
    if (!live || document.visibilityState !== "visible" || lastId <= readSent) return;
    readSent = lastId;
    api("POST", "/api/v1/conversations/" + convId + "/read", { message_id: lastId }).catch(function () {});
  }

  function markSeen(messageId) {
    if (kind !== "direct" || !list) return;
    // a receipt may arrive before our own message is on the page: remember it for later
    if (messageId > seenUpTo) seenUpTo = messageId;
    messageId = seenUpTo;
    var mine = list.querySelectorAll("li.msg.mine:not(.deleted)");
    var last = mine.length ? mine[mine.length - 1] : null;
    if (!last || Number(last.dataset.id) > messageId || last.querySelector(".seen")) return;
    document.querySelectorAll(".msg .seen").forEach(function (s) { s.remove(); });
    var p = document.createElement("p");
    p.className = "seen"; p.textContent = "Seen";
    keepPlace(function () { last.appendChild(p); });
  }

  function showTyping(userId) {
    if (!typingEl) return;
    var who = names[String(userId)] || "Someone";
    typingEl.textContent = who + " is typing…";
    clearTimeout(typingTimer);
    typingTimer = setTimeout(clearTyping, 6000);
  }
  function clearTyping() { if (typingEl) typingEl.textContent = ""; clearTimeout(typingTimer); }

  function messagingSwitchedOff() {
    stopped = true;
    var nav = document.getElementById("nav-messages");
    if (nav && nav.parentNode) nav.parentNode.remove();
    var btn = document.getElementById("message-button");
    if (btn) (btn.closest("form") || btn).remove();
    if (form) form.querySelectorAll("button").forEach(function (b) { b.disabled = true; });
    banner("An admin has switched messaging off. Your conversations are kept.");
  }

  function banner(text) {
    var el = document.getElementById("live-banner");
    if (!el) return;
    el.textContent = text || "";
    el.hidden = !text;
  }

  /* --- live events --- */
  function handle(frame) {
    var type = frame && frame.type, data = (frame && frame.data) || {};
    if (type === "hello") {
      var total = [data.unread, data.unread_total, data.total].filter(function (v) { return typeof v === "number"; })[0];
      if (typeof total === "number") setBadge(total);
      var latest = data.last_message_id || data.latest_message_id || 0;
      if (latest > globalLast) globalLast = latest;
      catchUp(); refreshList();
    } else if (type === "message.new") {
      if (data.id > globalLast) globalLast = data.id;
      if (data.conversation_id === convId) { if (data.sender_id !== me) clearTyping(); catchUp(); }
      refreshList();
    } else if (type === "message.updated" || type === "message.deleted") {
      if (data.conversation_id === convId) refreshOne(data.id || frame.id);
      refreshList();
    } else if (type === "reaction.added" || type === "reaction.removed") {
      if (data.conversation_id === convId) refreshOne(data.message_id);
    } else if (type === "conversation.updated") {
      if (data.conversation_id === convId && data.change === "deleted") { location.href = "/messages"; return; }
      refreshList();
    } else if (type === "receipt.read") {
      if (data.conversation_id === convId && data.user_id !== me) markSeen(data.message_id);
    } else if (type === "typing") {
      if (data.conversation_id === convId && data.user_id !== me) showTyping(data.user_id);
    } else if (type === "unread") {
      setBadge(data.total);
      refreshList();
    } else if (type === "messaging.disabled") {
      messagingSwitchedOff();
    }
  }

  function connect() {
    if (stopped) return;
    if (!("WebSocket" in window)) { startPolling(); return; }
    var proto = location.protocol === "https:" ? "wss:" : "ws:";
    try { ws = new WebSocket(proto + "//" + location.host + "/api/v1/ws"); }
    catch (e) { ws = null; reconnectLater(); return; }
    ws.onopen = function () {
      var wasDown = wsTries > 0;
      wsTries = 0; stopPolling(); banner(null);
      if (globalLast) ws.send(JSON.stringify({ type: "resume", last_message_id: globalLast }));
      if (wasDown) { catchUp(); refreshList(); }
    };
    ws.onmessage = function (ev) {
      var frame; try { frame = JSON.parse(ev.data); } catch (e) { return; }
      handle(frame);
    };
    ws.onclose = function () { ws = null; if (!stopped) reconnectLater(); };
  }

  function reconnectLater() {
    wsTries += 1;
    if (wsTries >= 2) startPolling();
    var delay = Math.min(30000, 1000 * Math.pow(2, Math.min(wsTries - 1, 5))) + Math.random() * 500;
    setTimeout(connect, delay);
  }

  /* without a WebSocket: ask the server now and then, so the page still stays current */
  function poll() {
    catchUp();
    api("GET", "/api/v1/unread").then(function (r) {
      if (r.ok && r.data) setBadge(r.data.total);
      else if (r.data && r.data.error && r.data.error.code === "messaging_disabled") messagingSwitchedOff();
    }).catch(function () {});
    refreshList();
  }
  function startPolling() {
    if (pollTimer || stopped) return;
    pollTimer = setInterval(function () { if (document.visibilityState === "visible") poll(); }, live ? 3000 : 10000);
  }
  function stopPolling() { if (pollTimer) { clearInterval(pollTimer); pollTimer = null; } }

  /* --- the reply form --- */
  function newClientId() {
    var a = new Uint8Array(12); crypto.getRandomValues(a);
    return Array.prototype.map.call(a, function (b) { return ("0" + b.toString(16)).slice(-2); }).join("");
  }
  function showError(text) { if (errorEl) { errorEl.textContent = text || ""; errorEl.hidden = !text; } }
  function grow() { if (!box) return; box.style.height = "auto"; box.style.height = Math.min(box.scrollHeight + 2, 144) + "px"; }

  /* --- files: chosen, pasted or dropped, each uploaded at once (with its progress, a way to
     cancel and, when it fails, to retry); the form then names the uploads, never sends files --- */
  var fileInput = document.getElementById("reply-files");
  var attachBtn = document.getElementById("attach");
  var pendingEl = document.getElementById("pending");
  var sendBtn = form ? form.querySelector("button.send") : null;
  var maxFiles = form ? Number(form.dataset.maxFiles || 10) : 10;
  var pending = [];

  function sizeText(n) {
    if (n < 1024) return n + (n === 1 ? " byte" : " bytes");
    var units = ["KB", "MB", "GB", "TB"], v = n, unit = "";
    for (var i = 0; i < units.length; i++) { v /= 1024; unit = units[i]; if (v < 1024) break; }
    return (v < 10 ? v.toFixed(1) : String(Math.round(v))) + " " + unit;
  }
  function uploading() { return pending.some(function (p) { return p.state === "uploading"; }); }
  function anyFailed() { return pending.some(function (p) { return p.state === "failed"; }); }
  function readyItems() { return pending.filter(function (p) { return p.state === "done"; }); }
  function syncComposer() {
    if (pendingEl) pendingEl.hidden = pending.length === 0;
    if (sendBtn) sendBtn.disabled = stopped || uploading();
  }
  /* what stops a send, or null: files still on their way, or failed ones not dealt with */
  function filesNotReady() {
    if (uploading()) return "Wait until the files have uploaded.";
    if (anyFailed()) return "Some files did not upload: retry them or remove them.";
    return null;
  }

  function node(tag, cls, text) {
    var el = document.createElement(tag);
    if (cls) el.className = cls;
    if (text != null) el.textContent = text;
    return el;
  }

  function pendingItem(file) {
    var name = file.name || "Pasted image";
    var item = { file: file, name: name, state: "uploading", xhr: null, id: 0, url: null };
    var li = node("li", "pending-item");
    if (/^image\//.test(file.type)) {
      item.url = URL.createObjectURL(file);
      var img = node("img", "pending-thumb"); img.src = item.url; img.alt = "";
      li.appendChild(img);
    } else {
      var ext = (/\.([A-Za-z0-9]{1,4})$/.exec(name) || [])[1];
      var icon = node("span", "file-icon", (ext || "file").toUpperCase());
      var kind = /^application\/pdf/.test(file.type) ? "pdf" : (/^(audio|video|text)\//.exec(file.type) || [])[1];
      if (kind) icon.dataset.kind = kind;
      icon.setAttribute("aria-hidden", "true");
      li.appendChild(icon);
    }
    var main = node("span", "pending-main");
    main.appendChild(node("span", "pending-name", name));
    item.status = node("span", "pending-size", sizeText(file.size));
    main.appendChild(item.status);
    item.bar = node("progress", "pending-bar");
    item.bar.max = 100; item.bar.value = 0;
    item.bar.setAttribute("aria-label", "Uploading " + name);
    main.appendChild(item.bar);
    item.err = node("span", "pending-error"); item.err.hidden = true;
    item.err.setAttribute("role", "alert");
    main.appendChild(item.err);
    li.appendChild(main);
    item.retry = node("button", "pending-retry small", "Retry");
    item.retry.type = "button"; item.retry.hidden = true;
    item.retry.setAttribute("aria-label", "Retry uploading " + name);
    item.retry.addEventListener("click", function () { upload(item); });
    item.cancel = node("button", "pending-cancel", "×");
    item.cancel.type = "button";
    item.cancel.setAttribute("aria-label", "Remove " + name);
    item.cancel.addEventListener("click", function () { drop(item, false); if (box) box.focus(); });
    li.appendChild(item.retry); li.appendChild(item.cancel);
    item.li = li;
    return item;
  }

  function addFiles(list) {
    var files = Array.prototype.slice.call(list || []);
    if (!files.length || !pendingEl) return;
    var room = maxFiles - pending.length;
    showError(files.length > room ? "At most " + maxFiles + " files at a time." : null);
    files.slice(0, Math.max(0, room)).forEach(function (file) {
      var item = pendingItem(file);
      pending.push(item);
      pendingEl.appendChild(item.li);
      upload(item);
    });
    syncComposer();
  }

  function upload(item) {
    var xhr = new XMLHttpRequest();
    item.xhr = xhr; item.state = "uploading"; item.li.dataset.state = "uploading";
    item.bar.hidden = false; item.bar.value = 0;
    item.err.hidden = true; item.retry.hidden = true;
    item.status.textContent = sizeText(item.file.size);
    xhr.open("POST", "/api/v1/media/upload");
    xhr.setRequestHeader("Accept", "application/json");
    xhr.setRequestHeader("X-CSRF-Token", csrf);
    xhr.upload.onprogress = function (e) {
      if (e.lengthComputable && e.total) item.bar.value = Math.round(e.loaded / e.total * 100);
    };
    xhr.onload = function () {
      var data = null;
      try { data = JSON.parse(xhr.responseText); } catch (e) { data = null; }
      if (xhr.status === 201 && data && data.id) uploaded(item, data.id);
      else failed(item, data && data.error ? data.error.message : "The upload failed. Try again.");
    };
    xhr.onerror = function () { failed(item, "No connection right now."); };
    var body = new FormData();
    if (convId) body.append("conversation_id", String(convId));
    body.append("file", item.file, item.file.name || "pasted.png");
    xhr.send(body);
    syncComposer();
  }

  function uploaded(item, id) {
    item.xhr = null; item.state = "done"; item.id = id; item.li.dataset.state = "done";
    item.bar.value = 100;
    item.status.textContent = sizeText(item.file.size) + " · ready";
    var named = node("input"); named.type = "hidden"; named.name = "attachment_ids"; named.value = String(id);
    item.li.appendChild(named);  // inside the form: a plain submit names it too
    syncComposer();
  }

  function failed(item, message) {
    item.xhr = null; item.state = "failed"; item.li.dataset.state = "failed";
    item.bar.hidden = true;
    item.err.textContent = message; item.err.hidden = false; item.retry.hidden = false;
    syncComposer();
  }

  /* sent: the upload now belongs to its message; cancelled: it is removed from the server too */
  function drop(item, sent) {
    if (item.xhr) { var xhr = item.xhr; item.xhr = null; xhr.abort(); }
    else if (item.state === "done" && !sent) api("DELETE", "/api/v1/media/" + item.id).catch(function () {});
    if (item.url) URL.revokeObjectURL(item.url);
    item.li.remove();
    pending = pending.filter(function (p) { return p !== item; });
    syncComposer();
  }

  function filesFrom(transfer) {
    return transfer && transfer.files && transfer.files.length ? transfer.files : null;
  }
  function carriesFiles(e) {
    var types = e.dataTransfer && e.dataTransfer.types;
    return !!types && Array.prototype.indexOf.call(types, "Files") >= 0;
  }

  if (form && box && fileInput && attachBtn && pendingEl && window.FormData && !box.disabled) {
    var filesRow = document.getElementById("files-row");
    if (filesRow) filesRow.hidden = true;
    attachBtn.hidden = false;
    attachBtn.addEventListener("click", function () { fileInput.click(); });
    fileInput.addEventListener("change", function () {
      addFiles(fileInput.files);
      fileInput.value = "";  // the files went up already: a plain submit must not send them again
    });
    box.addEventListener("paste", function (e) {
      var files = filesFrom(e.clipboardData);
      // text and a picture of it (a spreadsheet, a web page): the text is what was meant
      if (!files || Array.prototype.indexOf.call(e.clipboardData.types || [], "text/plain") >= 0) return;
      e.preventDefault();
      addFiles(files);
    });
    var depth = 0;
    thread.addEventListener("dragenter", function (e) {
      if (!carriesFiles(e)) return;
      e.preventDefault(); depth += 1; thread.classList.add("dropping");
    });
    thread.addEventListener("dragover", function (e) {
      if (!carriesFiles(e)) return;
      e.preventDefault(); e.dataTransfer.dropEffect = "copy";
    });
    thread.addEventListener("dragleave", function (e) {
      if (!carriesFiles(e)) return;
      depth = Math.max(0, depth - 1);
      if (!depth) thread.classList.remove("dropping");
    });
    thread.addEventListener("drop", function (e) {
      if (!carriesFiles(e)) return;
      e.preventDefault(); depth = 0; thread.classList.remove("dropping");
      addFiles(filesFrom(e.dataTransfer));
      box.focus();
    });
    // a file dropped next to the thread must not open in place of the page
    document.addEventListener("dragover", function (e) { if (carriesFiles(e)) e.preventDefault(); });
    document.addEventListener("drop", function (e) { if (carriesFiles(e)) e.preventDefault(); });
    if (!live) {
      form.addEventListener("submit", function (e) {
        var wait = filesNotReady();
        if (wait) { e.preventDefault(); showError(wait); }
      });
    }
  }

  /* --- photos: the full size in a viewer (without script the link opens the image) --- */
  var lightbox = document.getElementById("lightbox");
  if (lightbox && list && typeof lightbox.showModal === "function") {
    var full = null;  // made on first use: the page holds no image it does not show
    var original = document.getElementById("lightbox-open");
    list.addEventListener("click", function (e) {
      var link = e.target.closest ? e.target.closest("a[data-lightbox]") : null;
      if (!link || e.button !== 0 || e.ctrlKey || e.metaKey || e.shiftKey || e.altKey) return;
      e.preventDefault();
      var thumb = link.querySelector("img");
      if (!full) { full = node("img", "lightbox-img"); lightbox.appendChild(full); }
      full.src = link.href;
      full.alt = thumb ? thumb.alt : "";
      if (original) original.href = link.href;
      lightbox.showModal();
    });
    lightbox.addEventListener("click", function (e) {
      if (e.target === lightbox || e.target === full) lightbox.close();
    });
    lightbox.addEventListener("close", function () { if (full) full.removeAttribute("src"); });
  }

  if (form && box && live) {
    var idField = form.querySelector('input[name="client_msg_id"]');
    var button = sendBtn;
    form.addEventListener("submit", function (e) {
      e.preventDefault();
      var text = box.value;
      var wait = filesNotReady();
      if (wait) { showError(wait); return; }
      var sending = readyItems();
      var ids = sending.map(function (p) { return p.id; });
      if (!text.trim() && !ids.length) { showError("Write something first."); box.focus(); return; }
      button.disabled = true;
      api("POST", "/api/v1/conversations/" + convId + "/messages", { body: text, client_msg_id: idField.value, attachment_ids: ids })
        .then(function (r) {
          if (r.ok) {
            if (box.value === text) box.value = "";
            sending.forEach(function (p) { drop(p, true); });
            idField.value = newClientId(); showError(null); grow();
            toBottom(); catchUp();
          } else {
            var msg = r.data && r.data.error ? r.data.error.message : "The message could not be sent. Try again.";
            showError(msg);
            if (r.data && r.data.error && r.data.error.code === "messaging_disabled") messagingSwitchedOff();
          }
        })
        .catch(function () { showError("No connection right now. Your message is kept here; try again."); })
        .then(function () { syncComposer(); box.focus(); });
    });
    var coarse = window.matchMedia && window.matchMedia("(pointer: coarse)").matches;
    box.addEventListener("keydown", function (e) {
      if (e.key === "Enter" && !e.shiftKey && !coarse && !e.isComposing) { e.preventDefault(); form.requestSubmit(); }
    });
    box.addEventListener("input", function () {
      grow();
      var now = Date.now();
      if (ws && ws.readyState === 1 && now - typingSent > 3000 && box.value.trim()) {
        typingSent = now;
        ws.send(JSON.stringify({ type: "typing", conversation_id: convId }));
      }
    });
    grow();
  }

  /* --- reactions: the pills and the palette send through the API; the message is then
     rendered again by the server (and is, for everyone, on the live frame) --- */
  /* a keyboard user stays where they were: on the pill, or on the message's menu */
  function keepFocus(emoji, menu) {
    return function (li) {
      var target = null;
      if (menu) target = li.querySelector("details.actions summary");
      else li.querySelectorAll(".reactions input[name=emoji]").forEach(function (input) {
        if (input.value === emoji) target = input.form.querySelector("button");
      });
      if (target && (!document.activeElement || document.activeElement === document.body)) target.focus();
    };
  }

  if (list && live) {
    list.addEventListener("submit", function (e) {
      var f = e.target;
      if (!f.dataset || !f.dataset.react) return;
      e.preventDefault();
      var id = Number(f.dataset.react);
      var pick = e.submitter && e.submitter.name === "emoji" ? e.submitter : f.querySelector('input[name="emoji"]');
      if (!pick) return;
      var remove = !!f.querySelector('input[name="remove"]');
      var url = "/api/v1/messages/" + id + "/reactions";
      var call = remove ? api("DELETE", url + "?emoji=" + encodeURIComponent(pick.value)) : api("POST", url, { emoji: pick.value });
      var menu = f.closest("details");
      if (menu) menu.open = false;
      call.then(function (r) {
        if (r.ok) { showError(null); refreshOne(id, keepFocus(pick.value, menu)); return; }
        showError(r.data && r.data.error ? r.data.error.message : "The reaction could not be saved. Try again.");
        if (r.data && r.data.error && r.data.error.code === "messaging_disabled") messagingSwitchedOff();
      }).catch(function () { showError("No connection right now. Try again."); });
    });
  }

  if (scroller) {
    scroller.addEventListener("scroll", function () { if (atBottom() && jump) jump.hidden = true; });
    if (location.hash === "#latest" || !location.hash) toBottom();
  }
  if (jump) jump.addEventListener("click", toBottom);
  var refresh = document.getElementById("refresh-form");
  if (refresh && live) refresh.addEventListener("submit", function (e) { e.preventDefault(); catchUp(); toBottom(); });
  document.addEventListener("visibilitychange", markRead);
  wire(document);

  if (me && messagingOn) connect();
})();
