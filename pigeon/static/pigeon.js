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
  function toBottom() { if (scroller) scroller.scrollTop = 0; showJump(false); }
  /* scroll the thread (and nothing around it) so that `el` sits `at` of the way down */
  function reveal(el, at) {
    if (!scroller) return;
    var box = scroller.getBoundingClientRect(), where = el.getBoundingClientRect();
    scroller.scrollTop += where.top - box.top - Math.max(8, (box.height - where.height) * at);
  }
  function showJump(fresh) {
    if (!jump) return;
    if (fresh === false) { jump.hidden = true; return; }
    var text = jump.querySelector(".jump-text");
    if (text && (fresh || jump.hidden)) text.textContent = fresh ? "New messages" : "Jump to latest";
    jump.hidden = false;
  }

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
    root.querySelectorAll("[data-copy]").forEach(function (b) { if (navigator.clipboard) b.hidden = false; });
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
      regroup();  // inside: a message that joins a group changes the one before it too
    });
    added.forEach(wire);
    rove();
    if (seenUpTo) markSeen(seenUpTo);
    if (moved && theirs) showJump(true);
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
        keepPlace(function () { old.replaceWith(li); regroup(); });
        wire(li); rove();
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

  /* the thread header's "online" / "last seen …" (the server sends frames only to those who
     may see them) */
  var presenceFrames = 0;
  function showPresence(data) {
    var el = document.getElementById("presence");
    if (!el || Number(el.dataset.userId) !== data.user_id) return;
    presenceFrames++;
    var online = data.status === "online";
    el.classList.toggle("online", online);
    var at = new Date(data.last_seen_at);
    var hm = at.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
    el.textContent = online ? "online" : "last seen today at " + hm;
    var dot = el.previousElementSibling;
    if (!dot || !dot.hasAttribute("aria-hidden")) {
      dot = node("span", null, " · "); dot.setAttribute("aria-hidden", "true"); el.before(dot);
    }
  }

  /* once the socket is open, presence changes come as frames; one between the page's render
     and the hello came in none, so the header asks how it stands now */
  function refreshPresence() {
    var el = document.getElementById("presence");
    if (!el || !convId) return;
    var asked = presenceFrames;
    getHTML("/messages/" + convId + "/presence").then(function (html) {
      var now = fragment(html).querySelector("#presence");
      if (!now || presenceFrames !== asked) return;  /* a frame since says more */
      if (now.dataset.status !== "online" && !now.dataset.lastSeenAt) return;  /* never seen */
      showPresence({ user_id: Number(now.dataset.userId), status: now.dataset.status, last_seen_at: now.dataset.lastSeenAt || null });
    }).catch(function () {});
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
      catchUp(); refreshList(); refreshPresence();
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
      if (groupChanged(data)) return;
      if (data.conversation_id === convId && data.change === "deleted") { location.href = "/messages"; return; }
      refreshList();
    } else if (type === "receipt.read") {
      if (data.conversation_id === convId && data.user_id !== me) markSeen(data.message_id);
    } else if (type === "typing") {
      if (data.conversation_id === convId && data.user_id !== me) showTyping(data.user_id);
    } else if (type === "unread") {
      setBadge(data.total);
      refreshList();
    } else if (type === "presence") {
      showPresence(data);
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
      document.dispatchEvent(new CustomEvent("pigeon:frame", { detail: frame }));
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
      var payload = { body: text, client_msg_id: idField.value, attachment_ids: ids };
      var answering = replyingTo();
      if (answering) payload.reply_to_id = answering;
      api("POST", "/api/v1/conversations/" + convId + "/messages", payload)
        .then(function (r) {
          if (r.ok) {
            if (box.value === text) box.value = "";
            sending.forEach(function (p) { drop(p, true); });
            idField.value = newClientId(); showError(null); grow(); cancelReply();
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

  /* a typed emoji that is not one: said under its field, as the page without script does */
  function fieldError(f, input, text) {
    var p = f.querySelector(".form-error");
    if (!p) {
      p = document.createElement("p");
      p.className = "form-error"; p.id = "emoji-error-" + f.dataset.react; p.setAttribute("role", "alert");
      f.appendChild(p);
    }
    p.textContent = text;
    input.setAttribute("aria-invalid", "true");
    input.setAttribute("aria-describedby", p.id);
    input.focus();
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
      var typed = f.classList.contains("other-emoji");  // stays open to be corrected
      if (menu && !typed) menu.open = false;
      call.then(function (r) {
        if (r.ok) { showError(null); if (menu) menu.open = false; refreshOne(id, keepFocus(pick.value, menu)); return; }
        var text = r.data && r.data.error ? r.data.error.message : "The reaction could not be saved. Try again.";
        if (typed && r.data && r.data.error && r.data.error.code === "invalid_emoji") fieldError(f, pick, text);
        else showError(text);
        if (r.data && r.data.error && r.data.error.code === "messaging_disabled") messagingSwitchedOff();
      }).catch(function () { showError("No connection right now. Try again."); });
    });
  }

  if (scroller) {
    scroller.addEventListener("scroll", function () {
      if (atBottom()) showJump(false);
      else if (distanceFromBottom() > scroller.clientHeight && jump && jump.hidden) showJump();
    }, { passive: true });
    var divider = document.getElementById("unread");
    var opening = function () {
      if (divider && (location.hash === "#latest" || location.hash === "#unread" || !location.hash)) {
        reveal(divider, 0);
        if (!atBottom()) showJump();
      } else if (location.hash === "#latest" || !location.hash) toBottom();
    };
    opening();
    // the browser's own jump to the link's #fragment may come after this script: once more
    if (document.readyState !== "complete") window.addEventListener("load", opening, { once: true });
  }
  if (jump) jump.addEventListener("click", function () { toBottom(); var last = lastMessage(); if (last) focusMessage(last); });
  // for pages without script; an older page (not live) has its link to the newest instead
  var refresh = document.getElementById("refresh-form");
  if (refresh) refresh.hidden = true;
  document.addEventListener("visibilitychange", markRead);
  wire(document);


  /* --- the thread, by keyboard and at length: replies, copy, menus that close with Escape,
     runs of messages grouped, older history loaded in place as the reader scrolls up, and
     one tab stop for all the messages (arrow keys move between them) --- */
  var replyBox = document.getElementById("replying");
  var GROUP_MS = 300000;

  function msgs() { return list ? list.querySelectorAll("li.msg") : []; }
  function lastMessage() { var all = msgs(); return all.length ? all[all.length - 1] : null; }

  function regroup() {
    if (!list) return;
    var prev = null;
    list.querySelectorAll("li").forEach(function (li) {
      if (!li.classList.contains("msg")) { if (li.classList.contains("day")) prev = null; return; }
      li.classList.remove("cont", "more");
      if (prev && prev.dataset.sender === li.dataset.sender) {
        var gap = Date.parse(li.dataset.time) - Date.parse(prev.dataset.time);
        if (gap >= 0 && gap <= GROUP_MS) { li.classList.add("cont"); prev.classList.add("more"); }
      }
      prev = li;
    });
  }

  var FOCUSABLE = "a[href], button, summary, input:not([type=hidden]), select, textarea";
  var activeId = null;
  function rove() {
    if (!list) return;
    var all = msgs();
    if (!all.length) return;
    var active = activeId && document.getElementById("m" + activeId);
    if (!active) active = all[all.length - 1];
    all.forEach(function (li) {
      var on = li === active;
      li.tabIndex = on ? 0 : -1;
      li.querySelectorAll(FOCUSABLE).forEach(function (el) {
        if (on) { if (el.dataset.roved) { el.removeAttribute("tabindex"); delete el.dataset.roved; } }
        else if (!el.hasAttribute("tabindex") || el.dataset.roved) { el.tabIndex = -1; el.dataset.roved = "1"; }
      });
    });
    if (scroller) scroller.tabIndex = -1;  // the messages are the stop now
  }
  function focusMessage(li) { activeId = li.dataset.id; rove(); li.focus(); }

  function closeMenus(except) {
    document.querySelectorAll("details.actions[open]").forEach(function (d) {
      if (!except || (d !== except && !d.contains(except))) d.open = false;
    });
  }

  function replyingTo() {
    if (!replyBox || replyBox.hidden) return 0;
    var input = replyBox.querySelector('input[name="reply_to_id"]');
    return input && !input.disabled ? Number(input.value) || 0 : 0;
  }
  function cancelReply() {
    if (!replyBox) return;
    var input = replyBox.querySelector('input[name="reply_to_id"]');
    if (input) { input.value = ""; input.disabled = true; }
    replyBox.hidden = true;
  }
  function startReply(li) {
    if (!replyBox || !box || box.disabled) return false;
    var input = replyBox.querySelector('input[name="reply_to_id"]');
    var who = Number(li.dataset.sender) === me ? "You" : (names[li.dataset.sender] || "Former member");
    var text = li.querySelector(".bubble .body");
    var files = li.querySelectorAll(".files li, .photos a").length;
    var line = text ? text.textContent.trim().split("\n")[0] : (files === 1 ? "A file" : files + " files");
    replyBox.querySelector(".replying-label").textContent = "Replying to " + who;
    replyBox.querySelector(".replying-text").textContent = line;
    input.value = li.dataset.id; input.disabled = false;
    replyBox.hidden = false;
    box.focus();
    return true;
  }

  var toastTimer = null;
  function toast(text) {
    var el = document.getElementById("toast");
    if (!el) { el = node("p", "toast"); el.id = "toast"; el.setAttribute("role", "status"); thread.appendChild(el); }
    el.textContent = text; el.hidden = false;
    clearTimeout(toastTimer);
    toastTimer = setTimeout(function () { el.hidden = true; el.textContent = ""; }, 2500);
  }

  function flash(li) {
    li.classList.add("flash");
    setTimeout(function () { li.classList.remove("flash"); }, 1500);
  }

  function loadOlder() {
    var older = document.getElementById("older");
    if (!older || older.dataset.loading || !live) return;
    older.dataset.loading = "1";
    fetch("/messages/" + convId + "/before/" + older.dataset.before, { credentials: "same-origin", headers: { "Accept": "text/html" } })
      .then(function (r) {
        if (!r.ok || r.redirected) throw new Error("HTTP " + r.status);
        var next = r.headers.get("X-Older-Id");
        return r.text().then(function (html) { return { html: html, next: next }; });
      })
      .then(function (page) {
        var frag = fragment(page.html);
        var items = Array.prototype.slice.call(frag.children).filter(function (el) { return el.tagName === "LI"; });
        var first = list.firstElementChild;
        var lastNewDay = null;
        items.forEach(function (li) { if (li.classList.contains("day")) lastNewDay = li.dataset.day; });
        // the day the new page ends on is the day the list starts with: one label for it
        if (first && first.classList.contains("day") && first.dataset.day === lastNewDay) first.remove();
        var anchor = list.firstElementChild;
        var before = distanceFromBottom();
        items.forEach(function (li) { if (!document.getElementById(li.id) || !li.id) list.insertBefore(li, anchor); });
        if (scroller) scroller.scrollTop = -before;
        items.forEach(wire);
        regroup(); rove();
        if (page.next) { older.dataset.before = page.next; older.querySelector("a").href = "/messages/" + convId + "?before=" + page.next; delete older.dataset.loading; }
        else older.remove();
      })
      .catch(function () { delete older.dataset.loading; });
  }

  function setUpThread() {
    if (!list) return;
    regroup(); rove();
    list.addEventListener("focusin", function (e) {
      var li = e.target.closest && e.target.closest("li.msg");
      if (li && li.dataset.id !== activeId) { activeId = li.dataset.id; rove(); }
    });
    list.addEventListener("keydown", function (e) {
      if (!e.target.matches || !e.target.matches("li.msg")) return;
      var all = Array.prototype.slice.call(msgs()), at = all.indexOf(e.target), to = null;
      if (e.key === "ArrowUp") to = all[at - 1];
      else if (e.key === "ArrowDown") to = all[at + 1];
      else if (e.key === "Home") to = all[0];
      else if (e.key === "End") to = all[all.length - 1];
      else if (e.key === "Enter") { var s = e.target.querySelector("details.actions summary"); if (s) { e.preventDefault(); s.click(); } return; }
      else return;
      e.preventDefault();
      if (to) focusMessage(to);
      else if (e.key === "ArrowUp") loadOlder();
    });
    list.addEventListener("click", function (e) {
      var t = e.target.closest ? e.target.closest("[data-reply], [data-copy], a[data-quote]") : null;
      if (!t) return;
      var li = t.closest("li.msg");
      if (t.dataset.reply && live) {
        if (startReply(li)) { e.preventDefault(); closeMenus(); }
      } else if (t.dataset.copy) {
        var text = li.querySelector(".bubble .body");
        if (!text || !navigator.clipboard) return;
        navigator.clipboard.writeText(text.textContent).then(function () {
          closeMenus();
          var s = li.querySelector("details.actions > summary");
          if (s) s.focus();
          toast("Message copied");
        }).catch(function () { showError("The text could not be copied."); });
      } else if (t.dataset.quote) {
        var target = document.getElementById("m" + t.dataset.quote);
        if (!target || e.button !== 0 || e.ctrlKey || e.metaKey) return;
        e.preventDefault();
        reveal(target, 0.4);
        focusMessage(target); flash(target);
      }
    });
    list.addEventListener("toggle", function (e) {
      if (e.target.matches && e.target.matches("details.actions") && e.target.open) closeMenus(e.target);
    }, true);
    var cancel = document.getElementById("replying-cancel");
    if (cancel && live) cancel.addEventListener("click", function (e) {
      e.preventDefault(); cancelReply(); if (box) box.focus();
    });
    var older = document.getElementById("older");
    if (older && live && scroller && "IntersectionObserver" in window) {
      new IntersectionObserver(function (entries) {
        if (entries.some(function (en) { return en.isIntersecting; })) loadOlder();
      }, { root: scroller, rootMargin: "300px 0px 0px 0px" }).observe(older);
      older.querySelector("a").addEventListener("click", function (e) { e.preventDefault(); loadOlder(); });
    }
  }

  /* Escape closes the innermost open menu and puts focus back on its button */
  document.addEventListener("keydown", function (e) {
    if (e.key !== "Escape") return;
    var open = document.querySelectorAll("details[open]");
    if (!open.length) { if (replyingTo() && document.activeElement === box) cancelReply(); return; }
    var inner = open[open.length - 1];
    inner.open = false;
    var summary = inner.querySelector("summary");
    if (summary) summary.focus();
  });

  /* the conversation list: one tab stop (arrow keys move), and on a wide screen it keeps its
     scroll position from one conversation to the next */
  function roveList() {
    var rows = document.querySelectorAll("#convlist a.convrow");
    if (!rows.length) return;
    var current = document.querySelector('#convlist a.convrow[aria-current="page"]') || rows[0];
    rows.forEach(function (a) { a.tabIndex = a === current ? 0 : -1; });
  }
  function setUpList() {
    // the search box sends with Enter (a phone's keyboard has a Search key): one stop, not two
    var search = document.querySelector("#list-search button");
    if (search) search.hidden = true;
    var wrap = document.getElementById("convlist-wrap");
    var pane = document.querySelector(".pane-list");
    if (!wrap || !pane) return;
    roveList();
    new MutationObserver(roveList).observe(wrap, { childList: true });
    wrap.addEventListener("keydown", function (e) {
      if (!e.target.matches || !e.target.matches("a.convrow")) return;
      var rows = Array.prototype.slice.call(document.querySelectorAll("#convlist a.convrow"));
      var at = rows.indexOf(e.target), to = null;
      if (e.key === "ArrowDown") to = rows[at + 1];
      else if (e.key === "ArrowUp") to = rows[at - 1];
      else if (e.key === "Home") to = rows[0];
      else if (e.key === "End") to = rows[rows.length - 1];
      else return;
      e.preventDefault();
      if (to) { rows.forEach(function (a) { a.tabIndex = a === to ? 0 : -1; }); to.focus(); }
    });
    try {
      var kept = sessionStorage.getItem("pigeon.listScroll");
      if (kept && window.matchMedia("(min-width: 900px)").matches) pane.scrollTop = Number(kept) || 0;
      window.addEventListener("pagehide", function () { sessionStorage.setItem("pigeon.listScroll", String(pane.scrollTop)); });
    } catch (e) { /* storage off: the list opens at the top */ }
  }

  setUpThread();
  setUpList();
  /* --- groups: an open info page and a group thread follow changes to the group (its
     name, who is in it); someone no longer in it is told so and cannot write any more --- */
  function groupWatch() {
    var info = document.getElementById("group-info");
    var infoId = info ? Number(info.dataset.conversationId) : 0;
    var heading = document.getElementById("thread-title");
    var line = document.getElementById("group-members-line");
    var timer = null, sending = false;
    // one's own leave or delete is already on its way to the list, with its own notice
    if (info) info.addEventListener("submit", function (e) { sending = !e.defaultPrevented; });

    function swap(fresh, id) {
      var now = document.getElementById(id), next = fresh.querySelector("#" + id);
      if (!now || !next) return;
      var had = now.contains(document.activeElement) ? document.activeElement : null;
      var label = had ? had.getAttribute("aria-label") : null;
      now.replaceWith(next);
      wire(next);
      if (had) {  // a keyboard user stays where they were, or on the list's heading
        var same = label ? next.querySelector('[aria-label="' + CSS.escape(label) + '"]') : null;
        (same || document.getElementById("members-title") || next).focus();
      }
    }
    function refreshInfo() {
      clearTimeout(timer);
      timer = setTimeout(function () {
        getHTML(location.pathname + location.search).then(function (html) {
          var fresh = fragment(html);
          swap(fresh, "group-head"); swap(fresh, "group-members");
        }).catch(function () {});
      }, 250);
    }
    function refreshThread() {
      api("GET", "/api/v1/conversations/" + convId).then(function (r) {
        if (!r.ok || !r.data) return;
        var people = r.data.participants || [];
        var others = people.filter(function (p) { return p.id !== me; }).map(function (p) { return p.display_name; });
        people.forEach(function (p) { names[String(p.id)] = p.display_name; });
        line.textContent = people.length + " members: " + people.map(function (p) { return p.display_name; }).join(", ");
        if (!r.data.title) heading.textContent = others.slice(0, 3).join(", ") + (others.length > 3 ? " and " + (others.length - 3) + " more" : "");
      }).catch(function () {});
    }
    function leftThread() {
      live = false;
      if (form) form.querySelectorAll("textarea, button, input").forEach(function (el) { el.disabled = true; });
      var link = document.getElementById("group-info-menu");
      if (link) link.remove();
      showError("You are no longer in this group. Its messages so far stay here until you leave the page.");
    }

    return function (data) {
      var id = data.conversation_id, mine = data.change === "member_removed" && data.user_id === me;
      if (infoId && id === infoId && !sending) {
        if (data.change === "deleted") { location.href = "/messages?notice=group_deleted"; return true; }
        if (mine) { location.href = "/messages?notice=removed"; return true; }
        if (data.change !== "personal") refreshInfo();
      }
      if (kind === "group" && id === convId && line && heading) {
        if (mine) leftThread();
        else if (data.change === "title" && data.title) heading.textContent = data.title;
        else if (data.change === "members_added" || data.change === "member_removed") refreshThread();
      }
      return false;
    };
  }
  var groupChanged = groupWatch();
  /* --- confirmed forms: a form with data-confirmed="name" sends name=yes once its data-confirm
     question was accepted (wire's listener, added first, stops the submit otherwise); without
     script the server answers such a form with its own confirm page --- */
  function confirmedForms() {
    document.querySelectorAll("form[data-confirmed]").forEach(function (f) {
      f.addEventListener("submit", function (e) {
        if (e.defaultPrevented) return;
        var input = f.elements.namedItem(f.dataset.confirmed);
        if (input) input.value = "yes";
      });
    });
  }
  confirmedForms();

  if (me && messagingOn) connect();
})();

