// The annotate page's keyboard: listens on the app's document (same origin),
// never on an editable target, and reports keys to Python in a queue so fast
// typing loses nothing (a component value is replaced, not appended, so each
// value carries every key not yet acknowledged by the server).
(function () {
  "use strict";
  var host = window.parent;
  var doc = host.document;
  var KEYS = new Set("ABCDEFGHTNXUSQZ123456789?".split("").concat(["Enter", "Backspace", "Escape"]));
  var args = { enabled: true, ack: 0, view: "", narrow: false };
  var queue = [];
  var seq = Date.now() * 1000; // increases across reloads of this frame, so the server's ack stays valid
  var lastView = null;

  function post(type, extra) {
    var msg = Object.assign({ isStreamlitMessage: true, type: type }, extra || {});
    host.postMessage(msg, "*");
  }
  function push(event) {
    seq += 1;
    event.seq = seq;
    queue.push(event);
    post("streamlit:setComponentValue", { value: { events: queue }, dataType: "json" });
  }
  function editable(el) {
    if (!el || !el.tagName) return false;
    if (el.isContentEditable) return true;
    var tag = el.tagName;
    if (tag === "TEXTAREA" || tag === "SELECT") return true;
    if (tag !== "INPUT") return false;
    var type = (el.getAttribute("type") || "text").toLowerCase();
    return ["radio", "checkbox", "button", "submit", "reset", "range", "color", "file"].indexOf(type) < 0;
  }
  function onKey(e) {
    if (e.isComposing) return;
    var target = e.target;
    if (e.key === "Enter" && (e.ctrlKey || e.metaKey)) {
      // Ctrl+Enter submits, from the comment box too: blur first so the comment is committed
      // before the submit reaches the server.
      if (target && target.blur && editable(target)) target.blur();
      setTimeout(function () { push({ k: "Ctrl+Enter" }); }, 80);
      return;
    }
    if (!args.enabled || e.defaultPrevented) return;
    if (e.ctrlKey || e.metaKey || e.altKey) return;
    if (editable(target)) return; // typing in a text field never triggers a key
    var key = e.key.length === 1 ? e.key.toUpperCase() : e.key;
    if (!KEYS.has(key)) return;
    if (key === "Enter" && target && (target.tagName === "BUTTON" || target.getAttribute("role") === "button")) return;
    e.preventDefault();
    e.stopPropagation();
    push({ k: key });
  }
  function narrowNow() { return host.innerWidth < 700; }
  function onResize() {
    if (narrowNow() !== !!args.narrow) push({ k: "viewport", narrow: narrowNow() });
  }
  function toTop() {
    try { host.scrollTo(0, 0); } catch (err) { /* ignore */ }
    doc.querySelectorAll("[data-testid='stMain'], [data-testid='stAppViewContainer'], section.main").forEach(function (el) {
      el.scrollTop = 0;
    });
    var active = doc.activeElement;
    if (active && active !== doc.body && active.blur) active.blur(); // keys go to the page, not a stale widget
  }

  // One listener per app document, even when this frame is re-created.
  if (host.__rmgapKeyboard) {
    try { doc.removeEventListener("keydown", host.__rmgapKeyboard.key, true); } catch (err) { /* old frame gone */ }
    try { host.removeEventListener("resize", host.__rmgapKeyboard.resize); } catch (err) { /* old frame gone */ }
  }
  host.__rmgapKeyboard = { key: onKey, resize: onResize };
  // Capture phase: a focused radio (react-aria) stops Enter from bubbling, so after a click on an
  // answer Enter would never reach a listener on the document.
  doc.addEventListener("keydown", onKey, true);
  host.addEventListener("resize", onResize);
  window.addEventListener("pagehide", function () {
    if (host.__rmgapKeyboard && host.__rmgapKeyboard.key === onKey) {
      doc.removeEventListener("keydown", onKey);
      host.removeEventListener("resize", onResize);
      host.__rmgapKeyboard = null;
    }
  });

  window.addEventListener("message", function (e) {
    var data = e.data;
    if (!data || data.type !== "streamlit:render") return;
    args = Object.assign(args, data.args || {});
    queue = queue.filter(function (ev) { return ev.seq > (args.ack || 0); });
    if (args.view !== lastView) {
      lastView = args.view;
      toTop();
      setTimeout(toTop, 50);
    }
    onResize();
  });
  post("streamlit:componentReady", { apiVersion: 1 });
  post("streamlit:setFrameHeight", { height: 0 });
})();