/* --- invitations: the link shown once after sending gets a Copy button (without script, or
   without a clipboard, the field is there to select by hand) --- */
(function () {
  "use strict";
  var field = document.getElementById("invitation-link");
  var button = document.getElementById("invitation-copy");
  if (!field || !button || !navigator.clipboard) return;
  button.hidden = false;
  button.addEventListener("click", function () {
    navigator.clipboard.writeText(field.value).then(function () {
      button.textContent = "Link copied";
    }, function () {
      field.select();
    });
  });
})();

/* --- account email: "Resend the email" in the verify banner asks the API and says so in place
   (without script the form posts and lands on a page saying it was sent); the reset form checks
   that the two passwords match before it is sent. Text from the server is set as text. --- */
(function () {
  "use strict";
  var meta = document.querySelector('meta[name="csrf-token"]');
  var csrf = meta ? meta.content : "";
  var banner = document.getElementById("verify-banner");
  var resend = document.getElementById("verify-resend");
  if (banner && resend && window.fetch) {
    resend.addEventListener("submit", function (e) {
      e.preventDefault();
      var button = resend.querySelector("button");
      var line = banner.querySelector("p");
      if (button) button.disabled = true;
      fetch("/api/v1/auth/email/verify/resend", {
        method: "POST", credentials: "same-origin",
        headers: { "Accept": "application/json", "X-CSRF-Token": csrf }
      }).then(function (r) {
        return r.json().catch(function () { return null; }).then(function (d) {
          if (r.status === 202 && d) {
            line.textContent = "We sent a new link to " + d.sent_to + ". Follow it to verify your address.";
            resend.hidden = true;
          } else if (r.status === 409) {
            banner.hidden = true;
          } else {
            line.textContent = (d && d.error && d.error.message) || "That did not work; try again shortly.";
            if (button) button.disabled = false;
          }
        });
      }).catch(function () { resend.submit(); });
    });
  }
  var reset = document.getElementById("reset-form");
  if (reset) {
    var first = document.getElementById("reset-password");
    var again = document.getElementById("reset-password-again");
    var check = function () {
      again.setCustomValidity(again.value && first.value !== again.value ? "The two passwords are not the same." : "");
    };
    first.addEventListener("input", check);
    again.addEventListener("input", check);
  }
})();
/* --- end account email --- */

/* === The installable app and notifications: the service worker (offline page, Web Push), this
   device's push subscription on the devices page, and, while a Pigeon tab is open but hidden,
   a Notification for each new message (the server pushes only to people with no page open,
   so the two never double up). Every live frame reaches this section as a "pigeon:frame"
   event on the document. === */
(function () {
  "use strict";
  var body = document.body;
  var me = Number(body.dataset.userId || 0);
  var meta = document.querySelector('meta[name="csrf-token"]');
  var csrf = meta ? meta.content : "";
  var canNotify = "Notification" in window;
  var canPush = canNotify && "serviceWorker" in navigator && "PushManager" in window && window.isSecureContext;

  function call(method, url, data) {
    return fetch(url, {
      method: method, credentials: "same-origin",
      headers: { "Content-Type": "application/json", "Accept": "application/json", "X-CSRF-Token": csrf },
      body: data ? JSON.stringify(data) : undefined
    }).then(function (r) {
      return r.status === 204 ? { ok: true, data: null } : r.json().catch(function () { return null; })
        .then(function (d) { return { ok: r.ok, status: r.status, data: d }; });
    });
  }

  /* the offline page tries again by itself once the server answers again (the network may be
     up while the server is not, so it asks, now and then, as well as on the "online" event) */
  if (body.classList.contains("offline-page")) {
    var retry = function () {
      fetch("/healthz", { cache: "no-store" }).then(function (r) { if (r.ok) location.reload(); }).catch(function () {});
    };
    window.addEventListener("online", retry);
    setInterval(function () { if (document.visibilityState === "visible") retry(); }, 3000);
  }

  var ready = null;
  if ("serviceWorker" in navigator && window.isSecureContext) {
    ready = navigator.serviceWorker.register("/sw.js", { scope: "/" })
      .then(function () { return navigator.serviceWorker.ready; })
      .catch(function () { return null; });
  }
  function currentSubscription() {
    if (!canPush || !ready) return Promise.resolve(null);
    return ready.then(function (reg) { return reg ? reg.pushManager.getSubscription() : null; }).catch(function () { return null; });
  }
  function keyBytes(text) {
    var b64 = (text + "===".slice((text.length + 3) % 4)).replace(/-/g, "+").replace(/_/g, "/");
    var raw = atob(b64), out = new Uint8Array(raw.length);
    for (var i = 0; i < raw.length; i++) out[i] = raw.charCodeAt(i);
    return out;
  }

  /* signing out forgets this device first, so the next person on it hears nothing of ours */
  document.querySelectorAll('form[action="/logout"]').forEach(function (f) {
    f.addEventListener("submit", function (e) {
      if (f.dataset.pushForgotten || !canPush || Notification.permission !== "granted") return;
      e.preventDefault();
      var done = function () { f.dataset.pushForgotten = "1"; f.submit(); };
      var timer = setTimeout(done, 2000);
      currentSubscription().then(function (sub) {
        if (!sub) return null;
        return call("DELETE", "/api/v1/push/subscriptions", { endpoint: sub.endpoint })
          .catch(function () {}).then(function () { return sub.unsubscribe(); });
      }).catch(function () {}).then(function () { clearTimeout(timer); done(); });
    });
  });

  /* the devices page: turn notifications on for this browser, and mark it in the list */
  var panel = document.getElementById("push-devices");
  if (panel) {
    var here = document.getElementById("push-here");
    var button = document.getElementById("push-enable");
    var status = document.getElementById("push-status");
    var say = function (text) { status.textContent = text; };
    document.getElementById("push-needs-js").hidden = true;  /* said for pages without script */
    here.hidden = false;
    if (!canPush) {
      button.disabled = true;
      say("This browser cannot show notifications from Pigeon" + (window.isSecureContext ? "." : " over an insecure connection."));
    } else {
      currentSubscription().then(function (sub) {
        var mine = sub && Array.prototype.filter.call(panel.querySelectorAll("li.device"), function (li) { return li.dataset.endpoint === sub.endpoint; })[0];
        if (!mine) return;
        mine.querySelector(".this-device").hidden = false;
        button.hidden = true;
        say("This device gets notifications.");
        var remove = mine.querySelector("form");
        remove.addEventListener("submit", function () { sub.unsubscribe().catch(function () {}); });
      });
      button.addEventListener("click", function () {
        button.disabled = true;
        say("Asking your browser…");
        Notification.requestPermission().then(function (permission) {
          if (permission !== "granted") throw new Error("Notifications are blocked for this site: allow them in your browser's settings, then try again.");
          return ready.then(function (reg) {
            if (!reg) throw new Error("The app could not start in this browser.");
            return reg.pushManager.subscribe({ userVisibleOnly: true, applicationServerKey: keyBytes(panel.dataset.pushKey) });
          });
        }).then(function (sub) {
          return call("POST", "/api/v1/push/subscriptions", sub.toJSON());
        }).then(function (r) {
          if (!r.ok) throw new Error((r.data && r.data.error && r.data.error.message) || "The server refused this device.");
          location.reload();
        }).catch(function (err) {
          button.disabled = false;
          say(err && err.message ? err.message : "Notifications could not be turned on here.");
        });
      });
    }
  }

  /* a Pigeon tab that is open but hidden: the server sends no push (this tab is connected),
     so the tab tells of a new message itself, as the push would */
  document.addEventListener("pigeon:frame", function (e) {
    var frame = e.detail || {}, m = frame.data || {};
    if (frame.type !== "message.new" || !me || m.sender_id === me) return;
    if (document.visibilityState !== "hidden" || !canNotify || Notification.permission !== "granted") return;
    call("GET", "/api/v1/conversations/" + Number(m.conversation_id)).then(function (r) {
      var c = r.data;
      if (!r.ok || !c || c.muted || c.request) return;
      var name = "";
      (c.participants || []).forEach(function (p) { if (p.id === m.sender_id) name = p.display_name; });
      var shown = new Notification(name ? "New message from " + name : "New message", {
        body: c.kind === "group" && c.title ? c.title : "",
        tag: "conversation-" + c.id,
        icon: "/static/icons/icon-192.png"
      });
      shown.onclick = function () {
        window.focus();
        shown.close();
        location.href = "/messages/" + c.id + "#latest";
      };
    }).catch(function () {});
  });
})();
